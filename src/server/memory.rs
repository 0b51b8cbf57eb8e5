//! `--max-buffered`: one budget for every byte the server holds on its
//! peers' behalf, across all connections (issue 14, "a memory budget").
//!
//! ```text
//!  held = Σ partial messages (the frame loop's Session, by capacity)
//!       + Σ outbound queues  (every connection's Budget: chat frames,
//!                             echoes, history replies, pongs)
//!
//!  a new byte makes held > limit ─► relieve(): the connection holding the
//!  most goes (only it, never the server, never a bystander):
//!     mostly a partial message ─► Close 1009, its reading side shut
//!                                 (the worker wakes and drops the message)
//!     mostly an unread queue   ─► Close 1008 "slow consumer" (the cut-off)
//!     already closing, still the largest ─► abort: both sides shut, so
//!                                 a write blocked on a full socket ends
//!     already cut, still the largest ─► nothing: its memory is on its way
//!                                 back, and nobody else pays for it
//! ```
//!
//! The total is one atomic, updated where a connection's own counters
//! change; the table of members is locked only to pick a victim, which
//! happens only while the server is over its budget. No socket work is
//! done under the lock. A frame queued for many readers is one shared
//! allocation but counts once per queue: the budget errs on the side of
//! counting too much.

use crate::counter::AtomicU64;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Weak};

use super::outbound::Outbound;
use crate::protocol::CloseCode;

/// The reason sent with a 1009 for the server's memory budget.
pub const OVER_BUDGET: &str = "server memory budget";

/// The server-wide count of buffered bytes and who holds them.
pub struct Memory {
    limit: usize,
    held: AtomicUsize,
    members: Mutex<HashMap<u64, Weak<Outbound>>>,
    /// Connections closed to bring the total back under the limit.
    pub(crate) evictions: AtomicU64,
}

impl Memory {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Memory {
        Memory {
            limit,
            held: AtomicUsize::new(0),
            members: Mutex::new(HashMap::new()),
            evictions: AtomicU64::new(0),
        }
    }

    /// `n` more bytes are held; true if the total is now over the limit.
    pub fn add(&self, n: usize) -> bool {
        self.held.fetch_add(n, SeqCst) + n > self.limit
    }

    /// `n` bytes were let go.
    pub fn sub(&self, n: usize) {
        self.held.fetch_sub(n, SeqCst);
    }

    /// Bytes held now, by every connection together.
    pub fn held(&self) -> usize {
        self.held.load(SeqCst)
    }

    /// Is the total over the limit?
    pub fn over(&self) -> bool {
        self.held() > self.limit
    }

    /// `out` may be picked to relieve the budget until [`leave`](Memory::leave).
    pub fn join(&self, out: &Arc<Outbound>) {
        self.members.lock().insert(out.id(), Arc::downgrade(out));
    }

    pub fn leave(&self, id: u64) {
        self.members.lock().remove(&id);
    }

    /// The member holding the most bytes, partial and queued together.
    fn largest(&self) -> Option<Arc<Outbound>> {
        let members = self.members.lock();
        members
            .values()
            .filter_map(Weak::upgrade)
            .filter(|out| out.held() > 0)
            .max_by_key(|out| out.held())
    }

    /// Over the limit: close the connection that holds the most, as the
    /// module docs describe. Call it with no lock held.
    pub fn relieve(&self) {
        if !self.over() {
            return;
        }
        let Some(victim) = self.largest() else {
            return;
        };
        if victim.is_dead() {
            // Already cut: its threads are letting its memory go now.
            // Picking someone else would close a second connection for the
            // same bytes.
            return;
        }
        self.evictions.fetch_add(1, SeqCst);
        // Each counter read once: the victim's own threads move them.
        let (partial, queued) = (victim.partial(), victim.queued());
        if victim.closing().is_some() {
            log::warn!(
                "conn={} still holds {} bytes while closing, over --max-buffered: cut",
                victim.id(),
                victim.held()
            );
            victim.abort();
        } else if partial >= queued {
            log::warn!(
                "conn={} holds a {partial}-byte partial message, the most while over \
                 --max-buffered ({} bytes held): closing it with 1009",
                victim.id(),
                self.held()
            );
            victim.close(CloseCode::MessageTooBig, OVER_BUDGET);
            victim.shut(Shutdown::Read);
        } else {
            log::warn!(
                "conn={} has {queued} bytes unread, the most while over --max-buffered \
                 ({} bytes held): closing it as a slow consumer",
                victim.id(),
                self.held()
            );
            victim.cut_off_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_over_only_past_the_limit() {
        let memory = Memory::new(100);
        assert!(!memory.add(100));
        assert!(!memory.over());
        assert!(memory.add(1));
        memory.sub(101);
        assert_eq!(memory.held(), 0);
        // Nobody to pick: relieving an empty table does nothing.
        memory.add(200);
        memory.relieve();
        assert_eq!(memory.evictions.load(SeqCst), 0);
    }
}
