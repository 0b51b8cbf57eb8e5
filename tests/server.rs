//! Server-level rules: the pool bound and its 503, shutdown (1001 to all,
//! every thread joined), heartbeats and the idle timeout.

mod support;

use std::time::{Duration, Instant};
use support::{eventually, http, start, Raw};
use switchboard::protocol::OpCode;

#[test]
fn fifth_connection_gets_503_and_the_first_four_still_echo() {
    let server = start(|c| {
        c.max_connections = 4;
        c.max_per_ip = 1000;
    });
    let mut four: Vec<Raw> = (0..4)
        .map(|_| Raw::connect(server.local_addr(), "/echo"))
        .collect();
    let (status, head, _) = http(
        server.local_addr(),
        support::upgrade_request("/echo").as_bytes(),
    );
    assert_eq!(status, 503);
    assert!(head.contains("Retry-After: "), "{head}");
    for (i, ws) in four.iter_mut().enumerate() {
        ws.assert_echoes(&format!("still here {i}"));
    }
    assert_eq!(server.workers(), 4, "the pool never grows past its bound");
    assert_eq!(server.stats().rejected_busy, 1);
}

#[test]
fn a_freed_worker_serves_the_next_connection() {
    let server = start(|c| {
        c.max_connections = 1;
        c.max_per_ip = 1000;
    });
    let mut first = Raw::connect(server.local_addr(), "/echo");
    first.send_close(1000);
    first.expect_close(1000);
    // The worker is idle again (or ends); either way the next one is served.
    assert!(eventually(Duration::from_secs(3), || {
        http(
            server.local_addr(),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .0 == 200
    }));
}

#[test]
fn shutdown_sends_1001_to_every_connection_and_joins_every_thread() {
    let server = start(|_| {});
    let mut clients: Vec<Raw> = (0..5)
        .map(|_| Raw::connect(server.local_addr(), "/echo"))
        .collect();
    assert!(server.threads() >= 5);
    let started = Instant::now();
    let closer = std::thread::spawn(move || {
        server.shutdown();
        server.threads()
    });
    for c in &mut clients {
        let f = c.read_data();
        assert_eq!(f.close_code(), 1001);
        c.send_close(1001);
        c.expect_eof();
    }
    assert_eq!(closer.join().unwrap(), 0, "every worker joined");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown is quick when clients answer"
    );
}

#[test]
fn shutdown_is_bounded_when_clients_never_answer() {
    let server = start(|c| c.close_timeout = Duration::from_millis(300));
    let _silent: Vec<Raw> = (0..3)
        .map(|_| Raw::connect(server.local_addr(), "/echo"))
        .collect();
    // One more that never finishes its HTTP request.
    let _half = std::net::TcpStream::connect(server.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    server.shutdown();
    assert_eq!(server.threads(), 0);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn quiet_connections_are_pinged() {
    let server = start(|c| {
        c.ping_interval = Duration::from_millis(200);
        c.idle_timeout = Duration::from_secs(10);
    });
    let mut raw = Raw::connect(server.local_addr(), "/echo");
    let f = raw.read();
    assert_eq!(f.opcode, OpCode::Ping);
}

#[test]
fn a_silent_connection_is_closed_with_1001_after_the_idle_timeout() {
    let server = start(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(400);
    });
    let mut raw = Raw::connect(server.local_addr(), "/echo");
    let started = Instant::now();
    let close = raw.read_data();
    let waited = started.elapsed();
    assert_eq!(close.close_code(), 1001);
    assert!(close.payload.ends_with(b"idle timeout"));
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(400 + 100 + 300),
        "{waited:?}"
    );
}

#[test]
fn answering_pings_keeps_a_connection_open() {
    let server = start(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(300);
    });
    let mut raw = Raw::connect(server.local_addr(), "/echo");
    let until = Instant::now() + Duration::from_millis(900);
    while Instant::now() < until {
        let f = raw.read();
        assert_eq!(f.opcode, OpCode::Ping, "only pings while we answer them");
        raw.send(true, OpCode::Pong, &f.payload);
    }
    raw.assert_echoes("alive");
}

#[test]
fn idle_workers_end_and_the_process_keeps_few_threads() {
    let server = start(|_| {});
    for _ in 0..3 {
        http(
            server.local_addr(),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        );
    }
    assert!(server.workers() <= 3);
    assert!(server.threads() <= 3);
}
