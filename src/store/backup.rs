//! `switchboard backup --db PATH --to FILE`: a consistent copy of a live
//! database, made with SQLite's online backup while the server keeps
//! running. The copy is created new, with mode 0600 like the original,
//! and gets an epoch of its own: restoring it replaces the history (the
//! live server may have given out seqs after the copy was made), so
//! clients that resume are told some messages may be missing.
//!
//! To restore: stop the server, put the copy where `--db` points
//! (removing any `-wal`/`-shm` files beside it), start it.

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the copy may wait for the server's writer between tries.
const BUSY_WAIT: Duration = Duration::from_millis(20);
const GIVE_UP: Duration = Duration::from_secs(60);

/// Copy the database at `from` to a new file `to`.
pub fn run(from: &Path, to: &Path) -> Result<(), String> {
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open {}: {e}", from.display()))?;
    super::schema::version(&source).map_err(|e| format!("{}: {e}", from.display()))?;
    create_new_private(to)?;
    let mut target =
        Connection::open(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let backup =
        Backup::new(&source, &mut target).map_err(|e| format!("cannot start the backup: {e}"))?;
    // All pages in one step: in WAL mode the source is read from one
    // snapshot, so the server's writer is not blocked, and the copy is
    // not restarted by its commits (as a copy in small steps would be).
    let started = Instant::now();
    loop {
        match backup.step(-1).map_err(|e| format!("backup failed: {e}"))? {
            StepResult::Done => break,
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                if started.elapsed() > GIVE_UP {
                    return Err("backup failed: the database stayed busy".into());
                }
                std::thread::sleep(BUSY_WAIT);
            }
            _ => std::thread::sleep(BUSY_WAIT),
        }
    }
    drop(backup);
    let epoch = crate::chat::ring::new_epoch();
    super::set_meta(&target, "epoch", &epoch)
        .and_then(|()| super::set_meta(&target, "clean", "1"))
        .and_then(|()| target.execute_batch("PRAGMA journal_mode = DELETE;"))
        .map_err(|e| format!("cannot finish {}: {e}", to.display()))?;
    Ok(())
}

/// Create `path`, which must not exist yet, readable by its owner only.
fn create_new_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| format!("cannot create {}: {e} (choose a new file)", path.display()))
}
