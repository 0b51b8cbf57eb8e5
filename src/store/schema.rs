//! The database schema and its numbered migrations. A file records its
//! version in `meta` (`schema`); opening it runs every migration above
//! that version, each in its own transaction, so a file written by any
//! earlier version of Switchboard opens in this one.
//!
//! ```text
//!  meta     (key, value)                       epoch, schema, last_seq, fts_upto
//!  streams  (id, kind, name, trimmed_to)       'broadcasts' | 'topic' + folded name;
//!                                              trimmed_to: the highest seq retention deleted
//!  messages (id, stream, seq, ts, sender, json, text)
//!                                              json: exactly as delivered
//!  messages_fts (text)                         FTS5 over messages.text (version 2), filled
//!                                              in batches up to meta.fts_upto (version 3)
//!  accounts (name, folded, hash, role, topics)  PHC hash or NULL (token-only), saved topics
//!  sessions (token, account, expires)           token: SHA-256 hex of what the client holds
//!  sanctions (kind, target, until, reason)      'mute' | 'ban'; 'account:NAME' | 'address:IP'
//!  moderation (id, ts, by, action, target, ..)  every moderator action
//!  private_messages (owner, peer, seq, json, waiting)
//!                                              one row per account and other party (version 4)
//! ```

use rusqlite::{params, Connection, OptionalExtension};

/// Migration `i` takes a file from version `i` to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: streams and messages.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE streams (
         id INTEGER PRIMARY KEY,
         kind TEXT NOT NULL,
         name TEXT NOT NULL,
         trimmed_to INTEGER NOT NULL DEFAULT 0,
         UNIQUE (kind, name)
     );
     CREATE TABLE messages (
         id INTEGER PRIMARY KEY,
         stream INTEGER NOT NULL REFERENCES streams (id),
         seq INTEGER NOT NULL,
         ts INTEGER NOT NULL,
         sender TEXT NOT NULL,
         json TEXT NOT NULL
     );
     CREATE UNIQUE INDEX messages_by_stream ON messages (stream, seq);",
    // 2: the text of each message, indexed for `search` (FTS5).
    "ALTER TABLE messages ADD COLUMN text TEXT NOT NULL DEFAULT '';
     UPDATE messages SET text = coalesce(json_extract(json, '$.text'), '');
     CREATE INDEX messages_by_seq ON messages (seq);
     CREATE VIRTUAL TABLE messages_fts USING fts5 (text, content = 'messages', content_rowid = 'id');
     INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
     CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
         INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
     END;
     CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
         INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
     END;",
    // 3: the full-text index is filled by the writer in batches (about a
    // second behind), not by a trigger per row: indexing one row per
    // transaction cost more than storing it. `fts_upto` is the highest
    // message id indexed.
    "DROP TRIGGER messages_fts_insert;
     INSERT INTO meta (key, value) SELECT 'fts_upto', coalesce(max(id), 0) FROM messages WHERE true
     ON CONFLICT (key) DO UPDATE SET value = excluded.value;",
    // 4: accounts (issue 13). Names are found by their folded key; a
    // password-less account signs in only with tokens (a JWT's `sub`).
    // Sessions are stored as the SHA-256 of their token. A private message
    // is kept once per (account, other party); `waiting` marks one not yet
    // delivered to its owner.
    "CREATE TABLE accounts (
         id INTEGER PRIMARY KEY,
         name TEXT NOT NULL,
         folded TEXT NOT NULL UNIQUE,
         hash TEXT,
         role TEXT NOT NULL DEFAULT 'user',
         topics TEXT NOT NULL DEFAULT '[]',
         created INTEGER NOT NULL
     );
     CREATE TABLE sessions (
         token TEXT PRIMARY KEY,
         account INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
         expires INTEGER NOT NULL
     );
     CREATE INDEX sessions_by_account ON sessions (account);
     CREATE TABLE sanctions (
         kind TEXT NOT NULL,
         target TEXT NOT NULL,
         until INTEGER,
         reason TEXT NOT NULL,
         PRIMARY KEY (kind, target)
     );
     CREATE TABLE moderation (
         id INTEGER PRIMARY KEY,
         ts INTEGER NOT NULL,
         by TEXT NOT NULL,
         action TEXT NOT NULL,
         target TEXT NOT NULL,
         reason TEXT NOT NULL,
         until INTEGER
     );
     CREATE TABLE private_messages (
         owner TEXT NOT NULL,
         peer TEXT NOT NULL,
         seq INTEGER NOT NULL,
         json TEXT NOT NULL,
         waiting INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (owner, peer, seq)
     ) WITHOUT ROWID;
     CREATE INDEX private_waiting ON private_messages (owner, waiting, seq);",
];

/// The version this build writes.
pub const VERSION: usize = MIGRATIONS.len();

/// The file's schema version (0: a new, empty file).
pub fn version(conn: &Connection) -> rusqlite::Result<usize> {
    let has_meta: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n > 0)?;
    if !has_meta {
        return Ok(0);
    }
    let value: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Bring the file up to [`VERSION`]. A file newer than this build is an
/// error: its schema may mean something this build does not know.
pub fn migrate(conn: &mut Connection) -> Result<usize, String> {
    let from = version(conn).map_err(|e| e.to_string())?;
    if from > VERSION {
        return Err(format!(
            "the file has schema version {from}; this build knows up to {VERSION}"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {} failed: {e}", i + 1))?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![(i + 1).to_string()],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
    }
    Ok(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file at `version`, made by running the migrations up to it.
    fn at_version(version: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        if version >= 1 {
            conn.execute(
                "INSERT INTO streams (id, kind, name) VALUES (1, 'broadcasts', '')",
                [],
            )
            .unwrap();
        }
        if version > 0 {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                params![version.to_string()],
            )
            .unwrap();
        }
        let _ = &mut conn;
        conn
    }

    #[test]
    fn every_earlier_version_migrates_to_the_current_one() {
        for from in 0..VERSION {
            let mut conn = at_version(from);
            // A message as a build at `from` wrote it (from version 2 on,
            // with its text in its own column).
            let json = r#"{"text":"hello lighthouse","seq":7}"#;
            if from == 1 {
                conn.execute(
                    "INSERT INTO messages (stream, seq, ts, sender, json) VALUES (1, 7, 0, 'alice', ?1)",
                    params![json],
                )
                .unwrap();
            }
            if from >= 2 {
                conn.execute(
                    "INSERT INTO messages (stream, seq, ts, sender, json, text)
                     VALUES (1, 7, 0, 'alice', ?1, 'hello lighthouse')",
                    params![json],
                )
                .unwrap();
            }
            assert_eq!(migrate(&mut conn), Ok(from), "from {from}");
            assert_eq!(version(&conn).unwrap(), VERSION);
            let accounts: i64 = conn
                .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
                .unwrap();
            assert_eq!(
                accounts, 0,
                "the accounts tables exist after migrating from {from}"
            );
            // From version 3 on, the writer indexes rows after they are
            // stored (meta.fts_upto), not the migration.
            if (1..3).contains(&from) {
                let found: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'lighthouse'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(
                    found, 1,
                    "the old message is searchable after migrating from {from}"
                );
            }
        }
    }

    #[test]
    fn a_file_from_a_newer_build_is_refused() {
        let mut conn = at_version(VERSION);
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'", [])
            .unwrap();
        assert!(migrate(&mut conn).unwrap_err().contains("99"));
    }
}
