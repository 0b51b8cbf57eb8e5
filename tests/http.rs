//! The HTTP side: every way an upgrade request can be wrong gets its own
//! status and a body that says which rule failed; plain routes are served.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{http, start, upgrade_request};

fn upgrade_with(replace: &str, with: &str) -> Vec<u8> {
    upgrade_request("/echo").replace(replace, with).into_bytes()
}

#[test]
fn valid_upgrade_gets_101_with_the_accept_key() {
    let server = start(|_| {});
    let mut raw = support::Raw::tcp(server.local_addr());
    raw.send_raw(upgrade_request("/echo").as_bytes());
    let head = raw.read_http_head();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("Upgrade: websocket\r\n") && head.contains("Connection: Upgrade\r\n"));
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

#[test]
fn healthz_is_ok() {
    let server = start(|_| {});
    let (status, head, body) = http(
        server.local_addr(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    assert!(head.contains("Connection: close\r\n"));
}

#[test]
fn root_serves_a_page() {
    let server = start(|_| {});
    let (status, head, body) = http(server.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/html"));
    assert!(String::from_utf8_lossy(&body).contains("<title>Switchboard</title>"));
}

#[test]
fn head_requests_get_no_body() {
    let server = start(|_| {});
    let (status, head, body) = http(
        server.local_addr(),
        b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(head.contains("Content-Length: 3\r\n"));
    assert!(body.is_empty());
}

#[test]
fn unknown_path_is_404_whatever_the_method() {
    let server = start(|_| {});
    for method in ["GET", "POST", "DELETE"] {
        let req = format!("{method} /nope HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(http(server.local_addr(), req.as_bytes()).0, 404, "{method}");
    }
}

#[test]
fn non_get_to_a_known_route_is_405() {
    let server = start(|_| {});
    for path in ["/chat", "/echo", "/healthz", "/"] {
        let req = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        let (status, head, _) = http(server.local_addr(), req.as_bytes());
        assert_eq!(status, 405, "{path}");
        assert!(head.contains("Allow: GET"), "{head}");
    }
}

#[test]
fn plain_get_to_a_websocket_route_is_426() {
    let server = start(|_| {});
    for path in ["/chat", "/echo"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let (status, head, _) = http(server.local_addr(), req.as_bytes());
        assert_eq!(status, 426, "{path}");
        assert!(head.contains("Upgrade: websocket\r\n"));
    }
}

#[test]
fn upgrade_without_connection_upgrade_is_400() {
    let server = start(|_| {});
    let (status, _, body) = http(
        server.local_addr(),
        &upgrade_with("Connection: keep-alive, Upgrade", "Connection: keep-alive"),
    );
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("Connection"),
        "body names the rule"
    );
}

#[test]
fn missing_host_is_400() {
    let server = start(|_| {});
    let (status, _, body) = http(
        server.local_addr(),
        &upgrade_with("Host: 127.0.0.1\r\n", ""),
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("Host"));
}

#[test]
fn bad_keys_are_400() {
    let server = start(|_| {});
    for key in ["short", "", "AAAAAAAAAAAAAAAAAAAAAAAA"] {
        let req = upgrade_with("dGhlIHNhbXBsZSBub25jZQ==", key);
        let (status, _, body) = http(server.local_addr(), &req);
        assert_eq!(status, 400, "key {key:?}");
        assert!(String::from_utf8_lossy(&body).contains("Sec-WebSocket-Key"));
    }
}

#[test]
fn other_websocket_versions_get_426_with_version_13() {
    let server = start(|_| {});
    let (status, head, _) = http(
        server.local_addr(),
        &upgrade_with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
    );
    assert_eq!(status, 426);
    assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
}

#[test]
fn http_1_0_upgrade_is_400() {
    let server = start(|_| {});
    let (status, _, _) = http(server.local_addr(), &upgrade_with("HTTP/1.1", "HTTP/1.0"));
    assert_eq!(status, 400);
}

#[test]
fn upgrade_with_a_method_other_than_get_is_405() {
    let server = start(|_| {});
    let (status, _, _) = http(server.local_addr(), &upgrade_with("GET /echo", "PUT /echo"));
    assert_eq!(status, 405);
}

#[test]
fn header_over_8_kib_is_431() {
    let server = start(|_| {});
    let big = format!(
        "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(http(server.local_addr(), big.as_bytes()).0, 431);
}

#[test]
fn garbage_is_400() {
    let server = start(|_| {});
    assert_eq!(
        http(
            server.local_addr(),
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage garbage\r\n\r\n"
        )
        .0,
        400
    );
}

#[test]
fn a_slow_request_head_gets_408_at_the_deadline() {
    let server = start(|c| c.handshake_timeout = Duration::from_millis(300));
    let started = Instant::now();
    let (status, _, _) = http(server.local_addr(), b"GET /echo HTTP/1.1\r\nHost:");
    assert_eq!(status, 408);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_bad_request_does_not_disturb_an_open_connection() {
    let server = start(|_| {});
    let mut ws = support::Raw::connect(server.local_addr(), "/echo");
    let mut junk = TcpStream::connect(server.local_addr()).unwrap();
    junk.write_all(b"BREW /pot HTCPCP/1.0\r\n\r\n").unwrap();
    drop(junk);
    ws.assert_echoes("fine");
}
