//! The one place a chat message gets its global `seq` across hosts: a Lua
//! script that Redis runs atomically, one message at a time (issue 18).
//!
//! ```text
//!  EVALSHA publish 2 {sb}:seq {sb}:log  payload maxlen channel
//!    seq = INCR {sb}:seq                       the one counter
//!    XADD {sb}:log MAXLEN ~ maxlen seq-1 m payload   kept for back-fill and history
//!    PUBLISH channel "seq payload"             every node, in seq order
//!    return seq
//! ```
//!
//! Because Redis runs scripts one after another, the counter, the stream
//! and the publication agree: pub/sub hands messages to every subscriber
//! in `seq` order, and the stream holds them in the same order under ids
//! `seq-1`, so a node that missed some reads exactly those back
//! (`XRANGE {sb}:log from-1 to-1`). The keys share the hash tag `{sb}`, so
//! they live in one slot should Redis Cluster ever hold them.

/// The script's text.
pub const PUBLISH: &str = "\
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-1', 'm', ARGV[1])
redis.call('PUBLISH', ARGV[3], seq .. ' ' .. ARGV[1])
return seq";

/// The keys and the channel.
pub const SEQ_KEY: &str = "{sb}:seq";
pub const LOG_KEY: &str = "{sb}:log";
pub const CHANNEL: &str = "sb:messages";

/// A pushed message: `"seq payload"` split, or None if it is not one.
pub fn split_pushed(data: &[u8]) -> Option<(u64, &[u8])> {
    let space = data.iter().position(|&b| b == b' ')?;
    let seq = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
    Some((seq, &data[space + 1..]))
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
