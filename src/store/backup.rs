//! `switchboard backup --db PATH --to FILE`: a consistent copy of a live
//! database, made with SQLite's online backup (it copies pages in steps,
//! and starts over by itself if the server writes meanwhile), so the
//! server keeps running. To restore: stop the server, put the copy where
//! `--db` points (removing any `-wal`/`-shm` files beside it), start it.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// Pages copied per step, and the pause between steps (the server's
/// writer gets the file in between).
const PAGES_PER_STEP: std::os::raw::c_int = 256;
const PAUSE: Duration = Duration::from_millis(10);

/// Copy the database at `from` to a new file `to`.
pub fn run(from: &Path, to: &Path) -> Result<(), String> {
    if to.exists() {
        return Err(format!("{} exists; choose a new file", to.display()));
    }
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open {}: {e}", from.display()))?;
    super::schema::version(&source).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut target =
        Connection::open(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let backup = rusqlite::backup::Backup::new(&source, &mut target)
        .map_err(|e| format!("cannot start the backup: {e}"))?;
    backup
        .run_to_completion(PAGES_PER_STEP, PAUSE, None)
        .map_err(|e| format!("backup failed: {e}"))?;
    drop(backup);
    // Leave one self-contained file: no -wal beside the copy.
    target
        .execute_batch("PRAGMA journal_mode = DELETE;")
        .map_err(|e| format!("cannot finish {}: {e}", to.display()))?;
    Ok(())
}
