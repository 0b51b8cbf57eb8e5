//! Behind a reverse proxy (`--trusted-proxy`): the client named by
//! `X-Forwarded-For` / `X-Real-IP` is the one counted, limited and logged,
//! but only when the peer is a trusted proxy; anyone else's headers are
//! ignored (issue 14).

mod support;

use std::io::Write;
use std::net::SocketAddr;
use support::binary::Binary;
use support::{connect_from, Raw, TempDir};

/// A WebSocket handshake on /echo from 127.0.0.`last` with these extra
/// header lines; its status line, and the connection.
fn open(last: u8, addr: SocketAddr, extra: &str) -> (String, Raw) {
    let mut stream = connect_from(last, addr);
    let request =
        support::upgrade_request("/echo").replace("\r\n\r\n", &format!("\r\n{extra}\r\n"));
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Raw::from_stream(stream);
    let head = raw.read_http_head();
    (head.lines().next().unwrap_or("").to_owned(), raw)
}

#[test]
fn a_trusted_proxy_names_its_clients_and_nobody_else_can() {
    let tmp = TempDir::new("proxy");
    let server = Binary::start(
        &tmp.join("proxy.db"),
        "--trusted-proxy 127.0.0.1,10.0.0.0/8 --max-per-ip 2 --log-level debug",
        "",
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let alice = "X-Forwarded-For: 203.0.113.5\r\n";
    // Through the proxy, alice's address has its own two connections...
    let (first, _a1) = open(1, addr, alice);
    let (second, _a2) = open(
        1,
        addr,
        "X-Forwarded-For: 6.6.6.6, 203.0.113.5, 10.0.0.9\r\n",
    );
    assert!(
        first.contains("101") && second.contains("101"),
        "{first} {second}"
    );
    let (third, _) = open(1, addr, alice);
    assert!(third.contains("429"), "alice is over her two: {third}");
    // ...while bob, through the same proxy, is served; the proxy's own
    // requests (no header) count as its own address.
    let (bob, _b) = open(1, addr, "X-Real-IP: 203.0.113.6\r\n");
    assert!(bob.contains("101"), "{bob}");
    let own: Vec<(String, Raw)> = (0..3).map(|_| open(1, addr, "")).collect();
    let own: Vec<&str> = own.iter().map(|(status, _)| status.as_str()).collect();
    assert!(own[0].contains("101") && own[1].contains("101"), "{own:?}");
    assert!(own[2].contains("429"), "{own:?}");
    // Not a trusted proxy: the header is ignored, 127.0.0.2 is the client.
    let (x1, _x1) = open(2, addr, alice);
    let (x2, _x2) = open(2, addr, alice);
    let (x3, _) = open(2, addr, "X-Forwarded-For: 198.51.100.1\r\n");
    assert!(x1.contains("101") && x2.contains("101"), "{x1} {x2}");
    assert!(x3.contains("429"), "127.0.0.2 is over its two: {x3}");
    let log = server.log_text();
    assert!(
        log.contains("client=203.0.113.5 via proxy 127.0.0.1:"),
        "{log}"
    );
    assert!(log.contains("peer=203.0.113.5:"), "logged as alice: {log}");
    assert!(
        !log.contains("198.51.100.1"),
        "an untrusted header is never used: {log}"
    );
}

#[test]
fn a_chat_connection_logs_its_real_address_and_its_user() {
    let tmp = TempDir::new("proxy-user");
    let server = Binary::start(&tmp.join("user.db"), "--trusted-proxy 127.0.0.1", "");
    let addr = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let mut stream = connect_from(1, addr);
    let request = support::upgrade_request("/chat?name=carol")
        .replace("\r\n\r\n", "\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Raw::from_stream(stream);
    assert!(raw.read_http_head().starts_with("HTTP/1.1 101"));
    assert!(raw.read_text().contains("\"welcome\""));
    raw.send_close(1000);
    raw.expect_close(1000);
    assert!(
        support::eventually(std::time::Duration::from_secs(5), || server
            .log_text()
            .lines()
            .any(|l| l.contains("peer=198.51.100.7:")
                && l.contains("route=/chat user=carol closed code=1000"))),
        "{}",
        server.log_text()
    );
}

#[test]
fn operator_routes_through_a_proxy_go_by_the_client_it_names() {
    let tmp = TempDir::new("proxy-ops");
    let server = Binary::start(&tmp.join("ops.db"), "--trusted-proxy 127.0.0.1", "");
    let addr = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let status = |request: &str| support::http(addr, request.as_bytes()).0;
    let get = |extra: &str| {
        status(&format!(
            "GET /status.json HTTP/1.1\r\nHost: x\r\n{extra}\r\n"
        ))
    };
    // The proxy names a loopback client: allowed (the default --metrics-allow).
    assert_eq!(get("X-Forwarded-For: 127.0.0.5\r\n"), 200);
    // It names a client outside: refused, as if the route did not exist.
    assert_eq!(get("X-Forwarded-For: 203.0.113.1\r\n"), 404);
    // It names nobody: not taken for the proxy's own loopback address.
    assert_eq!(get(""), 404);
    assert_eq!(get("X-Forwarded-For: not-an-address\r\n"), 404);
    // Any method gets the same 404 when not allowed.
    let post = "POST /metrics HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.1\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(status(post), 404);
}
