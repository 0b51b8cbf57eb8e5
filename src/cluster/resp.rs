//! RESP2, the Redis serialization protocol, with no I/O: commands are
//! encoded as arrays of bulk strings, and replies are parsed incrementally
//! from whatever bytes have arrived (a reply split across reads waits for
//! the rest; several in one read come out one by one).
//!
//! ```text
//!  command  *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n
//!  replies  +OK\r\n   -ERR msg\r\n   :42\r\n   $2\r\nv1\r\n   $-1\r\n (nil)
//!           *2\r\n$1\r\na\r\n:1\r\n   *-1\r\n (nil array)
//! ```
//!
//! A reply from the network is bounded before anything is allocated for
//! it: a bulk string over [`MAX_BULK`], an array over [`MAX_ITEMS`] or
//! nested deeper than [`MAX_DEPTH`] is an error, never an allocation.

use std::fmt;

/// The largest bulk string accepted (a chat message's JSON is far less).
pub const MAX_BULK: usize = 16 * 1024 * 1024;
/// The most items in one array (a page of a stream is at most a few
/// hundred entries).
pub const MAX_ITEMS: usize = 1 << 20;
/// How deeply arrays may nest (a stream entry is three levels).
pub const MAX_DEPTH: usize = 8;

/// One reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR ...`: the command failed; the connection is fine.
    Error(String),
    Int(i64),
    /// `$n` bytes, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*n` replies, or `*-1` (nil).
    Array(Option<Vec<Reply>>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Status(s) => write!(f, "+{s}"),
            Reply::Error(e) => write!(f, "-{e}"),
            Reply::Int(n) => write!(f, ":{n}"),
            Reply::Bulk(None) | Reply::Array(None) => f.write_str("nil"),
            Reply::Bulk(Some(b)) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Reply::Array(Some(items)) => f.debug_list().entries(items).finish(),
        }
    }
}

impl Reply {
    /// The reply as text (a status or a bulk string).
    pub fn text(&self) -> Option<&str> {
        match self {
            Reply::Status(s) => Some(s),
            Reply::Bulk(Some(b)) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => self.text().and_then(|t| t.parse().ok()),
        }
    }

    /// The items of an array (nil is none).
    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            _ => &[],
        }
    }
}

/// The bytes broke the protocol (the connection cannot be trusted after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// A command as RESP2: an array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let size: usize = args.iter().map(|a| a.as_ref().len() + 16).sum();
    let mut out = Vec::with_capacity(16 + size);
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parse one reply from the front of `buf`: `Ok(Some((reply, used)))`,
/// `Ok(None)` if more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    parse_at(buf, 0, 0)
}

/// The line starting at `at` (without its CRLF) and where the next begins.
fn line(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let Some(rest) = buf.get(at..) else {
        return Ok(None);
    };
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some((&rest[..end], at + end + 2))),
        // A header line is short; a long one without CRLF is not RESP.
        None if rest.len() > 64 * 1024 => Err(ProtocolError("a line without CRLF".into())),
        None => Ok(None),
    }
}

fn number(text: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| ProtocolError(format!("not a number: {:?}", String::from_utf8_lossy(text))))
}

/// A length: -1 (nil) or 0..=max.
fn length(text: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
    match number(text)? {
        -1 => Ok(None),
        n if n >= 0 && (n as u64) <= max as u64 => Ok(Some(n as usize)),
        n => Err(ProtocolError(format!("length {n} out of bounds"))),
    }
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("arrays nested too deeply".into()));
    }
    let Some((head, next)) = line(buf, at)? else {
        return Ok(None);
    };
    let Some((&kind, body)) = head.split_first() else {
        return Err(ProtocolError("an empty line".into()));
    };
    let text = || String::from_utf8_lossy(body).into_owned();
    match kind {
        b'+' => Ok(Some((Reply::Status(text()), next))),
        b'-' => Ok(Some((Reply::Error(text()), next))),
        b':' => Ok(Some((Reply::Int(number(body)?), next))),
        b'$' => match length(body, MAX_BULK)? {
            None => Ok(Some((Reply::Bulk(None), next))),
            Some(n) => {
                if buf.len() < next + n + 2 {
                    return Ok(None);
                }
                if &buf[next + n..next + n + 2] != b"\r\n" {
                    return Err(ProtocolError("a bulk string without its CRLF".into()));
                }
                Ok(Some((
                    Reply::Bulk(Some(buf[next..next + n].to_vec())),
                    next + n + 2,
                )))
            }
        },
        b'*' => match length(body, MAX_ITEMS)? {
            None => Ok(Some((Reply::Array(None), next))),
            Some(n) => {
                // Grown as items arrive: a header cannot make us allocate.
                let mut items = Vec::with_capacity(n.min(64));
                let mut at = next;
                for _ in 0..n {
                    let Some((item, after)) = parse_at(buf, at, depth + 1)? else {
                        return Ok(None);
                    };
                    items.push(item);
                    at = after;
                }
                Ok(Some((Reply::Array(Some(items)), at)))
            }
        },
        other => Err(ProtocolError(format!(
            "unknown reply type {:?}",
            other as char
        ))),
    }
}

#[cfg(test)]
#[path = "resp_tests.rs"]
mod tests;
