//! `SqliteAccounts`: accounts, sessions, sanctions and the moderation log
//! in the same file as the history ([`crate::auth::accounts::Accounts`]).
//!
//! ```text
//!  worker (no lock held) ── take a pooled connection ── one statement or
//!                           transaction ── give it back
//! ```
//!
//! Connections come from a small pool (a channel), so no lock is held
//! across a statement. With `--db :memory:` the pool is one in-memory
//! database (accounts then last until the server stops). The CLI
//! (`switchboard user ...`) writes the same tables while the server runs
//! and counts its changes in `meta.accounts_changed`
//! ([`Accounts::generation`]), which the server watches.

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use crate::auth::accounts::{
    Account, Accounts, Action, Active, Result, Sanction, StoreError, Target,
};
use crate::auth::Role;

/// Connections kept at most (each is one descriptor).
const POOL: usize = 4;
/// How long a caller waits for a free connection.
const WAIT: Duration = Duration::from_secs(5);

/// Accounts in a SQLite database.
pub struct SqliteAccounts {
    /// `None`: the one in-memory database in the pool.
    path: Option<PathBuf>,
    pool: (Sender<Connection>, Receiver<Connection>),
    opened: AtomicUsize,
}

fn fail(e: rusqlite::Error) -> StoreError {
    StoreError(format!("accounts: {e}"))
}

/// A read-write connection to `path` (WAL and the schema already set by
/// whoever opened the file first).
pub(crate) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(WAIT)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA cache_size = -256;")?;
    Ok(conn)
}

impl SqliteAccounts {
    /// Accounts in the file at `path`, whose schema is current.
    pub fn open(path: &Path) -> SqliteAccounts {
        SqliteAccounts {
            path: Some(path.to_owned()),
            pool: crossbeam_channel::bounded(POOL),
            opened: AtomicUsize::new(0),
        }
    }

    /// Accounts in memory only (`--db :memory:`).
    pub fn in_memory() -> std::result::Result<SqliteAccounts, String> {
        let mut conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(|e| e.to_string())?;
        super::schema::migrate(&mut conn)?;
        let pool = crossbeam_channel::bounded(1);
        let _ = pool.0.send(conn);
        Ok(SqliteAccounts {
            path: None,
            pool,
            opened: AtomicUsize::new(1),
        })
    }

    /// Count a change made outside the server (the CLI), so a running
    /// server reloads what it caches.
    pub fn changed(&self) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('accounts_changed', '1')
                 ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                [],
            )
            .map(|_| ())
        })
    }

    /// Run `f` on a pooled connection, with no lock held.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = match (self.pool.1.try_recv(), &self.path) {
            (Ok(conn), _) => conn,
            (Err(_), Some(path)) if self.opened.fetch_add(1, SeqCst) < POOL => connect(path)
                .map_err(|e| {
                    self.opened.fetch_sub(1, SeqCst);
                    fail(e)
                })?,
            (Err(_), path) => {
                if path.is_some() {
                    self.opened.fetch_sub(1, SeqCst);
                }
                self.pool
                    .1
                    .recv_timeout(WAIT)
                    .map_err(|_| StoreError("accounts: the database is busy".into()))?
            }
        };
        let result = f(&mut conn);
        let _ = self.pool.0.try_send(conn);
        result.map_err(fail)
    }
}

fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn role_of(text: &str) -> Role {
    Role::parse(text).unwrap_or(Role::User)
}

fn as_ms(v: Option<i64>) -> Option<u64> {
    v.map(|v| v.max(0) as u64)
}

impl Accounts for SqliteAccounts {
    fn all(&self) -> Result<Vec<(String, Role)>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT name, role FROM accounts ORDER BY folded")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, role_of(&r.get::<_, String>(1)?)))
            })?;
            rows.collect()
        })
    }

    fn find(&self, name: &str) -> Result<Option<Account>> {
        self.with(|c| {
            c.query_row(
                "SELECT name, hash, role, topics FROM accounts WHERE folded = ?1",
                params![fold(name)],
                |r| {
                    let topics: String = r.get(3)?;
                    Ok(Account {
                        name: r.get(0)?,
                        hash: r.get(1)?,
                        role: role_of(&r.get::<_, String>(2)?),
                        topics: serde_json::from_str(&topics).unwrap_or_default(),
                    })
                },
            )
            .optional()
        })
    }

    fn create(&self, name: &str, hash: Option<&str>, role: Role, now: u64) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "INSERT INTO accounts (name, folded, hash, role, created) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (folded) DO NOTHING",
                params![name, fold(name), hash, role.as_str(), now as i64],
            )?;
            Ok(n == 1)
        })
    }

    fn set_hash(&self, name: &str, hash: &str) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE accounts SET hash = ?2 WHERE folded = ?1",
                params![fold(name), hash],
            )?;
            Ok(n == 1)
        })
    }

    fn set_role(&self, name: &str, role: Role) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE accounts SET role = ?2 WHERE folded = ?1",
                params![fold(name), role.as_str()],
            )?;
            Ok(n == 1)
        })
    }

    fn delete(&self, name: &str) -> Result<bool> {
        let key = fold(name);
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM accounts WHERE folded = ?1", params![key])?;
            tx.execute(
                "DELETE FROM private_messages WHERE owner = ?1",
                params![key],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn set_topics(&self, name: &str, topics: &[String]) -> Result<()> {
        let json = serde_json::to_string(topics).unwrap_or_else(|_| "[]".into());
        self.with(|c| {
            c.execute(
                "UPDATE accounts SET topics = ?2 WHERE folded = ?1",
                params![fold(name), json],
            )
            .map(|_| ())
        })
    }

    fn add_session(&self, name: &str, stored: &str, expires: u64, max: usize) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO sessions (token, account, expires)
                 SELECT ?2, id, ?3 FROM accounts WHERE folded = ?1",
                params![fold(name), stored, expires as i64],
            )?;
            tx.execute(
                "DELETE FROM sessions WHERE account = (SELECT id FROM accounts WHERE folded = ?1)
                 AND token NOT IN (SELECT token FROM sessions WHERE account =
                     (SELECT id FROM accounts WHERE folded = ?1) ORDER BY expires DESC LIMIT ?2)",
                params![fold(name), max as i64],
            )?;
            tx.commit()
        })
    }

    fn purge_sessions(&self, now: u64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM sessions WHERE expires <= ?1",
                params![now as i64],
            )
            .map(|_| ())
        })
    }

    fn session(&self, stored: &str, now: u64) -> Result<Option<String>> {
        self.with(|c| {
            let found: Option<(String, i64)> = c
                .query_row(
                    "SELECT a.name, s.expires FROM sessions s JOIN accounts a ON a.id = s.account
                     WHERE s.token = ?1",
                    params![stored],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match found {
                Some((name, expires)) if expires as u64 > now => Ok(Some(name)),
                Some(_) => {
                    c.execute("DELETE FROM sessions WHERE token = ?1", params![stored])?;
                    Ok(None)
                }
                None => Ok(None),
            }
        })
    }

    fn revoke_session(&self, stored: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM sessions WHERE token = ?1", params![stored])
                .map(|_| ())
        })
    }

    fn revoke_all(&self, name: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM sessions WHERE account IN (SELECT id FROM accounts WHERE folded = ?1)",
                params![fold(name)],
            )
            .map(|_| ())
        })
    }

    fn sanction(&self, kind: Sanction, target: &Target, now: u64) -> Result<Option<Active>> {
        self.with(|c| {
            c.query_row(
                "SELECT until, reason FROM sanctions
                 WHERE kind = ?1 AND target = ?2 AND (until IS NULL OR until > ?3)",
                params![kind.as_str(), target.key(), now as i64],
                |r| {
                    Ok(Active {
                        until: as_ms(r.get(0)?),
                        reason: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    fn set_sanction(&self, kind: Sanction, target: &Target, active: &Active) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO sanctions (kind, target, until, reason) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (kind, target) DO UPDATE SET until = excluded.until, reason = excluded.reason",
                params![
                    kind.as_str(),
                    target.key(),
                    active.until.map(|u| u as i64),
                    active.reason
                ],
            )
            .map(|_| ())
        })
    }

    fn lift(&self, kind: Sanction, target: &Target) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "DELETE FROM sanctions WHERE kind = ?1 AND target = ?2",
                params![kind.as_str(), target.key()],
            )?;
            Ok(n == 1)
        })
    }

    fn address_bans(&self, now: u64) -> Result<Vec<(String, Active)>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT substr(target, 9), until, reason FROM sanctions
                 WHERE kind = 'ban' AND target LIKE 'address:%' AND (until IS NULL OR until > ?1)",
            )?;
            let rows = stmt.query_map(params![now as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Active {
                        until: as_ms(r.get(1)?),
                        reason: r.get(2)?,
                    },
                ))
            })?;
            rows.collect()
        })
    }

    fn record(&self, a: &Action) -> Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO moderation (ts, by, action, target, reason, until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.ts as i64,
                    a.by,
                    a.action,
                    a.target,
                    a.reason,
                    a.until.map(|u| u as i64)
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn actions(&self, before: Option<i64>, limit: usize) -> Result<Vec<Action>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, ts, by, action, target, reason, until FROM moderation
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![before.unwrap_or(i64::MAX), limit as i64], |r| {
                Ok(Action {
                    id: r.get(0)?,
                    ts: r.get::<_, i64>(1)?.max(0) as u64,
                    by: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    reason: r.get(5)?,
                    until: as_ms(r.get(6)?),
                })
            })?;
            rows.collect()
        })
    }

    fn generation(&self) -> Result<i64> {
        self.with(|c| {
            let value = super::meta(c, "accounts_changed")?;
            Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
    }
}
