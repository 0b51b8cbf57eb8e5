//! Tests of `session.rs`: RFC 6455 vectors, limits and every broken rule.

use super::*;
use crate::protocol::frame::encode_masked;
use crate::protocol::CloseCode;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const LIMITS: Limits = Limits {
    max_frame: 1024,
    max_message: 4096,
};

fn masked(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    encode_masked(fin, op, payload, KEY)
}

/// Feed all of `input`, returning every event (or the first error).
fn feed(session: &mut Session, input: &[u8]) -> Result<Vec<Event>, Error> {
    let mut events = Vec::new();
    let mut at = 0;
    loop {
        let step = session.read(&input[at..])?;
        at += step.consumed;
        match step.event {
            Some(e) => events.push(e),
            None if step.consumed == 0 => return Ok(events),
            None => {}
        }
    }
}

fn text(s: &str) -> Event {
    Event::Message(Message::Text(s.into()))
}

#[test]
fn rfc_5_7_masked_hello_is_a_text_message() {
    let mut s = Session::new(LIMITS);
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(feed(&mut s, &wire), Ok(vec![text("Hello")]));
}

#[test]
fn fragments_are_joined_into_one_message() {
    let mut s = Session::new(LIMITS);
    let mut wire = masked(false, OpCode::Text, b"Hel");
    wire.extend(masked(true, OpCode::Continuation, b"lo"));
    assert_eq!(feed(&mut s, &wire), Ok(vec![text("Hello")]));
}

#[test]
fn a_ping_in_the_middle_of_a_message_is_answered_first() {
    let mut s = Session::new(LIMITS);
    let mut wire = masked(false, OpCode::Text, b"Hel");
    wire.extend(masked(true, OpCode::Ping, b"hb"));
    wire.extend(masked(true, OpCode::Continuation, b"lo"));
    assert_eq!(
        feed(&mut s, &wire),
        Ok(vec![Event::Ping(b"hb".to_vec()), text("Hello")])
    );
}

#[test]
fn input_one_byte_at_a_time_gives_the_same_events() {
    let mut wire = masked(false, OpCode::Binary, &[1, 2, 3]);
    wire.extend(masked(true, OpCode::Pong, b"x"));
    wire.extend(masked(true, OpCode::Continuation, &[4]));
    let mut s = Session::new(LIMITS);
    let mut events = Vec::new();
    // As the connection does: unconsumed bytes stay, new ones are appended.
    let mut buffered = Vec::new();
    for b in &wire {
        buffered.push(*b);
        let step = s.read(&buffered).unwrap();
        buffered.drain(..step.consumed);
        events.extend(step.event);
    }
    assert!(buffered.is_empty());
    assert_eq!(
        events,
        vec![
            Event::Pong(b"x".to_vec()),
            Event::Message(Message::Binary(vec![1, 2, 3, 4]))
        ]
    );
}

#[test]
fn rejects_unmasked_client_frame() {
    let mut s = Session::new(LIMITS);
    let err = feed(&mut s, &crate::protocol::frame::encode(OpCode::Text, b"hi")).unwrap_err();
    assert_eq!(
        (err.clone(), err.close_code()),
        (Error::UnmaskedFrame, CloseCode::ProtocolError)
    );
}

#[test]
fn rejects_continuation_without_a_message() {
    let mut s = Session::new(LIMITS);
    assert_eq!(
        feed(&mut s, &masked(true, OpCode::Continuation, b"x")),
        Err(Error::UnexpectedContinuation)
    );
}

#[test]
fn rejects_a_new_message_inside_a_fragmented_one() {
    let mut s = Session::new(LIMITS);
    let mut wire = masked(false, OpCode::Text, b"a");
    wire.extend(masked(true, OpCode::Text, b"b"));
    assert_eq!(feed(&mut s, &wire), Err(Error::ExpectedContinuation));
}

#[test]
fn invalid_utf8_fails_at_the_first_bad_byte_not_at_the_end() {
    // "κόσμε" then 0xED 0xA0 0x80 (a surrogate): the frame is not final
    // and only half of it has arrived, yet the error is immediate.
    let mut s = Session::new(LIMITS);
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend([0xed, 0xa0, 0x80]);
    payload.extend(b"tail that never arrives");
    let wire = masked(false, OpCode::Text, &payload);
    let cut = wire.len() - 20;
    assert_eq!(feed(&mut s, &wire[..cut]), Err(Error::InvalidUtf8));
}

#[test]
fn invalid_utf8_in_a_frame_read_at_once_fails() {
    let mut s = Session::new(LIMITS);
    let wire = masked(true, OpCode::Text, &[b'o', b'k', 0xc0, 0xaf]);
    assert_eq!(feed(&mut s, &wire), Err(Error::InvalidUtf8));
}

#[test]
fn half_a_character_then_an_empty_final_fragment_is_invalid() {
    let euro = "€".as_bytes(); // E2 82 AC
    let mut s = Session::new(LIMITS);
    let mut wire = masked(false, OpCode::Text, &euro[..2]);
    wire.extend(masked(true, OpCode::Continuation, b""));
    assert_eq!(feed(&mut s, &wire), Err(Error::InvalidUtf8));
}

#[test]
fn a_character_split_across_fragments_is_valid() {
    let euro = "€".as_bytes(); // E2 82 AC
    let mut s = Session::new(LIMITS);
    let mut wire = masked(false, OpCode::Text, &euro[..1]);
    wire.extend(masked(false, OpCode::Continuation, &euro[1..2]));
    wire.extend(masked(true, OpCode::Continuation, &euro[2..]));
    assert_eq!(feed(&mut s, &wire), Ok(vec![text("€")]));
}

#[test]
fn a_character_cut_off_by_the_end_of_the_message_is_invalid() {
    let mut s = Session::new(LIMITS);
    let err = feed(&mut s, &masked(true, OpCode::Text, &[b'a', 0xe2, 0x82])).unwrap_err();
    assert_eq!(
        (err.clone(), err.close_code()),
        (Error::InvalidUtf8, CloseCode::InvalidPayload)
    );
}

#[test]
fn frame_over_the_limit_fails_before_any_payload_is_stored() {
    let mut s = Session::new(LIMITS);
    // Only the header arrives: it claims 1025 bytes.
    let wire = masked(true, OpCode::Binary, &[0; 1025]);
    let err = feed(&mut s, &wire[..8]).unwrap_err();
    assert_eq!(
        err,
        Error::FrameTooBig {
            size: 1025,
            max: 1024
        }
    );
    assert_eq!(err.close_code(), CloseCode::MessageTooBig);
}

#[test]
fn a_huge_claimed_length_is_refused_without_allocating() {
    let mut s = Session::new(LIMITS);
    let wire = [
        0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
    ];
    assert!(matches!(
        feed(&mut s, &wire),
        Err(Error::FrameTooBig { .. })
    ));
}

#[test]
fn message_over_the_limit_across_fragments_fails() {
    let mut s = Session::new(LIMITS);
    let mut first = masked(false, OpCode::Binary, &[0; 1000]);
    for _ in 0..4 {
        first.extend(masked(false, OpCode::Continuation, &[0; 1000]));
    }
    assert!(matches!(
        feed(&mut s, &first),
        Err(Error::MessageTooBig {
            size: 5000,
            max: 4096
        })
    ));
}

#[test]
fn close_frames_are_parsed_and_checked() {
    let mut s = Session::new(LIMITS);
    let wire = masked(true, OpCode::Close, &[0x03, 0xe8]);
    assert_eq!(
        feed(&mut s, &wire),
        Ok(vec![Event::Close(Some((
            CloseCode::NormalClosure,
            String::new()
        )))])
    );
    let mut s = Session::new(LIMITS);
    assert_eq!(
        feed(&mut s, &masked(true, OpCode::Close, &[0x03])),
        Err(Error::InvalidClosePayload)
    );
    let mut s = Session::new(LIMITS);
    assert_eq!(
        feed(&mut s, &masked(true, OpCode::Close, &[0x03, 0xed])),
        Err(Error::InvalidCloseCode(1005))
    );
}

#[test]
fn empty_frames_complete_at_once() {
    let mut s = Session::new(LIMITS);
    let mut wire = masked(true, OpCode::Text, b"");
    wire.extend(masked(true, OpCode::Ping, b""));
    assert_eq!(feed(&mut s, &wire), Ok(vec![text(""), Event::Ping(vec![])]));
}

#[test]
fn a_partial_message_is_counted_and_can_be_let_go_while_closing() {
    let mut session = Session::new(LIMITS);
    assert_eq!(session.buffered(), 0);
    let first = masked(false, OpCode::Text, &[b'a'; 1000]);
    assert!(feed(&mut session, &first).unwrap().is_empty());
    assert!(session.buffered() >= 1000, "the fragment is held");
    session.discard_data();
    assert_eq!(session.buffered(), 0, "let go");
    // The message goes on (not stored), and the peer's Close is still found.
    let mut rest = masked(true, OpCode::Continuation, &[0xff; 10]);
    rest.extend(masked(true, OpCode::Close, &[0x03, 0xe8]));
    let events = feed(&mut session, &rest).unwrap();
    assert_eq!(session.buffered(), 0);
    assert!(matches!(events.last(), Some(Event::Close(_))), "{events:?}");
}
