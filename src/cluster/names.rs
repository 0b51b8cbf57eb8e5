//! Who is where, across hosts (issue 18): names unique in the whole
//! cluster, and the nodes that are alive. Both are expiring keys, so a
//! node that dies without a word loses its names and its place within one
//! time-to-live; a live node refreshes them long before that.
//!
//! ```text
//!  {sb}:name:<folded>  = "<node>/<member>"   SET NX PX ttl: the first claim wins
//!                                            refreshed while the member is here,
//!                                            released (by its owner only) on leave
//!  {sb}:node:<node>    = ms                  SET PX ttl, every ttl / 3
//!  {sb}:nodes          = set of node names   who ever beat: a member whose key
//!                                            has expired is dead (its users leave)
//! ```
//!
//! Compare-and-refresh and compare-and-delete are Lua scripts, so a node
//! never extends or frees a name another node has claimed since.

use std::time::Duration;

use super::conn::{Conn, Error};
use super::resp::Reply;

/// How long a name or a node lives without being refreshed: the longest a
/// dead node's users stay listed (docs: "within 30 s").
pub const TTL: Duration = Duration::from_secs(30);

const REFRESH: &str = "\
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

const RELEASE: &str = "\
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

fn name_key(folded: &str) -> String {
    format!("{{sb}}:name:{folded}")
}

fn node_key(node: &str) -> String {
    format!("{{sb}}:node:{node}")
}

const NODES: &str = "{sb}:nodes";

fn millis(ttl: Duration) -> String {
    ttl.as_millis().max(1).to_string()
}

/// Claim `folded` for `owner`: true if it was free (or already ours).
pub fn claim(conn: &mut Conn, folded: &str, owner: &str, ttl: Duration) -> Result<bool, Error> {
    let key = name_key(folded);
    match conn.call(&["SET", &key, owner, "NX", "PX", &millis(ttl)])? {
        Reply::Status(_) => Ok(true),
        _ => Ok(conn.call(&["GET", &key])?.text() == Some(owner)),
    }
}

/// Keep `folded` for `owner` another `ttl`; false if it is not ours any
/// more (it expired and someone else took it).
pub fn refresh(conn: &mut Conn, folded: &str, owner: &str, ttl: Duration) -> Result<bool, Error> {
    let key = name_key(folded);
    let kept = conn.call(&["EVAL", REFRESH, "1", &key, owner, &millis(ttl)])?;
    Ok(kept.int() == Some(1))
}

/// Free `folded` if `owner` still holds it.
pub fn release(conn: &mut Conn, folded: &str, owner: &str) -> Result<bool, Error> {
    let key = name_key(folded);
    Ok(conn.call(&["EVAL", RELEASE, "1", &key, owner])?.int() == Some(1))
}

/// Who holds `folded` now.
pub fn owner(conn: &mut Conn, folded: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .call(&["GET", &name_key(folded)])?
        .text()
        .map(str::to_owned))
}

/// `node` is alive for another `ttl`.
pub fn beat(conn: &mut Conn, node: &str, now_ms: u64, ttl: Duration) -> Result<(), Error> {
    conn.call(&["SADD", NODES, node])?;
    conn.call(&[
        "SET",
        &node_key(node),
        &now_ms.to_string(),
        "PX",
        &millis(ttl),
    ])?;
    Ok(())
}

/// The nodes that beat once and have stopped: their users are gone.
pub fn dead(conn: &mut Conn) -> Result<Vec<String>, Error> {
    let members = conn.call(&["SMEMBERS", NODES])?;
    let mut dead = Vec::new();
    for node in members.items().iter().filter_map(Reply::text) {
        if conn.call(&["EXISTS", &node_key(node)])?.int() == Some(0) {
            dead.push(node.to_owned());
        }
    }
    dead.sort();
    Ok(dead)
}

/// A dead node's departure has been handled: forget it. True for the one
/// node that did it (several may notice at once).
pub fn forget(conn: &mut Conn, node: &str) -> Result<bool, Error> {
    Ok(conn.call(&["SREM", NODES, node])?.int() == Some(1))
}
