//! Delivering strictly in `seq` order what arrives out of order, twice, or
//! not at all (issue 18). Redis runs the publish script for one message at
//! a time, so pub/sub hands messages over in `seq` order; but a
//! subscriber that reconnects, or that Redis cut off for its output
//! buffer, misses some. Those are fetched again from the stream
//! (back-fill), and meanwhile what came after waits here.
//!
//! ```text
//!  offer(5) ─► next is 5: deliver 5, then 6, 7 if they wait
//!  offer(9) ─► next is 8: 9 waits; missing() = 8..=8 (back-fill it)
//!  offer(4) ─► already delivered: dropped (never twice)
//!  skip_to(9) ─► 8 is gone from the stream too: go on from 9, say so
//! ```
//!
//! No I/O: the bus's subscriber thread owns one and does the fetching.

use std::collections::BTreeMap;

/// Messages waiting for the ones before them.
#[derive(Debug)]
pub struct Reorder<T> {
    next: u64,
    waiting: BTreeMap<u64, T>,
    max_waiting: usize,
}

impl<T> Reorder<T> {
    /// The next to deliver is `last + 1`; at most `max_waiting` wait.
    pub fn starting_after(last: u64, max_waiting: usize) -> Reorder<T> {
        Reorder {
            next: last + 1,
            waiting: BTreeMap::new(),
            max_waiting: max_waiting.max(1),
        }
    }

    /// The next `seq` to deliver.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// One message: those that can be delivered now, in order. One
    /// already delivered or already waiting is dropped.
    pub fn offer(&mut self, seq: u64, item: T) -> Vec<(u64, T)> {
        // (u64::MAX is never a real seq: after it there is no next.)
        if seq < self.next || seq == u64::MAX || self.waiting.contains_key(&seq) {
            return Vec::new();
        }
        self.waiting.insert(seq, item);
        self.release()
    }

    /// The seqs to back-fill before what waits can go: `(from, to)`,
    /// inclusive.
    pub fn missing(&self) -> Option<(u64, u64)> {
        let first = *self.waiting.keys().next()?;
        (first > self.next).then(|| (self.next, first - 1))
    }

    /// More wait than allowed: back-fill now, or give up on the gap.
    pub fn overfull(&self) -> bool {
        self.waiting.len() > self.max_waiting
    }

    /// The messages before `seq` are gone for good (the stream no longer
    /// has them): go on from `seq`, delivering what waits. How many were
    /// lost, and what can be delivered now.
    pub fn skip_to(&mut self, seq: u64) -> (u64, Vec<(u64, T)>) {
        if seq <= self.next {
            return (0, Vec::new());
        }
        let lost = seq - self.next - self.waiting.range(..seq).count() as u64;
        let mut out: Vec<(u64, T)> = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() >= seq {
                break;
            }
            let (s, item) = entry.remove_entry();
            out.push((s, item));
        }
        self.next = seq;
        out.extend(self.release());
        (lost, out)
    }

    /// Drop what waits above `last` (seqs nobody gave out: not ours);
    /// how many were dropped.
    pub fn drop_above(&mut self, last: u64) -> usize {
        let above = self.waiting.split_off(&last.saturating_add(1));
        above.len()
    }

    fn release(&mut self) -> Vec<(u64, T)> {
        let mut out = Vec::new();
        while let Some(item) = self.waiting.remove(&self.next) {
            out.push((self.next, item));
            self.next += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seqs<T>(out: Vec<(u64, T)>) -> Vec<u64> {
        out.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn in_order_passes_out_of_order_waits_twice_is_dropped() {
        let mut r = Reorder::starting_after(4, 100);
        assert_eq!(seqs(r.offer(5, ())), [5]);
        assert_eq!(seqs(r.offer(7, ())), Vec::<u64>::new());
        assert_eq!(r.missing(), Some((6, 6)));
        assert_eq!(seqs(r.offer(7, ())), Vec::<u64>::new(), "waiting already");
        assert_eq!(seqs(r.offer(6, ())), [6, 7]);
        assert_eq!(r.missing(), None);
        assert_eq!(seqs(r.offer(5, ())), Vec::<u64>::new(), "delivered already");
        assert_eq!(r.next(), 8);
    }

    #[test]
    fn a_gap_lost_for_good_is_skipped_and_counted() {
        let mut r = Reorder::starting_after(0, 2);
        r.offer(4, "d");
        r.offer(6, "f");
        r.offer(7, "g");
        assert!(r.overfull());
        let (lost, out) = r.skip_to(4);
        assert_eq!(lost, 3, "1, 2 and 3");
        assert_eq!(seqs(out), [4]);
        assert_eq!(r.missing(), Some((5, 5)));
        let (lost, out) = r.skip_to(6);
        assert_eq!((lost, seqs(out)), (1, vec![6, 7]));
    }

    proptest! {
        /// Any arrival order, with repeats, delivers each seq once, in order.
        #[test]
        fn every_order_delivers_each_once_in_order(
            order in Just((1..=40u64).collect::<Vec<_>>()).prop_shuffle(),
            repeats in proptest::collection::vec(1..=40u64, 0..20),
        ) {
            let mut r = Reorder::starting_after(0, 100);
            let mut got = Vec::new();
            for seq in order.into_iter().chain(repeats) {
                got.extend(seqs(r.offer(seq, ())));
            }
            prop_assert_eq!(got, (1..=40).collect::<Vec<_>>());
        }
    }
}
