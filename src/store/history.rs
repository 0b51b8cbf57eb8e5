//! `SqliteHistory`: the chat's history with a ring in front and the
//! database file behind.
//!
//! ```text
//!  append (registry lock) ─► ring.push + doorbell (a channel send: memory only)
//!  page latest/before ─► the ring; past its oldest, the file (a pooled reader)
//!  page after         ─► the file and the ring, merged (the file may lag the ring)
//!  search             ─► the file's FTS5 index
//! ```
//!
//! Readers are taken from a small pool (a channel of connections), used
//! with no lock held, and given back: a history read never holds a lock
//! across the disk, and never stalls the chat.

use crate::counter::AtomicU64;
use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use super::read;
use super::writer::{Job, Place, Row, Writer};
use super::{Opened, Options, RESERVE};
use crate::chat::bus::Published;
use crate::chat::history::{
    AfterDurable, History, Kept, Page, PrivateCopy, Search, Stream, Window,
};
use crate::chat::ring::Ring;

/// Reader connections kept at most (each is one descriptor).
const READERS: usize = 4;
/// How long a history read waits for a free reader.
const READER_WAIT: Duration = Duration::from_secs(2);
/// How long a sign-in waits for private messages queued just before it
/// to be committed.
const WAITING_WAIT: Duration = Duration::from_secs(2);
/// Topic streams whose newest messages fill the ring at start-up.
const PRELOAD_STREAMS: usize = 1024;

/// What the writer publishes and the server reads.
#[derive(Debug, Default)]
pub struct State {
    /// The highest seq committed.
    pub persisted: AtomicU64,
    /// The highest seq given out.
    pub assigned: AtomicU64,
    /// The seq recorded in the file: none above it has been given out,
    /// so a restart after a crash starts above it.
    pub reserved: AtomicU64,
    /// A `Reserve` job is on its way.
    pub reserve_asked: AtomicBool,
    /// The last commit succeeded.
    pub healthy: AtomicBool,
    pub commits: AtomicU64,
    /// Time spent in commits (successful or not), in microseconds.
    pub commit_micros: AtomicU64,
    /// Commits that failed.
    pub failures: AtomicU64,
    /// Times the writer was further behind than the ring holds.
    pub behind: AtomicU64,
    /// Messages dropped from persistence while the disk failed.
    pub dropped: AtomicU64,
    /// Times seqs ran past the recorded reservation.
    pub overruns: AtomicU64,
}

/// The store's health, for `/healthz` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The last commit succeeded.
    pub writing: bool,
    pub persisted_seq: u64,
    /// The highest seq given out (the lag is this less `persisted_seq`).
    pub assigned_seq: u64,
    pub commits: u64,
    /// Microseconds spent in commits.
    pub commit_micros: u64,
    pub failures: u64,
    pub behind: u64,
    pub dropped: u64,
    /// Times seqs ran past the recorded reservation (should stay 0).
    pub overruns: u64,
}

/// History kept in a SQLite file, with a ring in front.
pub struct SqliteHistory {
    /// Held while the file is in use: one server per file.
    _lock: std::fs::File,
    ring: Ring,
    doorbell: Sender<Job>,
    state: Arc<State>,
    path: PathBuf,
    readers: (Sender<Connection>, Receiver<Connection>),
    opened_readers: AtomicUsize,
}

impl SqliteHistory {
    /// The history over an opened file, and the writer that must run on
    /// a thread of its own (the server starts it).
    pub fn new(opened: Opened, options: &Options) -> (SqliteHistory, Writer) {
        let Opened {
            conn,
            epoch,
            last_seq,
            reserved,
            lock,
        } = opened;
        let ring = Ring::with_epoch(options.ring, epoch).bounded(options.ring_bytes);
        match read::recent(&conn, options.ring, PRELOAD_STREAMS) {
            Ok(streams) => {
                for (stream, rows) in streams {
                    for Kept { seq, json } in rows {
                        ring.push(&stream, seq, json);
                    }
                }
            }
            Err(e) => log::warn!("history: cannot fill the ring from the file: {e}"),
        }
        let state = Arc::new(State::default());
        state.persisted.store(last_seq, SeqCst);
        state.assigned.store(last_seq, SeqCst);
        state.reserved.store(reserved, SeqCst);
        state.healthy.store(true, SeqCst);
        let (doorbell, rx) = crossbeam_channel::unbounded();
        let writer = Writer::new(conn, rx, Arc::clone(&state), options);
        let history = SqliteHistory {
            _lock: lock,
            ring,
            doorbell,
            state,
            path: options.path.clone(),
            readers: crossbeam_channel::bounded(READERS),
            opened_readers: AtomicUsize::new(0),
        };
        (history, writer)
    }

    /// The highest seq given out before this start: the bus goes on
    /// from here.
    pub fn last_seq(&self) -> u64 {
        self.state.assigned.load(SeqCst)
    }

    pub fn health(&self) -> Health {
        Health {
            writing: self.state.healthy.load(SeqCst),
            persisted_seq: self.state.persisted.load(SeqCst),
            assigned_seq: self.state.assigned.load(SeqCst),
            commits: self.state.commits.load(SeqCst),
            commit_micros: self.state.commit_micros.load(SeqCst),
            failures: self.state.failures.load(SeqCst),
            behind: self.state.behind.load(SeqCst),
            dropped: self.state.dropped.load(SeqCst),
            overruns: self.state.overruns.load(SeqCst),
        }
    }

    /// Ask the writer to commit what is queued and end (shutdown).
    pub fn stop(&self) {
        let _ = self.doorbell.send(Job::Stop);
    }

    /// Run `query` on a pooled reader connection, with no lock held.
    fn read<T>(&self, query: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        let conn = match self.readers.1.try_recv() {
            Ok(conn) => conn,
            Err(_) if self.opened_readers.fetch_add(1, SeqCst) < READERS => {
                match super::reader(&self.path) {
                    Ok(conn) => conn,
                    Err(e) => {
                        self.opened_readers.fetch_sub(1, SeqCst);
                        log::warn!("history: cannot open a reader: {e}");
                        return None;
                    }
                }
            }
            Err(_) => {
                self.opened_readers.fetch_sub(1, SeqCst);
                self.readers.1.recv_timeout(READER_WAIT).ok()?
            }
        };
        let result = query(&conn);
        let _ = self.readers.0.try_send(conn);
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                log::warn!("history: read failed: {e}");
                None
            }
        }
    }
}

impl History for SqliteHistory {
    fn append(&self, stream: &Stream, seq: u64, message: &Published, json: Arc<str>) {
        self.ring.push(stream, seq, Arc::clone(&json));
        let row = Row {
            place: Place::Stream(stream.clone()),
            seq,
            ts: message.ts,
            sender: message.from.clone(),
            text: message.text.clone(),
            json,
        };
        let _ = self.doorbell.send(Job::Row(row));
    }

    fn assigned(&self, seq: u64) {
        self.state.assigned.fetch_max(seq, SeqCst);
        let near = seq + RESERVE / 2 > self.state.reserved.load(SeqCst);
        if near && !self.state.reserve_asked.swap(true, SeqCst) {
            let _ = self.doorbell.send(Job::Reserve);
        }
    }

    fn page(&self, stream: &Stream, window: Window, limit: usize) -> Page {
        let ring = self.ring.page(stream, window, limit);
        match window {
            Window::Latest | Window::Before(_) => {
                if ring.messages.len() == limit && ring.more {
                    return ring;
                }
                // Older than the ring's oldest: from the file.
                let below = match (ring.messages.first(), window) {
                    (Some(oldest), _) => oldest.seq,
                    (None, Window::Before(seq)) => seq,
                    (None, _) => u64::MAX,
                };
                let need = limit - ring.messages.len();
                match self.read(|conn| read::before(conn, stream, below, need)) {
                    Some((mut older, more)) => {
                        older.extend(ring.messages);
                        Page {
                            messages: older,
                            more,
                            complete: true,
                        }
                    }
                    None => ring,
                }
            }
            Window::After(above) => {
                // The file has what the ring evicted; the ring has what
                // the writer has not committed yet.
                let Some((mut rows, more, complete)) =
                    self.read(|conn| read::after(conn, stream, above, limit))
                else {
                    return ring;
                };
                let last_from_file = rows.last().map_or(above, |k| k.seq);
                rows.extend(ring.messages.into_iter().filter(|k| k.seq > last_from_file));
                let more = more || rows.len() > limit || ring.more;
                rows.truncate(limit);
                // The ring dropped messages the writer had not stored yet
                // (it is further behind than the ring holds): there may be
                // a hole, so never claim the answer complete.
                let hole = self.ring.evicted_up_to(stream) > self.state.persisted.load(SeqCst);
                Page {
                    messages: rows,
                    more,
                    complete: complete && !hole,
                }
            }
        }
    }

    fn search(&self, search: &Search) -> Result<Vec<Kept>, String> {
        self.read(|conn| Ok(read::search(conn, search)))
            .unwrap_or_else(|| Err("history is busy; try again".into()))
    }

    fn after_durable(&self, seq: u64, then: AfterDurable) -> Option<AfterDurable> {
        // Queued behind the message's own row: it runs after that commit.
        match self.doorbell.send(Job::Ack(seq, then)) {
            Ok(()) => None,
            Err(crossbeam_channel::SendError(Job::Ack(_, then))) => Some(then),
            Err(_) => None,
        }
    }

    fn forget(&self, stream: &Stream) {
        self.ring.forget(stream);
    }

    fn epoch(&self) -> &str {
        self.ring.epoch()
    }

    fn keeps_private(&self) -> bool {
        true
    }

    fn append_private(&self, seq: u64, copies: Vec<PrivateCopy>, json: Arc<str>) {
        let row = Row {
            place: Place::Private(copies),
            seq,
            ts: 0,
            sender: String::new(),
            text: String::new(),
            json,
        };
        let _ = self.doorbell.send(Job::Row(row));
    }

    fn take_waiting(&self, owner: &str, upto: u64) -> Vec<Kept> {
        // What was queued before is committed first (bounded wait: a
        // failing disk delivers them at a later sign-in instead).
        let (done, committed) = crossbeam_channel::bounded(1);
        let then: AfterDurable = Box::new(move || {
            let _ = done.send(());
        });
        if self.after_durable(upto, then).is_none() {
            let _ = committed.recv_timeout(WAITING_WAIT);
        }
        let waiting = self
            .read(|conn| read::waiting(conn, owner, upto))
            .unwrap_or_default();
        if let Some(last) = waiting.last() {
            let _ = self
                .doorbell
                .send(Job::Delivered(owner.to_owned(), last.seq));
        }
        waiting
    }

    fn conversation(&self, owner: &str, peer: &str, before: Option<u64>, limit: usize) -> Page {
        self.read(|conn| read::conversation(conn, owner, peer, before, limit))
            .map_or_else(Page::empty, |(messages, more)| Page {
                messages,
                more,
                complete: true,
            })
    }
}
