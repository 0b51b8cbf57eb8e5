//! A test-sized churn soak (issue 14): thousands of connect / handshake /
//! close cycles, some closed properly, some dropped, some reset in the
//! middle of a frame, some gone before their request head; afterwards the
//! server's threads, descriptors and RSS are back at their baseline.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::binary::Binary;
use support::{read_upgrade_head, upgrade_request, TempDir};
use switchboard::protocol::frame::{encode_masked, OpCode};

const MIB: u64 = 1024 * 1024;

/// A TCP connection from 127.0.0.`last`, with a 5 s read timeout.
fn socket_from(last: u8, addr: SocketAddr) -> socket2::Socket {
    let socket = support::socket_from(last, addr);
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
}

/// One cycle of kind `i % 5`.
fn cycle(i: usize, last: u8, addr: SocketAddr) {
    let socket = socket_from(last, addr);
    let mut stream: std::net::TcpStream = match i % 5 {
        // Gone before the head: connect, a few bytes, close.
        0 => {
            let mut stream: std::net::TcpStream = socket.into();
            let _ = stream.write_all(b"GET /ec");
            return;
        }
        // Reset in the middle of a frame.
        1 => {
            socket.set_linger(Some(Duration::ZERO)).unwrap();
            let mut stream: std::net::TcpStream = socket.into();
            stream
                .write_all(upgrade_request("/echo").as_bytes())
                .unwrap();
            read_upgrade_head(&mut stream);
            stream
                .write_all(&[0x82, 0x80 | 100, 1, 2, 3, 4, 9, 9])
                .unwrap();
            return;
        }
        _ => socket.into(),
    };
    let path = match i % 5 {
        2 => format!("/chat?name=soak{i}"),
        _ => "/echo".to_owned(),
    };
    stream.write_all(upgrade_request(&path).as_bytes()).unwrap();
    read_upgrade_head(&mut stream);
    if i % 5 == 3 {
        // Echo once, then the closing handshake.
        stream
            .write_all(&encode_masked(true, OpCode::Text, b"soak", [1, 2, 3, 4]))
            .unwrap();
        let mut echo = [0u8; 6];
        stream.read_exact(&mut echo).unwrap();
        assert_eq!(&echo[2..], b"soak");
        stream
            .write_all(&encode_masked(
                true,
                OpCode::Close,
                &1000u16.to_be_bytes(),
                [1, 2, 3, 4],
            ))
            .unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    // 2 (a chat member) and 4 (an echo client) just drop the connection.
}

/// Poll `check` every 100 ms for at most `limit`.
fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

#[test]
fn thousands_of_connections_come_and_go_and_leave_nothing_behind() {
    let tmp = TempDir::new("soak");
    let server = Binary::start(&tmp.join("soak.db"), "--connect-rate 0", "");
    let addr = server.addr;
    // The server's own threads and files are all there once it has
    // served its first connection (some start just after it listens).
    cycle(3, 2, addr);
    std::thread::sleep(Duration::from_millis(500));
    let (threads, descriptors) = (server.threads(), server.descriptors());
    // A warm-up, so the allocator's arenas exist before the RSS baseline.
    for i in 0..100 {
        cycle(i, 2, addr);
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss = server.rss();
    // 4 threads from 4 addresses, 10,000 cycles.
    let started = Instant::now();
    let workers: Vec<_> = (0..4u8)
        .map(|w| std::thread::spawn(move || (0..2500).for_each(|i| cycle(i, 3 + w, addr))))
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    println!("10,000 cycles in {:?}", started.elapsed());
    // Idle workers end after 10 s (pool.rs); descriptors as soon as their
    // connections do.
    let back = within(Duration::from_secs(20), || {
        server.threads() <= threads && server.descriptors() <= descriptors
    });
    let now = (server.threads(), server.descriptors(), server.rss());
    println!(
        "threads {threads} -> {}, descriptors {descriptors} -> {}, RSS {} -> {} MiB",
        now.0,
        now.1,
        rss / MIB,
        now.2 / MIB
    );
    assert!(
        back,
        "threads or descriptors did not return to the baseline"
    );
    assert!(now.2 < rss + 16 * MIB, "RSS grew by more than 16 MiB");
    // And the server still serves.
    cycle(3, 2, addr);
}
