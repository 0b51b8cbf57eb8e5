//! `RedisBus`: the chat's `Bus` across hosts (issue 18). Every node hands
//! its messages to Redis, where the publish script gives each its global
//! `seq`; every node then delivers every message strictly in `seq` order.
//!
//! ```text
//!  router (lock) ─► publish(m, token): queue it, answer Later (never blocks)
//!                      │ channel (bounded: full = Unavailable at once)
//!  ws-bus-out ─────────┴─► EVALSHA publish ─► Redis: INCR, XADD, PUBLISH
//!                          Redis away: chat.bus_failed(token) ("unavailable")
//!  ws-bus-in  ◄── SUBSCRIBE sb:messages ◄── "seq payload", in seq order
//!     Reorder: a gap (a reconnect, a dropped push) is back-filled with
//!     XRANGE from the stream before anything after it is delivered
//!     └─► chat.deliver_numbered(seq, m, our token?) ─► local members, ack
//! ```
//!
//! The two loops run on threads the server starts and joins; they stop
//! when `stop` is set, within one read timeout.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chat::bus::{Bus, Publish, Published, Targets};
use crate::chat::Chat;
use crate::counter::AtomicU64;

use super::conn::{Address, Conn};
use super::order::Reorder;
use super::resp::Reply;
use super::script::{self, CHANNEL, LOG_KEY, SEQ_KEY};

/// Messages waiting for `ws-bus-out`; more is `unavailable`.
const QUEUE: usize = 4096;
/// How long one Redis call may take.
const CALL: Duration = Duration::from_millis(1500);
/// How long the subscriber waits for a push before it looks at `stop`.
const POLL: Duration = Duration::from_millis(250);
/// Messages kept in the stream for back-fill (about a minute of a busy
/// board).
const KEEP: &str = "100000";
/// How long a gap may wait for a late push before it is back-filled.
const GAP_GRACE: Duration = Duration::from_millis(50);

/// The bus as the chat sees it.
pub struct RedisBus {
    tx: Sender<(u64, Published)>,
    last: AtomicU64,
}

/// What the two loops share.
pub struct Loops {
    pub address: Address,
    /// This node's name in payloads (its own messages carry their token).
    pub node: String,
    pub rx: Receiver<(u64, Published)>,
    pub stop: Arc<AtomicBool>,
}

impl RedisBus {
    /// A bus, and what its `ws-bus-out` and `ws-bus-in` threads need.
    pub fn new(address: Address, node: String) -> (Arc<RedisBus>, Loops) {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let bus = Arc::new(RedisBus {
            tx,
            last: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        (
            bus,
            Loops {
                address,
                node,
                rx,
                stop,
            },
        )
    }
}

impl Bus for RedisBus {
    fn publish(&self, published: &Published, token: u64) -> Publish {
        match self.tx.try_send((token, published.clone())) {
            Ok(()) => Publish::Later,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Publish::Unavailable,
        }
    }

    fn last_seq(&self) -> u64 {
        self.last.load(SeqCst)
    }
}

/// A message as it travels through Redis.
pub fn encode(node: &str, token: u64, m: &Published) -> String {
    let (to, topic) = match &m.targets {
        Targets::Everyone => (Value::Null, Value::Null),
        Targets::One(name) => (json!(name), Value::Null),
        Targets::Many(names) => (json!(names), Value::Null),
        Targets::Topic(topic) => (Value::Null, json!(topic)),
    };
    json!({"node": node, "token": token, "kind": m.kind(), "from": m.from, "to": to,
           "topic": topic, "text": m.text, "ts": m.ts})
    .to_string()
}

/// A payload back into a message, with its node and token; None for one
/// that is not ours to read (it is logged and skipped, never a panic).
pub fn decode(payload: &[u8]) -> Option<(String, u64, Published)> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let text = |key: &str| v.get(key)?.as_str().map(str::to_owned);
    let targets = match v.get("kind")?.as_str()? {
        "broadcast" => Targets::Everyone,
        "direct" => Targets::One(text("to")?),
        "multicast" => Targets::Many(
            v.get("to")?
                .as_array()?
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
        ),
        "publish" => Targets::Topic(text("topic")?),
        _ => return None,
    };
    let published = Published {
        targets,
        from: text("from")?,
        text: text("text")?,
        ts: v.get("ts")?.as_u64()?,
    };
    Some((text("node")?, v.get("token")?.as_u64()?, published))
}

/// `ws-bus-out`: number this node's messages, one script call each. While
/// Redis is away each message is answered `unavailable` at once (after
/// one failed try per reconnect interval), never silently dropped.
pub fn run_publisher(loops: &Loops, chat: &Chat) {
    const DOWN: &str = "the message bus is unavailable; not sent";
    let mut conn: Option<(Conn, String)> = None;
    let mut retry_at = Instant::now();
    while !loops.stop.load(SeqCst) {
        let Ok((token, m)) = loops.rx.recv_timeout(POLL) else {
            continue;
        };
        if conn.is_none() && Instant::now() >= retry_at {
            conn = connect_publisher(&loops.address);
            if conn.is_none() {
                retry_at = Instant::now() + Duration::from_secs(1);
            }
        }
        let Some((c, sha)) = conn.as_mut() else {
            chat.bus_failed(token, DOWN);
            continue;
        };
        let payload = encode(&loops.node, token, &m);
        let args = [
            "EVALSHA",
            sha.as_str(),
            "2",
            SEQ_KEY,
            LOG_KEY,
            &payload,
            KEEP,
            CHANNEL,
        ];
        match c.call(&args) {
            Ok(Reply::Int(_)) => {}
            Ok(other) => {
                log::warn!("bus: redis refused a message: {other:?}");
                chat.bus_failed(token, "the message bus refused the message");
            }
            Err(e) => {
                // Down: refused at once until a reconnect (tried at most
                // once a second) works. (A call that timed out may still be
                // run by a Redis that was only slow: its sender was told
                // "unavailable", and it is delivered all the same.)
                log::warn!("bus: {e}; messages are refused until redis is back");
                conn = None;
                chat.bus_failed(token, DOWN);
            }
        }
    }
}

fn connect_publisher(address: &Address) -> Option<(Conn, String)> {
    let mut conn = Conn::open(address, CALL).ok()?;
    let sha = conn.call(&["SCRIPT", "LOAD", script::PUBLISH]).ok()?;
    let sha = sha.text()?.to_owned();
    log::info!("bus: publishing through {address}");
    Some((conn, sha))
}

/// `ws-bus-in`: deliver every message, strictly in `seq` order, on this
/// node. After a reconnect it first back-fills what it missed.
pub fn run_subscriber(loops: &Loops, bus: &RedisBus, chat: &Chat) {
    let mut order: Option<Reorder<Item>> = None;
    let mut backoff = Duration::from_millis(100);
    while !loops.stop.load(SeqCst) {
        match subscribe(&loops.address) {
            Some((sub, fetch, current)) => {
                backoff = Duration::from_millis(100);
                // The first time, the history already given is not replayed.
                let order = order.get_or_insert_with(|| Reorder::starting_after(current, QUEUE));
                let mut session = Session {
                    loops,
                    bus,
                    chat,
                    fetch,
                    order,
                };
                if current >= session.order.next() {
                    session.backfill(session.order.next(), current);
                }
                session.run(sub);
            }
            None => {
                std::thread::sleep(backoff.min(Duration::from_secs(5)));
                backoff *= 2;
            }
        }
    }
}

/// A numbered message as it waits its turn: this node's token if it sent
/// it, and the message; None for one that could not be read.
type Item = Option<(Option<u64>, Published)>;

/// A subscriber connection, a second one to fetch with, and the last seq
/// given out when it subscribed (nothing after it can be missed).
fn subscribe(address: &Address) -> Option<(Conn, Conn, u64)> {
    let mut sub = Conn::open(address, CALL).ok()?;
    sub.send(&["SUBSCRIBE", CHANNEL]).ok()?;
    let confirmed = sub.read().ok()?;
    if confirmed.items().first().and_then(Reply::text) != Some("subscribe") {
        return None;
    }
    sub.set_read_timeout(POLL).ok()?;
    let mut fetch = Conn::open(address, CALL).ok()?;
    let current = fetch
        .call(&["GET", SEQ_KEY])
        .ok()?
        .int()
        .unwrap_or(0)
        .max(0) as u64;
    log::info!("bus: subscribed through {address} at seq {current}");
    Some((sub, fetch, current))
}

struct Session<'a> {
    loops: &'a Loops,
    bus: &'a RedisBus,
    chat: &'a Chat,
    fetch: Conn,
    order: &'a mut Reorder<Item>,
}

impl Session<'_> {
    /// Read pushes until the connection fails or the bus stops.
    fn run(&mut self, mut sub: Conn) {
        let mut gap_since: Option<Instant> = None;
        // A fetch that failed ends the session: a new one back-fills.
        while !self.loops.stop.load(SeqCst) && !self.fetch.is_dead() {
            match sub.read() {
                Ok(pushed) => {
                    let data = match pushed.items().get(2) {
                        Some(Reply::Bulk(Some(data))) => data.clone(),
                        _ => continue,
                    };
                    match script::split_pushed(&data) {
                        Some((seq, payload)) => self.offer(seq, payload),
                        None => log::warn!("bus: a push that is not ours: skipped"),
                    }
                }
                // Quiet: a turn of the loop (to look at `stop` and gaps).
                Err(super::conn::Error::Io(e)) if is_timeout(&e) && !sub.is_dead() => {}
                Err(e) => {
                    log::warn!("bus: subscriber lost ({e}); reconnecting");
                    return;
                }
            }
            match (self.order.missing(), gap_since) {
                (Some(_), None) => gap_since = Some(Instant::now()),
                (Some((from, to)), Some(since))
                    if since.elapsed() > GAP_GRACE || self.order.overfull() =>
                {
                    self.backfill(from, to);
                    gap_since = None;
                }
                (None, _) => gap_since = None,
                _ => {}
            }
        }
    }

    fn offer(&mut self, seq: u64, payload: &[u8]) {
        // One that cannot be read still takes its place in the order (as
        // nothing), so what comes after it is not held back.
        let item =
            decode(payload).map(|(node, token, m)| ((node == self.loops.node).then_some(token), m));
        if item.is_none() {
            log::warn!("bus: message {seq} could not be read: skipped");
        }
        let ready = self.order.offer(seq, item);
        self.deliver(ready);
    }

    fn deliver(&mut self, ready: Vec<(u64, Item)>) {
        for (seq, item) in ready {
            if let Some((token, m)) = item {
                self.chat.deliver_numbered(seq, &m, token);
            }
            self.bus.last.store(seq, SeqCst);
        }
    }

    /// Fetch `from..=to` from the stream; what it no longer has is lost
    /// (logged), and delivery goes on after it.
    fn backfill(&mut self, from: u64, to: u64) {
        let range = self.fetch.call(&[
            "XRANGE",
            LOG_KEY,
            &script::entry_id(from),
            &script::entry_id(to),
        ]);
        let Ok(range) = range else {
            return; // the next push or gap tries again
        };
        let mut got = Vec::new();
        for entry in range.items() {
            let seq = entry
                .items()
                .first()
                .and_then(Reply::text)
                .and_then(|id| id.strip_suffix("-1")?.parse().ok());
            let payload = match entry.items().get(1).map(Reply::items) {
                Some([_, Reply::Bulk(Some(p))]) => Some(p.clone()),
                _ => None,
            };
            if let (Some(seq), Some(payload)) = (seq, payload) {
                got.push((seq, payload));
            }
        }
        if got.first().map(|(s, _)| *s) != Some(from) {
            let resume = got.first().map_or(to + 1, |(s, _)| *s);
            let (lost, ready) = self.order.skip_to(resume);
            log::warn!("bus: {lost} messages before {resume} are no longer in the stream");
            self.deliver(ready);
        }
        for (seq, payload) in got {
            self.offer(seq, &payload);
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_travel_and_come_back_the_same() {
        for targets in [
            Targets::Everyone,
            Targets::One("bob".into()),
            Targets::Many(vec!["a".into(), "b".into()]),
            Targets::Topic("news".into()),
        ] {
            let m = Published {
                targets,
                from: "ann".into(),
                text: "hi \"there\"\n".into(),
                ts: 7,
            };
            let back = decode(encode("n1", 42, &m).as_bytes()).unwrap();
            assert_eq!(back, ("n1".to_owned(), 42, m));
        }
        for bad in [
            &b"not json"[..],
            b"{}",
            br#"{"kind":"shout","from":"a","text":"","ts":1,"node":"n","token":1}"#,
        ] {
            assert!(decode(bad).is_none());
        }
    }
}
