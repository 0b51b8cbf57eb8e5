//! The one place a chat message gets its global `seq` across hosts: a Lua
//! script that Redis runs atomically, one message at a time (issue 18).
//!
//! ```text
//!  EVALSHA publish 3 {sb}:seq {sb}:log {sb}:epoch  payload maxlen channel epoch deadline
//!    {sb}:epoch is not ours: error EPOCH       redis lost its data: refuse
//!    TIME is past the deadline: error LATE     its sender was told `unavailable`
//!    seq = INCR {sb}:seq                       the one counter
//!    XADD {sb}:log MAXLEN ~ maxlen seq-1 m payload   kept for back-fill and history
//!    PUBLISH channel "seq payload"             every node, in seq order
//!    return seq
//! ```
//!
//! The deadline is the node's clock plus the time it waits for the reply:
//! a script that a paused or stalled Redis runs later than that (its
//! sender was already told `unavailable`) numbers nothing, so a refused
//! message is never delivered after all. (The hosts' clocks must agree to
//! well under that wait: NTP; see docs/SCALING.md.)
//!
//! Because Redis runs scripts one after another, the counter, the stream
//! and the publication agree: pub/sub hands messages to every subscriber
//! in `seq` order, and the stream holds them in the same order under ids
//! `seq-1`, so a node that missed some reads exactly those back
//! (`XRANGE {sb}:log from-1 to-1`). The keys share the hash tag `{sb}`, so
//! they live in one slot should Redis Cluster ever hold them.

use super::conn::{Conn, Error};
use super::resp::Reply;

/// The script's text.
pub const PUBLISH: &str = "\
if redis.call('GET', KEYS[3]) ~= ARGV[4] then
  return redis.error_reply('EPOCH this history is gone')
end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[5]) then
  return redis.error_reply('LATE its sender was told it is unavailable')
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-1', 'm', ARGV[1])
redis.call('PUBLISH', ARGV[3], seq .. ' ' .. ARGV[1])
return seq";

/// The keys and the channel.
pub const SEQ_KEY: &str = "{sb}:seq";
pub const LOG_KEY: &str = "{sb}:log";
/// The epoch of the history in Redis: set once (`SET NX`); gone only if
/// Redis lost its data, and then every message is refused until the nodes
/// restart into a new epoch.
pub const EPOCH_KEY: &str = "{sb}:epoch";
pub const CHANNEL: &str = "sb:messages";

/// A pushed message: `"seq payload"` split, or None if it is not one.
pub fn split_pushed(data: &[u8]) -> Option<(u64, &[u8])> {
    let space = data.iter().position(|&b| b == b' ')?;
    let seq = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
    Some((seq, &data[space + 1..]))
}

/// The entries of an `XRANGE` reply of the log: (seq, payload), skipping
/// any that is not ours.
pub fn entries(range: &Reply) -> Vec<(u64, Vec<u8>)> {
    let mut got = Vec::new();
    for entry in range.items() {
        let seq = entry
            .items()
            .first()
            .and_then(Reply::text)
            .and_then(|id| id.strip_suffix("-1")?.parse().ok());
        let payload = match entry.items().get(1).map(Reply::items) {
            Some([_, Reply::Bulk(Some(p))]) => Some(p.clone()),
            _ => None,
        };
        if let (Some(seq), Some(payload)) = (seq, payload) {
            got.push((seq, payload));
        }
    }
    got
}

/// The last seq Redis gave out (0 before the first). `Ok(None)`: Redis
/// answered with an error (loading, busy) and cannot say now.
pub fn last_seq(conn: &mut Conn) -> Result<Option<u64>, Error> {
    Ok(match conn.call(&["GET", SEQ_KEY])? {
        Reply::Bulk(None) => Some(0),
        reply @ Reply::Bulk(Some(_)) => reply.int().map(|n| n.max(0) as u64),
        _ => None,
    })
}

/// The stream id of a seq.
pub fn entry_id(seq: u64) -> String {
    format!("{seq}-1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_messages_split_into_seq_and_payload() {
        assert_eq!(split_pushed(b"42 {\"a\":1}"), Some((42, &b"{\"a\":1}"[..])));
        assert_eq!(split_pushed(b"42"), None);
        assert_eq!(split_pushed(b"x {}"), None);
        assert_eq!(split_pushed(b"-1 {}"), None);
        assert_eq!(entry_id(7), "7-1");
    }
}
