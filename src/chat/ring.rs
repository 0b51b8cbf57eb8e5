//! The in-memory history: a bounded ring per stream (broadcasts, each
//! topic), today's behaviour with `--db :memory:`, and the ring in front
//! of the database otherwise.
//!
//! ```text
//!  evicted ... | seq 40 | seq 41 | seq 42 | ... | seq 139 |   capacity 100
//!              ^ oldest kept                      ^ newest
//!  before=60 limit=5  ─► 55 56 57 58 59   (paging back)
//!  after=130 limit=5  ─► 131..135, more   (catching up, oldest first)
//!  after=10           ─► complete: false  (11..39 were evicted)
//! ```
//!
//! Messages are bounded in number per stream and in bytes (issue 14,
//! `--history-bytes`): per stream, and across all streams together,
//! where the oldest message of any stream goes first. A message counts
//! as its JSON, escapes included (a control character is six bytes).

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::bus::Published;
use super::history::{AfterDurable, History, Kept, Page, Search, Stream, Window};

/// Today's history: a bounded ring per stream, in memory.
pub struct Ring {
    capacity: usize,
    bytes: Bytes,
    streams: Mutex<Streams>,
    epoch: String,
}

/// The byte bounds (`--history-bytes`, `--history-total-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes {
    pub per_stream: usize,
    pub total: usize,
}

impl Bytes {
    /// No bound but the message count.
    pub const UNBOUNDED: Bytes = Bytes {
        per_stream: usize::MAX,
        total: usize::MAX,
    };
}

#[derive(Default)]
struct Streams {
    buffers: HashMap<Stream, Buffer>,
    /// The bytes of every buffer together.
    bytes: usize,
}

impl Streams {
    /// Drop the oldest message of any stream; false if none is left.
    fn evict_oldest(&mut self) -> bool {
        let oldest = self
            .buffers
            .values_mut()
            .filter(|b| !b.entries.is_empty())
            .min_by_key(|b| b.entries.front().map_or(u64::MAX, |(seq, _)| *seq));
        match oldest {
            Some(buffer) => {
                self.bytes -= buffer.pop_oldest();
                true
            }
            None => false,
        }
    }
}

impl Ring {
    /// `capacity` messages per stream; a new epoch (the ring starts empty).
    pub fn new(capacity: usize) -> Ring {
        Ring::with_epoch(capacity, new_epoch())
    }

    /// A ring for a store that names its own epoch.
    pub fn with_epoch(capacity: usize, epoch: String) -> Ring {
        Ring {
            capacity,
            bytes: Bytes::UNBOUNDED,
            streams: Mutex::new(Streams::default()),
            epoch,
        }
    }

    /// The same ring, bounded in bytes as well.
    pub fn bounded(mut self, bytes: Bytes) -> Ring {
        self.bytes = bytes;
        self
    }

    /// Keep `json` as message `seq` of `stream`.
    pub fn push(&self, stream: &Stream, seq: u64, json: Arc<str>) {
        let mut streams = self.streams.lock();
        let streams = &mut *streams;
        let buffer = match streams.buffers.get_mut(stream) {
            Some(buffer) => buffer,
            None => streams
                .buffers
                .entry(stream.clone())
                .or_insert_with(|| Buffer::new(self.capacity, self.bytes.per_stream)),
        };
        let (added, dropped) = buffer.push(seq, json);
        streams.bytes = streams.bytes + added - dropped;
        while streams.bytes > self.bytes.total && streams.evict_oldest() {}
    }

    /// The highest seq the ring has dropped from `stream` (0: none).
    pub fn evicted_up_to(&self, stream: &Stream) -> u64 {
        self.streams
            .lock()
            .buffers
            .get(stream)
            .map_or(0, |buffer| buffer.evicted_up_to)
    }

    /// The bytes kept, all streams together.
    pub fn bytes(&self) -> usize {
        self.streams.lock().bytes
    }
}

impl History for Ring {
    fn append(&self, stream: &Stream, seq: u64, _: &Published, json: Arc<str>) {
        self.push(stream, seq, json);
    }

    fn assigned(&self, _: u64) {}

    fn page(&self, stream: &Stream, window: Window, limit: usize) -> Page {
        // The ring's own lock guards a copy of a few `Arc`s: never I/O.
        match self.streams.lock().buffers.get(stream) {
            Some(buffer) => buffer.page(window, limit),
            None => Page::empty(),
        }
    }

    /// Every word of `q` must appear in the text, in any case and order
    /// (the in-memory ring has no index; a database file has FTS5).
    fn search(&self, search: &Search) -> Result<Vec<Kept>, String> {
        // A word's trailing `*` (a prefix, with a file) changes nothing
        // here: words are matched as substrings anyway.
        let words: Vec<String> = search
            .q
            .split_whitespace()
            .map(|w| w.strip_suffix('*').filter(|s| !s.is_empty()).unwrap_or(w))
            .map(str::to_lowercase)
            .collect();
        if words.is_empty() {
            return Err("q must have at least one word".into());
        }
        let before = search.before.unwrap_or(u64::MAX);
        // Copies of the `Arc`s under the lock (the router appends under
        // it); the JSON is read after it is released.
        let candidates: Vec<(u64, Arc<str>)> = self
            .streams
            .lock()
            .buffers
            .iter()
            .filter(|(s, _)| search.stream.as_ref().is_none_or(|want| want == *s))
            .flat_map(|(_, buffer)| buffer.entries.iter())
            .filter(|(seq, _)| *seq < before)
            .map(|(seq, json)| (*seq, Arc::clone(json)))
            .collect();
        let mut found: Vec<Kept> = candidates
            .into_iter()
            .filter(|(_, json)| matches_words(json, &words))
            .map(|(seq, json)| Kept { seq, json })
            .collect();
        found.sort_unstable_by_key(|k| std::cmp::Reverse(k.seq));
        found.truncate(search.limit);
        Ok(found)
    }

    fn after_durable(&self, _: u64, then: AfterDurable) -> Option<AfterDurable> {
        Some(then)
    }

    fn forget(&self, stream: &Stream) {
        let mut streams = self.streams.lock();
        if let Some(buffer) = streams.buffers.remove(stream) {
            streams.bytes -= buffer.bytes;
        }
    }

    fn epoch(&self) -> &str {
        &self.epoch
    }
}

/// Does the `text` of this delivered message hold every one of `words`
/// (lowercase)?
fn matches_words(json: &str, words: &[String]) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return false;
    };
    let text = value["text"].as_str().unwrap_or("").to_lowercase();
    words.iter().all(|w| text.contains(w.as_str()))
}

/// One stream's recent messages, oldest first.
#[derive(Debug)]
struct Buffer {
    capacity: usize,
    max_bytes: usize,
    entries: VecDeque<(u64, Arc<str>)>,
    /// The bytes of the kept messages' JSON.
    bytes: usize,
    /// The highest seq ever evicted (0: none).
    evicted_up_to: u64,
}

impl Buffer {
    fn new(capacity: usize, max_bytes: usize) -> Buffer {
        Buffer {
            capacity,
            max_bytes,
            entries: VecDeque::new(),
            bytes: 0,
            evicted_up_to: 0,
        }
    }

    /// Keep a delivered message; the oldest go while the count or the
    /// bytes are over (the newest message stays even if it alone is).
    /// Returns (bytes added, bytes dropped).
    fn push(&mut self, seq: u64, json: Arc<str>) -> (usize, usize) {
        if self.capacity == 0 {
            self.evicted_up_to = seq;
            return (0, 0);
        }
        let added = json.len();
        let mut dropped = 0;
        while !self.entries.is_empty()
            && (self.entries.len() == self.capacity || self.bytes + added > self.max_bytes)
        {
            dropped += self.pop_oldest();
        }
        self.entries.push_back((seq, json));
        self.bytes += added;
        (added, dropped)
    }

    /// Drop the oldest message; returns its bytes.
    fn pop_oldest(&mut self) -> usize {
        match self.entries.pop_front() {
            Some((old, json)) => {
                self.evicted_up_to = old;
                self.bytes -= json.len();
                json.len()
            }
            None => 0,
        }
    }

    /// The messages in `window`, at most `limit`, oldest first.
    fn page(&self, window: Window, limit: usize) -> Page {
        let pick = |range: &mut dyn Iterator<Item = &(u64, Arc<str>)>| {
            range
                .map(|(seq, json)| Kept {
                    seq: *seq,
                    json: Arc::clone(json),
                })
                .collect::<Vec<_>>()
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

/// A short name for a history store: six base-36 characters from the time
/// and the process id, different on every start.
pub fn new_epoch() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut x = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    // One round of splitmix64 so that close start times look different.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..6)
        .map(|i| alphabet[((x >> (i * 6)) % 36) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(capacity: usize, seqs: impl IntoIterator<Item = u64>) -> Buffer {
        let mut h = Buffer::new(capacity, usize::MAX);
        for s in seqs {
            h.push(s, Arc::from(s.to_string()));
        }
        h
    }

    fn seqs(page: &Page) -> Vec<u64> {
        page.messages.iter().map(|m| m.seq).collect()
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

    #[test]
    fn the_ring_keeps_streams_apart_and_forgets_evicted_topics() {
        let ring = Ring::new(10);
        let topic = Stream::Topic("news".into());
        ring.push(&Stream::Broadcasts, 1, Arc::from("1"));
        ring.push(&topic, 2, Arc::from("2"));
        assert_eq!(
            seqs(&ring.page(&Stream::Broadcasts, Window::Latest, 10)),
            vec![1]
        );
        assert_eq!(seqs(&ring.page(&topic, Window::Latest, 10)), vec![2]);
        ring.forget(&topic);
        assert_eq!(ring.page(&topic, Window::After(0), 10), Page::empty());
    }

    #[test]
    fn bytes_are_bounded_per_stream_and_in_total_oldest_first() {
        let ring = Ring::new(100).bounded(Bytes {
            per_stream: 30,
            total: 45,
        });
        let (a, b) = (Stream::Topic("a".into()), Stream::Topic("b".into()));
        let ten = |c: &str| Arc::from(c.repeat(10));
        for seq in 1..=4 {
            ring.push(&a, seq, ten("a"));
        }
        // Per stream: 30 bytes keep the newest three.
        assert_eq!(seqs(&ring.page(&a, Window::Latest, 10)), vec![2, 3, 4]);
        assert_eq!(ring.bytes(), 30);
        ring.push(&b, 5, ten("b"));
        ring.push(&b, 6, ten("b"));
        // In total: 45 bytes; the oldest of any stream (2) went first.
        assert_eq!(seqs(&ring.page(&a, Window::Latest, 10)), vec![3, 4]);
        assert_eq!(seqs(&ring.page(&b, Window::Latest, 10)), vec![5, 6]);
        assert_eq!(ring.bytes(), 40);
        assert!(!ring.page(&a, Window::After(1), 10).complete);
        // One message larger than a stream's bound is kept alone.
        ring.push(&b, 7, Arc::from("x".repeat(45)));
        assert_eq!(seqs(&ring.page(&b, Window::Latest, 10)), vec![7]);
        assert_eq!(ring.bytes(), 45, "a's 3 and 4 went for it");
        ring.forget(&b);
        assert_eq!(ring.bytes(), 0);
    }

    #[test]
    fn epochs_are_six_base36_characters() {
        let e = new_epoch();
        assert_eq!(e.len(), 6);
        assert!(e
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }
}
