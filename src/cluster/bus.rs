//! `RedisBus`: the chat's `Bus` across hosts (issue 18). Every node hands
//! its messages to Redis, where the publish script gives each its global
//! `seq`; every node then delivers every message strictly in `seq` order.
//! Presence changes travel beside them (`presence.rs`), and guests' names
//! are claimed here, on the worker that joins (`names.rs`).
//!
//! ```text
//!  router (lock) ─► publish(m, token): queue it, answer Later (never blocks)
//!                      │ channel (bounded: full = Unavailable at once)
//!  ws-bus-out ─────────┴─► EVALSHA publish ─► Redis: INCR, XADD, PUBLISH  (publisher.rs)
//!                          Redis away: chat.bus_failed(token) ("unavailable")
//!  ws-bus-in  ◄── SUBSCRIBE sb:messages ◄── "seq payload", in seq order  (subscriber.rs)
//!     Reorder: a gap (a reconnect, a dropped push) is back-filled with
//!     XRANGE from the stream before anything after it is delivered
//!     └─► chat.deliver_numbered(seq, m, our token?) ─► local members, ack
//! ```
//!
//! The loops run on threads the server starts and joins; they stop when
//! `stop` is set, within one read timeout.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crate::chat::bus::{Bus, Claim, Publish, Published};
use crate::chat::registry::fold;
use crate::chat::remote::{Change, Order};
use crate::chat::Chat;
use crate::counter::AtomicU64;

use super::conn::Address;
use super::names;
use super::pool::Pool;

/// Messages waiting for `ws-bus-out`; more is `unavailable`.
pub(super) const QUEUE: usize = 4096;
/// How long one Redis call may take.
pub const CALL: Duration = Duration::from_millis(1500);
/// How long the subscriber waits for a push before it looks at `stop`.
pub(super) const POLL: Duration = Duration::from_millis(250);
/// Messages kept in the stream with `--retain-messages 0` (no limit asked:
/// still a bound, so Redis's memory is).
pub const KEEP_MOST: u64 = 10_000_000;
/// Connections kept for claims (more joins at once open their own).
const CLAIM_POOL: usize = 4;

/// What `ws-bus-out` sends: a message to number, or a presence change.
pub(super) enum Out {
    Message(u64, Published),
    Presence(u64, Change),
    Enforce(Order),
}

/// The bus as the chat sees it.
pub struct RedisBus {
    tx: Sender<Out>,
    pub(super) last: AtomicU64,
    node: String,
    /// Connections for claims, made on the joining worker.
    claims: Pool,
    /// The publisher and the subscriber are connected (`/healthz`).
    pub(super) publishing: AtomicBool,
    pub(super) subscribed: AtomicBool,
    /// Redis went back behind what this node delivered (it lost data):
    /// messages are refused until the node restarts.
    pub(super) diverged: AtomicBool,
    /// This node's messages that Redis numbered and that were not yet
    /// delivered here: seq -> token (so a seq skipped as lost, or below
    /// what was delivered, tells its sender instead of leaving it waiting).
    numbered: Mutex<BTreeMap<u64, u64>>,
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
    /// Messages the stream keeps (`--retain-messages`).
    pub keep: u64,
    pub(super) rx: Receiver<Out>,
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
        let keep = 100_000;
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let bus = Arc::new(RedisBus {
            tx,
            last: AtomicU64::new(start_after),
            node: node.clone(),
            claims: Pool::new(address.clone(), CLAIM_POOL, CALL),
            publishing: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            diverged: AtomicBool::new(false),
            numbered: Mutex::new(BTreeMap::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let loops = Loops {
            address,
            node,
            epoch,
            start_after,
            keep,
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
        self.publishing.load(SeqCst) && self.subscribed.load(SeqCst) && !self.diverged.load(SeqCst)
    }

    /// Redis numbered this node's message `token` as `seq`. One at or below
    /// what was delivered here will never be (Redis went back): its sender
    /// is told now. (One the subscriber already delivered has no sender
    /// waiting: telling is then a no-op.)
    pub(super) fn numbered(&self, seq: u64, token: u64, chat: &Chat) {
        self.numbered.lock().insert(seq, token);
        // Checked after listing it: if the subscriber passed `seq` before
        // it was listed, nobody else will answer it.
        if seq <= self.last.load(SeqCst) && self.numbered.lock().remove(&seq).is_some() {
            chat.bus_failed(token, "the message bus is unavailable; not sent");
        }
    }

    /// Everything up to `last` was delivered (or passed over) here. A
    /// token still listed at or below it is told it was not sent: one that
    /// was delivered has no sender waiting any more (a no-op), one that was
    /// passed over (listed just as it was skipped) must not wait forever.
    pub(super) fn delivered_up_to(&self, last: u64, chat: &Chat) {
        let passed: Vec<u64> = {
            let mut numbered = self.numbered.lock();
            // Most batches pass nothing still listed: no new map for them.
            if numbered
                .first_key_value()
                .is_none_or(|(seq, _)| *seq > last)
            {
                return;
            }
            let kept = numbered.split_off(&last.saturating_add(1));
            std::mem::replace(&mut *numbered, kept)
                .into_values()
                .collect()
        };
        // No lock of ours is held while the chat takes its own.
        for token in passed {
            chat.bus_failed(token, "the message bus lost the message; not sent");
        }
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

    fn delivered(&self, seq: u64) {
        self.last.store(seq, SeqCst);
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

    fn enforce(&self, order: &Order) {
        // Full: the order is carried out here only (logged).
        if self.tx.try_send(Out::Enforce(order.clone())).is_err() {
            log::warn!("bus: a moderation order could not be sent to the other nodes");
        }
    }

    fn announce(&self, version: u64, change: &Change) {
        // Full: lost, and repaired by the next beat's list.
        let _ = self.tx.try_send(Out::Presence(version, change.clone()));
    }
}
