//! `RedisBus`: the chat's `Bus` across hosts (issue 18). Every node hands
//! its messages to Redis, where the publish script gives each its global
//! `seq`; every node then delivers every message strictly in `seq` order.
//! Presence changes travel beside them (`presence.rs`), and guests' names
//! are claimed here, on the worker that joins (`names.rs`).
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
//! The loops run on threads the server starts and joins; they stop when
//! `stop` is set, within one read timeout.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chat::bus::{Bus, Claim, Publish, Published};
use crate::chat::registry::fold;
use crate::chat::remote::Change;
use crate::chat::Chat;
use crate::counter::AtomicU64;

use super::conn::{Address, Conn, Error};
use super::names;
use super::payload::encode;
use super::pool::Pool;
use super::presence;
use super::resp::Reply;
use super::script::{self, CHANNEL, EPOCH_KEY, LOG_KEY, SEQ_KEY};

/// Messages waiting for `ws-bus-out`; more is `unavailable`.
pub(super) const QUEUE: usize = 4096;
/// How long one Redis call may take.
pub const CALL: Duration = Duration::from_millis(1500);
/// How long the subscriber waits for a push before it looks at `stop`.
pub(super) const POLL: Duration = Duration::from_millis(250);
/// Messages kept in the stream for back-fill and history (docs/SCALING.md).
pub const KEEP: u64 = 100_000;
/// Connections kept for claims (more joins at once open their own).
const CLAIM_POOL: usize = 4;

/// What `ws-bus-out` sends: a message to number, or a presence change.
enum Out {
    Message(u64, Published),
    Presence(u64, Change),
}

/// The bus as the chat sees it.
pub struct RedisBus {
    tx: Sender<Out>,
    pub(super) last: AtomicU64,
    node: String,
    /// Connections for claims, made on the joining worker.
    claims: Pool,
    /// The publisher and the subscriber are connected (`/healthz`).
    publishing: AtomicBool,
    pub(super) subscribed: AtomicBool,
}

/// What the loops share.
pub struct Loops {
    pub address: Address,
    /// This node's name in payloads (its own messages carry their token).
    pub node: String,
    /// The epoch this node serves (the publish script refuses another).
    pub epoch: String,
    /// The last seq already in this node's history when it started.
    pub start_after: u64,
    rx: Receiver<Out>,
    pub stop: Arc<AtomicBool>,
}

impl RedisBus {
    /// A bus, and what its threads need.
    pub fn new(
        address: Address,
        node: String,
        epoch: String,
        start_after: u64,
    ) -> (Arc<RedisBus>, Loops) {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let bus = Arc::new(RedisBus {
            tx,
            last: AtomicU64::new(start_after),
            node: node.clone(),
            claims: Pool::new(address.clone(), CLAIM_POOL, CALL),
            publishing: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let loops = Loops {
            address,
            node,
            epoch,
            start_after,
            rx,
            stop,
        };
        (bus, loops)
    }

    /// History up to `last` was read back at start: the bus goes on after it.
    pub fn started_after(&self, loops: &mut Loops, last: u64) {
        self.last.store(last, SeqCst);
        loops.start_after = last;
    }

    /// Both connections to Redis are up (else `/healthz` says degraded).
    pub fn is_healthy(&self) -> bool {
        self.publishing.load(SeqCst) && self.subscribed.load(SeqCst)
    }
}

impl Bus for RedisBus {
    fn publish(&self, published: &Published, token: u64) -> Publish {
        match self.tx.try_send(Out::Message(token, published.clone())) {
            Ok(()) => Publish::Later,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Publish::Unavailable,
        }
    }

    fn last_seq(&self) -> u64 {
        self.last.load(SeqCst)
    }

    fn spans_hosts(&self) -> bool {
        true
    }

    fn claim(&self, name: &str) -> Claim {
        let claimed = self
            .claims
            .with(|c| names::claim(c, &fold(name), &self.node, names::TTL));
        match claimed {
            Ok(true) => Claim::Ours,
            Ok(false) => Claim::Taken,
            Err(_) => Claim::Unknown,
        }
    }

    fn announce(&self, version: u64, change: &Change) {
        // Full: lost, and repaired by the next beat's list.
        let _ = self.tx.try_send(Out::Presence(version, change.clone()));
    }
}

/// `ws-bus-out`: number this node's messages, one script call each, and
/// publish its presence changes. While Redis is away each message is
/// answered `unavailable` at once (after one failed try per reconnect
/// interval), never silently dropped.
pub fn run_publisher(loops: &Loops, bus: &RedisBus, chat: &Chat) {
    const DOWN: &str = "the message bus is unavailable; not sent";
    let mut conn: Option<(Conn, String)> = None;
    let mut retry_at = Instant::now();
    while !loops.stop.load(SeqCst) {
        if conn.is_none() && Instant::now() >= retry_at {
            conn = connect_publisher(&loops.address);
            bus.publishing.store(conn.is_some(), SeqCst);
            if conn.is_none() {
                retry_at = Instant::now() + Duration::from_secs(1);
            }
        }
        let Ok(out) = loops.rx.recv_timeout(POLL) else {
            continue;
        };
        let Some((c, sha)) = conn.as_mut() else {
            if let Out::Message(token, _) = out {
                chat.bus_failed(token, DOWN);
            }
            continue;
        };
        let sent = match &out {
            Out::Message(token, m) => number(c, sha, loops, *token, m, chat),
            Out::Presence(version, change) => announce(c, loops, *version, change),
        };
        if let Err(e) = sent {
            // Down: refused at once until a reconnect (tried at most once a
            // second) works. (A call that timed out may still be run by a
            // Redis that was only slow: its sender was told "unavailable",
            // and it is delivered all the same.)
            log::warn!("bus: {e}; messages are refused until redis is back");
            conn = None;
            bus.publishing.store(false, SeqCst);
            if let Out::Message(token, _) = out {
                chat.bus_failed(token, DOWN);
            }
        }
    }
    // Stopping: the changes still queued (the last members' leaves) go
    // out; a message still queued is refused.
    while let Ok(out) = loops.rx.try_recv() {
        match (out, conn.as_mut()) {
            (Out::Presence(version, change), Some((c, _))) => {
                if announce(c, loops, version, &change).is_err() {
                    conn = None;
                }
            }
            (Out::Message(token, _), _) => chat.bus_failed(token, DOWN),
            (Out::Presence(..), None) => {}
        }
    }
}

/// One message through the publish script.
fn number(
    c: &mut Conn,
    sha: &str,
    loops: &Loops,
    token: u64,
    m: &Published,
    chat: &Chat,
) -> Result<(), Error> {
    let payload = encode(&loops.node, token, m);
    let keep = KEEP.to_string();
    // Run after this, the script refuses: the sender has been told.
    let deadline = (crate::chat::unix_ms() + CALL.as_millis() as u64).to_string();
    let args = [
        "EVALSHA",
        sha,
        "3",
        SEQ_KEY,
        LOG_KEY,
        EPOCH_KEY,
        &payload,
        &keep,
        CHANNEL,
        &loops.epoch,
        &deadline,
    ];
    match c.call(&args)? {
        Reply::Int(_) => {}
        Reply::Error(e) if e.starts_with("LATE") => {
            log::warn!("bus: redis ran a message after its deadline: refused");
            chat.bus_failed(token, "the message bus is unavailable; not sent");
        }
        Reply::Error(e) if e.starts_with("EPOCH") => {
            log::error!(
                "bus: redis lost its data (epoch {} is gone): restart every node to begin a new epoch",
                loops.epoch
            );
            chat.bus_failed(
                token,
                "the message bus lost its history; this server must restart",
            );
        }
        other => {
            log::warn!("bus: redis refused a message: {other:?}");
            chat.bus_failed(token, "the message bus refused the message");
        }
    }
    Ok(())
}

/// One presence change to the other nodes; a name that left is freed.
fn announce(c: &mut Conn, loops: &Loops, version: u64, change: &Change) -> Result<(), Error> {
    let json = presence::encode_change(&loops.node, version, change);
    c.call(&["PUBLISH", presence::CHANNEL, &json])?;
    let freed = match change {
        Change::Leave { name } => Some(name),
        Change::Rename { old, .. } => Some(old),
        Change::Join { .. } => None,
    };
    if let Some(name) = freed {
        names::release(c, &fold(name), &loops.node)?;
    }
    Ok(())
}

fn connect_publisher(address: &Address) -> Option<(Conn, String)> {
    let mut conn = Conn::open(address, CALL).ok()?;
    let sha = conn.call(&["SCRIPT", "LOAD", script::PUBLISH]).ok()?;
    let sha = sha.text()?.to_owned();
    log::info!("bus: publishing through {address}");
    Some((conn, sha))
}
