//! A bounded ring of recent messages for one stream (broadcasts, or one
//! topic), served by the `history` request.
//!
//! ```text
//!  evicted ... | seq 40 | seq 41 | seq 42 | ... | seq 139 |   capacity 100
//!              ^ oldest kept                      ^ newest
//!  before=60 limit=5  ─► 55 56 57 58 59   (paging back)
//!  after=130 limit=5  ─► 131..135, more   (catching up, oldest first)
//!  after=10           ─► complete: false  (11..39 were evicted)
//! ```
//!
//! Each entry is the exact JSON text that was delivered, so a history
//! reply holds the same objects the client would have received.

use std::collections::VecDeque;
use std::sync::Arc;

/// Which part of the history a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The newest messages.
    Latest,
    /// The newest messages older than this seq (paging back).
    Before(u64),
    /// The oldest messages newer than this seq (catching up).
    After(u64),
}

/// A history answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Delivered JSON texts, oldest first.
    pub messages: Vec<Arc<str>>,
    /// The limit cut the list: more messages match.
    pub more: bool,
    /// False when messages newer than `after` were already evicted.
    pub complete: bool,
}

/// One stream's recent messages.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    entries: VecDeque<(u64, Arc<str>)>,
    /// The highest seq ever evicted (0: none).
    evicted_up_to: u64,
}

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            capacity,
            entries: VecDeque::new(),
            evicted_up_to: 0,
        }
    }

    /// Keep a delivered message; the oldest goes when full.
    pub fn push(&mut self, seq: u64, json: Arc<str>) {
        if self.capacity == 0 {
            self.evicted_up_to = seq;
            return;
        }
        if self.entries.len() == self.capacity {
            if let Some((old, _)) = self.entries.pop_front() {
                self.evicted_up_to = old;
            }
        }
        self.entries.push_back((seq, json));
    }

    /// The messages in `window`, at most `limit`, oldest first.
    pub fn page(&self, window: Window, limit: usize) -> Page {
        let pick = |range: &mut dyn Iterator<Item = &(u64, Arc<str>)>| {
            range.map(|(_, j)| Arc::clone(j)).collect::<Vec<_>>()
        };
        match window {
            Window::Latest | Window::Before(_) => {
                let below = match window {
                    Window::Before(seq) => seq,
                    _ => u64::MAX,
                };
                let end = self.entries.partition_point(|(s, _)| *s < below);
                let start = end.saturating_sub(limit);
                Page {
                    messages: pick(&mut self.entries.range(start..end)),
                    more: start > 0,
                    complete: true,
                }
            }
            Window::After(seq) => {
                let start = self.entries.partition_point(|(s, _)| *s <= seq);
                let end = (start + limit).min(self.entries.len());
                Page {
                    messages: pick(&mut self.entries.range(start..end)),
                    more: end < self.entries.len(),
                    complete: self.evicted_up_to <= seq,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(capacity: usize, seqs: impl IntoIterator<Item = u64>) -> History {
        let mut h = History::new(capacity);
        for s in seqs {
            h.push(s, Arc::from(s.to_string()));
        }
        h
    }

    fn seqs(page: &Page) -> Vec<u64> {
        page.messages.iter().map(|m| m.parse().unwrap()).collect()
    }

    #[test]
    fn latest_returns_the_newest_oldest_first() {
        let h = filled(10, 1..=20);
        let p = h.page(Window::Latest, 3);
        assert_eq!(
            (seqs(&p), p.more, p.complete),
            (vec![18, 19, 20], true, true)
        );
    }

    #[test]
    fn before_pages_back() {
        let h = filled(100, [2, 4, 6, 8, 10]);
        assert_eq!(seqs(&h.page(Window::Before(8), 2)), vec![4, 6]);
        let p = h.page(Window::Before(4), 5);
        assert_eq!((seqs(&p), p.more), (vec![2], false));
    }

    #[test]
    fn after_catches_up_oldest_first_and_pages_forward() {
        let h = filled(100, 1..=10);
        let p = h.page(Window::After(3), 4);
        assert_eq!(
            (seqs(&p), p.more, p.complete),
            (vec![4, 5, 6, 7], true, true)
        );
        let p = h.page(Window::After(7), 4);
        assert_eq!((seqs(&p), p.more), (vec![8, 9, 10], false));
        assert!(h.page(Window::After(10), 4).messages.is_empty());
    }

    #[test]
    fn after_reaching_past_what_is_kept_is_incomplete() {
        let h = filled(5, 1..=10); // keeps 6..=10
        assert!(!h.page(Window::After(3), 50).complete);
        assert!(h.page(Window::After(5), 50).complete, "6..=10 are all kept");
        assert_eq!(seqs(&h.page(Window::After(3), 50)), vec![6, 7, 8, 9, 10]);
    }
}
