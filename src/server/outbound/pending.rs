//! The frames in the hands of the write turn's holder: taken out of the
//! queue, not yet fully written.
//!
//! ```text
//!  queue ─► take() ─► [f1 (offset bytes written) | f2 | f3 | Close] ─► slices() ─► one sendmsg
//!                                                       advance(written) drops what went out
//! ```
//!
//! Only the holder of the write turn locks it, so the lock is never
//! contended: it is how the holder owns these frames, and it is held
//! across the holder's write (which blocks only a drain thread, and only
//! on this connection's own socket).

use std::collections::VecDeque;
use std::io::IoSlice;

use super::budget::Budget;
use super::closing::Closing;
use super::{Bytes, MAX_IOV};

#[derive(Default)]
pub(super) struct Pending {
    frames: VecDeque<Bytes>,
    /// Bytes of `frames[0]` already written.
    offset: usize,
    /// Our Close is among `frames`: nothing taken after it is kept.
    has_close: bool,
    /// A cut-off's drop of what was in hand has been done.
    cut_trimmed: bool,
}

impl Pending {
    pub(super) fn len(&self) -> usize {
        self.frames.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Take a frame from the queue into hand. §5.5.1: nothing goes out
    /// after our Close, so a frame behind it is dropped.
    pub(super) fn take(&mut self, frame: Bytes, budget: &Budget, closing: &Closing) {
        if self.has_close || closing.written() {
            budget.give_back(frame.len(), 1);
            return;
        }
        self.has_close = closing.is_our_close(&frame);
        self.frames.push_back(frame);
    }

    /// The frames as one vectored write, the first from where it stopped.
    /// On the heap, sized to what is pending: a 256-slot array on the
    /// stack would add a page to every worker thread that ever writes.
    pub(super) fn slices(&self) -> Vec<IoSlice<'_>> {
        self.frames
            .iter()
            .take(MAX_IOV)
            .enumerate()
            .map(|(i, f)| IoSlice::new(&f[if i == 0 { self.offset } else { 0 }..]))
            .collect()
    }

    /// `written` bytes went out: drop the frames they finished and give
    /// their room back (one update of the shared counters per write, not
    /// one per frame). How many frames it finished, and whether our Close
    /// was among them.
    pub(super) fn advance(
        &mut self,
        written: usize,
        budget: &Budget,
        closing: &Closing,
    ) -> (usize, bool) {
        let (mut bytes, mut frames, mut close_out) = (0, 0, false);
        let mut left = written;
        while let Some(front) = self.frames.front() {
            let rest = front.len() - self.offset;
            if left < rest {
                self.offset += left;
                break;
            }
            left -= rest;
            self.offset = 0;
            bytes += front.len();
            frames += 1;
            close_out |= closing.is_our_close(front);
            self.frames.pop_front();
            if close_out {
                break;
            }
        }
        budget.give_back(bytes, frames);
        (frames, close_out)
    }

    /// A slow consumer was cut off: drop, once, what is in hand but a
    /// frame half written (the socket must stay at a frame boundary), the
    /// frames the transport has already taken (`committed` bytes, TLS's
    /// encrypted ones), and our Close.
    pub(super) fn trim_for_cut_off(
        &mut self,
        budget: &Budget,
        closing: &Closing,
        committed: usize,
    ) {
        if self.cut_trimmed {
            return;
        }
        self.cut_trimmed = true;
        // Bytes before each frame that went out or were taken.
        let mut taken = self.offset + committed;
        let mut kept = VecDeque::new();
        for f in self.frames.drain(..) {
            if taken > 0 || closing.is_our_close(&f) {
                taken = taken.saturating_sub(f.len());
                kept.push_back(f);
            } else {
                budget.give_back(f.len(), 1);
            }
        }
        self.frames = kept;
    }

    /// Drop everything in hand.
    pub(super) fn clear(&mut self, budget: &Budget) {
        let bytes: usize = self.frames.iter().map(|f| f.len()).sum();
        budget.give_back(bytes, self.frames.len());
        self.frames.clear();
        self.offset = 0;
    }
}
