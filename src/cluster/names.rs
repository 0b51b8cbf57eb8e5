//! Who is where, across hosts (issue 18): names unique in the whole
//! cluster, and the nodes that are alive. Both are expiring keys, so a
//! node that dies without a word loses its names and its place within one
//! time-to-live; a live node refreshes them long before that.
//!
//! ```text
//!  {sb}:name:<folded>  = "<node>"            SET NX PX ttl: the first claim wins
//!                                            kept (claimed again) every beat while
//!                                            the member is here, released (by its
//!                                            owner only) on leave
//!  {sb}:node:<node>    = its member list      SET PX ttl, every beat (ttl / 5)
//!  {sb}:nodes          = set of node names   who ever beat: a member whose key
//!                                            has expired is dead (its users leave)
//! ```
//!
//! Keep-or-claim and compare-and-delete are Lua scripts, so a node never
//! extends or frees a name another node has claimed since.

use std::time::Duration;

use super::conn::{Conn, Error};
use super::resp::Reply;

/// How long a name or a node lives without being refreshed: the longest a
/// dead node's users stay listed (docs/SCALING.md: "within 15 s", plus one
/// beat of the node that notices).
pub const TTL: Duration = Duration::from_secs(15);

const KEEP: &str = "\
local v = redis.call('GET', KEYS[1])
if not v or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
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

/// An error reply as an error (the connection itself is fine).
fn refused(e: String) -> Error {
    Error::Io(std::io::Error::other(format!("redis refused: {e}")))
}

fn millis(ttl: Duration) -> String {
    ttl.as_millis().max(1).to_string()
}

/// Claim `folded` for `owner`: true if it was free (or already ours).
pub fn claim(conn: &mut Conn, folded: &str, owner: &str, ttl: Duration) -> Result<bool, Error> {
    let key = name_key(folded);
    match conn.call(&["SET", &key, owner, "NX", "PX", &millis(ttl)])? {
        Reply::Status(_) => Ok(true),
        Reply::Error(e) => Err(refused(e)),
        _ => match conn.call(&["GET", &key])? {
            Reply::Error(e) => Err(refused(e)),
            holder => Ok(holder.text() == Some(owner)),
        },
    }
}

/// Keep each of `folded` for `owner` another `ttl` (claiming it again if
/// it expired meanwhile), in one round trip; false for each that another
/// node holds now.
pub fn keep_all(
    conn: &mut Conn,
    folded: impl Iterator<Item = String>,
    owner: &str,
    ttl: Duration,
) -> Result<Vec<bool>, Error> {
    let ttl = millis(ttl);
    // By its SHA: Redis then neither receives nor hashes the text per name.
    let sha = conn.call(&["SCRIPT", "LOAD", KEEP])?;
    let sha = sha.text().unwrap_or_default().to_owned();
    let mut sent = 0;
    for name in folded {
        conn.send(&["EVALSHA", &sha, "1", &name_key(&name), owner, &ttl])?;
        sent += 1;
    }
    // Only a clear 0 says another node holds it; an error reply (out of
    // memory, say) says nothing, and nobody is renamed for it.
    (0..sent)
        .map(|_| Ok(conn.read()?.int() != Some(0)))
        .collect()
}

/// Free `folded` if `owner` still holds it.
pub fn release(conn: &mut Conn, folded: &str, owner: &str) -> Result<bool, Error> {
    Ok(conn.call(&release_command(folded, owner))?.int() == Some(1))
}

/// The command of [`release`], to send in a pipeline.
pub fn release_command(folded: &str, owner: &str) -> [String; 5] {
    let (script, key) = (RELEASE.to_owned(), name_key(folded));
    ["EVAL".into(), script, "1".into(), key, owner.to_owned()]
}

/// Who holds `folded` now.
pub fn owner(conn: &mut Conn, folded: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .call(&["GET", &name_key(folded)])?
        .text()
        .map(str::to_owned))
}

/// `node` is alive for another `ttl`; `list` is what it shows the others.
pub fn beat(conn: &mut Conn, node: &str, list: &str, ttl: Duration) -> Result<(), Error> {
    conn.call(&["SADD", NODES, node])?;
    conn.call(&["SET", &node_key(node), list, "PX", &millis(ttl)])?;
    Ok(())
}

/// The nodes alive, with their lists, and the nodes that beat once and
/// have stopped (their users are gone).
pub type Nodes = (Vec<(String, String)>, Vec<String>);

pub fn nodes(conn: &mut Conn) -> Result<Nodes, Error> {
    let members = conn.call(&["SMEMBERS", NODES])?;
    let (mut alive, mut dead) = (Vec::new(), Vec::new());
    for node in members.items().iter().filter_map(Reply::text) {
        match conn.call(&["GET", &node_key(node)])?.text() {
            Some(list) => alive.push((node.to_owned(), list.to_owned())),
            None => dead.push(node.to_owned()),
        }
    }
    dead.sort();
    Ok((alive, dead))
}

/// `node` stops: its key goes (the others see it leave at their next beat).
pub fn goodbye(conn: &mut Conn, node: &str) -> Result<(), Error> {
    conn.call(&["DEL", &node_key(node)])?;
    Ok(())
}

/// A dead node's departure has been handled: forget it. True for the one
/// node that did it (several may notice at once).
pub fn forget(conn: &mut Conn, node: &str) -> Result<bool, Error> {
    Ok(conn.call(&["SREM", NODES, node])?.int() == Some(1))
}
