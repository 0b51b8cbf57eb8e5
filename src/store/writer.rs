//! The `ws-history` thread: the one connection that writes. The routing
//! thread never waits for it; it only rings the doorbell (a channel).
//!
//! ```text
//!  doorbell ─► [Row, Row, Ack, Row, ...] ─► one transaction per batch:
//!              a batch is what is queued, at most MAX_BATCH rows, collected
//!              for at most MAX_GATHER ─► commit ─► persisted_seq, held acks sent
//!  every TRIM_EVERY: retention deletes at most TRIM_BATCH rows a pass
//!  a commit that fails (disk full, I/O error): the batch is kept and tried
//!  again after RETRY, nothing written meanwhile (what arrives is kept, at
//!  most MAX_BACKLOG rows, the oldest dropped with their held acks);
//!  health says degraded; one log line a minute
//! ```

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::{params, Connection};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::history::State;
use super::read::key;
use super::RESERVE;
use crate::chat::history::{AfterDurable, PrivateCopy, Stream};

/// Most rows in one transaction.
pub const MAX_BATCH: usize = 1000;
/// Longest a batch is gathered before its commit starts.
pub const MAX_GATHER: Duration = Duration::from_millis(20);
/// How often new messages are added to the full-text index (one FTS5
/// transaction for all of them: per row it would cost more than the row),
/// and how many one pass adds at most.
const INDEX_EVERY: Duration = Duration::from_secs(1);
const INDEX_BATCH: i64 = 10_000;
/// How often retention runs, and how many rows one pass deletes at most.
const TRIM_EVERY: Duration = Duration::from_secs(10);
const TRIM_BATCH: i64 = 1000;
/// After a pass that deleted a whole batch, the next one comes this soon
/// (so retention keeps up with up to 10,000 messages a second, in small
/// transactions between the commits).
const TRIM_AGAIN: Duration = Duration::from_millis(100);
/// How long a failed commit waits before it is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// At most one log line about failing writes or lag per this long.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Rows kept for a retry while the disk fails; past it the oldest are
/// dropped from persistence (and counted), so memory stays bounded.
const MAX_BACKLOG: usize = 100_000;

/// Where a stored message goes.
pub enum Place {
    /// The history of a stream (broadcasts, a topic).
    Stream(Stream),
    /// A private message, once per account it involves.
    Private(Vec<PrivateCopy>),
}

/// Waiting private messages kept per account at most; older ones stop
/// waiting (they stay in the conversation's history).
pub const MAX_WAITING: i64 = 1000;

/// One delivered message to store.
pub struct Row {
    pub place: Place,
    pub seq: u64,
    pub ts: u64,
    pub sender: String,
    pub text: String,
    pub json: Arc<str>,
}

/// What the doorbell carries.
pub enum Job {
    Row(Row),
    /// Run once every row queued before it is committed; the seq is its
    /// message's.
    Ack(u64, AfterDurable),
    /// The private messages waiting for this account (folded), up to
    /// this seq, were delivered.
    Delivered(String, u64),
    /// Seqs ran close to the reservation: record more.
    Reserve,
    /// Commit what is queued, record the exact last seq, end.
    Stop,
}

/// The writer loop and its connection; `run` on a thread of its own.
pub struct Writer {
    conn: Connection,
    rx: Receiver<Job>,
    state: Arc<State>,
    ring: usize,
    retain_messages: u64,
    retain_days: u64,
    streams: HashMap<Stream, i64>,
    /// Rows and acks for the next commit (and, after a failed one, kept
    /// for its retry): each ack with its message's seq.
    backlog: Vec<Row>,
    held: Vec<(u64, AfterDurable)>,
    /// Accounts whose waiting messages were delivered, up to a seq.
    delivered: Vec<(String, u64)>,
    /// After a failed commit: when to try again (nothing is written
    /// before).
    retry_at: Option<Instant>,
    last_trim: Instant,
    last_index: Instant,
    /// Rows were committed since the last indexing pass.
    unindexed: bool,
    last_fail_log: Option<Instant>,
    last_lag_log: Option<Instant>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        rx: Receiver<Job>,
        state: Arc<State>,
        options: &super::Options,
    ) -> Writer {
        Writer {
            conn,
            rx,
            state,
            ring: options.ring,
            retain_messages: options.retain_messages,
            retain_days: options.retain_days,
            streams: HashMap::new(),
            backlog: Vec::new(),
            held: Vec::new(),
            delivered: Vec::new(),
            retry_at: None,
            last_trim: Instant::now(),
            last_index: Instant::now(),
            unindexed: true,
            last_fail_log: None,
            last_lag_log: None,
        }
    }

    /// Write until `Stop` (or until every sender is gone).
    pub fn run(mut self) {
        // Retention first: a restart with smaller limits applies them.
        self.index();
        self.trim();
        let mut stopping = false;
        while !stopping {
            let now = Instant::now();
            let mut wait = TRIM_EVERY.saturating_sub(self.last_trim.elapsed());
            if self.unindexed {
                wait = wait.min(INDEX_EVERY.saturating_sub(self.last_index.elapsed()));
            }
            if let Some(at) = self.retry_at {
                wait = wait.min(at.saturating_duration_since(now));
            }
            match self.rx.recv_timeout(wait) {
                Ok(job) => stopping = self.take(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stopping = true,
            }
            // While a failed commit waits for its retry, nothing is
            // written: what arrives is only kept (bounded).
            let writing = stopping || self.retry_at.is_none_or(|at| Instant::now() >= at);
            let started = Instant::now();
            while !stopping
                && (!writing || (self.backlog.len() < MAX_BATCH && started.elapsed() < MAX_GATHER))
            {
                match self.rx.try_recv() {
                    Ok(job) => stopping = self.take(job),
                    Err(_) => break,
                }
            }
            self.bound_backlog();
            if writing {
                self.commit(stopping);
            }
            self.watch_lag();
            if self.retry_at.is_some() {
                continue;
            }
            if self.unindexed && (stopping || self.last_index.elapsed() >= INDEX_EVERY) {
                self.index();
            }
            if self.last_trim.elapsed() >= TRIM_EVERY {
                // Deleted rows leave the index by a trigger, so everything
                // is indexed first.
                self.index();
                self.trim();
            }
        }
    }

    /// Keep one job for the next commit; true for `Stop`.
    fn take(&mut self, job: Job) -> bool {
        match job {
            Job::Row(row) => self.backlog.push(row),
            Job::Ack(seq, then) => self.held.push((seq, then)),
            Job::Delivered(owner, upto) => self.delivered.push((owner, upto)),
            Job::Reserve => {}
            Job::Stop => return true,
        }
        false
    }

    /// While writes fail, at most MAX_BACKLOG rows are kept: the oldest
    /// are dropped from the file (counted), and so are the held acks of
    /// the messages dropped, so no ack ever says "stored" of a message
    /// that was not.
    fn bound_backlog(&mut self) {
        if self.backlog.len() <= MAX_BACKLOG {
            return;
        }
        let dropped = self.backlog.len() - MAX_BACKLOG;
        let upto = self.backlog[dropped - 1].seq;
        self.backlog.drain(..dropped);
        self.held.retain(|(seq, _)| *seq > upto);
        self.state.dropped.fetch_add(dropped as u64, SeqCst);
    }

    /// One transaction: the rows, the seq reservation. On success the
    /// held acks run; on failure everything is kept for a retry.
    fn commit(&mut self, stopping: bool) {
        let rows = std::mem::take(&mut self.backlog);
        let acks = std::mem::take(&mut self.held);
        let assigned = self.state.assigned.load(SeqCst);
        if assigned > self.state.reserved.load(SeqCst) {
            // Seqs ran past the reservation before the writer could
            // record more: after a crash now, these could be reused.
            self.state.overruns.fetch_add(1, SeqCst);
            log::warn!("history: seq {assigned} ran past the recorded reservation");
        }
        // On a clean stop the exact last seq is recorded; while running,
        // RESERVE ahead, so that after a crash no seq is given out twice.
        let record = if stopping {
            Some(assigned)
        } else if assigned + RESERVE / 2 > self.state.reserved.load(SeqCst) {
            Some(assigned + RESERVE)
        } else {
            None
        };
        if rows.is_empty() && record.is_none() && self.delivered.is_empty() {
            for (_, then) in acks {
                then();
            }
            return;
        }
        let started = Instant::now();
        let written = self.write(&rows, record, stopping);
        let micros = started.elapsed().as_micros() as u64;
        self.state.commit_micros.fetch_add(micros, SeqCst);
        match written {
            Ok(()) => {
                if let Some(record) = record {
                    self.state.reserved.store(record, SeqCst);
                    self.state.reserve_asked.store(false, SeqCst);
                }
                if let Some(last) = rows.last() {
                    self.state.persisted.fetch_max(last.seq, SeqCst);
                }
                self.state.commits.fetch_add(1, SeqCst);
                self.unindexed |= !rows.is_empty();
                if !self.state.healthy.swap(true, SeqCst) {
                    log::warn!("history: writing again; {} rows caught up", rows.len());
                }
                self.retry_at = None;
                for (_, then) in acks {
                    then();
                }
            }
            Err(e) => {
                self.state.failures.fetch_add(1, SeqCst);
                self.state.healthy.store(false, SeqCst);
                if self.last_fail_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    log::error!(
                        "history: cannot write ({e}); chat goes on, {} messages wait to be stored",
                        rows.len()
                    );
                    self.last_fail_log = Some(Instant::now());
                }
                self.backlog = rows;
                self.held = acks;
                self.retry_at = Some(Instant::now() + RETRY);
                if stopping {
                    log::error!(
                        "history: {} messages were not stored before shutdown",
                        self.backlog.len()
                    );
                }
            }
        }
    }

    fn write(&mut self, rows: &[Row], record: Option<u64>, clean: bool) -> rusqlite::Result<()> {
        let result = self.write_once(rows, record, clean);
        if result.is_err() {
            // Stream ids made in the failed transaction are gone with it.
            self.streams.clear();
        }
        result
    }

    fn write_once(
        &mut self,
        rows: &[Row],
        record: Option<u64>,
        clean: bool,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let mut waiting = std::collections::HashSet::new();
        for row in rows {
            let stream = match &row.place {
                Place::Stream(stream) => stream,
                Place::Private(copies) => {
                    write_private(&tx, row, copies)?;
                    waiting.extend(copies.iter().filter(|c| c.waiting).map(|c| &c.owner));
                    continue;
                }
            };
            let id = match self.streams.get(stream) {
                Some(id) => *id,
                None => {
                    let (kind, name) = key(stream);
                    tx.execute(
                        "INSERT INTO streams (kind, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        params![kind, name],
                    )?;
                    let id: i64 = tx.query_row(
                        "SELECT id FROM streams WHERE kind = ?1 AND name = ?2",
                        params![kind, name],
                        |r| r.get(0),
                    )?;
                    id
                }
            };
            tx.prepare_cached(
                "INSERT OR IGNORE INTO messages (stream, seq, ts, sender, json, text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                id,
                row.seq as i64,
                row.ts as i64,
                row.sender,
                &*row.json,
                row.text
            ])?;
            self.streams.entry(stream.clone()).or_insert(id);
        }
        for owner in waiting {
            // At most MAX_WAITING wait per account: older ones stop waiting.
            tx.prepare_cached(
                "UPDATE private_messages SET waiting = 0 WHERE owner = ?1 AND waiting = 1 AND seq <=
                 (SELECT seq FROM private_messages WHERE owner = ?1 AND waiting = 1
                  ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            )?
            .execute(params![owner, MAX_WAITING])?;
        }
        for (owner, upto) in &self.delivered {
            tx.prepare_cached(
                "UPDATE private_messages SET waiting = 0 WHERE owner = ?1 AND waiting = 1 AND seq <= ?2",
            )?
            .execute(params![owner, *upto as i64])?;
        }
        if let Some(record) = record {
            super::set_meta(&tx, "last_seq", &record.to_string())?;
        }
        if clean {
            // A clean stop: every seq given out is recorded exactly.
            super::set_meta(&tx, "clean", "1")?;
        }
        tx.commit()?;
        self.delivered.clear();
        Ok(())
    }

    /// Add the messages committed since the last pass to the full-text
    /// index, at most INDEX_BATCH a pass (the next pass takes the rest).
    fn index(&mut self) {
        self.last_index = Instant::now();
        match self.index_once() {
            Ok(added) => self.unindexed = added == INDEX_BATCH,
            Err(e) => log::warn!("history: indexing for search failed: {e}"),
        }
    }

    fn index_once(&mut self) -> rusqlite::Result<i64> {
        let tx = self.conn.transaction()?;
        let upto: i64 = super::meta(&tx, "fts_upto")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let top: i64 = tx.query_row(
            "SELECT coalesce(max(id), 0) FROM (SELECT id FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2)",
            params![upto, INDEX_BATCH],
            |r| r.get(0),
        )?;
        if top == 0 {
            return Ok(0);
        }
        let added = tx.execute(
            "INSERT INTO messages_fts (rowid, text) SELECT id, text FROM messages WHERE id > ?1 AND id <= ?2",
            params![upto, top],
        )?;
        super::set_meta(&tx, "fts_upto", &top.to_string())?;
        tx.commit()?;
        Ok(added as i64)
    }

    /// The writer is further behind than the ring holds: history requests
    /// may miss messages until it catches up. Counted and logged.
    fn watch_lag(&mut self) {
        let queued = self.rx.len() + self.backlog.len();
        if queued > self.ring {
            self.state.behind.fetch_add(1, SeqCst);
            if self.last_lag_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                log::warn!(
                    "history: the writer is {queued} messages behind, more than the ring holds ({})",
                    self.ring
                );
                self.last_lag_log = Some(Instant::now());
            }
        }
    }

    /// Retention: delete at most TRIM_BATCH rows past `--retain-messages`
    /// per stream or older than `--retain-days`, and record per stream
    /// the highest seq deleted (so `history after` can say incomplete).
    fn trim(&mut self) {
        self.last_trim = Instant::now();
        match self.trim_once() {
            Ok(deleted) if deleted >= TRIM_BATCH => {
                // More to delete: the next pass soon, not in TRIM_EVERY.
                let now = Instant::now();
                self.last_trim = now.checked_sub(TRIM_EVERY - TRIM_AGAIN).unwrap_or(now);
            }
            Ok(_) => {}
            Err(e) => log::warn!("history: retention failed: {e}"),
        }
    }

    /// One retention pass; how many rows it deleted.
    fn trim_once(&mut self) -> rusqlite::Result<i64> {
        let tx = self.conn.transaction()?;
        let mut cutoffs: Vec<(i64, i64)> = Vec::new();
        if self.retain_messages > 0 {
            let mut stmt = tx.prepare(
                "SELECT s.id, (SELECT m.seq FROM messages m WHERE m.stream = s.id
                               ORDER BY m.seq DESC LIMIT 1 OFFSET ?1)
                 FROM streams s",
            )?;
            let rows = stmt.query_map(params![self.retain_messages as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
            })?;
            for row in rows {
                if let (id, Some(seq)) = row? {
                    cutoffs.push((id, seq));
                }
            }
        }
        let mut left = TRIM_BATCH;
        for (id, upto) in cutoffs {
            left -= delete(&tx, "stream = ?1 AND seq <= ?2", params![id, upto], left)?;
        }
        if self.retain_days > 0 && left > 0 {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let oldest = now - (self.retain_days as i64) * 86_400_000;
            left -= delete(&tx, "ts < ?1", params![oldest], left)?;
        }
        tx.commit()?;
        Ok(TRIM_BATCH - left)
    }
}

/// Delete at most `limit` of the oldest indexed rows matching `filter`, moving
/// each stream's `trimmed_to` up; returns how many went.
fn delete(
    tx: &rusqlite::Transaction,
    filter: &str,
    args: impl rusqlite::Params + Clone,
    limit: i64,
) -> rusqlite::Result<i64> {
    // Only rows already in the full-text index: its delete trigger must
    // never remove what was never added.
    // ... and never the newest row: row ids are reused from the highest
    // one left, and a reused id at or below `fts_upto` would never be
    // indexed.
    let filter = format!(
        "{filter} AND id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_upto')
         AND id < (SELECT max(id) FROM messages)"
    );
    let marks = format!(
        "UPDATE streams SET trimmed_to = max(trimmed_to, coalesce((
             SELECT max(seq) FROM (SELECT seq, stream FROM messages WHERE {filter}
                                   ORDER BY seq LIMIT {limit}) d WHERE d.stream = streams.id), 0))"
    );
    tx.execute(&marks, args.clone())?;
    let gone = tx.execute(
        &format!(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE {filter}
                                               ORDER BY seq LIMIT {limit})"
        ),
        args,
    )?;
    Ok(gone as i64)
}

/// A private message, once per account it involves.
fn write_private(
    tx: &rusqlite::Transaction,
    row: &Row,
    copies: &[PrivateCopy],
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO private_messages (owner, peer, seq, json, waiting)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for copy in copies {
        insert.execute(params![
            copy.owner,
            copy.peer,
            row.seq as i64,
            &*row.json,
            copy.waiting
        ])?;
    }
    Ok(())
}
