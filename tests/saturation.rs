//! One address tries to take the whole worker pool (issue 14): with idle
//! WebSockets, trickled request heads, connections that answer every
//! ping, or trickled frames. `--max-per-ip` (a quarter of the pool by
//! default) refuses it past its share with 429, so a client from another
//! address is served within 1 s whatever the attacker does. And when
//! the pool is nearly full anyway, heads trickled in by many addresses
//! get a shorter deadline.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{connect_from, start, upgrade_request, Raw};
use switchboard::protocol::frame::{encode_masked, OpCode};

/// What the attacker's connections do once open.
#[derive(Debug, Clone, Copy)]
enum Attack {
    /// Finish the handshake and never send a byte.
    IdleWebSockets,
    /// Send a request head one byte at a time, never finishing it.
    TrickledHeads,
    /// Finish the handshake and answer every ping with a pong.
    PingAnswering,
    /// Begin a frame and send its payload one byte at a time.
    TrickledFrames,
}

/// One attacking connection from 127.0.0.1: the socket, and whether the
/// server took it (false: it got 429).
fn attacker(addr: SocketAddr, attack: Attack) -> (TcpStream, bool) {
    let mut stream = connect_from(1, addr);
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    if let Attack::TrickledHeads = attack {
        stream.write_all(b"GET /echo HTTP/1.1\r\nHo").unwrap();
        // A refused one is told 429 at once; a taken one hears nothing.
        let mut first = [0u8; 12];
        let refused =
            matches!(stream.read(&mut first), Ok(12) if first.starts_with(b"HTTP/1.1 429"));
        return (stream, !refused);
    }
    stream
        .write_all(upgrade_request("/echo").as_bytes())
        .unwrap();
    let mut raw = Raw::from_stream(stream);
    let head = raw.read_http_head();
    let taken = head.starts_with("HTTP/1.1 101");
    assert!(taken || head.starts_with("HTTP/1.1 429"), "{head}");
    if taken {
        if let Attack::TrickledFrames = attack {
            raw.send_raw(&[0x81, 0x80 | 100, 0, 0, 0, 0]);
        }
    }
    (raw.stream, taken)
}

/// Keep the attack going on every taken connection until `stop`.
fn keep_at_it(mut taken: Vec<TcpStream>, attack: Attack, stop: Arc<AtomicBool>) {
    let pong = encode_masked(true, OpCode::Pong, b"switchboard", [1, 2, 3, 4]);
    let mut chunk = [0u8; 1024];
    for s in &taken {
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    }
    while !stop.load(SeqCst) {
        for s in &mut taken {
            match attack {
                Attack::IdleWebSockets => {}
                Attack::TrickledHeads => drop(s.write_all(b"x")),
                Attack::TrickledFrames => drop(s.write_all(b"a")),
                Attack::PingAnswering => {
                    // The server's pings are the only frames it sends.
                    if matches!(s.read(&mut chunk), Ok(n) if n > 0) {
                        let _ = s.write_all(&pong);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_address_cannot_take_the_pool_whatever_its_connections_do() {
    for attack in [
        Attack::IdleWebSockets,
        Attack::TrickledHeads,
        Attack::PingAnswering,
        Attack::TrickledFrames,
    ] {
        let server = start(|c| {
            c.max_connections = 16;
            c.ping_interval = Duration::from_millis(100);
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
        let (taken, refused): (Vec<_>, Vec<_>) = (0..16)
            .map(|_| attacker(addr, attack))
            .partition(|(_, t)| *t);
        assert_eq!(taken.len(), 4, "{attack:?}: a quarter of the pool");
        assert_eq!(refused.len(), 12, "{attack:?}");
        let stop = Arc::new(AtomicBool::new(false));
        let taken: Vec<TcpStream> = taken.into_iter().map(|(s, _)| s).collect();
        let keeper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || keep_at_it(taken, attack, stop))
        };
        // Let the attack run past a few pings.
        std::thread::sleep(Duration::from_millis(400));
        let started = Instant::now();
        let mut other = Raw::from_stream(connect_from(2, addr));
        other.send_raw(upgrade_request("/echo").as_bytes());
        let head = other.read_http_head();
        assert!(head.starts_with("HTTP/1.1 101"), "{attack:?}: {head}");
        other.assert_echoes("served");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "{attack:?}: {took:?}");
        stop.store(true, SeqCst);
        keeper.join().unwrap();
    }
}

/// Seconds until a head trickled from 127.0.0.3 is answered 408 (at most
/// `limit`; `None` if it is still waiting then).
fn trickled_head_lasts(addr: SocketAddr, limit: Duration) -> Option<Duration> {
    let mut stream = connect_from(3, addr);
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(b"GET /echo HTTP/1.1\r\n").unwrap();
    let mut reply = [0u8; 12];
    while started.elapsed() < limit {
        match stream.read(&mut reply) {
            Ok(n) if n > 0 => {
                assert!(reply.starts_with(b"HTTP/1.1 408"), "{:?}", &reply[..n]);
                return Some(started.elapsed());
            }
            Ok(_) => return Some(started.elapsed()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let _ = stream.write_all(b"X");
            }
            Err(e) => panic!("{e}"),
        }
    }
    None
}

#[test]
fn heads_trickled_into_a_nearly_full_pool_get_a_fifth_of_the_deadline() {
    let server = start(|c| {
        c.max_connections = 10;
        c.max_per_ip = 10;
        c.handshake_timeout = Duration::from_secs(5);
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
    // With the pool nearly empty, a trickled head has the whole 5 s.
    assert_eq!(trickled_head_lasts(addr, Duration::from_millis(2500)), None);
    // With 9 of 10 workers taken (the trickler is the tenth), 1 s.
    let _idle: Vec<Raw> = (0..9).map(|_| Raw::connect(addr, "/echo")).collect();
    let lasted = trickled_head_lasts(addr, Duration::from_secs(4)).expect("408");
    assert!(
        lasted >= Duration::from_millis(900) && lasted < Duration::from_millis(2000),
        "{lasted:?}"
    );
}
