//! Every RFC 6455 rule the server enforces, broken on purpose over a raw
//! socket: each gets its exact close code and a closed TCP connection,
//! and a second connection opened before it keeps working.

mod support;

use support::{start, Raw};
use switchboard::protocol::frame::{encode, encode_masked};
use switchboard::protocol::OpCode;
use switchboard::Server;

/// Open a bystander, break the protocol on another connection, check the
/// close code, then check the bystander still echoes.
fn fails_with(server: &Server, path: &str, bytes: &[u8], code: u16) {
    let mut bystander = Raw::connect(server.local_addr(), "/echo");
    let mut raw = Raw::connect(server.local_addr(), path);
    if path.starts_with("/chat") {
        assert!(raw.read_text().contains(r#""type":"welcome""#));
    }
    raw.send_raw(bytes);
    raw.expect_close(code);
    bystander.assert_echoes("unaffected");
}

fn masked(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    encode_masked(fin, op, payload, [9, 8, 7, 6])
}

#[test]
fn unmasked_client_frame_is_1002() {
    let server = start(|_| {});
    fails_with(&server, "/echo", &encode(OpCode::Text, b"no mask"), 1002);
}

#[test]
fn reserved_bits_are_1002() {
    let server = start(|_| {});
    for rsv in [0x40u8, 0x20, 0x10] {
        let mut f = masked(true, OpCode::Text, b"x");
        f[0] |= rsv;
        fails_with(&server, "/echo", &f, 1002);
    }
}

#[test]
fn reserved_opcodes_are_1002() {
    let server = start(|_| {});
    for op in [0x3u8, 0x7, 0xB, 0xF] {
        let mut f = masked(true, OpCode::Binary, b"x");
        f[0] = 0x80 | op;
        fails_with(&server, "/echo", &f, 1002);
    }
}

#[test]
fn control_frame_over_125_bytes_is_1002() {
    let server = start(|_| {});
    fails_with(
        &server,
        "/echo",
        &masked(true, OpCode::Ping, &[0; 126]),
        1002,
    );
}

#[test]
fn fragmented_control_frame_is_1002() {
    let server = start(|_| {});
    fails_with(&server, "/echo", &masked(false, OpCode::Ping, b"x"), 1002);
}

#[test]
fn continuation_without_a_message_is_1002() {
    let server = start(|_| {});
    fails_with(
        &server,
        "/echo",
        &masked(true, OpCode::Continuation, b"x"),
        1002,
    );
}

#[test]
fn new_message_inside_a_fragmented_one_is_1002() {
    let server = start(|_| {});
    let mut bytes = masked(false, OpCode::Text, b"a");
    bytes.extend(masked(true, OpCode::Binary, b"b"));
    fails_with(&server, "/echo", &bytes, 1002);
}

#[test]
fn length_with_top_bit_set_is_1002() {
    let server = start(|_| {});
    fails_with(
        &server,
        "/echo",
        &[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4],
        1002,
    );
}

#[test]
fn invalid_utf8_is_1007_without_waiting_for_the_final_fragment() {
    let server = start(|_| {});
    // First fragment valid, second broken, and no final fragment ever.
    let mut bytes = masked(false, OpCode::Text, "κόσμε".as_bytes());
    bytes.extend(masked(
        false,
        OpCode::Continuation,
        &[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
        ],
    ));
    fails_with(&server, "/echo", &bytes, 1007);
}

#[test]
fn message_over_the_chat_limit_is_1009() {
    let server = start(|c| c.max_message = 1000);
    fails_with(
        &server,
        "/chat",
        &masked(true, OpCode::Text, &[b'a'; 1001]),
        1009,
    );
}

#[test]
fn fragments_over_the_message_limit_are_1009() {
    let server = start(|c| c.echo_max_message = 1000);
    let mut bytes = masked(false, OpCode::Binary, &[0; 600]);
    bytes.extend(masked(true, OpCode::Continuation, &[0; 600]));
    fails_with(&server, "/echo", &bytes, 1009);
}

#[test]
fn frame_over_the_frame_limit_is_1009_before_its_payload_arrives() {
    let server = start(|c| c.max_frame = 1000);
    let f = masked(true, OpCode::Binary, &[0; 1001]);
    fails_with(&server, "/echo", &f[..8], 1009);
}

#[test]
fn huge_claimed_length_is_1009_without_allocating() {
    let server = start(|_| {});
    fails_with(
        &server,
        "/echo",
        &[
            0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ],
        1009,
    );
}

#[test]
fn one_byte_close_payload_is_1002() {
    let server = start(|_| {});
    fails_with(
        &server,
        "/echo",
        &masked(true, OpCode::Close, &[0x03]),
        1002,
    );
}

#[test]
fn invalid_close_codes_are_1002() {
    let server = start(|_| {});
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        fails_with(
            &server,
            "/echo",
            &masked(true, OpCode::Close, &code.to_be_bytes()),
            1002,
        );
    }
}

#[test]
fn close_reason_that_is_not_utf8_is_1007() {
    let server = start(|_| {});
    fails_with(
        &server,
        "/echo",
        &masked(true, OpCode::Close, &[0x03, 0xe8, 0xff, 0xfe]),
        1007,
    );
}

#[test]
fn valid_close_codes_are_echoed() {
    let server = start(|_| {});
    for code in [1000u16, 1001, 1003, 1007, 1011, 3000, 4999] {
        let mut raw = Raw::connect(server.local_addr(), "/echo");
        raw.send_close(code);
        raw.expect_close(code);
    }
}

#[test]
fn data_after_our_close_is_not_answered() {
    let server = start(|_| {});
    let mut raw = Raw::connect(server.local_addr(), "/echo");
    // Break the rules, then keep talking: only the Close comes back.
    let mut bytes = masked(true, OpCode::Continuation, b"x");
    bytes.extend(masked(true, OpCode::Text, b"ignored"));
    bytes.extend(masked(true, OpCode::Ping, b"ignored"));
    raw.send_raw(&bytes);
    raw.expect_close(1002);
}
