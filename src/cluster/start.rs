//! Joining the cluster at start (issue 18): the epoch of the history kept
//! in Redis, and that history read back into this node's memory, before
//! anything listens. Redis unreachable here stops the start with one line.
//!
//! ```text
//!  SET {sb}:epoch <new> NX; GET {sb}:epoch    the first node names it; the
//!                                             others serve the same one
//!  GET {sb}:seq; XRANGE {sb}:log (pages)      the newest READ_BACK messages,
//!                                             kept as history, shown to nobody
//! ```

use std::time::Duration;

use crate::chat::Chat;

use super::conn::{Address, Conn, Error};
use super::payload::decode;
use super::resp::Reply;
use super::script::{entries, entry_id, last_seq, EPOCH_KEY, LOG_KEY};

/// Entries fetched per `XRANGE`.
const PAGE: u64 = 1000;

/// The epoch every node serves: this one's `candidate` if it is the first.
pub fn epoch(address: &Address, candidate: &str) -> Result<String, Error> {
    let mut conn = Conn::open(address, Duration::from_secs(5))?;
    conn.call(&["SET", EPOCH_KEY, candidate, "NX"])?;
    match conn.call(&["GET", EPOCH_KEY])? {
        Reply::Bulk(Some(e)) => Ok(String::from_utf8_lossy(&e).into_owned()),
        other => Err(Error::Io(std::io::Error::other(format!(
            "no epoch in redis: {other:?}"
        )))),
    }
}

/// Read the newest `count` messages of the stream back into `chat`'s
/// history; the last seq given out is returned (the bus goes on after it).
pub fn read_back(address: &Address, chat: &Chat, count: u64) -> Result<u64, Error> {
    let mut conn = Conn::open(address, Duration::from_secs(5))?;
    let last = last_seq(&mut conn)?
        .ok_or_else(|| Error::Io(std::io::Error::other("redis cannot say its last seq now")))?;
    let mut from = last.saturating_sub(count) + 1;
    let mut kept = 0;
    while from <= last {
        let to = (from + PAGE - 1).min(last);
        let page = conn.call(&["XRANGE", LOG_KEY, &entry_id(from), &entry_id(to)])?;
        for (seq, payload) in entries(&page) {
            if let Some((_, _, m)) = decode(&payload) {
                chat.remember(seq, &m);
                kept += 1;
            }
        }
        from = to + 1;
    }
    log::info!("cluster: history read back from redis: {kept} messages up to seq {last}");
    Ok(last)
}
