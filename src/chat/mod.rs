//! The chat: users, names, topics, history and the v1 JSON protocol of
//! `/chat`. No sockets, no disk, no broker here: a connection is a
//! [`Sink`] that takes encoded frames without blocking, the server supplies
//! the function that turns JSON text into a frame, and it chooses the
//! [`History`] and the [`Bus`] behind the chat.
//!
//! ```text
//!  worker of alice ── text ──► Client::on_text (rate limit) ──► Chat::handle
//!                                                                 │ lock registry
//!                          wire::parse ─► router::route ─► bus: seq; encode once,
//!                                                          queue to each target,
//!                                                          history.append
//!                                                                 │ unlock
//!                                        deferred history query ─► history.page
//!                                                   Outbox::flush ─► each Sink
//! ```
//!
//! | file | what |
//! |---|---|
//! | [`wire`] | the client's JSON -> [`wire::Inbound`] |
//! | [`messages`] | the server's JSON |
//! | [`registry`] | members, names, topics (one mutex) |
//! | [`router`] | who gets each message; acks |
//! | [`requests`] | request methods; history answered outside the lock |
//! | [`history`] | the `History` seam and `Ring`, the in-memory store |
//! | [`bus`] | the `Bus` seam and `LocalBus`, one process's order |

pub mod bus;
pub mod history;
pub mod messages;
pub mod registry;
pub mod requests;
pub mod router;
pub mod wire;

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bus::Bus;
use history::History;
use messages::{ErrorCode, Problem};
use registry::{Outbox, Registry};

/// One encoded frame, shared by every recipient.
pub type Frame = Arc<[u8]>;

/// Where a member's frames go: a connection's write queue.
pub trait Sink: Send + Sync {
    /// Queue a frame without blocking and without touching the socket
    /// (the caller holds the registry lock). False if the connection is
    /// closing or its queue overflowed (which cuts it off).
    fn queue(&self, frame: Frame) -> bool;
    /// Write what is queued (or finish a cut-off), without blocking for
    /// long; called with no lock held.
    fn flush(&self);
}

/// A connection's chat identity, unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// The chat's limits and sizes (from the server `Config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Messages kept per history stream.
    pub history: usize,
    /// History streams (topics) kept at most.
    pub max_topics: usize,
    /// Longest `text`, in bytes.
    pub max_text: usize,
    /// The WebSocket message limit, announced in the welcome.
    pub max_message: u64,
    /// Messages per second per connection (0: no limit).
    pub rate: u32,
    /// Messages a connection may send at once.
    pub burst: u32,
    /// A worker flushes what it routed after this many messages even if
    /// more input is waiting (deferring flushes batches writes; the bound
    /// keeps queues well under their limit while it does).
    pub batch_messages: usize,
    /// ... or after this many bytes of text.
    pub batch_bytes: usize,
}

/// The chat server state shared by every connection.
pub struct Chat {
    registry: Mutex<Registry>,
    settings: Settings,
    encode: fn(&str) -> Frame,
    history: Arc<dyn History>,
    bus: Arc<dyn Bus>,
    started: Instant,
    next_id: AtomicU64,
    /// Chat messages delivered since start (the `stats` request).
    routed: AtomicU64,
}

/// Why a connection must be closed (with 1008).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kick(pub &'static str);

impl Chat {
    /// A chat whose frames are made by `encode` (JSON text -> frame
    /// bytes), keeping history in `history` and numbering messages with
    /// `bus`.
    pub fn new(
        settings: Settings,
        encode: fn(&str) -> Frame,
        history: Arc<dyn History>,
        bus: Arc<dyn Bus>,
    ) -> Chat {
        Chat {
            registry: Mutex::new(Registry::new(settings.max_topics, Arc::clone(&history))),
            settings,
            encode,
            history,
            bus,
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            routed: AtomicU64::new(0),
        }
    }

    /// Join with a requested name (maybe replaced, see the welcome). The
    /// welcome goes to the joiner, `join` presence to everyone else.
    pub fn join(&self, requested: Option<&str>, sink: Arc<dyn Sink>) -> Client {
        let id = ClientId(self.next_id.fetch_add(1, Relaxed) + 1);
        let mut out = Outbox::default();
        let name = {
            let mut reg = self.registry.lock();
            let name = reg.free_name(requested);
            reg.insert(id, name.clone(), Arc::clone(&sink));
            let id_text = id.to_string();
            let topics: Vec<&str> = reg.active_topics().iter().map(|(n, _)| *n).collect();
            let welcome = messages::Welcome {
                kind_of: "welcome",
                id: &id_text,
                name: &name,
                users: reg.user_names(),
                topics,
                server: concat!("switchboard/", env!("CARGO_PKG_VERSION")),
                epoch: self.history.epoch(),
                seq: self.bus.last_seq(),
                limits: messages::Announced {
                    max_message: self.settings.max_message,
                    max_text: self.settings.max_text,
                },
            };
            let welcome = (self.encode)(&messages::to_json(&welcome));
            reg.queue(&mut out, id, &welcome);
            self.presence(&mut reg, &mut out, id, "join", &name, None);
            name
        };
        out.flush();
        log::debug!("chat: {id} joined as {name}");
        Client {
            id,
            sink,
            limiter: RateLimiter::new(self.settings.rate, self.settings.burst),
            pending: Outbox::default(),
            batched: 0,
            batched_bytes: 0,
        }
    }

    /// Leave: `leave` presence to everyone else.
    pub fn leave(&self, client: &mut Client) {
        client.flush();
        let mut out = Outbox::default();
        {
            let mut reg = self.registry.lock();
            let Some(name) = reg.remove(client.id) else {
                return;
            };
            self.presence(&mut reg, &mut out, client.id, "leave", &name, None);
            log::debug!("chat: {} ({name}) left", client.id);
        }
        out.flush();
    }

    /// Route one text message from `client` (already rate-checked). The
    /// frames are queued now; the client flushes its outbox later. A
    /// history query is answered after the registry lock is released.
    fn handle(&self, client: &mut Client, text: &str) {
        let parsed = wire::parse(text, self.settings.max_text);
        let deferred = {
            let mut reg = self.registry.lock();
            match parsed {
                Ok(msg) => router::route(self, &mut reg, &mut client.pending, client.id, msg),
                Err(problem) => {
                    let json = messages::error(&problem);
                    self.send(&mut reg, &mut client.pending, client.id, &json);
                    None
                }
            }
        };
        if let Some(deferred) = deferred {
            let reply = requests::run(self, &deferred);
            client.send_own(&(self.encode)(&reply));
        }
    }

    /// Queue one JSON text for one member.
    fn send(&self, reg: &mut Registry, out: &mut Outbox, to: ClientId, json: &str) {
        reg.queue(out, to, &(self.encode)(json));
    }

    fn presence(
        &self,
        reg: &mut Registry,
        out: &mut Outbox,
        subject: ClientId,
        event: &'static str,
        name: &str,
        old: Option<&str>,
    ) {
        let presence = messages::Presence {
            kind_of: "presence",
            event,
            name,
            old,
        };
        let frame = (self.encode)(&messages::to_json(&presence));
        reg.queue_everyone(out, &frame, Some(subject));
    }

    fn count_routed(&self) {
        self.routed.fetch_add(1, Relaxed);
    }

    /// Chat messages delivered since start.
    pub fn routed(&self) -> u64 {
        self.routed.load(Relaxed)
    }

    /// Members connected now.
    pub fn members(&self) -> usize {
        self.registry.lock().len()
    }
}

/// One connection's side of the chat: its id, its rate limit, and the
/// recipients of what it routed since its last flush. Owned by the
/// connection's worker, so checking the limit takes no lock.
pub struct Client {
    pub id: ClientId,
    /// Its own connection: answers that need no registry lock go here.
    sink: Arc<dyn Sink>,
    limiter: RateLimiter,
    pending: Outbox,
    /// Messages and text bytes routed since the last flush.
    batched: usize,
    batched_bytes: usize,
}

impl Client {
    /// A text message arrived. `Err` means close the connection (1008).
    /// What it routes is queued; [`flush`](Client::flush) writes it.
    pub fn on_text(&mut self, chat: &Chat, text: &str) -> Result<(), Kick> {
        match self.limiter.take(Instant::now()) {
            Admit::Yes => {
                chat.handle(self, text);
                self.batched += 1;
                self.batched_bytes += text.len();
                if self.batched >= chat.settings.batch_messages
                    || self.batched_bytes >= chat.settings.batch_bytes
                {
                    self.flush();
                }
            }
            Admit::No => {
                let problem = Problem {
                    code: ErrorCode::RateLimited,
                    message: format!(
                        "over {} messages per second; message dropped",
                        chat.settings.rate
                    ),
                    id: wire::peek_id(text),
                };
                self.send_own(&(chat.encode)(&messages::error(&problem)));
            }
            Admit::Kick => return Err(Kick("rate limit")),
        }
        Ok(())
    }

    /// Queue a frame for this client alone, with no lock: it is flushed
    /// with the rest of the batch.
    fn send_own(&mut self, frame: &Frame) {
        self.sink.queue(Arc::clone(frame));
        self.pending.note(&self.sink);
    }

    /// Flush every recipient of what was routed since the last flush:
    /// called by the worker before it waits for more input.
    pub fn flush(&mut self) {
        self.pending.flush();
        self.batched = 0;
        self.batched_bytes = 0;
    }
}

enum Admit {
    Yes,
    No,
    Kick,
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up; each
/// data message takes one. Refusing more than 3 × burst messages within
/// 10 s means the client ignores `rate_limited` errors: it is closed.
struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    refused: VecDeque<Instant>,
}

/// The window in which refusals are counted.
const FLOOD_WINDOW: Duration = Duration::from_secs(10);
/// Refusals, in bursts, that a client may draw within [`FLOOD_WINDOW`]
/// before it is closed. A client that reads its `rate_limited` errors
/// slows down after the first few; three bursts' worth means it does not
/// read them, and every refusal still costs the server a parse and a frame.
const FLOOD_BURSTS: f64 = 3.0;

impl RateLimiter {
    fn new(rate: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: Instant::now(),
            refused: VecDeque::new(),
        }
    }

    fn take(&mut self, now: Instant) -> Admit {
        if self.rate == 0.0 {
            return Admit::Yes;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Yes;
        }
        while self
            .refused
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > FLOOD_WINDOW)
        {
            self.refused.pop_front();
        }
        self.refused.push_back(now);
        if self.refused.len() as f64 > FLOOD_BURSTS * self.burst {
            Admit::Kick
        } else {
            Admit::No
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_admits_a_burst_then_the_rate() {
        let mut l = RateLimiter::new(10, 5);
        let t0 = l.last;
        for _ in 0..5 {
            assert!(matches!(l.take(t0), Admit::Yes));
        }
        assert!(matches!(l.take(t0), Admit::No));
        assert!(
            matches!(l.take(t0 + Duration::from_millis(100)), Admit::Yes),
            "one token after 100 ms at 10/s"
        );
    }

    #[test]
    fn a_flood_past_three_bursts_of_refusals_is_kicked() {
        let mut l = RateLimiter::new(1, 2);
        let t0 = l.last;
        let results: Vec<bool> = (0..10).map(|_| matches!(l.take(t0), Admit::Kick)).collect();
        // 2 admitted, 6 refused (3 x burst), the 9th refusal... kicked.
        assert_eq!(results.iter().position(|k| *k), Some(8));
    }

    #[test]
    fn rate_zero_means_no_limit() {
        let mut l = RateLimiter::new(0, 1);
        let t0 = l.last;
        assert!((0..10_000).all(|_| matches!(l.take(t0), Admit::Yes)));
    }
}
