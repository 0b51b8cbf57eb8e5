//! The write path against real loopback sockets.

use super::*;
use crate::protocol::frame;
use crate::protocol::frame::{parse_header, Status};
use crate::protocol::{close, CloseCode, OpCode};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

/// A real loopback connection: (server side in an Outbound, client side).
fn pair(
    max_frames: usize,
    max_bytes: usize,
) -> (Arc<Outbound>, TcpStream, Arc<Threads>, Arc<Stats>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let threads = Arc::new(Threads::default());
    let stats = Arc::new(Stats::default());
    let config = WriterConfig {
        max_frames,
        max_bytes,
        thread_stack: 128 * 1024,
        trace: false,
    };
    let transport = Arc::new(Transport::Plain(server));
    let memory = Arc::new(crate::server::memory::Memory::new(usize::MAX / 2));
    let out = Outbound::new(1, transport, config, threads.clone(), stats.clone(), memory);
    (Arc::new(out), client, threads, stats)
}

fn text(s: &str) -> Bytes {
    frame::encode(OpCode::Text, s.as_bytes()).into()
}

/// Read `n` whole frames from the client side; return their payloads.
fn read_frames(client: &mut TcpStream, n: usize) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while frames.len() < n {
        while let Ok(Status::Complete(h, len)) = parse_header(&buf) {
            let end = len + h.payload_len as usize;
            if buf.len() < end {
                break;
            }
            frames.push(buf[len..end].to_vec());
            buf.drain(..end);
        }
        if frames.len() >= n {
            break;
        }
        let got = client.read(&mut chunk).expect("frames arrive");
        assert!(got > 0, "connection closed after {} frames", frames.len());
        buf.extend_from_slice(&chunk[..got]);
    }
    frames
}

#[test]
fn idle_connection_is_written_by_the_sending_thread_itself() {
    let (out, mut client, threads, stats) = pair(16, 1 << 20);
    out.send(text("direct")).unwrap();
    assert_eq!(read_frames(&mut client, 1), vec![b"direct".to_vec()]);
    assert_eq!(threads.live(), 0, "no thread was started");
    assert_eq!(stats.snapshot().drains_started, 0);
    assert_eq!(out.queued_bytes(), 0);
}

#[test]
fn concurrent_senders_lose_nothing_and_keep_each_senders_order() {
    let (out, mut client, _, _) = pair(100_000, 64 << 20);
    let senders: Vec<_> = (0..8)
        .map(|t| {
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                for i in 0..2000 {
                    out.send(text(&format!("{t}:{i}"))).unwrap();
                }
            })
        })
        .collect();
    let frames = read_frames(&mut client, 8 * 2000);
    for s in senders {
        s.join().unwrap();
    }
    let mut next = [0usize; 8];
    for f in frames {
        let s = String::from_utf8(f).unwrap();
        let (t, i) = s.split_once(':').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "sender {t} out of order");
        next[t] += 1;
    }
    assert_eq!(next, [2000; 8]);
}

#[test]
fn a_full_socket_is_handed_to_a_drain_thread_and_the_sender_never_waits() {
    let (out, mut client, threads, stats) = pair(100_000, 256 << 20);
    let frame: Bytes = frame::encode(OpCode::Binary, &[7u8; 16 * 1024]).into();
    let mut slowest = Duration::ZERO;
    // 64 MiB is far more than the loopback socket buffers hold.
    for _ in 0..4096 {
        let started = Instant::now();
        out.send(frame.clone()).unwrap();
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(100),
        "a send waited {slowest:?}"
    );
    assert!(
        stats.snapshot().drains_started >= 1,
        "a drain thread took over"
    );
    assert!(out.queued_bytes() > 0);
    // The reader catches up: everything arrives, and the drain thread ends.
    let frames = read_frames(&mut client, 4096);
    assert!(frames.iter().all(|f| f.len() == 16 * 1024));
    assert!(
        threads.wait_all(Duration::from_secs(5)),
        "the drain thread ended"
    );
    assert_eq!(out.queued_bytes(), 0);
}

#[test]
fn overflow_cuts_the_slow_consumer_off_and_nobody_waits() {
    let (out, mut client, threads, stats) = pair(1024, 256 * 1024);
    let frame: Bytes = frame::encode(OpCode::Binary, &[1u8; 8 * 1024]).into();
    let started = Instant::now();
    let mut result = Ok(());
    for _ in 0..10_000 {
        result = out.send(frame.clone());
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(SendError::Overflow));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(stats.snapshot().slow_consumers, 1);
    assert_eq!(out.send(text("late")), Err(SendError::Closed));
    assert_eq!(out.closing(), Some(CloseCode::PolicyViolation));
    // The client reads to the end: whole frames of data, then Close 1008
    // "slow consumer" as the very last frame, then FIN.
    let mut all = Vec::new();
    client
        .read_to_end(&mut all)
        .expect("a clean end (FIN), no reset");
    let mut last = None;
    let mut at = 0;
    while at < all.len() {
        let Ok(Status::Complete(h, len)) = parse_header(&all[at..]) else {
            panic!("a cut frame at byte {at} of {}", all.len());
        };
        let end = at + len + h.payload_len as usize;
        assert!(end <= all.len(), "a cut frame at byte {at}");
        last = Some((h.opcode, all[at + len..end].to_vec()));
        at = end;
    }
    let (opcode, payload) = last.expect("frames arrived");
    assert_eq!(opcode, OpCode::Close);
    assert_eq!(
        close::parse_payload(&payload),
        Ok(Some((
            CloseCode::PolicyViolation,
            "slow consumer".to_owned()
        )))
    );
    assert!(
        threads.wait_all(Duration::from_secs(5)),
        "no thread is left behind"
    );
}

#[test]
fn close_is_the_last_frame_and_is_followed_by_fin() {
    let (out, mut client, _, _) = pair(16, 1 << 20);
    out.send(text("before")).unwrap();
    assert!(out.close(CloseCode::GoingAway, "bye"));
    assert!(
        !out.close(CloseCode::NormalClosure, "again"),
        "only one Close"
    );
    assert_eq!(out.send(text("after")), Err(SendError::Closed));
    let frames = read_frames(&mut client, 2);
    assert_eq!(frames[0], b"before");
    assert_eq!(frames[1], [&[0x03, 0xe9][..], b"bye"].concat());
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "FIN right after the Close: {rest:?}");
}
