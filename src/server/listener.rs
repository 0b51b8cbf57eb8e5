//! The accept loop: one thread blocks in `accept()` and hands every new
//! connection to the pool, or to `ws-reject` for a 503 when the pool is
//! full.
//!
//! ```text
//!  kernel: SYN ─► SYN-ACK ─► ACK   (the three-way handshake happens in the
//!                                   kernel; accept() just takes the result)
//!  ws-accept:  accept() ─► pool.submit() ─► worker
//!                              └─ full ─► ws-reject: 503 + Retry-After, close
//!  accept() fails with EMFILE/ENFILE (no descriptor left):
//!     close the reserve descriptor, accept the waiting client (if any),
//!     503, close, re-open the reserve; with nobody waiting, back off
//!     (10 ms doubling to 250 ms) and try again: never a busy loop, one log
//!     line a second at most, and served again as soon as descriptors free
//! ```
//!
//! Shutdown sets a flag and then connects to the listening socket itself,
//! so the blocked `accept()` returns and the loop sees the flag.

use crossbeam_channel::{Sender, TrySendError};

use crate::auth::per_ip::Verdict;
use std::fs::File;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};

use super::forwarded::is_trusted;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pool::Pool;
use super::refuse::{self, Refused, Why};
use super::shared::Shared;

/// Back-off after an `accept()` that failed for want of descriptors.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// At most one log line per this long about failing accepts.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// The listeners: the main one (TLS when the server has a certificate),
/// and with TLS, `--listen-plain` and `--redirect-http` (see `doors.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Main,
    Plain,
    Redirect,
    /// `--metrics-listen`: `/metrics`, `/status` and `/healthz` only.
    Metrics,
}

/// One accepted connection, on its way to a worker.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub id: u64,
    /// Which listener took it.
    pub door: Door,
    /// Its place in its address's count, given back when it ends (`None`
    /// for a trusted proxy: its clients are counted once their request
    /// heads name them, see `connection.rs`).
    pub admitted: Option<Admitted>,
}

/// One connection counted against its address (`--max-per-ip`); the
/// count goes down when this is dropped, however the connection ends.
pub struct Admitted {
    shared: Arc<Shared>,
    key: u128,
}

/// Count one more connection against `ip`'s address (IPv6: its /64), or
/// say in how many seconds it may try again (`--max-per-ip`,
/// `--connect-rate`).
pub fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Result<Admitted, (Verdict, u64)> {
    let key = super::gate::address_group(ip);
    let verdict = shared.per_ip.lock().admit(key, shared.clock_ms());
    match verdict {
        Verdict::Admit => Ok(Admitted {
            shared: Arc::clone(shared),
            key,
        }),
        Verdict::TooMany => Err((verdict, 1)),
        Verdict::TooFast { retry_after_ms } => Err((verdict, retry_after_ms.div_ceil(1000))),
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.shared.per_ip.lock().release(self.key);
    }
}

/// A descriptor kept open only to be closed when the process has no other
/// left, so that a waiting client can still be accepted and told 503
/// instead of waiting in the backlog with no answer.
fn open_reserve() -> Option<File> {
    File::open("/dev/null").ok()
}

/// Is this an `accept()` failure for want of descriptors?
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Out of descriptors: spend the reserve on the client waiting, if any,
/// to tell it 503. True if one was told. The accept is non-blocking:
/// Linux fails `accept()` with EMFILE before it looks for a waiting
/// client, so there may be nobody yet, and a blocking accept here would
/// answer 503 to the next client even after descriptors have freed up.
fn refuse_on_reserve(
    listener: &TcpListener,
    reserve: &mut Option<File>,
    busy: &[u8],
    shared: &Shared,
) -> bool {
    if reserve.take().is_none() {
        return false;
    }
    let waiting = match listener.set_nonblocking(true) {
        Ok(()) => listener.accept().ok(),
        Err(_) => None,
    };
    let _ = listener.set_nonblocking(false);
    let told = match waiting {
        Some((stream, _)) => {
            shared.stats.count(&shared.stats.accepted);
            shared.stats.count(&shared.stats.rejected_busy);
            let told = refuse::answer(&stream, busy);
            refuse::still_open(&stream);
            told
        }
        None => false,
    };
    *reserve = open_reserve();
    told
}

/// Accept until shutdown.
pub fn accept_loop(
    listener: TcpListener,
    door: Door,
    shared: Arc<Shared>,
    pool: Arc<Pool<Accepted>>,
    reject: Sender<Refused>,
) {
    let mut reserve = open_reserve();
    let mut backoff = FIRST_BACKOFF;
    let mut last_log: Option<Instant> = None;
    let busy = refuse::busy_response();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => {
                backoff = FIRST_BACKOFF;
                accepted
            }
            Err(e) => {
                if shared.shutting_down.load(SeqCst) {
                    return;
                }
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                ) {
                    continue;
                }
                if last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    if out_of_descriptors(&e) {
                        log::warn!(
                            "accept failed: {e}; refusing with 503 until descriptors free up"
                        );
                    } else {
                        log::warn!("accept failed: {e}; trying again");
                    }
                    last_log = Some(Instant::now());
                }
                let told = out_of_descriptors(&e)
                    && refuse_on_reserve(&listener, &mut reserve, &busy, &shared);
                if !told {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                if reserve.is_none() {
                    reserve = open_reserve();
                }
                continue;
            }
        };
        if shared.shutting_down.load(SeqCst) {
            return;
        }
        let next_id = shared.next_id();
        shared.stats.count(&shared.stats.accepted);
        log::trace!("conn={next_id} accepted from {peer}");
        // Per-address admission, before a worker is taken (a trusted
        // proxy's clients are admitted by the address its head names).
        let admitted = match is_trusted(&shared.config.trusted_proxies, peer.ip()) {
            true => Ok(None),
            false => admit(&shared, peer.ip()).map(Some),
        };
        let admitted = match admitted {
            Ok(admitted) => admitted,
            Err((verdict, retry_after_s)) => {
                shared.stats.count(&shared.stats.rejected_per_ip);
                if last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    log::warn!("conn={next_id} peer={peer} refused (429): {verdict:?}");
                    last_log = Some(Instant::now());
                }
                refuse_later(
                    &reject,
                    Refused(stream, Why::PerIp { retry_after_s }),
                    &busy,
                );
                continue;
            }
        };
        let job = Accepted {
            stream,
            peer,
            id: next_id,
            door,
            admitted,
        };
        if let Err(job) = pool.submit(job) {
            shared.stats.count(&shared.stats.rejected_busy);
            log::warn!(
                "conn={} peer={peer} refused: all {} workers busy",
                job.id,
                shared.config.max_connections
            );
            refuse_later(&reject, Refused(job.stream, Why::Busy), &busy);
        }
    }
}

/// Hand a refused connection to `ws-reject`; if even its queue is full,
/// answer here without lingering.
fn refuse_later(reject: &Sender<Refused>, refused: Refused, busy: &[u8]) {
    match reject.try_send(refused) {
        Ok(()) => {}
        Err(TrySendError::Full(Refused(stream, why)))
        | Err(TrySendError::Disconnected(Refused(stream, why))) => {
            match why {
                Why::Busy => refuse::answer(&stream, busy),
                Why::PerIp { retry_after_s } => {
                    refuse::answer(&stream, &refuse::per_ip_response(retry_after_s))
                }
            };
            refuse::still_open(&stream);
        }
    }
}
