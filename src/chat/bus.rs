//! The bus seam: who gives a chat message its `seq`, and so its place in
//! the one order that every recipient sees.
//!
//! ```text
//!  router (registry lock held)
//!    Published { kind, from, targets by name or topic, text, ts }
//!      └─► bus.publish(&published, token) ─► Now(seq): deliver here, at once
//!                                  └► Later:    the bus delivers it later,
//!                                               strictly in seq order
//! ```
//!
//! [`LocalBus`] is one process: it numbers messages under the registry
//! lock the router already holds, so `seq` order is the order in which
//! frames are queued for every recipient. A bus that spans hosts assigns
//! the `seq` elsewhere and answers `Later`; that is why a [`Published`]
//! names its targets by name or topic and never by connection: each node
//! resolves them against its own members when it delivers.

use crate::counter::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Who a chat message is for, by name or topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every member (a broadcast; the sender too).
    Everyone,
    /// One member by name (a direct message), and the sender.
    One(String),
    /// Several members by name (a multicast), and the sender.
    Many(Vec<String>),
    /// A topic's subscribers (the sender only if subscribed).
    Topic(String),
}

impl Targets {
    /// Does history keep messages to these targets? Broadcasts and topics
    /// yes; direct and multicast messages no.
    pub fn is_kept(&self) -> bool {
        matches!(self, Targets::Everyone | Targets::Topic(_))
    }
}

/// A chat message that the router accepted, before it has a `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub targets: Targets,
    /// The sender's name.
    pub from: String,
    pub text: String,
    /// Milliseconds since the Unix epoch, taken when it was accepted.
    pub ts: u64,
}

impl Published {
    /// The `kind` of the delivered `message`.
    pub fn kind(&self) -> &'static str {
        match self.targets {
            Targets::Everyone => "broadcast",
            Targets::One(_) => "direct",
            Targets::Many(_) => "multicast",
            Targets::Topic(_) => "publish",
        }
    }
}

/// What the bus did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Numbered now: the caller delivers it with this `seq`.
    Now(u64),
    /// The bus delivers it later (another process numbers it).
    Later,
    /// The bus cannot take it now (its broker is away, or too much is
    /// waiting for it): the sender is told `unavailable`.
    Unavailable,
}

/// What a claim of a name across hosts found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The name is this node's now.
    Ours,
    /// A member of another node has it.
    Taken,
    /// The broker cannot say (it is away): the name is taken on trust and
    /// claimed when the broker is back (a clash then renames one side).
    Unknown,
}

/// Numbers chat messages, and (across hosts) shares names and presence.
pub trait Bus: Send + Sync {
    /// Give `published` its place in the order. Called with the registry
    /// lock held: it must not block. `token` names it on this node: a bus
    /// that answers `Later` hands it back with the numbered message
    /// ([`Chat::deliver_numbered`](super::Chat::deliver_numbered)), so the
    /// sender's ack can follow.
    fn publish(&self, published: &Published, token: u64) -> Publish;
    /// The last `seq` given out (the welcome's `seq`).
    fn last_seq(&self) -> u64;
    /// A message numbered `seq` by this bus was delivered here (called with
    /// the registry lock held, so a welcome's `seq` never lags behind).
    fn delivered(&self, _seq: u64) {}
    /// Does this bus span hosts (names claimed, presence announced)?
    fn spans_hosts(&self) -> bool {
        false
    }
    /// Claim a guest's `name` across hosts before it is used here. May
    /// block on the broker: called with no lock held.
    fn claim(&self, _name: &str) -> Claim {
        Claim::Ours
    }
    /// Tell the other nodes about a change of presence here, the
    /// `version`th. Called with the registry lock held: never blocks.
    fn announce(&self, _version: u64, _change: &super::remote::Change) {}
    /// Have the other nodes carry out a moderator's order. Never blocks.
    fn enforce(&self, _order: &super::remote::Order) {}
}

/// One process, one order: the next number, under the registry lock.
#[derive(Debug, Default)]
pub struct LocalBus {
    seq: AtomicU64,
}

impl LocalBus {
    /// A bus whose first `seq` is `last + 1` (history kept in a file goes
    /// on from where it left off).
    pub fn starting_after(last: u64) -> LocalBus {
        LocalBus {
            seq: AtomicU64::new(last),
        }
    }
}

impl Bus for LocalBus {
    fn publish(&self, _: &Published, _token: u64) -> Publish {
        // The registry lock orders the callers; the atomic only lets
        // `last_seq` be read without it.
        Publish::Now(self.seq.fetch_add(1, Relaxed) + 1)
    }

    fn last_seq(&self) -> u64 {
        self.seq.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_bus_numbers_from_one_without_gaps() {
        let bus = LocalBus::default();
        let m = Published {
            targets: Targets::Everyone,
            from: "alice".into(),
            text: "hi".into(),
            ts: 0,
        };
        assert_eq!(bus.last_seq(), 0);
        let seqs: Vec<Publish> = (0..3).map(|t| bus.publish(&m, t)).collect();
        assert_eq!(seqs, [Publish::Now(1), Publish::Now(2), Publish::Now(3)]);
        assert_eq!(bus.last_seq(), 3);
    }
}
