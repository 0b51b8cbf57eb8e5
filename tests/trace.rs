//! `--trace` on the real binary: the RFC 6455 §5.7 masked "Hello" sent to
//! `/echo`, and the picture of it that the server logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Run the binary, do the RFC example exchange on /echo, return its log.
fn exchange(flags: &[&str]) -> String {
    let mut server = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0", "--db", ":memory:"])
        .args(flags)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(log.read_line(&mut line).unwrap() > 0, "server exited");
        if let Some(at) = line.find("listening on ") {
            break line[at + 13..].trim().to_owned();
        }
    };

    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 101"));
    // RFC 6455 §5.7: a single-frame masked text message, "Hello".
    s.write_all(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ])
    .unwrap();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    s.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).unwrap();
    let _ = s.read(&mut buf);
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let mut rest = String::new();
    log.read_to_string(&mut rest).unwrap();
    server.wait().unwrap();
    rest
}

#[test]
fn trace_shows_the_handshake_and_every_frame_of_the_rfc_example() {
    let rest = exchange(&["--trace"]);

    for expected in [
        "tcp: accepted from 127.0.0.1:",
        "handed to ws-worker-1",
        "client -> server: GET /echo HTTP/1.1",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        r#"= base64(SHA-1("dGhlIHNhbXBsZSBub25jZQ==" + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))"#,
        r#"= "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=""#,
        "server -> client: HTTP/1.1 101 Switching Protocols",
        "client -> server: FIN=1 RSV=000 opcode=1 (text) MASK=1 len=5 key=37fa213d",
        "masked   7f 9f 4d 51 58",
        r#"unmasked 48 65 6c 6c 6f  "Hello""#,
        "server -> client: FIN=1 RSV=000 opcode=1 (text) MASK=0 len=5",
        r#"payload  48 65 6c 6c 6f  "Hello""#,
        r#"close 1000 (normal closure) reason="""#,
        "tcp: closed: the client sent Close, the server answered with Close and closed TCP first",
    ] {
        assert!(rest.contains(expected), "trace lacks {expected:?}:\n{rest}");
    }
    assert!(
        !rest.contains('\u{1b}'),
        "no color codes in a redirected log"
    );
}

#[test]
fn without_trace_no_frame_is_logged() {
    let log = exchange(&[]);
    assert!(log.contains("route=/echo open"), "{log}");
    assert!(
        !log.contains("client -> server") && !log.contains("FIN="),
        "{log}"
    );
}
