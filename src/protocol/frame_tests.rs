//! Tests of `frame.rs`: RFC 6455 vectors, limits and every broken rule.

use super::*;

fn header(buf: &[u8]) -> (FrameHeader, usize) {
    match parse_header(buf).expect("valid header") {
        Status::Complete(h, n) => (h, n),
        Status::Partial => panic!("partial"),
    }
}

/// RFC 6455 §5.7: a single-frame unmasked text message "Hello".
#[test]
fn rfc_5_7_unmasked_hello() {
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let (h, n) = header(&wire);
    assert_eq!(
        (h.fin, h.opcode, h.mask, h.payload_len, n),
        (true, OpCode::Text, None, 5, 2)
    );
    assert_eq!(&wire[n..], b"Hello");
    assert_eq!(encode(OpCode::Text, b"Hello"), wire);
}

/// §5.7: a single-frame masked text message "Hello".
#[test]
fn rfc_5_7_masked_hello() {
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (h, n) = header(&wire);
    assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    assert_eq!(n, 6);
    let mut payload = wire[n..].to_vec();
    apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
    assert_eq!(payload, b"Hello");
    assert_eq!(
        encode_masked(true, OpCode::Text, b"Hello", [0x37, 0xfa, 0x21, 0x3d]),
        wire
    );
}

/// §5.7: a fragmented unmasked text message, "Hel" then "lo".
#[test]
fn rfc_5_7_fragments() {
    let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
    let last = [0x80, 0x02, 0x6c, 0x6f];
    let (h1, _) = header(&first);
    let (h2, _) = header(&last);
    assert_eq!(
        (h1.fin, h1.opcode, h1.payload_len),
        (false, OpCode::Text, 3)
    );
    assert_eq!(
        (h2.fin, h2.opcode, h2.payload_len),
        (true, OpCode::Continuation, 2)
    );
}

/// §5.7: an unmasked Ping with body "Hello", and the masked Pong answer.
#[test]
fn rfc_5_7_ping_and_masked_pong() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let (h, _) = header(&ping);
    assert_eq!((h.opcode, h.payload_len), (OpCode::Ping, 5));
    assert_eq!(encode(OpCode::Ping, b"Hello"), ping);
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        encode_masked(true, OpCode::Pong, b"Hello", [0x37, 0xfa, 0x21, 0x3d]),
        pong
    );
}

/// §5.7: 256 bytes of binary data use the 16-bit length.
#[test]
fn rfc_5_7_256_bytes_binary() {
    let frame = encode(OpCode::Binary, &[0u8; 256]);
    assert_eq!(&frame[..4], &[0x82, 0x7e, 0x01, 0x00]);
    assert_eq!(header(&frame).0.payload_len, 256);
}

/// §5.7: 64 KiB of binary data use the 64-bit length.
#[test]
fn rfc_5_7_64k_binary() {
    let frame = encode(OpCode::Binary, &vec![0u8; 65536]);
    assert_eq!(&frame[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(header(&frame).0.payload_len, 65536);
}

#[test]
fn lengths_use_the_smallest_form_at_every_boundary() {
    for (len, header_len) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
        let frame = encode(OpCode::Binary, &vec![7u8; len]);
        let (h, n) = header(&frame);
        assert_eq!((h.payload_len, n), (len as u64, header_len), "len {len}");
        assert_eq!(frame.len(), header_len + len);
    }
}

#[test]
fn every_strict_prefix_of_a_header_is_partial() {
    let frame = encode_masked(true, OpCode::Binary, &[1u8; 70000], [1, 2, 3, 4]);
    let (_, n) = header(&frame);
    assert_eq!(n, 14);
    for cut in 0..n {
        assert_eq!(
            parse_header(&frame[..cut]),
            Ok(Status::Partial),
            "prefix of {cut} bytes"
        );
    }
}

#[test]
fn rejects_reserved_opcodes() {
    for op in (0x3..=0x7).chain(0xB..=0xF) {
        assert_eq!(
            parse_header(&[0x80 | op, 0x80]),
            Err(Error::ReservedOpCode(op))
        );
    }
}

#[test]
fn rejects_reserved_bits_without_an_extension() {
    for rsv in 1..=7u8 {
        assert_eq!(
            parse_header(&[0x81 | (rsv << 4), 0x80]),
            Err(Error::ReservedBits { rsv })
        );
    }
}

#[test]
fn rejects_control_frames_over_125_bytes() {
    assert_eq!(
        parse_header(&[0x89, 0xfe, 0x00, 0x7e]),
        Err(Error::ControlFrameTooLong { len: 126 })
    );
    assert!(matches!(parse_header(&[0x89, 0xfd]), Ok(Status::Partial)));
}

#[test]
fn rejects_fragmented_control_frames() {
    assert_eq!(
        parse_header(&[0x09, 0x80]),
        Err(Error::FragmentedControlFrame)
    );
}

#[test]
fn rejects_64_bit_length_with_top_bit_set() {
    let wire = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(parse_header(&wire), Err(Error::LengthTopBitSet));
}

#[test]
fn masking_in_pieces_equals_masking_at_once() {
    let key = [0xde, 0xad, 0xbe, 0xef];
    let data: Vec<u8> = (0..100u8).collect();
    let mut whole = data.clone();
    apply_mask(&mut whole, key, 0);
    for split in 0..data.len() {
        let mut pieces = data.clone();
        let (a, b) = pieces.split_at_mut(split);
        apply_mask(a, key, 0);
        apply_mask(b, key, split);
        assert_eq!(pieces, whole, "split at {split}");
    }
}
