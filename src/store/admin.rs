//! `switchboard user ...`: the accounts of a database file, whether or
//! not a server has it open. A file no server holds is created and
//! migrated here; a file a server holds already has the current schema
//! (the server migrated it), and the server picks up the change within
//! seconds (see [`SqliteAccounts::changed`]).

use rusqlite::{Connection, OpenFlags};
use std::path::Path;

use super::accounts::SqliteAccounts;
use super::schema;

/// The accounts of the file at `path`, ready for the CLI.
pub fn open(path: &Path) -> Result<SqliteAccounts, String> {
    let shown = path.display();
    super::create_private(path).map_err(|e| format!("cannot create {shown}: {e}"))?;
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {shown}: {e}"))?;
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .map_err(|e| format!("cannot open {shown}: {e}"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    match lock.try_lock() {
        // No server has the file: bring its schema up to date.
        Ok(()) => {
            conn.execute_batch("PRAGMA journal_mode = WAL;")
                .map_err(|e| format!("{shown}: {e}"))?;
            schema::migrate(&mut conn).map_err(|e| format!("{shown}: {e}"))?;
        }
        // A server has it: it migrated the file when it opened it.
        Err(_) => {
            let version = schema::version(&conn).map_err(|e| format!("{shown}: {e}"))?;
            if version != schema::VERSION {
                return Err(format!(
                    "{shown} has schema version {version}, this build needs {}; stop the server that uses it first",
                    schema::VERSION
                ));
            }
        }
    }
    Ok(SqliteAccounts::open(path))
}
