"""A Switchboard chat client in standard-library Python (3.9+).

`SwitchboardClient` speaks the chat protocol of docs/PROTOCOL.md over the
RFC 6455 client of `rfc6455.py` (the handshake, frames, masking and the
closing handshake, written out to be read; re-exported here).

    client = SwitchboardClient.connect("ws://localhost:8080/chat", name="alice")
    client.broadcast("hello")
    for event in client.events(timeout=5):
        print(event)

Accounts: `connect(url, token=TOKEN)` signs in with a session token first
thing; `login()`/`register()` sign in on an open connection. In
`--auth required` mode the first frame is `auth_required` (kept as
`client.required`) and `welcome` is None until signed in.
"""

import collections
import itertools
import json
import queue
import random
import threading
import time
import urllib.parse


from rfc6455 import ProtocolError, WebSocket, accept_key, encode_frame, mask, split_url  # noqa: F401 (re-exported)

__all__ = ["WebSocket", "SwitchboardClient", "ProtocolError", "ResponseError", "accept_key", "split_url", "backoff",
           "restart_delay"]


class ResponseError(Exception):
    """A request got an error response: `.code` and `.message`."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


def backoff(attempt, base=0.25, maximum=10.0, rand=random.random):
    """Seconds to wait before reconnect attempt `attempt` (0-based):
    exponential from `base` to `maximum`, with jitter so clients do not come
    back in step (the same as backoff() in clients/web/switchboard.mjs)."""
    ceiling = min(maximum, base * 2 ** min(attempt, 32))
    return ceiling / 2 + rand() * ceiling / 2


# The longest wait a "restarting" notice is believed for (a bad value must
# not park a client for hours).
MAX_RESTART_DELAY = 300.0


def restart_delay(notice):
    """Seconds to wait before reconnecting, from a {"type": "notice",
    "event": "restarting", "retry_after_ms": N} the server sent before its
    Close 1001 (the same as restartDelay() in clients/web/switchboard.mjs)."""
    try:
        ms = float(notice.get("retry_after_ms", 0))
    except (TypeError, ValueError):
        return 0.0
    return min(max(ms, 0.0) / 1000.0, MAX_RESTART_DELAY)


class SwitchboardClient:
    """The chat protocol of docs/PROTOCOL.md over a WebSocket.

    A reader thread puts every incoming JSON event on a queue; `events()`
    iterates over them. `request()` sends a request and waits for the
    response with the same id (other events keep flowing to `events()`).
    """

    # One numbering for message ids and request ids ("q7"), in the whole
    # process, across reconnects: as switchboard.mjs numbers them, so the
    # two CLIs print the same ids for the same session (--json).
    _ids = itertools.count(1)
    # The client's own bookkeeping ("i3": catch-up, recent history, the
    # first sign-in) is numbered apart, so it moves no id that is printed.
    _quiet_ids = itertools.count(1)

    @classmethod
    def next_id(cls):
        """The next id for a message whose ack or error should name it."""
        return next(cls._ids)

    def __init__(self, ws):
        self.ws = ws
        self.welcome = None  # the latest welcome (a sign-in brings a new one)
        self.required = None  # the auth_required frame, in --auth required
        self.token = None  # the session token signed in with
        self.auth_error = None  # (code, message) when connect's token was refused
        self._events = queue.Queue()
        self._held = collections.deque()  # events set aside while waiting for one
        self._waiting = {}  # request id -> queue for its response
        # --json: the responses to the caller's own requests (not quiet ones)
        # also go into the event stream, at their place among the others.
        self.echo_responses = False
        self._echoed = set()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_loop, name="switchboard-reader", daemon=True)

    @classmethod
    def connect(cls, url, name=None, timeout=10.0, token=None):
        """Connect to a `/chat` URL, as `name` if given; waits for the welcome
        (or, in --auth required, the `auth_required` frame: `welcome` is then
        None). With `token`, `auth` is the first message and it waits for the
        account's welcome, or sets `auth_error` (and stays a guest)."""
        if name is not None:
            sep = "&" if "?" in url else "?"
            url += sep + "name=" + urllib.parse.quote(name)
        client = cls(WebSocket.connect(url, timeout=timeout))
        client._reader.start()
        if token:
            client.send({"type": "auth", "token": token, "id": "auth"})
        first = client.next_event(timeout)
        if not first or first.get("type") not in ("welcome", "auth_required"):
            raise ProtocolError("expected a welcome, got %r (close %s)" % (first, client.ws.close_code))
        if token and not (first["type"] == "welcome" and first.get("guest") is False):
            answer = client._take(
                lambda e: (e["type"] == "welcome" and e.get("guest") is False)
                or (e["type"] == "error" and e.get("id") == "auth"), timeout)
            if answer["type"] == "error":
                client.auth_error = (answer.get("code"), answer.get("message"))
        if token and not client.auth_error:
            client.token = token
        return client

    @property
    def name(self):
        return self.welcome["name"] if self.welcome else None

    @property
    def guest(self):
        return not self.welcome or self.welcome.get("guest") is not False

    # -- accounts ----------------------------------------------------------------

    def account(self, method, name, password, timeout=10.0, quiet=False):
        """`login` or `register` on this connection: the result (its token is
        kept in `.token`); the account's welcome follows as an event (see
        wait_welcome). Raises ResponseError (bad_credentials, name_taken...)."""
        result = self.request(method, {"name": name, "password": password}, timeout=timeout, quiet=quiet)
        if result.get("token"):
            self.token = result["token"]
        return result

    def login(self, name, password, timeout=10.0):
        return self.account("login", name, password, timeout)

    def register(self, name, password, timeout=10.0):
        return self.account("register", name, password, timeout)

    def wait_welcome(self, timeout=10.0):
        """After login/register, before anyone else reads events: the
        account's welcome (other events stay queued, in order)."""
        return self._take(lambda e: e["type"] == "welcome" and e.get("guest") is False, timeout)

    def logout(self):
        """Revoke this session's token; the server then closes (1000 "signed out")."""
        result = self.request("logout")
        self.token = None
        return result

    def passwd(self, old, new):
        """Change the password; every other session ends, this one goes on
        with the new token."""
        result = self.request("passwd", {"old": old, "new": new})
        if result.get("token"):
            self.token = result["token"]
        return result

    # -- sending ---------------------------------------------------------------

    def send(self, message):
        """Send one JSON object."""
        self.ws.send_text(json.dumps(message, separators=(",", ":")))

    def _with_id(self, message, id):
        if id is not None:
            message["id"] = id
        self.send(message)

    def broadcast(self, text, id=None):
        self._with_id({"type": "broadcast", "text": text}, id)

    def direct(self, to, text, id=None):
        self._with_id({"type": "direct", "to": to, "text": text}, id)

    def multicast(self, to, text, id=None):
        self._with_id({"type": "multicast", "to": list(to), "text": text}, id)

    def subscribe(self, topic, id=None):
        self._with_id({"type": "subscribe", "topic": topic}, id)

    def unsubscribe(self, topic, id=None):
        self._with_id({"type": "unsubscribe", "topic": topic}, id)

    def publish(self, topic, text, id=None):
        self._with_id({"type": "publish", "topic": topic, "text": text}, id)

    def request(self, method, params=None, timeout=10.0, quiet=False):
        """Send a request and return its `result`; raise ResponseError for an
        error response and TimeoutError if none comes in time. With
        `echo_responses`, the response is an event too, unless `quiet` (the
        client's own bookkeeping: catch-up, recent history)."""
        id = "i%d" % next(self._quiet_ids) if quiet else "q%d" % next(self._ids)
        waiter = queue.Queue(maxsize=1)
        with self._lock:
            self._waiting[id] = waiter
            if self.echo_responses and not quiet:
                self._echoed.add(id)
        try:
            self.send({"type": "request", "id": id, "method": method, "params": params or {}})
            try:
                response = waiter.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError("no response to %s within %.1fs" % (method, timeout)) from None
        finally:
            with self._lock:
                self._waiting.pop(id, None)
        if response is None:
            raise ProtocolError("connection closed while waiting for %s" % method)
        if "error" in response:
            raise ResponseError(response["error"].get("code"), response["error"].get("message"))
        return response.get("result")

    def search(self, q, topic=None, limit=None, before=None, timeout=10.0):
        """Kept messages (broadcasts and topics) with every word of `q`, as
        the `search` result: {"messages": [newest first], "more": bool}.
        `topic`: only that topic (otherwise every stream); `limit`: 1-100
        (default 20); `before`: a seq (page on with the oldest seq of the
        last page while `more` is true)."""
        params = {"q": q}
        for key, value in (("topic", topic), ("limit", limit), ("before", before)):
            if value is not None:
                params[key] = value
        return self.request("search", params, timeout=timeout)

    def catch_up(self, after, topics=(), pages=20):
        """What was missed since seq `after`, after a reconnect: `history`
        `after` it from the broadcast stream and each topic (paging forward),
        as (messages oldest first, complete). `complete` is False when the
        server no longer had some of them."""
        missed, complete = [], True
        for topic in [None] + sorted(topics):
            since = after
            for _ in range(pages):
                params = {"after": since, "limit": 100}
                if topic is not None:
                    params["topic"] = topic
                result = self.request("history", params, quiet=True)
                complete = complete and result.get("complete", True)
                missed.extend(result["messages"])
                if not result.get("more") or not result["messages"]:
                    break
                since = result["messages"][-1]["seq"]
        missed.sort(key=lambda m: m["seq"])
        return missed, complete

    def close(self, code=1000):
        self.ws.close(code)
        self._reader.join(timeout=3)

    # -- receiving -------------------------------------------------------------

    def _read_loop(self):
        while True:
            message = self.ws.recv()
            if message is None:
                break
            kind, data = message
            if kind != "text":
                continue
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if event.get("type") == "welcome":
                self.welcome = event  # the latest identity (a sign-in brings one)
            elif event.get("type") == "auth_required":
                self.required = event
            if event.get("type") == "response":
                with self._lock:
                    waiter = self._waiting.get(event.get("id"))
                    echoed = event.get("id") in self._echoed
                    self._echoed.discard(event.get("id"))
                if echoed:
                    self._events.put(event)  # first: it is printed in its place
                if waiter is not None:
                    waiter.put(event)
                    continue
            self._events.put(event)
        with self._lock:
            for waiter in self._waiting.values():
                waiter.put(None)
        self._events.put(None)  # end of stream

    def next_event(self, timeout=None):
        """The next event, or None when the connection closed; raises
        TimeoutError if nothing arrives within `timeout` seconds."""
        if self._held:
            return self._held.popleft()
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no event within %.1fs" % timeout) from None

    def _take(self, predicate, timeout):
        """The first new event matching `predicate`; the ones before it are
        held, in order, for next_event()."""
        deadline = time.monotonic() + timeout
        skipped = []
        try:
            while True:
                left = deadline - time.monotonic()
                try:
                    event = self._events.get(timeout=max(left, 0.001))
                except queue.Empty:
                    raise TimeoutError("no matching event within %.1fs" % timeout) from None
                if event is None:
                    skipped.append(None)
                    raise ProtocolError("connection closed (code %s %s)" % (self.ws.close_code, self.ws.close_reason))
                if predicate(event):
                    return event
                skipped.append(event)
        finally:
            self._held.extend(skipped)

    def barrier(self, timeout=2.0):
        """Wait until whoever reads `events()` has taken every event that
        arrived before now (False if nobody did within `timeout`)."""
        reached = threading.Event()
        self._events.put({"type": "_barrier", "reached": reached})
        return reached.wait(timeout)

    def events(self, timeout=None):
        """Iterate over events until the connection closes (or `timeout`
        seconds pass with nothing new)."""
        while True:
            try:
                event = self.next_event(timeout)
            except TimeoutError:
                return
            if event is None:
                return
            if event.get("type") == "_barrier":
                event["reached"].set()
                continue
            yield event

    def wait_for(self, predicate, timeout=10.0):
        """The first event for which `predicate(event)` is true; the events
        before it are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching event within %.1fs" % timeout)
            event = self.next_event(left)
            if event is None:
                raise ProtocolError("connection closed (code %s)" % self.ws.close_code)
            if predicate(event):
                return event
