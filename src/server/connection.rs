//! One client, from accept to close: an HTTP request, and if it is an
//! upgrade, a WebSocket frame loop (RFC 6455 §4, §5, §7).
//!
//! ```text
//! worker thread
//!   read request head (deadline: handshake_timeout, size: max_header_bytes)
//!   ├─ plain GET /healthz, /, static file ─► response, close
//!   ├─ bad request ─────────────────────────► 400/404/405/426/431, close
//!   └─ valid upgrade on /chat or /echo ─────► 101, then the frame loop:
//!
//!      loop {
//!        bytes ─► Session ─► Message ─► handler (echo / chat)
//!                        ─► Ping    ─► Pong (even mid-message, §5.5.2)
//!                        ─► Close   ─► echo the code, close TCP (§5.5.1)
//!                        ─► error   ─► Close 1002/1007/1009 (§7.1.7)
//!        no bytes for ping_interval ─► Ping, or Close 1001 after idle_timeout
//!      }
//! ```
//!
//! The worker only ever blocks on its own socket. Everything it sends goes
//! through the connection's [`Outbound`], which other threads share.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chat::{self, Chat};
use crate::http::{self, request, static_files, Request, Response};
use crate::protocol::session::{Event, Step};
use crate::protocol::{
    frame, handshake, trace, CloseCode, FrameHeader, Limits, Message, OpCode, Session,
};

use super::outbound::{self, Bytes, Outbound};
use super::Shared;

/// How much one read asks for at first. Each read that fills it doubles
/// it (large messages, bursts), up to `MAX_READ_CHUNK`; an idle connection
/// keeps the small one (memory per idle connection is the cost of a
/// thread-per-connection server).
const READ_CHUNK: usize = 1024;
/// The most one read asks for (payload goes on to the message buffer).
const MAX_READ_CHUNK: usize = 64 * 1024;

/// Read at most `want` bytes onto the end of `buf`, into its spare room.
/// One buffer serves a connection's whole life: the request head, then
/// the frames that follow it.
fn read_more(stream: &TcpStream, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    let len = buf.len();
    buf.resize(len + want, 0);
    let result = (&*stream).read(&mut buf[len..]);
    buf.truncate(len + *result.as_ref().unwrap_or(&0));
    result
}
/// Payload of the server's heartbeat pings.
const PING_PAYLOAD: &[u8] = b"switchboard";

/// The WebSocket routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/chat`: the chat endpoint.
    Chat,
    /// `/echo`: every message back unchanged (the conformance target).
    Echo,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::Chat => "/chat",
            Route::Echo => "/echo",
        }
    }
}

/// What runs on an open WebSocket: echo, or chat.
pub trait Handler {
    /// A complete data message arrived. An error closes the connection
    /// with that code and reason.
    fn on_message(&mut self, message: Message) -> Result<(), (CloseCode, &'static str)>;
    /// The worker is about to wait for more input: write out whatever the
    /// messages handled since the last call queued for other connections.
    fn flush(&mut self) {}
    /// The connection is over (whatever the reason).
    fn on_close(&mut self) {}
}

/// `/echo`: every message goes back as it came, text as text.
struct Echo {
    out: Arc<Outbound>,
}

impl Handler for Echo {
    fn on_message(&mut self, message: Message) -> Result<(), (CloseCode, &'static str)> {
        let frame = match &message {
            Message::Text(text) => frame::encode(OpCode::Text, text.as_bytes()),
            Message::Binary(data) => frame::encode(OpCode::Binary, data),
        };
        // A closed connection just drops the echo; the loop will notice.
        let _ = self.out.send_own(Bytes::from(frame));
        Ok(())
    }
}

/// `/chat`: text goes to the chat; binary is refused (1003).
struct ChatHandler {
    chat: Arc<Chat>,
    client: chat::Client,
}

/// The chat's view of a connection: a non-blocking frame queue.
struct ChatSink(Arc<Outbound>);

impl chat::Sink for ChatSink {
    fn queue(&self, frame: chat::Frame) -> bool {
        self.0.queue(frame).is_ok()
    }

    fn flush(&self) {
        self.0.flush();
    }
}

impl Handler for ChatHandler {
    fn on_message(&mut self, message: Message) -> Result<(), (CloseCode, &'static str)> {
        match message {
            Message::Text(text) => self
                .client
                .on_text(&self.chat, &text)
                .map_err(|chat::Kick(why)| (CloseCode::PolicyViolation, why)),
            Message::Binary(_) => Err((
                CloseCode::UnsupportedData,
                "binary messages are not accepted on /chat",
            )),
        }
    }

    fn flush(&mut self) {
        self.client.flush();
    }

    fn on_close(&mut self) {
        self.chat.leave(&mut self.client);
    }
}

/// Serve one accepted connection on the current (worker) thread.
pub fn serve(stream: TcpStream, peer: SocketAddr, id: u64, shared: &Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    shared.register(id, &stream);
    if shared.config.trace {
        let worker = std::thread::current().name().unwrap_or("?").to_owned();
        log::info!(
            "conn={id} tcp: accepted from {peer}, handed to {worker} \
             (the kernel did the SYN, SYN-ACK, ACK handshake; accept() returned the socket)"
        );
    }
    if let Err(e) = serve_http(&stream, peer, id, shared) {
        log::debug!("conn={id} peer={peer} i/o error: {e}");
    }
    shared.unregister(id);
}

/// Read the request head and answer it.
fn serve_http(
    stream: &TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let config = &shared.config;
    let reply = |request: Option<&Request>, response: Response| {
        respond(stream, peer, id, config.trace, request, response)
    };
    let (request, rest) =
        match read_head(stream, config.max_header_bytes, config.handshake_timeout)? {
            Head::Request(request, rest) => (request, rest),
            Head::Closed => return Ok(()),
            Head::TimedOut => {
                return reply(
                    None,
                    Response::text(408, "request head not received in time"),
                )
            }
            Head::Bad(e) => return reply(None, Response::text(e.status(), &e.to_string())),
        };
    if config.trace {
        let mut head = format!(
            "{} {} HTTP/1.{}",
            request.method, request.target, request.minor
        );
        for (name, value) in &request.headers {
            head.push_str(&format!("\n{name}: {value}"));
        }
        log::info!("conn={id} client -> server: {}", indent(&head));
    }
    let route = match request.path() {
        "/chat" => Route::Chat,
        "/echo" => Route::Echo,
        path => return reply(Some(&request), plain_route(path, &request, shared)),
    };
    let upgrade = match handshake::check(&request.method, request.minor, request.header_pairs()) {
        Ok(upgrade) => upgrade,
        Err(e) => {
            let mut response = Response::text(e.status(), &e.to_string());
            match e {
                handshake::Error::MethodNotGet => response = response.with_header("Allow", "GET"),
                handshake::Error::NotWebSocket | handshake::Error::UnsupportedVersion => {
                    response = response
                        .with_header("Upgrade", "websocket")
                        .with_header("Sec-WebSocket-Version", handshake::VERSION);
                }
                _ => {}
            }
            log::debug!("conn={id} peer={peer} handshake refused: {e}");
            return reply(Some(&request), response);
        }
    };
    log::debug!(
        "conn={id} handshake ok: key={} accept={}",
        upgrade.key,
        upgrade.accept
    );
    let response = handshake::response(&upgrade.accept);
    if config.trace {
        log::info!(
            "conn={id} handshake: Sec-WebSocket-Accept = base64(SHA-1(key + GUID))\n    \
             = base64(SHA-1(\"{}\" + \"{}\"))\n    = \"{}\"",
            upgrade.key,
            handshake::GUID,
            upgrade.accept
        );
        log::info!(
            "conn={id} server -> client: {}",
            indent(response.trim_end())
        );
    }
    (&*stream).write_all(response.as_bytes())?;
    shared.stats.upgrades.fetch_add(1, Relaxed);
    let name = request.query_param("name");
    // Logged here, before `websocket`'s frame is on the stack: the deepest
    // call an idle worker ever makes sets how much of its stack stays
    // resident, and formatting a log line is deep (one page per idle
    // connection, measured).
    log::info!("conn={id} peer={peer} route={} open", route.path());
    websocket(stream, peer, id, route, name, rest, shared)
}

/// Indent the lines after the first, for multi-line trace entries.
fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
}

/// Answer a plain HTTP request and log it.
fn respond(
    stream: &TcpStream,
    peer: SocketAddr,
    id: u64,
    trace: bool,
    request: Option<&Request>,
    response: Response,
) -> io::Result<()> {
    let head_only = request.is_some_and(|r| r.method == "HEAD");
    let (method, target) = request.map_or(("-", "-"), |r| (r.method.as_str(), r.target.as_str()));
    log::info!(
        "conn={id} peer={peer} {method} {target} -> {}",
        response.status
    );
    let bytes = response.to_bytes(head_only);
    if trace {
        let head = String::from_utf8_lossy(&response.to_bytes(true))
            .trim_end()
            .to_owned();
        log::info!("conn={id} server -> client: {}", indent(&head));
        log::info!("conn={id} tcp: server closes (Connection: close): FIN first, then waits for the client's FIN");
    }
    (&*stream).write_all(&bytes)?;
    linger_close(stream, Duration::from_millis(500));
    Ok(())
}

/// Close gracefully: FIN first, then read what the peer still sends until
/// it closes too (or a short deadline), so that unread request bytes do
/// not turn our close into a reset that could destroy the response.
pub fn linger_close(stream: &TcpStream, limit: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + limit;
    let mut sink = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The routes that are not WebSocket endpoints.
fn plain_route(path: &str, request: &Request, shared: &Shared) -> Response {
    let get_or_head = matches!(request.method.as_str(), "GET" | "HEAD");
    let not_allowed =
        || Response::text(405, "method not allowed").with_header("Allow", "GET, HEAD");
    if path == "/healthz" {
        return if get_or_head {
            http::health::response()
        } else {
            not_allowed()
        };
    }
    let root = shared.config.web_root.as_deref();
    if static_files::is_static_path(path) || root.is_some() {
        if let Some(found) = static_files::serve(path, root) {
            return if get_or_head { found } else { not_allowed() };
        }
    }
    Response::text(404, "not found")
}

enum Head {
    Request(Request, Vec<u8>),
    Closed,
    TimedOut,
    Bad(request::ParseError),
}

/// Read until the request head is complete, within the deadline and the
/// size limit. Bytes after the head (a client may send its first frames
/// right behind it) are returned too.
fn read_head(stream: &TcpStream, max: usize, timeout: Duration) -> io::Result<Head> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        match request::parse(&buf, max) {
            Ok(Some((request, len))) => {
                // What follows the head stays: it is the start of the frames.
                buf.drain(..len);
                return Ok(Head::Request(request, buf));
            }
            Ok(None) => {}
            Err(e) => return Ok(Head::Bad(e)),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Head::TimedOut);
        }
        stream.set_read_timeout(Some(left))?;
        // Never read past the limit (plus one byte, to see it was passed).
        let want = READ_CHUNK.min(max + 1 - buf.len().min(max));
        match read_more(stream, &mut buf, want) {
            // A 0-byte read means the peer closed its side.
            Ok(0) => return Ok(Head::Closed),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Ok(Head::TimedOut),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Who closed, and with what code: for the log line.
struct Ending {
    code: u16,
    by: &'static str,
}

/// The WebSocket part of the connection's life.
fn websocket(
    stream: &TcpStream,
    peer: SocketAddr,
    id: u64,
    route: Route,
    name: Option<String>,
    rest: Vec<u8>,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let config = &shared.config;
    let started = Instant::now();
    let settings = outbound::Settings {
        max_frames: config.max_queue,
        max_bytes: config.max_queue_bytes,
        thread_stack: config.thread_stack,
        trace: config.trace,
    };
    let out = Arc::new(Outbound::new(
        id,
        stream.try_clone()?,
        settings,
        Arc::clone(&shared.threads),
        Arc::clone(&shared.stats),
    ));
    stream.set_write_timeout(Some(config.write_timeout))?;
    shared.set_outbound(id, &out);
    shared.stats.open_websockets.fetch_add(1, Relaxed);

    let max_message = match route {
        Route::Chat => config.max_message,
        Route::Echo => config.echo_max_message,
    };
    let limits = Limits {
        max_frame: config.max_frame.min(max_message),
        max_message,
    };
    let mut handler: Box<dyn Handler> = match route {
        Route::Echo => Box::new(Echo {
            out: Arc::clone(&out),
        }),
        Route::Chat => {
            let sink = Arc::new(ChatSink(Arc::clone(&out)));
            let client = shared.chat.join(name.as_deref(), sink);
            Box::new(ChatHandler {
                chat: Arc::clone(&shared.chat),
                client,
            })
        }
    };
    if shared.shutting_down.load(SeqCst) {
        out.close(CloseCode::GoingAway, "server shutdown");
    }
    let ending = FrameLoop {
        stream,
        out: &out,
        session: Session::new(limits),
        buf: rest,
        config,
        shared,
        fragment: 0,
    }
    .run(handler.as_mut());
    handler.on_close();
    out.abort();
    shared.stats.open_websockets.fetch_sub(1, Relaxed);
    if config.trace {
        let how = match (ending.by, ending.code) {
            ("peer", 1006) => "the client closed TCP without a Close frame (reported as 1006)",
            ("peer", _) => {
                "the client sent Close, the server answered with Close and closed TCP first"
            }
            ("error", _) => "the connection failed (reset or write timeout)",
            _ => "the server sent Close, then FIN; the socket is closed",
        };
        log::info!("conn={id} tcp: closed: {how}");
    }
    log::info!(
        "conn={id} peer={peer} route={} closed code={} by={} duration={:.3}s",
        route.path(),
        ending.code,
        ending.by,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The state of one connection's frame loop.
struct FrameLoop<'a> {
    stream: &'a TcpStream,
    out: &'a Arc<Outbound>,
    session: Session,
    /// Bytes read and not yet consumed by the session.
    buf: Vec<u8>,
    config: &'a crate::Config,
    shared: &'a Shared,
    /// `--trace`: which fragment of a message the last data frame was.
    fragment: u32,
}

/// What happened in one pass over the buffered bytes.
enum Flow {
    /// Go on reading.
    Continue,
    /// The peer's Close arrived after ours: the handshake is complete.
    Done(Ending),
    /// We sent Close (in reply or first): wait for the peer to finish.
    Closing(Ending),
}

impl FrameLoop<'_> {
    fn run(mut self, handler: &mut dyn Handler) -> Ending {
        let mut last_heard = Instant::now();
        if self
            .stream
            .set_read_timeout(Some(self.config.ping_interval))
            .is_err()
        {
            return Ending {
                code: 1006,
                by: "error",
            };
        }
        let mut want = READ_CHUNK;
        loop {
            let flow = self.process(handler);
            // Everything buffered is handled: write what it queued for
            // others before waiting for more input (one write per
            // recipient for the whole batch).
            handler.flush();
            match flow {
                Flow::Continue => {}
                Flow::Done(ending) => return ending,
                Flow::Closing(ending) => return self.finish_closing(ending),
            }
            if let Some(code) = self.out.close_sent() {
                // Another thread (shutdown, slow-consumer cut-off) closed us.
                if self.out.is_dead() {
                    return Ending {
                        code: code.as_u16(),
                        by: "server",
                    };
                }
                return self.finish_closing(Ending {
                    code: code.as_u16(),
                    by: "server",
                });
            }
            match read_more(self.stream, &mut self.buf, want) {
                // A 0-byte read: the peer closed TCP without a Close frame.
                Ok(0) => {
                    return Ending {
                        code: 1006,
                        by: "peer",
                    }
                }
                Ok(n) => {
                    last_heard = Instant::now();
                    if n == want && want < MAX_READ_CHUNK {
                        want *= 2;
                    }
                }
                Err(e) if is_timeout(&e) => {
                    if last_heard.elapsed() >= self.config.idle_timeout {
                        log::debug!(
                            "conn={} idle for {:?}: closing",
                            self.out.id(),
                            last_heard.elapsed()
                        );
                        self.out.close_own(CloseCode::GoingAway, "idle timeout");
                        return self.finish_closing(Ending {
                            code: 1001,
                            by: "server",
                        });
                    }
                    let ping: Bytes = frame::encode(OpCode::Ping, PING_PAYLOAD).into();
                    let _ = self.out.send_own(ping);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    let code = self.out.close_sent().map_or(1006, CloseCode::as_u16);
                    return Ending { code, by: "error" };
                }
            }
        }
    }

    /// Feed the buffered bytes to the session and act on every event.
    fn process(&mut self, handler: &mut dyn Handler) -> Flow {
        let mut used = 0;
        let flow = loop {
            let step = match self.session.read(&self.buf[used..]) {
                Ok(step) => step,
                Err(e) => {
                    // §7.1.7: _Fail the WebSocket Connection_: send Close
                    // with the code for the broken rule, then close TCP.
                    log::debug!("conn={} protocol error: {e}", self.out.id());
                    self.shared.stats.protocol_errors.fetch_add(1, Relaxed);
                    let code = e.close_code();
                    if self.config.trace {
                        log::info!(
                            "conn={} protocol error: {e}; failing the connection with Close {code}",
                            self.out.id()
                        );
                    }
                    self.out.close_own(code, "");
                    break Flow::Closing(Ending {
                        code: code.as_u16(),
                        by: "server",
                    });
                }
            };
            if self.config.trace {
                if let Some(header) = &step.header {
                    // A copy of the first payload bytes (tracing only).
                    let range = used + step.payload.start..used + step.payload.end;
                    let wire: Vec<u8> = self.buf[range].iter().take(125).copied().collect();
                    self.trace_in(header, &wire);
                }
            }
            let Step {
                consumed, event, ..
            } = step;
            used += consumed;
            let Some(event) = event else {
                if consumed == 0 {
                    break Flow::Continue;
                }
                continue;
            };
            match self.on_event(event, handler) {
                Flow::Continue => {}
                other => break other,
            }
        };
        self.buf.drain(..used);
        flow
    }

    /// `--trace`: a frame from the client, with its place in a message.
    fn trace_in(&mut self, header: &FrameHeader, wire: &[u8]) {
        let part = match header.opcode {
            OpCode::Text | OpCode::Binary if !header.fin => {
                self.fragment = 1;
                format!(
                    "fragment 1 of a {} message (FIN=0: more follow)\n    ",
                    header.opcode.name()
                )
            }
            OpCode::Continuation => {
                self.fragment += 1;
                let n = self.fragment;
                if header.fin {
                    self.fragment = 0;
                    format!("fragment {n}, the last (FIN=1): the message is complete\n    ")
                } else {
                    format!("fragment {n} (FIN=0: more follow)\n    ")
                }
            }
            op if op.is_control() && self.fragment > 0 => {
                "a control frame between fragments (allowed, §5.4)\n    ".to_owned()
            }
            _ => String::new(),
        };
        log::info!(
            "conn={} client -> server: {part}{}",
            self.out.id(),
            trace::frame(header, wire)
        );
    }

    fn on_event(&mut self, event: Event, handler: &mut dyn Handler) -> Flow {
        match event {
            Event::Message(message) => {
                self.shared.stats.messages_in.fetch_add(1, Relaxed);
                if self.out.close_sent().is_some() {
                    return Flow::Continue;
                }
                if let Err((code, reason)) = handler.on_message(message) {
                    self.out.close_own(code, reason);
                    return Flow::Closing(Ending {
                        code: code.as_u16(),
                        by: "server",
                    });
                }
            }
            Event::Ping(payload) => {
                // §5.5.2: answer with a Pong with the same payload, as soon
                // as is practical, even in the middle of a fragmented message.
                if self.out.close_sent().is_none() {
                    let pong: Bytes = frame::encode(OpCode::Pong, &payload).into();
                    let _ = self.out.send_own(pong);
                }
            }
            // §5.5.3: an unsolicited Pong needs no answer.
            Event::Pong(_) => {}
            Event::Close(payload) => {
                let code = payload.as_ref().map_or(1005, |(c, _)| c.as_u16());
                if self.out.close_sent().is_some() {
                    // We closed first; this is the answer.
                    let ours = self.out.close_sent().map_or(code, CloseCode::as_u16);
                    return Flow::Done(Ending {
                        code: ours,
                        by: "server",
                    });
                }
                // §5.5.1: reply with a Close, echoing the status code.
                match payload {
                    Some((code, _)) => self.out.close_own(code, ""),
                    None => self.out.close_empty_own(),
                };
                return Flow::Closing(Ending { code, by: "peer" });
            }
        }
        Flow::Continue
    }

    /// Our Close is queued. Wait (at most `close_timeout`) for the peer's
    /// Close or its end of TCP; data frames are dropped. The write side
    /// was shut (FIN) as soon as our Close was written.
    fn finish_closing(mut self, ending: Ending) -> Ending {
        let deadline = Instant::now() + self.config.close_timeout;
        loop {
            // Everything up to the peer's Close is read and dropped.
            loop {
                match self.session.read(&self.buf) {
                    Ok(Step {
                        consumed, event, ..
                    }) => {
                        self.buf.drain(..consumed);
                        if matches!(event, Some(Event::Close(_))) {
                            return ending;
                        }
                        if consumed == 0 && event.is_none() {
                            break;
                        }
                    }
                    Err(_) => return ending,
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return ending;
            }
            if let Ok(0) | Err(_) = read_more(self.stream, &mut self.buf, READ_CHUNK) {
                return ending;
            }
        }
    }
}
