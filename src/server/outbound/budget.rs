//! The byte and frame budget of one connection's queue, and the wait of a
//! worker whose own replies have filled it.
//!
//! ```text
//!  queue()        try_take(len): counted in, or refused (the reader is too slow)
//!  worker's own   take(len):     counted in whatever the bounds (it waits below)
//!  written/dropped give_back(bytes, frames), and wakes a waiting worker
//! ```
//!
//! The counters are shared by every thread that routes to the connection,
//! so they are atomics, updated once per write rather than once per frame.
//! Every change is also made to the server-wide [`Memory`] total
//! (`--max-buffered`), together with the bytes of the partial message
//! the connection's frame loop holds; a dropped budget gives all of it
//! back.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crate::server::memory::Memory;

/// What one connection's queue holds, and how much it may.
pub struct Budget {
    bytes: AtomicUsize,
    frames: AtomicUsize,
    /// The partial message the frame loop holds (not bounded here: the
    /// message limit and the server's budget bound it).
    partial: AtomicUsize,
    memory: Arc<Memory>,
    max_bytes: usize,
    max_frames: usize,
    /// Wakes a worker waiting for room (see [`Budget::wait`]).
    space: Condvar,
    space_lock: Mutex<()>,
    waiters: AtomicUsize,
}

impl Budget {
    pub fn new(max_frames: usize, max_bytes: usize, memory: Arc<Memory>) -> Budget {
        Budget {
            bytes: AtomicUsize::new(0),
            frames: AtomicUsize::new(0),
            partial: AtomicUsize::new(0),
            memory,
            max_bytes,
            max_frames,
            space: Condvar::new(),
            space_lock: Mutex::new(()),
            waiters: AtomicUsize::new(0),
        }
    }

    /// Count in one frame of `len` bytes if both bounds still hold after
    /// it; otherwise count nothing and return false.
    pub fn try_take(&self, len: usize) -> bool {
        let bytes = self.bytes.fetch_add(len, SeqCst) + len;
        let frames = self.frames.fetch_add(1, SeqCst) + 1;
        if bytes > self.max_bytes || frames > self.max_frames {
            self.bytes.fetch_sub(len, SeqCst);
            self.frames.fetch_sub(1, SeqCst);
            return false;
        }
        self.memory.add(len);
        true
    }

    /// Count in one frame whatever the bounds.
    pub fn take(&self, len: usize) {
        self.bytes.fetch_add(len, SeqCst);
        self.frames.fetch_add(1, SeqCst);
        self.memory.add(len);
    }

    /// `frames` frames, `bytes` bytes in all, left the queue (written or
    /// dropped).
    pub fn give_back(&self, bytes: usize, frames: usize) {
        self.bytes.fetch_sub(bytes, SeqCst);
        self.frames.fetch_sub(frames, SeqCst);
        self.memory.sub(bytes);
    }

    /// The frame loop's partial message now holds `bytes`; true if that
    /// grew it and the server is now over its budget.
    pub fn set_partial(&self, bytes: usize) -> bool {
        let old = self.partial.swap(bytes, SeqCst);
        if bytes > old {
            self.memory.add(bytes - old)
        } else {
            self.memory.sub(old - bytes);
            false
        }
    }

    /// The partial message's bytes.
    pub fn partial(&self) -> usize {
        self.partial.load(SeqCst)
    }

    /// The server-wide budget this one counts into.
    pub fn memory(&self) -> &Arc<Memory> {
        &self.memory
    }

    /// Bytes waiting in the queue and in the turn holder's hands.
    pub fn bytes(&self) -> usize {
        self.bytes.load(SeqCst)
    }

    /// Frames waiting in the queue and in the turn holder's hands.
    pub fn frames(&self) -> usize {
        self.frames.load(SeqCst)
    }

    /// Is the queue over either of its bounds?
    pub fn over(&self) -> bool {
        self.bytes() > self.max_bytes || self.frames() > self.max_frames
    }

    /// Wait until [`notify`](Budget::notify) or `timeout`. The caller
    /// checks what it waits for again afterwards: a wake-up between its
    /// check and this wait is lost, and the timeout bounds that loss.
    pub fn wait(&self, timeout: Duration) {
        self.waiters.fetch_add(1, SeqCst);
        let mut guard = self.space_lock.lock();
        self.space.wait_for(&mut guard, timeout);
        drop(guard);
        self.waiters.fetch_sub(1, SeqCst);
    }

    /// Something was written or dropped: wake the waiters, if any.
    pub fn notify(&self) {
        if self.waiters.load(SeqCst) > 0 {
            let _guard = self.space_lock.lock();
            self.space.notify_all();
        }
    }
}

impl Drop for Budget {
    /// The connection is gone: whatever it still counted is let go.
    fn drop(&mut self) {
        self.memory.sub(self.bytes() + self.partial());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_that_would_pass_either_bound_is_refused_and_not_counted() {
        let memory = Arc::new(Memory::new(1000));
        let budget = Budget::new(2, 100, memory.clone());
        assert!(budget.try_take(60));
        assert!(!budget.try_take(60), "bytes bound");
        assert!(budget.try_take(40));
        assert!(!budget.try_take(0), "frames bound");
        assert_eq!((budget.bytes(), budget.frames()), (100, 2));
        budget.take(500);
        assert!(budget.over());
        assert_eq!(memory.held(), 600, "the server-wide total follows");
        budget.give_back(600, 3);
        assert_eq!((budget.bytes(), budget.frames()), (0, 0));
        assert!(!budget.set_partial(900));
        assert!(budget.set_partial(1001), "over the server's budget");
        budget.take(5);
        drop(budget);
        assert_eq!(memory.held(), 0, "a dropped budget gives everything back");
    }
}
