//! Pictures of frames for `--trace`: every field of the header (RFC 6455
//! §5.2), the masking key and the payload both masked and unmasked (§5.3),
//! and what a control frame means (§5.5).
//!
//! ```text
//! FIN=1 RSV=000 opcode=1 (text) MASK=1 len=5 key=37fa213d
//!   masked   7f 9f 4d 51 58
//!   unmasked 48 65 6c 6c 6f  "Hello"
//! ```
//!
//! Only the first bytes of a payload are shown (with its full length), so
//! a trace line is short whatever the message. Nothing here runs unless
//! tracing is on: callers check their flag before calling.

use super::close::CloseCode;
use super::frame::{apply_mask, FrameHeader, OpCode};

/// Payload bytes shown in hex.
pub const SHOW_BYTES: usize = 16;
/// Characters of text shown.
pub const SHOW_CHARS: usize = 60;

/// Bytes as `7f 9f 4d`, at most [`SHOW_BYTES`], with `…` when cut.
pub fn hex(bytes: &[u8]) -> String {
    let mut out: Vec<String> = bytes
        .iter()
        .take(SHOW_BYTES)
        .map(|b| format!("{b:02x}"))
        .collect();
    if bytes.len() > SHOW_BYTES {
        out.push("…".into());
    }
    out.join(" ")
}

/// Text in quotes, cut to [`SHOW_CHARS`] characters (invalid UTF-8 shown
/// as U+FFFD); a message that carries a token or a password is not shown.
pub fn quoted(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    // Sign-in messages carry secrets, which have no place in a log.
    if text.contains("\"token\"") || text.contains("\"password\"") || text.contains("\"old\"") {
        return "[redacted: a message with a token or a password]".into();
    }
    let mut shown: String = text.chars().take(SHOW_CHARS).collect();
    if text.chars().count() > SHOW_CHARS {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// One frame: the header's fields, then the payload. `wire` is the first
/// payload bytes as they crossed the wire (masked, for client frames);
/// it may be shorter than the payload.
pub fn frame(header: &FrameHeader, wire: &[u8]) -> String {
    let op = header.opcode;
    let mut out = format!(
        "FIN={} RSV={:03b} opcode={:x} ({}) MASK={} len={}",
        u8::from(header.fin),
        header.rsv,
        op.as_u8(),
        op.name(),
        u8::from(header.mask.is_some()),
        header.payload_len
    );
    let shown = &wire[..wire.len().min(SHOW_BYTES.max(125))];
    let mut plain = shown.to_vec();
    if let Some(key) = header.mask {
        out.push_str(&format!(" key={}", hex(&key).replace(' ', "")));
        apply_mask(&mut plain, key, 0);
        if !plain.is_empty() {
            out.push_str(&format!("\n    masked   {}", hex(shown)));
            out.push_str(&format!("\n    unmasked {}", hex(&plain)));
        }
    } else if !plain.is_empty() {
        out.push_str(&format!("\n    payload  {}", hex(&plain)));
    }
    match op {
        OpCode::Text | OpCode::Continuation if !plain.is_empty() => {
            out.push_str(&format!("  {}", quoted(&plain)));
        }
        OpCode::Close => out.push_str(&format!("\n    {}", close_meaning(&plain))),
        OpCode::Ping => out.push_str(
            "\n    ping: the other side must answer with a pong carrying the same payload",
        ),
        OpCode::Pong => out.push_str("\n    pong: the answer to a ping (or a heartbeat)"),
        _ => {}
    }
    out
}

/// What a Close payload says: `close 1001 (going away) reason="bye"`.
pub fn close_meaning(payload: &[u8]) -> String {
    match payload {
        [] => "close with no status code (reported as 1005)".into(),
        [_] => "close with a 1-byte payload (invalid)".into(),
        [hi, lo, reason @ ..] => {
            let code = CloseCode::from(u16::from_be_bytes([*hi, *lo]));
            format!(
                "close {} ({}) reason={}",
                code.as_u16(),
                code.name(),
                quoted(reason)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{parse_header, Status};

    fn traced(wire: &[u8]) -> String {
        let Ok(Status::Complete(h, n)) = parse_header(wire) else {
            panic!("header")
        };
        frame(&h, &wire[n..])
    }

    #[test]
    fn rfc_5_7_masked_hello() {
        let t = traced(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        assert!(
            t.starts_with("FIN=1 RSV=000 opcode=1 (text) MASK=1 len=5 key=37fa213d"),
            "{t}"
        );
        assert!(t.contains("masked   7f 9f 4d 51 58"), "{t}");
        assert!(t.contains("unmasked 48 65 6c 6c 6f  \"Hello\""), "{t}");
    }

    #[test]
    fn close_frames_say_their_code() {
        let t = traced(&[0x88, 0x05, 0x03, 0xe9, b'b', b'y', b'e']);
        assert!(t.contains("close 1001 (going away) reason=\"bye\""), "{t}");
    }

    #[test]
    fn long_payloads_are_cut() {
        let big = crate::protocol::frame::encode(OpCode::Text, "x".repeat(1000).as_bytes());
        let t = traced(&big);
        assert!(t.contains("len=1000"));
        assert!(t.contains('…'));
        assert!(t.len() < 400, "{}", t.len());
    }
}
