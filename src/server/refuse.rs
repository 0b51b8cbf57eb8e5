//! The `ws-reject` thread: every connection the pool has no worker for
//! gets `503 Service Unavailable` with `Retry-After` at once, however many
//! arrive together.
//!
//! ```text
//!  ws-accept ── Refused ──► ws-reject: write 503 (non-blocking; an empty
//!                           │  send buffer takes it whole), FIN
//!                           └► lingering list: read and drop what the client
//!                              still sends until its FIN or LINGER passes,
//!                              swept every SWEEP, never waited on one by one
//! ```
//!
//! Lingering keeps unread request bytes from turning our close into a TCP
//! reset that could destroy the 503 before the client reads it. It is
//! bounded (`MAX_LINGERING` sockets) so a flood of refused connections
//! cannot hold descriptors: past the bound, a refused socket is answered
//! and closed at once.

use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::socket::LINGER;
use crate::http::Response;

/// At most this many refused connections wait for the reject thread.
pub const REJECT_QUEUE: usize = 256;
/// At most this many answered connections linger at once.
pub const MAX_LINGERING: usize = 64;
/// How often lingering sockets are looked at.
const SWEEP: Duration = Duration::from_millis(10);

/// A connection the pool had no worker for.
pub struct Refused(pub TcpStream, pub Why);

/// Why a connection is refused, and so its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Every worker is busy: 503.
    Busy,
    /// Its address has too many connections open, or opens them too fast:
    /// 429 with `Retry-After` (whole seconds).
    PerIp { retry_after_s: u64 },
}

/// The 429 for an address over its limits.
pub fn per_ip_response(retry_after_s: u64) -> Vec<u8> {
    per_ip(retry_after_s).to_bytes(false)
}

/// The 429 of an address over its limits, as a response.
pub fn per_ip(retry_after_s: u64) -> Response {
    Response::text(
        429,
        "too many connections from your address; try again later",
    )
    .with_header("Retry-After", retry_after_s.max(1).to_string())
}

/// The 503 every refused connection gets.
pub fn busy_response() -> Vec<u8> {
    Response::text(
        503,
        "server busy: every worker is serving a connection; try again",
    )
    .with_header("Retry-After", "1")
    .to_bytes(false)
}

/// Answer a refused connection without waiting: the 503, then FIN. False
/// if the socket did not take the whole answer (it is then just closed).
pub fn answer(stream: &TcpStream, response: &[u8]) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    match (&*stream).write(response) {
        Ok(n) if n == response.len() => {
            let _ = stream.shutdown(Shutdown::Write);
            true
        }
        _ => false,
    }
}

/// Read and drop what has arrived, without waiting (the socket is
/// non-blocking after [`answer`]). True while the client has not closed
/// its side. Called before a refused socket is dropped too: unread input
/// would turn the close into a reset that can destroy the 503.
pub fn still_open(mut stream: &TcpStream) -> bool {
    let mut sink = [0u8; 1024];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// The `ws-reject` thread's loop; it ends when the accept loop does.
pub fn reject_loop(refused: Receiver<Refused>) {
    let busy = busy_response();
    let mut lingering: VecDeque<(TcpStream, Instant)> = VecDeque::new();
    loop {
        let wait = if lingering.is_empty() {
            Duration::from_secs(3600)
        } else {
            SWEEP
        };
        match refused.recv_timeout(wait) {
            Ok(first) => {
                for Refused(stream, why) in std::iter::once(first).chain(refused.try_iter()) {
                    let response = match why {
                        Why::Busy => busy.clone(),
                        Why::PerIp { retry_after_s } => per_ip_response(retry_after_s),
                    };
                    if answer(&stream, &response) && lingering.len() < MAX_LINGERING {
                        lingering.push_back((stream, Instant::now() + LINGER));
                    } else {
                        still_open(&stream);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        lingering.retain(|(stream, deadline)| now < *deadline && still_open(stream));
    }
}
