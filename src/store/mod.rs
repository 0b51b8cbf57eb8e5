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
//!
//! This module never touches a socket and never starts a thread: the
//! server runs the writer loop on a thread of its own.

pub mod backup;
mod history;
mod read;
pub mod schema;
mod writer;

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
    /// The highest seq given out before (none is given out twice).
    pub last_seq: u64,
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
        Err(why) if options.reset => {
            let aside = move_aside(&options.path)?;
            log::warn!(
                "{} is not a usable database ({why}); moved it to {} and started a new history",
                options.path.display(),
                aside.display()
            );
            open_file(options).map_err(|why| Error::Open {
                path: options.path.clone(),
                why,
            })
        }
        Err(why) => Err(Error::Open {
            path: options.path.clone(),
            why,
        }),
        Ok(opened) => Ok(opened),
    }
}

fn open_file(options: &Options) -> Result<Opened, String> {
    create_private(&options.path).map_err(|e| e.to_string())?;
    let mut conn = Connection::open_with_flags(
        &options.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .map_err(describe)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(describe)?;
    // WAL: readers never block the writer, nor it them; NORMAL syncs at
    // checkpoints only (a process crash loses nothing committed; a power
    // loss may lose the last commits); FULL syncs every commit.
    let sync = if options.sync_full { "FULL" } else { "NORMAL" };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{WRITER_CACHE_KIB};"
    ))
    .map_err(describe)?;
    let from = schema::migrate(&mut conn)?;
    if from < schema::VERSION && from > 0 {
        log::info!(
            "{}: schema migrated from version {from} to {}",
            options.path.display(),
            schema::VERSION
        );
    }
    let epoch = match meta(&conn, "epoch").map_err(describe)? {
        Some(epoch) => epoch,
        None => {
            let epoch = crate::chat::ring::new_epoch();
            set_meta(&conn, "epoch", &epoch).map_err(describe)?;
            epoch
        }
    };
    let recorded: u64 = meta(&conn, "last_seq")
        .map_err(describe)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stored: u64 = conn
        .query_row("SELECT coalesce(max(seq), 0) FROM messages", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(describe)? as u64;
    Ok(Opened {
        conn,
        epoch,
        last_seq: recorded.max(stored),
    })
}

/// Create the file with mode 0600 (only its owner reads the history)
/// if it does not exist; SQLite gives its -wal and -shm files the same
/// mode.
fn create_private(path: &Path) -> std::io::Result<()> {
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
