//! `/echo` checked with an independent client (tungstenite): text, binary,
//! fragmented and large messages, ping/pong, and the closing handshake.

mod support;

use support::{start, tungstenite, Raw};
use switchboard::protocol::OpCode;
use tungstenite::protocol::frame::coding::CloseCode as TCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

#[test]
fn text_comes_back_as_text() {
    let server = start(|_| {});
    let mut ws = tungstenite(server.local_addr(), "/echo");
    ws.send(Message::text("Hello, κόσμε")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("Hello, κόσμε"));
}

#[test]
fn binary_comes_back_as_binary() {
    let server = start(|_| {});
    let mut ws = tungstenite(server.local_addr(), "/echo");
    let data: Vec<u8> = (0..=255).collect();
    ws.send(Message::binary(data.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(data));
}

#[test]
fn empty_messages_are_echoed() {
    let server = start(|_| {});
    let mut ws = tungstenite(server.local_addr(), "/echo");
    ws.send(Message::text("")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(""));
}

#[test]
fn large_messages_of_every_length_form_are_echoed() {
    // The default (1 MiB) is for small boards; this one allows 4 MiB.
    let server = start(|c| c.echo_max_message = 4 * 1024 * 1024);
    let mut ws = tungstenite(server.local_addr(), "/echo");
    for len in [125, 126, 65535, 65536, 4 * 1024 * 1024] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        ws.send(Message::binary(data.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(data), "length {len}");
    }
}

#[test]
fn fragmented_messages_come_back_whole() {
    let server = start(|_| {});
    let mut raw = Raw::connect(server.local_addr(), "/echo");
    raw.send(false, OpCode::Text, b"Hel");
    raw.send(false, OpCode::Continuation, b"");
    raw.send(true, OpCode::Continuation, b"lo");
    let f = raw.read();
    assert_eq!((f.fin, f.opcode, f.text()), (true, OpCode::Text, "Hello"));
}

#[test]
fn ping_is_answered_with_a_pong_of_the_same_payload() {
    let server = start(|_| {});
    let mut ws = tungstenite(server.local_addr(), "/echo");
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Pong(b"are you there".to_vec().into())
    );
}

#[test]
fn ping_in_the_middle_of_a_fragmented_message_is_answered_at_once() {
    let server = start(|_| {});
    let mut raw = Raw::connect(server.local_addr(), "/echo");
    raw.send(false, OpCode::Text, b"Hel");
    raw.send(true, OpCode::Ping, b"now");
    let pong = raw.read();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (OpCode::Pong, &b"now"[..])
    );
    raw.send(true, OpCode::Continuation, b"lo");
    assert_eq!(raw.read_text(), "Hello");
}

#[test]
fn unsolicited_pongs_are_ignored() {
    let server = start(|_| {});
    let mut raw = Raw::connect(server.local_addr(), "/echo");
    raw.send(true, OpCode::Pong, b"unasked");
    raw.assert_echoes("still here");
}

#[test]
fn closing_handshake_echoes_the_code_and_the_server_closes_tcp() {
    let server = start(|_| {});
    let mut ws = tungstenite(server.local_addr(), "/echo");
    ws.close(Some(CloseFrame {
        code: TCode::Away,
        reason: "bye".into(),
    }))
    .unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, TCode::Away),
        other => panic!("expected the Close reply, got {other:?}"),
    }
    // After the exchange tungstenite sees the server end TCP.
    assert!(matches!(
        ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
}

#[test]
fn close_without_a_code_is_answered_without_a_code() {
    let server = start(|_| {});
    let mut raw = Raw::connect(server.local_addr(), "/echo");
    raw.send(true, OpCode::Close, b"");
    raw.expect_close(1005);
}

#[test]
fn frames_sent_right_behind_the_handshake_are_not_lost() {
    let server = start(|_| {});
    let mut raw = Raw::tcp(server.local_addr());
    let mut bytes = support::upgrade_request("/echo").into_bytes();
    bytes.extend(switchboard::protocol::frame::encode_masked(
        true,
        OpCode::Text,
        b"eager",
        [1, 2, 3, 4],
    ));
    raw.send_raw(&bytes);
    assert!(raw.read_http_head().starts_with("HTTP/1.1 101"));
    assert_eq!(raw.read_text(), "eager");
}

#[test]
fn fragments_sent_by_tungstenite_come_back_as_one_message() {
    use tungstenite::protocol::frame::coding::{Data, OpCode as TOp};
    use tungstenite::protocol::frame::Frame;
    let server = start(|_| {});
    let mut ws = tungstenite(server.local_addr(), "/echo");
    ws.write(Message::Frame(Frame::message(
        b"Hel".to_vec(),
        TOp::Data(Data::Text),
        false,
    )))
    .unwrap();
    ws.write(Message::Frame(Frame::message(
        b"lo, ".to_vec(),
        TOp::Data(Data::Continue),
        false,
    )))
    .unwrap();
    ws.write(Message::Frame(Frame::message(
        "κόσμε".as_bytes().to_vec(),
        TOp::Data(Data::Continue),
        true,
    )))
    .unwrap();
    ws.flush().unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("Hello, κόσμε"));
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let (a, b) = data.split_at(70_000);
    ws.write(Message::Frame(Frame::message(
        a.to_vec(),
        TOp::Data(Data::Binary),
        false,
    )))
    .unwrap();
    ws.write(Message::Frame(Frame::message(
        b.to_vec(),
        TOp::Data(Data::Continue),
        true,
    )))
    .unwrap();
    ws.flush().unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(data));
}
