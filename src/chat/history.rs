//! The history seam: what the chat keeps of each stream (the broadcasts,
//! each topic) and hands back to the `history` request.
//!
//! ```text
//!  router (registry lock held) ── append(stream, seq, json) ──► memory only, never a disk
//!  requests (no lock held)     ── page(stream, window, limit) ─► may read a disk
//!  welcome                     ── epoch() ─► changes only when stored history was lost
//! ```
//!
//! `Ring` (`ring.rs`) keeps a bounded ring per stream in memory (its epoch
//! is new on every start, since its history dies with the process). A
//! store that persists history implements [`History`] too and is chosen
//! by the server.
//!
//! Each entry is the exact JSON text that was delivered, so a history
//! reply holds the same objects the client would have received.

use std::sync::Arc;

use super::bus::Published;

/// A stream of messages that history keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The broadcasts.
    Broadcasts,
    /// One topic, by its folded key (see [`super::registry::fold`]).
    Topic(String),
}

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

/// One kept message: its `seq` and the JSON exactly as delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub seq: u64,
    pub json: Arc<str>,
}

/// A history answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Delivered messages, oldest first.
    pub messages: Vec<Kept>,
    /// The limit cut the list: more messages match.
    pub more: bool,
    /// False when messages newer than `after` were already evicted.
    pub complete: bool,
}

impl Page {
    /// The page of a stream that keeps nothing (yet).
    pub fn empty() -> Page {
        Page {
            messages: Vec::new(),
            more: false,
            complete: true,
        }
    }
}

/// A `search` request: words to find, in one stream or in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// What to look for (see `docs/PROTOCOL.md`, search).
    pub q: String,
    /// One stream, or every stream anyone may read.
    pub stream: Option<Stream>,
    /// Only messages older than this seq (paging back).
    pub before: Option<u64>,
    pub limit: usize,
}

/// A private message kept for one account (see [`History::append_private`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateCopy {
    /// The account it is kept for (folded name).
    pub owner: String,
    /// The other party of the conversation (folded name).
    pub peer: String,
    /// The owner was offline: deliver it at their next sign-in.
    pub waiting: bool,
}

/// Something to run once a message is committed (a held `ack`).
pub type AfterDurable = Box<dyn FnOnce() + Send>;

/// Where delivered messages are kept for the `history` request.
pub trait History: Send + Sync {
    /// Keep a delivered message. Called with the registry lock held, in
    /// `seq` order: memory only, never a disk or a socket.
    fn append(&self, stream: &Stream, seq: u64, message: &Published, json: Arc<str>);
    /// Every `seq` the bus gives out, kept or not (a store that survives a
    /// restart must never give one out twice). Under the registry lock.
    fn assigned(&self, seq: u64);
    /// The messages of `stream` in `window`, at most `limit`, oldest
    /// first. Called with no lock held; may read a disk.
    fn page(&self, stream: &Stream, window: Window, limit: usize) -> Page;
    /// The messages that match `search`, newest first, at most its limit.
    /// Called with no lock held; may read a disk. `Err` says what is
    /// wrong with the query.
    fn search(&self, search: &Search) -> Result<Vec<Kept>, String>;
    /// Run `then` once every message up to `seq` is committed, on the
    /// store's own thread, never under the registry lock. A store that
    /// keeps nothing on disk hands `then` back: the caller acks at once.
    fn after_durable(&self, seq: u64, then: AfterDurable) -> Option<AfterDurable>;
    /// A topic stream was evicted (see `--max-topics`): drop what is kept
    /// of it in memory. Called with the registry lock held.
    fn forget(&self, stream: &Stream);
    /// Names this store's history: it changes only when stored history
    /// was lost, so a client that resumes from another epoch knows that
    /// messages may be missing.
    fn epoch(&self) -> &str;
    /// Does this store keep private messages for accounts (so one to an
    /// offline account can wait)? A store in memory only does not.
    fn keeps_private(&self) -> bool {
        false
    }
    /// Keep a direct or multicast message for the accounts it involves.
    /// Called with the registry lock held: memory only.
    fn append_private(&self, _seq: u64, _copies: Vec<PrivateCopy>, _json: Arc<str>) {}
    /// The messages waiting for `owner` (folded) with seqs up to `upto`,
    /// oldest first; they are then marked delivered. No lock held.
    fn take_waiting(&self, _owner: &str, _upto: u64) -> Vec<Kept> {
        Vec::new()
    }
    /// `owner`'s conversation with `peer` (both folded): the newest
    /// `limit` messages older than `before`, oldest first. No lock held.
    fn conversation(&self, _owner: &str, _peer: &str, _before: Option<u64>, _limit: usize) -> Page {
        Page::empty()
    }
}
