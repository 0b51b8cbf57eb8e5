//! The WebSocket part of a connection's life (RFC 6455 §5, §7): the frame
//! loop on the worker thread, the heartbeat, and the closing handshake.
//!
//! ```text
//! loop {
//!   bytes ─► Session ─► Message ─► handler (echo / chat)
//!                   ─► Ping    ─► Pong (even mid-message, §5.5.2)
//!                   ─► Close   ─► echo the code, close TCP (§5.5.1)
//!                   ─► error   ─► Close 1002/1007/1009 (§7.1.7)
//!   no bytes for ping_interval ─► Ping, or Close 1001 after idle_timeout
//!   another thread closed us (shutdown, slow-consumer cut-off) ─► finish closing
//! }
//! ```
//!
//! The worker only ever blocks on its own socket. Everything it sends goes
//! through the connection's [`Outbound`], which other threads share.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Instant;

use crate::protocol::session::{Event, Step};
use crate::protocol::{frame, CloseCode, Limits, OpCode, Session};
use crate::Config;

use super::ending::{nearest, ClosedBy, Ending};
use super::gate::SignedIn;
use super::handlers::{ChatHandler, Echo, Handler, Route};
use super::narrate;
use super::outbound::{Bytes, Outbound, WriterConfig};
use super::shared::Shared;
use super::socket::{is_timeout, read_more, MAX_READ_CHUNK, READ_CHUNK};
use super::transport::Transport;

/// How often a closing connection looks again whether its Close is out.
const CLOSE_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Payload of the server's heartbeat pings.
const PING_PAYLOAD: &[u8] = b"switchboard";

/// Serve an upgraded connection until it closes. `rest` holds the bytes
/// that arrived behind the request head.
/// What the HTTP phase learned about a WebSocket it opened.
pub struct Opening<'a> {
    pub route: Route,
    /// `?name=`.
    pub name: Option<&'a str>,
    /// The account of a handshake token.
    pub signed: Option<SignedIn>,
    /// Where it comes from (see `gate::address_key`).
    pub address: Arc<str>,
}

pub fn serve(
    transport: &Arc<Transport>,
    peer: SocketAddr,
    id: u64,
    opening: Opening,
    rest: Vec<u8>,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let route = opening.route;
    let config = &shared.config;
    let started = Instant::now();
    let writer = WriterConfig {
        max_frames: config.max_queue,
        max_bytes: config.max_queue_bytes,
        thread_stack: config.thread_stack,
        trace: config.trace,
    };
    let out = Arc::new(Outbound::new(
        id,
        Arc::clone(transport),
        writer,
        Arc::clone(&shared.threads),
        Arc::clone(&shared.stats),
        Arc::clone(&shared.memory),
    ));
    transport.set_write_timeout(Some(config.write_timeout))?;
    transport.hand_over();
    shared.set_outbound(id, &out, route == Route::Chat);
    shared.memory.join(&out);
    shared.stats.count(&shared.stats.open_websockets);

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
        Route::Chat => Box::new(ChatHandler::new(
            &shared.chat,
            shared.gate.as_ref(),
            opening.name,
            opening.signed,
            opening.address,
            &out,
        )),
    };
    if shared.shutting_down.load(SeqCst) {
        shared.goodbye(&out, route == Route::Chat);
    }
    let ending = FrameLoop {
        transport,
        out: &out,
        session: Session::new(limits),
        buf: rest,
        config,
        shared,
        narrate: config.trace.then(narrate::Inbound::default),
        progressed: false,
    }
    .run(handler.as_mut());
    let user = handler
        .user()
        .map(|name| format!(" user={name}"))
        .unwrap_or_default();
    handler.on_close();
    out.abort();
    out.set_partial(0);
    shared.memory.leave(id);
    shared.stats.open_websockets.sub(1);
    if config.trace {
        ending.narrate(id);
    }
    log::info!(
        "conn={id} peer={peer} route={}{user} closed code={} by={} duration={:.3}s",
        route.path(),
        ending.code.as_u16(),
        ending.by.as_str(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The state of one connection's frame loop.
struct FrameLoop<'a> {
    transport: &'a Transport,
    out: &'a Arc<Outbound>,
    session: Session,
    /// Bytes read and not yet consumed by the session.
    buf: Vec<u8>,
    config: &'a Config,
    shared: &'a Shared,
    /// `--trace`: the frames' places in their messages.
    narrate: Option<narrate::Inbound>,
    /// A frame finished an event since the frame clock last looked.
    progressed: bool,
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
        let failed = Ending {
            code: CloseCode::Abnormal,
            by: ClosedBy::Error,
        };
        if self
            .transport
            .set_read_timeout(Some(self.config.ping_interval))
            .is_err()
        {
            return failed;
        }
        let mut want = READ_CHUNK;
        // The read timeout is shorter than the ping interval while the
        // handler has a deadline.
        let mut short_timeout = false;
        // When the message now arriving began (None: none is).
        let mut begun: Option<Instant> = None;
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
            if let Some(code) = self.out.closing() {
                // Another thread (shutdown, slow-consumer cut-off) closed us.
                if self.out.is_dead() {
                    return Ending::server(code);
                }
                return self.finish_closing(Ending::server(code));
            }
            // A message that has begun must end within --frame-timeout, so
            // a trickled frame cannot keep a worker forever.
            // A client that streams many messages is making progress: the
            // clock starts again whenever one completes.
            begun = match self.session.in_progress() || !self.buf.is_empty() {
                true if std::mem::take(&mut self.progressed) => Some(Instant::now()),
                true => Some(begun.unwrap_or_else(Instant::now)),
                false => None,
            };
            let frame_deadline = begun.map(|t| t + self.config.frame_timeout);
            let nearest = nearest(handler.deadline(), frame_deadline);
            if let Some((deadline, is_frame)) = nearest {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let (code, reason) = match is_frame {
                        true => (CloseCode::PolicyViolation, "frame timeout"),
                        false => handler.on_deadline(),
                    };
                    self.out.close_own(code, reason);
                    return self.finish_closing(Ending::server(code));
                }
                let wait = left.min(self.config.ping_interval);
                if self.transport.set_read_timeout(Some(wait)).is_err() {
                    return Ending {
                        code: CloseCode::Abnormal,
                        by: ClosedBy::Error,
                    };
                }
                short_timeout = true;
            } else if std::mem::take(&mut short_timeout) {
                let _ = self
                    .transport
                    .set_read_timeout(Some(self.config.ping_interval));
            }
            let read = read_more(self.transport, &mut self.buf, want);
            if let Ok(n) = read {
                self.shared.stats.bytes_read.add(n as u64);
            }
            if self.transport.take_wants_write() {
                self.out.nudge();
            }
            match read {
                // A 0-byte read: the peer closed TCP without a Close frame,
                // or another thread closed us and shut our reading side
                // (the memory budget).
                Ok(0) => {
                    return match self.out.closing() {
                        Some(code) => self.finish_closing(Ending::server(code)),
                        None => Ending {
                            code: CloseCode::Abnormal,
                            by: ClosedBy::Peer,
                        },
                    }
                }
                Ok(n) => {
                    last_heard = Instant::now();
                    if n == want && want < MAX_READ_CHUNK {
                        want *= 2;
                    }
                }
                // A deadline (sign-in, or a begun message) came first: the
                // top of the loop acts on it.
                Err(e) if is_timeout(&e) && nearest.is_some() => {}
                Err(e) if is_timeout(&e) => {
                    if last_heard.elapsed() >= self.config.idle_timeout {
                        log::debug!(
                            "conn={} idle for {:?}: closing",
                            self.out.id(),
                            last_heard.elapsed()
                        );
                        self.out.close_own(CloseCode::GoingAway, "idle timeout");
                        return self.finish_closing(Ending::server(CloseCode::GoingAway));
                    }
                    let ping: Bytes = frame::encode(OpCode::Ping, PING_PAYLOAD).into();
                    let _ = self.out.send_own(ping);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    return Ending {
                        code: self.out.closing().unwrap_or(CloseCode::Abnormal),
                        by: ClosedBy::Error,
                    };
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
                    self.shared.stats.count(&self.shared.stats.protocol_errors);
                    if self.config.trace {
                        narrate::protocol_error(self.out.id(), &e);
                    }
                    let code = e.close_code();
                    self.out.close_own(code, "");
                    break Flow::Closing(Ending::server(code));
                }
            };
            if let (Some(narrate), Some(header)) = (&mut self.narrate, &step.header) {
                // A copy of the first payload bytes (tracing only).
                let range = used + step.payload.start..used + step.payload.end;
                let wire: Vec<u8> = self.buf[range].iter().take(125).copied().collect();
                narrate.frame(self.out.id(), header, &wire);
            }
            let Step {
                consumed, event, ..
            } = step;
            used += consumed;
            // The partial message counts toward --max-buffered; growing it
            // may close the largest holder, perhaps this connection.
            self.out.set_partial(self.session.buffered());
            if let Some(code) = self.out.closing().filter(|_| event.is_none()) {
                break Flow::Closing(Ending::server(code));
            }
            let Some(event) = event else {
                if consumed == 0 {
                    break Flow::Continue;
                }
                continue;
            };
            // Only a whole message restarts the frame clock: pings and
            // pongs between the fragments of a trickled message must not.
            self.progressed |= matches!(event, Event::Message(_));
            match self.on_event(event, handler) {
                Flow::Continue => {}
                other => break other,
            }
        };
        self.buf.drain(..used);
        flow
    }

    fn on_event(&mut self, event: Event, handler: &mut dyn Handler) -> Flow {
        let closing = self.out.closing();
        match event {
            Event::Message(message) => {
                self.shared.stats.count(&self.shared.stats.messages_in);
                if closing.is_some() {
                    return Flow::Continue;
                }
                if let Err((code, reason)) = handler.on_message(message) {
                    self.out.close_own(code, reason);
                    return Flow::Closing(Ending::server(code));
                }
            }
            Event::Ping(payload) => {
                // §5.5.2: answer with a Pong with the same payload, as soon
                // as is practical, even in the middle of a fragmented message.
                if closing.is_none() {
                    let pong: Bytes = frame::encode(OpCode::Pong, &payload).into();
                    let _ = self.out.send_own(pong);
                }
            }
            // §5.5.3: an unsolicited Pong needs no answer.
            Event::Pong(_) => {}
            Event::Close(payload) => {
                if let Some(ours) = closing {
                    // We closed first; this is the answer.
                    return Flow::Done(Ending::server(ours));
                }
                // §5.5.1: reply with a Close, echoing the status code.
                let code = match payload {
                    Some((code, _)) => {
                        self.out.close_own(code, "");
                        code
                    }
                    None => {
                        self.out.close_empty_own();
                        CloseCode::NoStatusReceived
                    }
                };
                return Flow::Closing(Ending {
                    code,
                    by: ClosedBy::Peer,
                });
            }
        }
        Flow::Continue
    }

    /// Our Close is queued. Wait (at most `close_timeout`) for the peer's
    /// Close or its end of TCP; data frames are dropped. The write side
    /// was shut (FIN) as soon as our Close was written.
    ///
    /// A slow consumer's Close may wait behind a full socket: while it
    /// does (at most `write_timeout`, as any write), the wait goes on and
    /// input is still read and dropped, since closing a socket with unread
    /// input sends a reset that would destroy the Close on its way.
    /// Another thread shut our reading side (the memory budget closed us):
    /// reads end at once, so wait instead until our Close is out (at most
    /// `--write-timeout` from the start of closing), then give the peer
    /// `--close-timeout` to read it before the socket goes (closing it with
    /// unread input resets it, which could destroy the Close).
    fn linger_after_shut(&self, ending: Ending, started: Instant) -> Ending {
        while !self.out.close_done() && started.elapsed() < self.config.write_timeout {
            std::thread::sleep(CLOSE_POLL);
        }
        let until = Instant::now() + self.config.close_timeout;
        while Instant::now() < until {
            std::thread::sleep(CLOSE_POLL.min(until.saturating_duration_since(Instant::now())));
        }
        ending
    }

    fn finish_closing(mut self, ending: Ending) -> Ending {
        self.session.discard_data();
        self.out.set_partial(0);
        let started = Instant::now();
        let mut deadline = started + self.config.close_timeout;
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
            let now = Instant::now();
            if self.out.is_cut_off()
                && !self.out.close_done()
                && now < started + self.config.write_timeout
            {
                deadline = deadline.max(now + self.config.close_timeout);
            }
            let left = deadline.saturating_duration_since(now).min(CLOSE_POLL);
            if left.is_zero() || self.transport.set_read_timeout(Some(left)).is_err() {
                return ending;
            }
            match read_more(self.transport, &mut self.buf, READ_CHUNK) {
                Ok(0) if self.out.read_shut() => return self.linger_after_shut(ending, started),
                Ok(0) => return ending,
                Ok(_) => {}
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ending,
            }
        }
    }
}
