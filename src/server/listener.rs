//! The accept loop: one thread blocks in `accept()` and hands every new
//! connection to the pool, or refuses it with 503 when the pool is full.
//!
//! ```text
//!  kernel: SYN ─► SYN-ACK ─► ACK   (the three-way handshake happens in the
//!                                   kernel; accept() just takes the result)
//!  ws-accept:  accept() ─► pool.submit() ─► worker
//!                              └─ full ─► ws-reject: 503 + Retry-After, close
//! ```
//!
//! Shutdown sets a flag and then connects to the listening socket itself,
//! so the blocked `accept()` returns and the loop sees the flag.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Duration;

use super::connection::linger_close;
use super::pool::Pool;
use super::Shared;
use crate::http::Response;

/// At most this many refused connections wait for their 503.
pub const REJECT_QUEUE: usize = 32;

/// A connection the pool had no worker for.
pub struct Refused(pub TcpStream, pub SocketAddr);

/// Accept until shutdown.
pub fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    pool: Arc<Pool<Accepted>>,
    reject: Sender<Refused>,
) {
    let mut next_id: u64 = 0;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                if shared.shutting_down.load(SeqCst) {
                    return;
                }
                // EMFILE/ENFILE (out of file descriptors) and the like:
                // back off a little instead of spinning.
                if e.kind() != ErrorKind::ConnectionAborted && e.kind() != ErrorKind::Interrupted {
                    log::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
        };
        if shared.shutting_down.load(SeqCst) {
            return;
        }
        next_id += 1;
        shared.stats.accepted.fetch_add(1, Relaxed);
        log::trace!("conn={next_id} accepted from {peer}");
        let job = Accepted {
            stream,
            peer,
            id: next_id,
        };
        if let Err(job) = pool.submit(job) {
            shared.stats.rejected_busy.fetch_add(1, Relaxed);
            log::warn!(
                "conn={} peer={peer} refused: all {} workers busy",
                job.id,
                shared.config.max_connections
            );
            match reject.try_send(Refused(job.stream, peer)) {
                Ok(()) => {}
                // Even the reject queue is full: answer without lingering.
                Err(
                    TrySendError::Full(Refused(stream, _))
                    | TrySendError::Disconnected(Refused(stream, _)),
                ) => {
                    let _ = (&stream).write_all(&busy_response());
                }
            }
        }
    }
}

/// One accepted connection, on its way to a worker.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub id: u64,
}

fn busy_response() -> Vec<u8> {
    Response::text(
        503,
        "server busy: every worker is serving a connection; try again",
    )
    .with_header("Retry-After", "1")
    .to_bytes(false)
}

/// The `ws-reject` thread: answer refused connections with 503 and close
/// them gracefully, so the answer is not lost to a TCP reset.
pub fn reject_loop(refused: Receiver<Refused>) {
    let response = busy_response();
    for Refused(stream, _peer) in refused {
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        if (&stream).write_all(&response).is_ok() {
            linger_close(&stream, Duration::from_millis(200));
        }
    }
}
