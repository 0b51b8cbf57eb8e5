//! The SQLite adapter: durable history behind the chat's
//! [`History`](crate::chat::history::History) seam. SQLite is compiled in
//! (`rusqlite`, `bundled`), so nothing is installed by hand.
//!
//! ```text
//!  routing thread (registry lock) ── append ──► ring (memory) + doorbell ──┐
//!                                                                          ▼
//!  ws-history thread: the one write connection; a transaction per batch (group commit),
//!                     WAL, synchronous=NORMAL (or FULL); publishes persisted_seq;
//!                     runs held acks; trims by retention in small batches
//!  workers (no lock) ── page before/after past the ring, search ──► a pooled reader connection
//! ```
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | open a file: mode 0600, pragmas, schema, epoch, last seq; `--db-reset` |
//! | `schema.rs` | the tables and their numbered migrations |
//! | `writer.rs` | the `ws-history` loop: group commit, retention, faults |
//! | `history.rs` | `SqliteHistory`: the ring in front, the file behind |
//! | `read.rs` | the queries the readers run: pages and search |
//! | `backup.rs` | `switchboard backup`: SQLite's online backup |
//! | `accounts.rs` | `SqliteAccounts`: accounts, sessions, sanctions, moderation log |
//! | `admin.rs` | `switchboard user ...` on a file, with or without a server |
//!
//! This module never touches a socket and never starts a thread: the
//! server runs the writer loop on a thread of its own.

pub mod accounts;
pub mod admin;
pub mod backup;
mod history;
mod read;
pub mod schema;
mod writer;

pub use accounts::SqliteAccounts;
pub use history::{Health, SqliteHistory};
pub use writer::Writer;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a database file is opened and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub path: PathBuf,
    /// Move a file that is not a usable database aside and start anew.
    pub reset: bool,
    /// `synchronous=FULL` (survives power loss) instead of NORMAL.
    pub sync_full: bool,
    /// Messages per stream in the ring in front of the file.
    pub ring: usize,
    /// Bytes of the ring, per stream and in total.
    pub ring_bytes: crate::chat::ring::Bytes,
    /// Messages kept per stream in the file (0: no limit).
    pub retain_messages: u64,
    /// Days a message is kept (0: no limit).
    pub retain_days: u64,
}

/// Why a database could not be opened.
#[derive(Debug)]
pub enum Error {
    /// SQLite refused the file (not a database, corrupt, unreadable, ...).
    Open { path: PathBuf, why: String },
    /// The file could not be moved aside (`--db-reset`).
    Reset {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open { path, why } => write!(
                f,
                "cannot use {} as the history database: {why} (--db-reset moves it aside and starts a new history)",
                path.display()
            ),
            Error::Reset { path, source } => {
                write!(f, "cannot move {} aside: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {}

/// What an opened file holds.
pub struct Opened {
    pub conn: Connection,
    pub epoch: String,
    /// The highest seq that may have been given out before: the bus goes
    /// on after it, so none is given out twice.
    pub last_seq: u64,
    /// The seq recorded in the file as given out at most: seqs up to it
    /// may be used without writing first.
    pub reserved: u64,
    /// The process-wide lock on the file, held while it is open.
    pub lock: std::fs::File,
}

/// Seqs recorded ahead of use, so that a crash never lets one be given
/// out twice: the writer records this many more whenever fewer than half
/// are left, and a clean stop records the exact last one.
pub const RESERVE: u64 = 10_000;

/// Why `open_file` failed, and whether `--db-reset` may move the file
/// aside for it (only when it is not a usable database at all: never for
/// a file that is busy, unreadable, or from a newer build).
struct OpenError {
    why: String,
    reset: bool,
}

impl From<String> for OpenError {
    fn from(why: String) -> OpenError {
        OpenError { why, reset: false }
    }
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> OpenError {
        let reset = matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
        );
        OpenError {
            why: describe(e),
            reset,
        }
    }
}

/// Page cache of the write connection and of each reader, in KiB (SQLite's
/// default is 2 MiB each): sized for a small board; the OS's file cache
/// is behind it anyway.
const WRITER_CACHE_KIB: u32 = 1024;
const READER_CACHE_KIB: u32 = 256;

/// How long a connection waits for another's lock (a backup, say).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Open (or create) the file, bring its schema up to date, and read its
/// epoch and last seq.
pub fn open(options: &Options) -> Result<Opened, Error> {
    match open_file(options) {
        Err(OpenError { why, reset: true }) if options.reset => {
            let aside = move_aside(&options.path)?;
            log::warn!(
                "{} is not a usable database ({why}); moved it to {} and started a new history",
                options.path.display(),
                aside.display()
            );
            open_file(options).map_err(|e| Error::Open {
                path: options.path.clone(),
                why: e.why,
            })
        }
        Err(e) => Err(Error::Open {
            path: options.path.clone(),
            why: e.why,
        }),
        Ok(opened) => Ok(opened),
    }
}

fn open_file(options: &Options) -> Result<Opened, OpenError> {
    create_private(&options.path).map_err(|e| e.to_string())?;
    // One server per file: two would give out the same seqs.
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&options.path)
        .map_err(|e| e.to_string())?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err("it is in use by another Switchboard".to_owned().into())
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e.to_string().into()),
    }
    let mut conn = Connection::open_with_flags(
        &options.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block the writer, nor it them; NORMAL syncs at
    // checkpoints only (a process crash loses nothing committed; a power
    // loss may lose the last commits); FULL syncs every commit.
    let sync = if options.sync_full { "FULL" } else { "NORMAL" };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{WRITER_CACHE_KIB};"
    ))?;
    let from = schema::migrate(&mut conn)?;
    if from < schema::VERSION && from > 0 {
        log::info!(
            "{}: schema migrated from version {from} to {}",
            options.path.display(),
            schema::VERSION
        );
    }
    let epoch = match meta(&conn, "epoch")? {
        Some(epoch) => epoch,
        None => {
            let epoch = crate::chat::ring::new_epoch();
            set_meta(&conn, "epoch", &epoch)?;
            epoch
        }
    };
    let recorded: u64 = meta(&conn, "last_seq")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stored = conn.query_row("SELECT coalesce(max(seq), 0) FROM messages", [], |r| {
        r.get::<_, i64>(0)
    })? as u64;
    let last_seq = recorded.max(stored);
    if meta(&conn, "clean")?.as_deref() == Some("0") {
        // The last run did not stop cleanly: messages delivered but not
        // yet stored are gone, so a resume from before the reservation
        // cannot be known complete.
        conn.execute(
            "UPDATE streams SET trimmed_to = max(trimmed_to, ?1)",
            params![last_seq as i64],
        )?;
        log::warn!(
            "history: the last run did not stop cleanly; messages not yet stored then are lost \
             (stored up to seq {stored}); seq goes on after {last_seq}"
        );
    }
    // Record the first reservation before anything is given out, and mark
    // the file in use until a clean stop.
    let reserved = last_seq + RESERVE;
    set_meta(&conn, "last_seq", &reserved.to_string())?;
    set_meta(&conn, "clean", "0")?;
    Ok(Opened {
        conn,
        epoch,
        last_seq,
        reserved,
        lock,
    })
}

/// Create the file with mode 0600 (only its owner reads the history)
/// if it does not exist; SQLite gives its -wal and -shm files the same
/// mode.
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Move a bad file (and its -wal and -shm) to `PATH.bad-UNIXTIME`.
fn move_aside(path: &Path) -> Result<PathBuf, Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = PathBuf::from(format!("{}.bad-{now}", path.display()));
    std::fs::rename(path, &aside).map_err(|source| Error::Reset {
        path: path.to_owned(),
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        let _ = std::fs::rename(&side, format!("{}{suffix}", aside.display()));
    }
    Ok(aside)
}

/// SQLite's error, in a line a person reads.
fn describe(e: rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => "the file is not a SQLite database".into(),
        Some(ErrorCode::DatabaseCorrupt) => "the database is corrupt".into(),
        Some(ErrorCode::ReadOnly) => "the file is read-only".into(),
        Some(ErrorCode::CannotOpen) => "the file cannot be opened".into(),
        _ => e.to_string(),
    }
}

pub(crate) fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
        r.get(0)
    })
    .optional()
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(|_| ())
}

/// A read-only connection to the same file, for a reader pool.
pub(crate) fn reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(&format!("PRAGMA cache_size = -{READER_CACHE_KIB};"))?;
    Ok(conn)
}
