//! Property tests: random and truncated input never panics the frame
//! decoder, the session or the HTTP head parser, and never makes them hold
//! more than their limits allow.

use proptest::prelude::*;
use switchboard::http::request;
use switchboard::protocol::frame::{self, encode_masked, FrameHeader, OpCode, Status};
use switchboard::protocol::session::Event;
use switchboard::protocol::{Error, Limits, Message, Session};

/// Feed `wire` in pieces of `cut` bytes the way a connection does: bytes
/// not yet consumed stay buffered and new ones are appended.
fn feed_in_pieces(session: &mut Session, wire: &[u8], cut: usize) -> Result<Vec<Event>, Error> {
    let mut events = Vec::new();
    let mut buffered = Vec::new();
    for piece in wire.chunks(cut) {
        buffered.extend_from_slice(piece);
        loop {
            let step = session.read(&buffered)?;
            buffered.drain(..step.consumed);
            let progress = step.consumed > 0 || step.event.is_some();
            events.extend(step.event);
            if !progress {
                break;
            }
        }
    }
    Ok(events)
}

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// parse(encode(f)) == f, for every length form and with or without a mask.
    #[test]
    fn encode_then_parse_gives_the_frame_back(
        op in opcode(),
        fin in any::<bool>(),
        len in prop_oneof![0u64..200, 65530u64..65540, 1u64 << 33..1u64 << 34],
        mask in proptest::option::of(any::<[u8; 4]>()),
    ) {
        let control = op.is_control();
        let header = FrameHeader {
            fin: fin || control,
            rsv: 0,
            opcode: op,
            mask,
            payload_len: if control { len % 126 } else { len },
        };
        let mut wire = Vec::new();
        header.encode_into(&mut wire);
        prop_assert_eq!(wire.len(), header.encoded_len());
        prop_assert_eq!(frame::parse_header(&wire), Ok(Status::Complete(header, wire.len())));
    }

    /// Masked payloads survive the round trip through a session.
    #[test]
    fn session_returns_what_was_sent(payload in proptest::collection::vec(any::<u8>(), 0..3000), key in any::<[u8; 4]>(), cut in 1usize..64) {
        let wire = encode_masked(true, OpCode::Binary, &payload, key);
        let mut s = Session::new(Limits { max_frame: 4096, max_message: 4096 });
        let events = feed_in_pieces(&mut s, &wire, cut).unwrap();
        prop_assert_eq!(events, vec![Event::Message(Message::Binary(payload))]);
    }

    /// §8.1: a text message, split into fragments and read in pieces at
    /// random, is delivered exactly when its bytes are UTF-8 (whichever
    /// chunk a bad or cut-off sequence lands in), and is then unchanged.
    #[test]
    fn text_is_accepted_exactly_when_it_is_utf8(
        bytes in prop_oneof![
            any::<String>().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..200),
            // Valid text with one byte cut off its end or changed.
            (any::<String>(), any::<u8>(), any::<bool>()).prop_map(|(t, b, cut)| {
                let mut v = t.into_bytes();
                if cut { v.pop(); } else if let Some(last) = v.last_mut() { *last = b; }
                v
            }),
        ],
        fragments in 1usize..4,
        cut in 1usize..40,
        key in any::<[u8; 4]>(),
    ) {
        let size = bytes.len().div_ceil(fragments).max(1);
        let parts: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(size).collect() };
        let mut wire = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let op = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            wire.extend(encode_masked(i + 1 == parts.len(), op, part, key));
        }
        let mut s = Session::new(Limits { max_frame: 4096, max_message: 4096 });
        let got = feed_in_pieces(&mut s, &wire, cut);
        match String::from_utf8(bytes) {
            Ok(text) => prop_assert_eq!(got, Ok(vec![Event::Message(Message::Text(text))])),
            Err(_) => prop_assert_eq!(got, Err(Error::InvalidUtf8)),
        }
    }

    /// Random bytes, in random pieces: the session returns errors or
    /// events, never panics, and never stores more than its limits.
    #[test]
    fn random_bytes_never_panic_the_session(bytes in proptest::collection::vec(any::<u8>(), 0..4096), cut in 1usize..100) {
        let limits = Limits { max_frame: 512, max_message: 1024 };
        let mut s = Session::new(limits);
        for event in feed_in_pieces(&mut s, &bytes, cut).unwrap_or_default() {
            if let Event::Message(m) = event {
                let len = match m { Message::Text(t) => t.len(), Message::Binary(b) => b.len() };
                prop_assert!(len as u64 <= limits.max_message);
            }
        }
    }

    /// Random bytes never panic the frame header parser.
    #[test]
    fn random_bytes_never_panic_the_header_parser(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
        if let Ok(Status::Complete(h, n)) = frame::parse_header(&bytes) {
            prop_assert!(n <= bytes.len());
            prop_assert_eq!(n, h.encoded_len().max(n));
        }
    }

    /// Random and truncated request heads: an answer or "need more", never a panic.
    #[test]
    fn random_heads_never_panic_the_http_parser(bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
        let cut = cut.min(bytes.len());
        let _ = request::parse(&bytes[..cut], 512);
        let mut head = b"GET /echo HTTP/1.1\r\nHost: x\r\n".to_vec();
        head.extend(&bytes);
        if let Ok(Some((_, len))) = request::parse(&head, 512) {
            prop_assert!(len <= 512);
        }
    }
}
