//! Admission and hardening (issue 14): by `Origin` (RFC 6455 §10.2)
//! another site's page cannot open a WebSocket here unless
//! `--allowed-origins` lists it, while our own page and clients without
//! `Origin` can; a peer's control bytes never reach the log raw; a
//! trickled frame is closed after `--frame-timeout`; one address gets 429
//! past `--max-per-ip` or `--connect-rate` while another is served at once.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use support::{start, Raw};
use switchboard::protocol::frame::{encode_masked, OpCode};

/// The status line of a handshake with these `Host` and `Origin` values.
fn handshake(addr: std::net::SocketAddr, host: &str, origin: Option<&str>) -> String {
    let origin_line = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = support::upgrade_request("/chat")
        .replace("Host: 127.0.0.1\r\n", &format!("Host: {host}\r\n"))
        .replace("Origin: http://127.0.0.1\r\n", &origin_line);
    let mut raw = Raw::tcp(addr);
    raw.send_raw(request.as_bytes());
    raw.read_http_head().lines().next().unwrap_or("").to_owned()
}

#[test]
fn only_our_own_and_listed_origins_may_open_a_websocket() {
    let server = start(|c| {
        c.allowed_origins =
            switchboard::http::origin::Policy::parse("https://app.example, https://*.corp.example")
                .unwrap();
    });
    let addr = server.local_addr();
    let host = format!("127.0.0.1:{}", addr.port());
    let ours = format!("http://{host}");
    assert!(
        handshake(addr, &host, Some(&ours)).contains("101"),
        "our own page"
    );
    assert!(
        handshake(addr, &host, None).contains("101"),
        "no Origin: a CLI"
    );
    assert!(handshake(addr, &host, Some("https://app.example")).contains("101"));
    assert!(handshake(addr, &host, Some("https://team.corp.example")).contains("101"));
    for foreign in [
        "https://evil.example",
        "null",
        "http://app.example",
        "https://corp.example",
    ] {
        let status = handshake(addr, &host, Some(foreign));
        assert!(status.contains("403"), "{foreign}: {status}");
    }
    assert_eq!(server.stats().refused_origins, 4);
    // The same rule without a list: only our own page.
    let plain = start(|_| {});
    let addr = plain.local_addr();
    let host = format!("127.0.0.1:{}", addr.port());
    assert!(handshake(addr, &host, Some("https://app.example")).contains("403"));
    assert!(handshake(addr, &host, Some(&format!("http://{host}"))).contains("101"));
}

#[test]
fn control_bytes_from_a_peer_are_escaped_in_the_log() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0", "--db", ":memory:"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Read until the port is logged.
    let mut log = Vec::new();
    let mut byte = [0u8; 1];
    let port = loop {
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "the server logs its address"
        );
        log.push(byte[0]);
        let text = String::from_utf8_lossy(&log);
        if let Some(rest) = text.split("listening on 127.0.0.1:").nth(1) {
            if let Some(port) = rest.strip_suffix('\n') {
                break port.trim().parse::<u16>().unwrap();
            }
        }
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (status, _, _) = support::http(
        addr,
        b"GET /x\x1b[31mFAKE\x07 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert_eq!(status, 404);
    child.kill().unwrap();
    let mut rest = Vec::new();
    stderr.read_to_end(&mut rest).unwrap();
    let _ = child.wait();
    let rest = String::from_utf8_lossy(&rest);
    let line = rest
        .lines()
        .find(|l| l.contains("FAKE"))
        .expect("the request is logged");
    assert!(line.contains("/x\\x1b[31mFAKE\\x07"), "{line}");
    assert!(!line.contains('\x1b') && !line.contains('\x07'), "{line:?}");
}

#[test]
fn a_trickled_frame_is_closed_with_1008_after_the_frame_timeout() {
    let server = start(|c| c.frame_timeout = std::time::Duration::from_millis(400));
    let addr = server.local_addr();
    let mut trickler = Raw::connect(addr, "/echo");
    // A masked text frame that says 100 bytes, and only ever sends some.
    trickler.send_raw(&[0x81, 0x80 | 100, 0, 0, 0, 0]);
    let started = std::time::Instant::now();
    let mut bystander = Raw::connect(addr, "/echo");
    for _ in 0..20 {
        // One byte now and then: the connection is never idle.
        trickler.send_raw(b"a");
        bystander.assert_echoes("still here");
        std::thread::sleep(std::time::Duration::from_millis(50));
        if started.elapsed() > std::time::Duration::from_millis(600) {
            break;
        }
    }
    let close = trickler.read();
    assert_eq!(close.close_code(), 1008, "{close:?}");
    assert!(close.payload.ends_with(b"frame timeout"), "{close:?}");
    bystander.assert_echoes("and still here");
}

#[test]
fn a_client_streaming_whole_messages_is_not_taken_for_a_trickler() {
    let server = start(|c| c.frame_timeout = std::time::Duration::from_millis(300));
    let mut streamer = Raw::connect(server.local_addr(), "/echo");
    // Every write ends in the middle of a frame, for three frame timeouts;
    // but a message completes every 50 ms.
    let frame = encode_masked(true, OpCode::Text, b"streaming along", [1, 2, 3, 4]);
    let (head, tail) = frame.split_at(frame.len() / 2);
    streamer.send_raw(head);
    for _ in 0..18 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        streamer.send_raw(&[tail, head].concat());
        assert_eq!(streamer.read_text(), "streaming along");
    }
    streamer.send_raw(tail);
    assert_eq!(streamer.read_text(), "streaming along");
}

#[test]
fn pongs_between_trickled_fragments_do_not_restart_the_frame_clock() {
    let server = start(|c| c.frame_timeout = std::time::Duration::from_millis(400));
    let mut trickler = Raw::connect(server.local_addr(), "/echo");
    trickler.send(false, OpCode::Text, b"a");
    let started = std::time::Instant::now();
    let mut closed = None;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        // A control frame completes, and the message grows, but never ends.
        trickler.send(true, OpCode::Pong, b"");
        trickler.send(false, OpCode::Continuation, b"a");
        trickler
            .stream
            .set_read_timeout(Some(std::time::Duration::from_millis(1)))
            .unwrap();
        let mut byte = [0u8; 1];
        if std::io::Read::read(&mut trickler.stream, &mut byte).is_ok() {
            closed = Some(started.elapsed());
            break;
        }
    }
    let took = closed.expect("closed for its frame timeout");
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
}

/// The status line of a WebSocket handshake from 127.0.0.`last`, and the
/// connection (kept open by the caller).
fn open_from(last: u8, addr: std::net::SocketAddr) -> (String, Raw) {
    let mut raw = Raw::from_stream(support::connect_from(last, addr));
    raw.send_raw(support::upgrade_request("/echo").as_bytes());
    let head = raw.read_http_head();
    (head, raw)
}

#[test]
fn one_address_gets_429_past_its_cap_while_another_is_served_at_once() {
    let server = start(|c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.max_per_ip = 3;
    });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
    let mut held = Vec::new();
    for _ in 0..3 {
        let (head, raw) = open_from(1, addr);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        held.push(raw);
    }
    let (head, _) = open_from(1, addr);
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.contains("Retry-After: 1"), "{head}");
    let started = std::time::Instant::now();
    let (head, mut other) = open_from(2, addr);
    assert!(head.starts_with("HTTP/1.1 101"), "another address: {head}");
    other.assert_echoes("served");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // One closes: its address may connect again.
    held.pop();
    assert!(support::eventually(
        std::time::Duration::from_secs(3),
        || { open_from(1, addr).0.starts_with("HTTP/1.1 101") }
    ));
    assert!(server.stats().rejected_per_ip >= 1);
}

#[test]
fn an_address_that_connects_too_fast_waits_and_others_do_not() {
    let server = start(|c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.connect_rate = 1; // bursts of 10
    });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
    let status = |last: u8| {
        let mut raw = Raw::from_stream(support::connect_from(last, addr));
        raw.send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        raw.read_http_head()
    };
    for i in 0..10 {
        assert!(status(3).starts_with("HTTP/1.1 200"), "connection {i}");
    }
    let refused = status(3);
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("Retry-After: 1"), "{refused}");
    assert!(status(4).starts_with("HTTP/1.1 200"), "another address");
}

#[test]
fn web_root_serves_only_regular_files_inside_it_streamed_and_with_a_write_timeout() {
    let dir = support::TempDir::new("web-root");
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "<p>hello</p>").unwrap();
    std::fs::write(dir.join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("leak.txt")).unwrap();
    let fifo = root.join("pipe.txt");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let big = std::fs::File::create(root.join("big.txt")).unwrap();
    big.set_len(64 * 1024 * 1024).unwrap(); // sparse: 64 MiB, no disk used
    let server = start(|c| {
        c.web_root = Some(root.clone());
        c.max_connections = 1;
        c.max_per_ip = 10;
        c.write_timeout = std::time::Duration::from_millis(500);
    });
    let addr = server.local_addr();
    // One worker: the last request's may still be closing (503), so ask
    // again for a while.
    let get = |path: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let answer = support::http(addr, request.as_bytes());
            if answer.0 != 503 || std::time::Instant::now() > deadline {
                return answer;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let (status, head, body) = get("/");
    assert_eq!((status, body.as_slice()), (200, b"<p>hello</p>".as_slice()));
    assert!(
        head.contains("Content-Security-Policy: default-src 'self'"),
        "{head}"
    );
    assert!(
        head.contains("frame-ancestors 'none'") && head.contains("X-Content-Type-Options: nosniff")
    );
    assert_eq!(get("/leak.txt").0, 404, "a symlink out of the root");
    assert_eq!(get("/pipe.txt").0, 404, "a FIFO never blocks a worker");
    // A client that asks for the big file and never reads: the only
    // worker is free again after the write timeout.
    let mut stalled = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut stalled, b"GET /big.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(support::eventually(
        std::time::Duration::from_secs(5),
        || get("/").0 == 200
    ));
    drop(stalled);
}

#[test]
fn a_few_connections_cannot_take_every_topic_slot() {
    let server = start(|c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.max_subscriptions = 3;
        c.rate = 0;
    });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
    // A chat connection from 127.0.0.`last`; subscribe answers its code.
    let join = |last: u8| {
        let mut raw = Raw::from_stream(support::connect_from(last, addr));
        raw.send_raw(support::upgrade_request("/chat").as_bytes());
        assert!(raw.read_http_head().starts_with("HTTP/1.1 101"));
        raw.read_text(); // welcome
        raw
    };
    let subscribe = |raw: &mut Raw, topic: &str| -> String {
        raw.send_text(&format!(
            r#"{{"type":"subscribe","topic":"{topic}","id":1}}"#
        ));
        loop {
            let m: serde_json::Value = serde_json::from_str(&raw.read_text()).unwrap();
            match m["type"].as_str() {
                Some("ack") => return "ok".into(),
                Some("error") => return m["code"].as_str().unwrap().to_owned(),
                _ => {}
            }
        }
    };
    let mut first = join(1);
    for t in ["a", "b", "c"] {
        assert_eq!(subscribe(&mut first, t), "ok");
    }
    assert_eq!(
        subscribe(&mut first, "d"),
        "too_many_topics",
        "per connection"
    );
    assert_eq!(subscribe(&mut first, "a"), "ok", "again is not more");
    // 127.0.0.1 holds 4 x 3 subscriptions at most in all.
    let mut others: Vec<Raw> = (0..3).map(|_| join(1)).collect();
    for (i, raw) in others.iter_mut().enumerate() {
        for t in 0..3 {
            assert_eq!(subscribe(raw, &format!("t{i}x{t}")), "ok");
        }
    }
    let mut fifth = join(1);
    assert_eq!(subscribe(&mut fifth, "e"), "too_many_topics", "per address");
    // Another address is not affected.
    let mut elsewhere = join(2);
    assert_eq!(subscribe(&mut elsewhere, "e"), "ok");
    // A connection that leaves gives its slots back.
    drop(first);
    assert!(support::eventually(
        std::time::Duration::from_secs(3),
        || { subscribe(&mut fifth, "e") == "ok" }
    ));
}
