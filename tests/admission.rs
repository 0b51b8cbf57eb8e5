//! Who gets in when the server is full: every refused connection gets its
//! 503 at once, and a process short of file descriptors answers 503
//! instead of accepting what it cannot serve. The descriptor tests run the
//! real binary under a low `ulimit -n`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{start, upgrade_request, Raw, TIMEOUT};

/// Send a request and time how long the first bytes of the answer take.
fn time_to_answer(addr: SocketAddr) -> (Duration, String, TcpStream) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let started = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 64];
    let n = s.read(&mut head).unwrap_or(0);
    (
        started.elapsed(),
        String::from_utf8_lossy(&head[..n]).into_owned(),
        s,
    )
}

#[test]
fn every_refused_connection_gets_its_503_within_100ms_in_a_burst() {
    let server = start(|c| {
        c.max_connections = 2;
        c.max_per_ip = 1000;
        c.connect_rate = 0;
    });
    let addr = server.local_addr();
    let _busy: Vec<Raw> = (0..2).map(|_| Raw::connect(addr, "/echo")).collect();
    // 8 threads x 25 connections at once, each kept open (as a browser
    // keeps its socket) until the whole burst is over.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let mut times = Vec::new();
                for _ in 0..25 {
                    let (took, head, socket) = time_to_answer(addr);
                    assert!(head.starts_with("HTTP/1.1 503 "), "{head:?}");
                    times.push(took);
                    kept.push(socket);
                }
                times
            })
        })
        .collect();
    let mut times: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    times.sort();
    let slowest = times[times.len() - 1];
    assert!(
        slowest < Duration::from_millis(100),
        "slowest 503 took {slowest:?}; median {:?}",
        times[times.len() / 2]
    );
    assert_eq!(server.stats().rejected_busy, 200);
}

/// The server binary, started by a shell with `ulimit -n limit`.
struct Limited {
    child: Child,
    addr: SocketAddr,
}

impl Limited {
    fn start(limit: u32, flags: &str) -> Limited {
        let bin = env!("CARGO_BIN_EXE_switchboard");
        let script =
            format!("ulimit -n {limit} && exec {bin} --listen 127.0.0.1:0 --db :memory: {flags}");
        let mut child = Command::new("bash")
            .args(["-c", &script])
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the server logs its address").unwrap();
            if let Some(at) = line.find("listening on ") {
                break line[at + "listening on ".len()..].trim().parse().unwrap();
            }
        };
        // Keep draining the log so the server never blocks on stderr.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Limited { child, addr }
    }

    /// SIGTERM: graceful shutdown.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn one_descriptor_per_connection_lets_more_websockets_than_half_the_limit_echo_and_close_1001() {
    // 128 descriptors: at three per connection (the old design) about 40
    // WebSockets fit; at one per connection 100 do.
    let server = Limited::start(
        128,
        "--max-connections 100 --max-per-ip 1000 --connect-rate 0",
    );
    let mut open: Vec<Raw> = (0..100)
        .map(|_| Raw::connect(server.addr, "/echo"))
        .collect();
    for (i, ws) in open.iter_mut().enumerate() {
        ws.assert_echoes(&format!("echo {i}"));
    }
    server.terminate();
    for ws in &mut open {
        let close = ws.read_data();
        assert_eq!(close.close_code(), 1001);
    }
}

/// Upgrade on a fresh connection: the status line, and the socket.
fn try_upgrade(addr: SocketAddr) -> (u16, TcpStream) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(upgrade_request("/echo").as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, s)
}

#[test]
fn out_of_descriptors_is_503_never_101_and_then_a_drop_and_it_recovers() {
    // 48 descriptors with a pool of 200: the descriptors run out first.
    let server = Limited::start(
        48,
        "--max-connections 200 --max-per-ip 1000 --connect-rate 0",
    );
    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..80 {
        let (status, socket) = try_upgrade(server.addr);
        match status {
            101 => served.push(Raw::from_stream(socket)),
            503 => refused += 1,
            other => panic!("status {other}: neither 101 nor 503"),
        }
    }
    // Every connection that got 101 is really served.
    for (i, ws) in served.iter_mut().enumerate() {
        ws.assert_echoes(&format!("served {i}"));
    }
    assert!(refused > 0, "the limit was reached");
    assert!(served.len() >= 20, "only {} served", served.len());
    // Free some descriptors: new connections are served again.
    served.truncate(served.len() - 10);
    std::thread::sleep(Duration::from_millis(300));
    let (status, socket) = try_upgrade(server.addr);
    assert_eq!(status, 101, "recovered once descriptors freed up");
    Raw::from_stream(socket).assert_echoes("back");
}
