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

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

/// What one connection's queue holds, and how much it may.
pub struct Budget {
    bytes: AtomicUsize,
    frames: AtomicUsize,
    max_bytes: usize,
    max_frames: usize,
    /// Wakes a worker waiting for room (see [`Budget::wait`]).
    space: Condvar,
    space_lock: Mutex<()>,
    waiters: AtomicUsize,
}

impl Budget {
    pub fn new(max_frames: usize, max_bytes: usize) -> Budget {
        Budget {
            bytes: AtomicUsize::new(0),
            frames: AtomicUsize::new(0),
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
            self.give_back(len, 1);
            return false;
        }
        true
    }

    /// Count in one frame whatever the bounds.
    pub fn take(&self, len: usize) {
        self.bytes.fetch_add(len, SeqCst);
        self.frames.fetch_add(1, SeqCst);
    }

    /// `frames` frames, `bytes` bytes in all, left the queue (written or
    /// dropped).
    pub fn give_back(&self, bytes: usize, frames: usize) {
        self.bytes.fetch_sub(bytes, SeqCst);
        self.frames.fetch_sub(frames, SeqCst);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_that_would_pass_either_bound_is_refused_and_not_counted() {
        let budget = Budget::new(2, 100);
        assert!(budget.try_take(60));
        assert!(!budget.try_take(60), "bytes bound");
        assert!(budget.try_take(40));
        assert!(!budget.try_take(0), "frames bound");
        assert_eq!((budget.bytes(), budget.frames()), (100, 2));
        budget.take(500);
        assert!(budget.over());
        budget.give_back(600, 3);
        assert_eq!((budget.bytes(), budget.frames()), (0, 0));
    }
}
