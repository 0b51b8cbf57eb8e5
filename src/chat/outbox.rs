//! A batch's recipients, each flushed once after the registry lock.

use crate::counter::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::Sink;

/// The recipients a batch of routing queued frames for, each noted once,
/// to flush after the registry lock is released.
///
/// A connection's worker keeps one outbox for all the messages of one read
/// and flushes it before it blocks in `read` again: with many messages in
/// one read, each recipient then gets all of them in one vectored write
/// instead of one write per message.
pub struct Outbox {
    /// Unique per batch: members remember it, to be noted only once.
    pub(super) id: u64,
    pub(super) sinks: Vec<Arc<dyn Sink>>,
}

/// Outbox ids; 0 is never used, so a new member is never "already noted".
static NEXT_OUTBOX: AtomicU64 = AtomicU64::new(1);

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox {
            id: NEXT_OUTBOX.fetch_add(1, Relaxed),
            sinks: Vec::new(),
        }
    }
}

impl Outbox {
    /// Note a sink queued to without the registry (a member's own
    /// connection): it is flushed with the batch.
    pub fn note(&mut self, sink: &Arc<dyn Sink>) {
        // A second flush of the same sink is harmless; only look at the
        // last one noted, not the whole batch.
        if !self.sinks.last().is_some_and(|s| Arc::ptr_eq(s, sink)) {
            self.sinks.push(Arc::clone(sink));
        }
    }

    /// Write what was queued (outside the registry lock) and start a new
    /// batch.
    pub fn flush(&mut self) {
        for sink in self.sinks.drain(..) {
            sink.flush();
        }
        self.id = NEXT_OUTBOX.fetch_add(1, Relaxed);
    }
}
