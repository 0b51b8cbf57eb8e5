//! The queries a reader connection runs, with no lock held: pages of one
//! stream older or newer than a seq, and full-text search.

use rusqlite::{params, Connection, OptionalExtension};
use std::sync::Arc;

use crate::chat::history::{Kept, Search, Stream};

/// How a stream is named in the `streams` table.
pub fn key(stream: &Stream) -> (&'static str, &str) {
    match stream {
        Stream::Broadcasts => ("broadcasts", ""),
        Stream::Topic(name) => ("topic", name),
    }
}

/// The stream's row id and the highest seq retention deleted from it.
fn stream_row(conn: &Connection, stream: &Stream) -> rusqlite::Result<Option<(i64, u64)>> {
    let (kind, name) = key(stream);
    conn.query_row(
        "SELECT id, trimmed_to FROM streams WHERE kind = ?1 AND name = ?2",
        params![kind, name],
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
    )
    .optional()
}

fn kept(row: &rusqlite::Row) -> rusqlite::Result<Kept> {
    Ok(Kept {
        seq: row.get::<_, i64>(0)? as u64,
        json: Arc::from(row.get::<_, String>(1)?),
    })
}

/// Seqs are stored as SQLite integers (signed 64-bit).
fn sql_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// The newest `limit` messages of `stream` older than `below`, oldest
/// first, and whether older ones exist.
pub fn before(
    conn: &Connection,
    stream: &Stream,
    below: u64,
    limit: usize,
) -> rusqlite::Result<(Vec<Kept>, bool)> {
    let Some((id, _)) = stream_row(conn, stream)? else {
        return Ok((Vec::new(), false));
    };
    let sql =
        "SELECT seq, json FROM messages WHERE stream = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
    let (mut rows, more) = one_page(conn, sql, id, below, limit)?;
    rows.reverse();
    Ok((rows, more))
}

/// Up to `limit` rows of the stream `id` beyond `seq` in the order `sql`
/// gives, and whether there are more (it asks for one more than it keeps).
fn one_page(
    conn: &Connection,
    sql: &str,
    id: i64,
    seq: u64,
    limit: usize,
) -> rusqlite::Result<(Vec<Kept>, bool)> {
    let mut rows = conn
        .prepare_cached(sql)?
        .query_map(params![id, sql_seq(seq), limit as i64 + 1], kept)?
        .collect::<rusqlite::Result<Vec<Kept>>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    Ok((rows, more))
}

/// The oldest `limit` messages of `stream` newer than `above`, whether
/// more follow, and whether none newer than `above` was deleted by
/// retention (the answer is complete).
pub fn after(
    conn: &Connection,
    stream: &Stream,
    above: u64,
    limit: usize,
) -> rusqlite::Result<(Vec<Kept>, bool, bool)> {
    let Some((id, trimmed_to)) = stream_row(conn, stream)? else {
        return Ok((Vec::new(), false, true));
    };
    let sql =
        "SELECT seq, json FROM messages WHERE stream = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3";
    let (rows, more) = one_page(conn, sql, id, above, limit)?;
    Ok((rows, more, trimmed_to <= above))
}

/// The newest `limit` messages of each stream (broadcasts and the most
/// recently used topics), to fill the ring at start-up.
pub fn recent(
    conn: &Connection,
    limit: usize,
    streams: usize,
) -> rusqlite::Result<Vec<(Stream, Vec<Kept>)>> {
    let mut stmt = conn.prepare(
        "SELECT s.kind, s.name FROM streams s
         ORDER BY (SELECT coalesce(max(seq), 0) FROM messages m WHERE m.stream = s.id) DESC
         LIMIT ?1",
    )?;
    let names = stmt
        .query_map(params![streams as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for (kind, name) in names {
        let stream = match kind.as_str() {
            "broadcasts" => Stream::Broadcasts,
            _ => Stream::Topic(name),
        };
        let (rows, _) = before(conn, &stream, u64::MAX, limit)?;
        out.push((stream, rows));
    }
    Ok(out)
}

/// `q` as an FTS5 query: each word quoted (so any text is a valid
/// query), all of them required; a word ending in `*` matches as a
/// prefix.
pub fn fts_query(q: &str) -> String {
    q.split_whitespace()
        .map(|word| {
            let (word, prefix) = match word.strip_suffix('*') {
                Some(stem) if !stem.is_empty() => (stem, "*"),
                _ => (word, ""),
            };
            format!("\"{}\"{prefix}", word.replace('"', "\"\""))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Messages whose text matches `search`, newest first.
pub fn search(conn: &Connection, search: &Search) -> Result<Vec<Kept>, String> {
    let query = fts_query(&search.q);
    if query.is_empty() {
        return Err("q must have at least one word".into());
    }
    let before = sql_seq(search.before.unwrap_or(u64::MAX));
    let limit = search.limit as i64;
    let rows = match &search.stream {
        Some(stream) => {
            let Some((id, _)) = stream_row(conn, stream).map_err(|e| e.to_string())? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn
                .prepare_cached(
                    "SELECT m.seq, m.json FROM messages_fts f JOIN messages m ON m.id = f.rowid
                     WHERE messages_fts MATCH ?1 AND m.stream = ?2 AND m.seq < ?3
                     ORDER BY m.id DESC LIMIT ?4",
                )
                .map_err(|e| e.to_string())?;
            stmt.query_map(params![query, id, before, limit], kept)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Kept>>>())
        }
        None => {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT m.seq, m.json FROM messages_fts f JOIN messages m ON m.id = f.rowid
                     WHERE messages_fts MATCH ?1 AND m.seq < ?2
                     ORDER BY m.id DESC LIMIT ?3",
                )
                .map_err(|e| e.to_string())?;
            stmt.query_map(params![query, before, limit], kept)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Kept>>>())
        }
    };
    rows.map_err(|e| format!("search failed: {e}"))
}

/// The private messages waiting for `owner`, up to `upto`, oldest first.
pub fn waiting(conn: &Connection, owner: &str, upto: u64) -> rusqlite::Result<Vec<Kept>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT seq, json FROM private_messages
         WHERE owner = ?1 AND waiting = 1 AND seq <= ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![owner, upto as i64], kept)?;
    rows.collect()
}

/// `owner`'s conversation with `peer`: the newest `limit` before
/// `before`, oldest first, and whether there are more.
pub fn conversation(
    conn: &Connection,
    owner: &str,
    peer: &str,
    before: Option<u64>,
    limit: usize,
) -> rusqlite::Result<(Vec<Kept>, bool)> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, json FROM private_messages WHERE owner = ?1 AND peer = ?2 AND seq < ?3
         ORDER BY seq DESC LIMIT ?4",
    )?;
    let below = before.map_or(i64::MAX, |b| b as i64);
    let rows = stmt.query_map(params![owner, peer, below, limit as i64 + 1], kept)?;
    let mut found: Vec<Kept> = rows.collect::<rusqlite::Result<_>>()?;
    let more = found.len() > limit;
    found.truncate(limit);
    found.reverse();
    Ok((found, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_quoted_and_a_star_makes_a_prefix() {
        assert_eq!(fts_query("hello  world"), r#""hello" "world""#);
        assert_eq!(fts_query("light* x-ray"), r#""light"* "x-ray""#);
        assert_eq!(fts_query(r#"say "hi" *"#), r#""say" """hi""" "*""#);
        assert_eq!(fts_query("   "), "");
    }
}
