//! The bodies of the fuzz targets (issue 14, "parsers fuzzed"): one
//! function per parser that meets a peer's bytes, taking arbitrary input
//! and checking that the parser neither panics nor breaks its promises.
//!
//! ```text
//!  fuzz/fuzz_targets/NAME.rs ─► switchboard::fuzzing::NAME(data)   cargo +nightly fuzz run NAME
//!  tests/fuzz_corpus.rs      ─► the same, for every file of       cargo test (stable, every CI run)
//!                               fuzz/corpus/NAME/
//! ```
//!
//! They live in the library so that the fuzzer (nightly, libFuzzer) and
//! the replay of its corpus on stable run exactly the same code.

use crate::auth::jwt::{self, Keys};
use crate::chat::wire;
use crate::http::request;
use crate::protocol::frame::{self, Status};
use crate::protocol::{Limits, Session};

/// The frame header parser (RFC 6455 §5.2): a complete header uses 2 to
/// 14 bytes, never more than it was given.
pub fn frame_header(data: &[u8]) {
    if let Ok(Status::Complete(header, len)) = frame::parse_header(data) {
        assert!((2..=14).contains(&len) && len <= data.len(), "{len}");
        assert_eq!(header.mask.is_some(), data[1] & 0x80 != 0);
    }
}

/// A byte stream through the server's message reader, in chunks, with
/// limits drawn from the input: it consumes what it is given, never
/// more, and holds no more than its message limit allows (by capacity:
/// a string that doubles as it grows, the unchecked tail of the last
/// chunk of text, itself at most one frame, and the smallest allocation
/// of each, 8 bytes: with a 1-byte limit the fuzzer found 16 held).
pub fn session(data: &[u8]) {
    let [a, b, c, d, e, rest @ ..] = data else {
        return;
    };
    let max_frame = 1 + u64::from(u16::from_le_bytes([*a, *b]));
    let max_message = max_frame + u64::from(u16::from_le_bytes([*c, *d]));
    let mut session = Session::new(Limits {
        max_frame,
        max_message,
    });
    let chunk = usize::from(*e % 32) + 1;
    let mut buf: Vec<u8> = Vec::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let step = match session.read(&buf) {
                Ok(step) => step,
                Err(_) => return,
            };
            assert!(step.consumed <= buf.len());
            assert!(session.buffered() as u64 <= 3 * max_message + 16);
            buf.drain(..step.consumed);
            if step.consumed == 0 && step.event.is_none() {
                break;
            }
        }
    }
}

/// The HTTP request head parser: a head is found only within the limit
/// and only within what was given.
pub fn http_head(data: &[u8]) {
    let max = 64 + data.first().map_or(0, |b| usize::from(*b) * 16);
    if let Ok(Some((request, len))) = request::parse(data, max) {
        assert!(len <= data.len() && len <= max, "{len} of {max}");
        let _ = (request.path(), request.query(), request.query_param("name"));
    }
}

/// The chat's JSON decoder, with limits drawn from the input.
pub fn chat_json(data: &[u8]) {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let _ = wire::parse_with(text, usize::from(*a) * 8, usize::from(*b % 16));
}

/// Token verification. Mode 0: the input is the token. Mode 1: the input
/// is a claims object, signed with our key, so verification gets past
/// the signature and reads the claims.
pub fn token(data: &[u8]) {
    const KEY: &[u8] = b"a fuzzing key of thirty-two bytes";
    let keys = Keys::new(vec![(String::new(), KEY.to_vec())], Some("chat".into()));
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            let _ = keys.verify(token, 1_000_000);
        }
        return;
    }
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let token = jwt::sign(&header, &claims, KEY);
    if let Ok(verified) = keys.verify(&token, 1_000_000) {
        assert_eq!(Some(verified.name.as_str()), claims["sub"].as_str());
        assert!(verified.expires > 1_000_000);
    }
}

/// Redis's replies (RESP2, `cluster::resp`), as a broker that misbehaves
/// might send them: parsed in one piece and byte by byte alike, never
/// past what was given, and whatever parses encodes back as a command of
/// the same length when it is an array of bulk strings.
pub fn resp(data: &[u8]) {
    use crate::cluster::resp::{self, Reply};
    let whole = resp::parse(data);
    if let Ok(Some((reply, used))) = &whole {
        assert!(*used <= data.len());
        // The same bytes arriving in two reads give the same reply.
        let cut = used / 2;
        if cut > 0 {
            assert!(matches!(resp::parse(&data[..cut]), Ok(None) | Err(_)));
        }
        if let Reply::Array(Some(items)) = reply {
            let args: Option<Vec<&[u8]>> = items
                .iter()
                .map(|i| match i {
                    Reply::Bulk(Some(b)) => Some(b.as_slice()),
                    _ => None,
                })
                .collect();
            if let Some(args) = args {
                let again = resp::encode(&args);
                assert_eq!(resp::parse(&again), Ok(Some((reply.clone(), again.len()))));
            }
        }
    }
}
