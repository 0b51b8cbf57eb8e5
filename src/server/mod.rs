//! The running server: threads, sockets and the writers between them.
//! This is the only module that touches a socket, starts a thread, or
//! chooses an implementation (here: the in-memory [`Ring`] history and
//! the one-process [`LocalBus`]).
//!
//! ```text
//!            ┌────────────┐ submit  ┌──────────────────────────────┐
//!  clients ─►│ ws-accept  │────────►│ pool: ws-worker-1..N         │ N ≤ max_connections
//!            └─────┬──────┘         │ one blocking thread per conn │
//!                  │ full           │  HTTP ─► 101 ─► frame loop   │
//!            ┌─────▼──────┐         └──────────────┬───────────────┘
//!            │ ws-reject  │ 503                    │ send / deliver
//!            └────────────┘         ┌──────────────▼───────────────┐
//!                                   │ Outbound (one per conn)      │
//!                                   │ queue + write turn; a        │
//!                                   │ ws-drain-ID thread only      │
//!                                   │ while the conn is behind     │
//!                                   └──────────────┬───────────────┘
//!                                   Arc<Transport>: one socket, one fd,
//!                                   shared by worker, writer, shutdown
//! ```
//!
//! Threads: `ws-accept` and `ws-reject` (2), at most `max_connections`
//! workers, and at most one `ws-drain-ID` per connection whose socket
//! buffer is full: at most `2 + 2 × max_connections` in all, and
//! `2 + busy connections` on a server whose clients keep up.
//!
//! | file | what |
//! |---|---|
//! | `listener.rs` | the accept loop; out-of-descriptor handling |
//! | `refuse.rs` | 503 for connections the pool cannot take |
//! | `pool.rs`, `threads.rs` | bounded workers; every thread counted or joined |
//! | `shared.rs` | what threads share; the live-connection table |
//! | `transport.rs` | one connection's byte stream (`Plain` TCP) |
//! | `socket.rs` | reading onto a buffer, lingering close, the listening socket |
//! | `connection.rs` | the HTTP phase: head, route, handshake |
//! | `websocket.rs` | the frame loop, heartbeat, closing handshake |
//! | `handlers.rs` | `/echo` and `/chat` on an open WebSocket |
//! | `outbound/` | the write turn, its budget, closing and cut-off |
//! | `narrate.rs` | `--trace` |
//! | `descriptors.rs` | the descriptor limit and budget |
//! | `stats.rs` | counters and their snapshot |

mod connection;
mod descriptors;
mod handlers;
mod listener;
mod narrate;
mod outbound;
mod pool;
mod refuse;
mod shared;
mod socket;
mod stats;
mod threads;
mod transport;
mod websocket;

pub use stats::Snapshot;

use parking_lot::Mutex;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::chat::bus::LocalBus;
use crate::chat::history::Ring;
use crate::chat::{self, Chat};
use crate::protocol::{frame, OpCode};
use crate::{Config, Error};
use listener::Accepted;
use pool::Pool;
use shared::Shared;
use threads::Threads;

/// How long shutdown waits past `close_timeout` for the closing
/// handshakes to finish before it cuts the rest off: the worker notices
/// its peer's Close at once, and needs a moment to leave the chat.
const SHUTDOWN_SLACK: Duration = Duration::from_millis(200);
/// How long shutdown waits for threads after cutting connections off.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// A running Switchboard server.
///
/// Dropping it shuts it down, as [`Server::shutdown`] does.
pub struct Server {
    shared: Arc<Shared>,
    pool: Arc<Pool<Accepted>>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    reject: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Bind the listening socket and start the accept thread.
    pub fn start(config: Config) -> Result<Server, Error> {
        config.validate().map_err(Error::Config)?;
        // Refused sockets hold descriptors too: in the reject queue, and
        // while their 503 lingers.
        let refused = refuse::REJECT_QUEUE + refuse::MAX_LINGERING;
        descriptors::raise_and_check(config.max_connections, refused);
        let listener = socket::listen(config.listen, config.max_connections).map_err(|source| {
            Error::Bind {
                addr: config.listen,
                source,
            }
        })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        log::info!("listening on {addr}");
        log::debug!("config: {config:?}");

        let threads = Arc::new(Threads::default());
        let shared = Arc::new(Shared::new(
            config.clone(),
            Arc::new(chat_for(&config)),
            Arc::clone(&threads),
        ));
        let for_workers = Arc::clone(&shared);
        let pool = Pool::new(
            config.max_connections,
            config.thread_stack,
            Arc::clone(&threads),
            move |job: Accepted| connection::serve(job.stream, job.peer, job.id, &for_workers),
        );
        let stack = config.thread_stack;
        let (reject_tx, reject_rx) = crossbeam_channel::bounded(refuse::REJECT_QUEUE);
        let reject = threads
            .spawn_service("ws-reject", stack, move || refuse::reject_loop(reject_rx))
            .map_err(Error::Spawn)?;
        let (accept_shared, accept_pool) = (Arc::clone(&shared), Arc::clone(&pool));
        let accept = threads
            .spawn_service("ws-accept", stack, move || {
                listener::accept_loop(listener, accept_shared, accept_pool, reject_tx)
            })
            .map_err(Error::Spawn)?;

        Ok(Server {
            shared,
            pool,
            addr,
            accept: Mutex::new(Some(accept)),
            reject: Mutex::new(Some(reject)),
        })
    }

    /// The address the server listens on (with the real port when the
    /// configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The server's counters now.
    pub fn stats(&self) -> Snapshot {
        self.shared.stats.snapshot()
    }

    /// Worker and drain threads alive now (the accept and reject threads
    /// are not counted).
    pub fn threads(&self) -> usize {
        self.shared.threads.live()
    }

    /// Users connected to the chat now.
    pub fn chat_members(&self) -> usize {
        self.shared.chat.members()
    }

    /// Worker threads alive now, busy or idle.
    pub fn workers(&self) -> usize {
        self.pool.workers()
    }

    /// Stop: no new connections; Close 1001 to every open WebSocket; wait
    /// `close_timeout` for them to finish their closing handshakes, then
    /// cut off the rest; join every thread. Takes a bounded time, and does
    /// nothing the second time.
    pub fn shutdown(&self) {
        let Some(accept) = self.accept.lock().take() else {
            return;
        };
        log::info!("shutting down");
        self.shared.shutting_down.store(true, SeqCst);
        self.pool.shutdown();
        // Wake the accept() call: connect to ourselves.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let _ = accept.join();
        if let Some(reject) = self.reject.lock().take() {
            let _ = reject.join();
        }

        self.shared.close_all();
        let grace = self.shared.config.close_timeout + SHUTDOWN_SLACK;
        let started = Instant::now();
        if !self.shared.threads.wait_all(grace) {
            let cut = self.shared.cut_all();
            log::warn!("{cut} connections did not close in {grace:?}; cut them off");
            if !self.shared.threads.wait_all(CUT_GRACE) {
                log::error!(
                    "{} threads still running after shutdown",
                    self.shared.threads.live()
                );
            }
        }
        log::info!("stopped in {:.3}s", started.elapsed().as_secs_f64());
    }
}

/// The chat, with the implementations this server uses behind its seams.
fn chat_for(config: &Config) -> Chat {
    let settings = chat::Settings {
        history: config.history,
        max_topics: config.max_topics,
        max_text: config.max_text,
        max_message: config.max_message,
        rate: config.rate,
        burst: config.burst,
        batch_messages: (config.max_queue / BATCH_SHARE).clamp(1, outbound::MAX_IOV),
        batch_bytes: (config.max_queue_bytes / BATCH_SHARE).clamp(1, 64 * 1024),
    };
    Chat::new(
        settings,
        |json| frame::encode(OpCode::Text, json.as_bytes()).into(),
        Arc::new(Ring::new(config.history)),
        Arc::new(LocalBus::default()),
    )
}

/// A worker flushes what it routed once it reaches a quarter of a
/// recipient's queue bounds: a reader that keeps up then never sees its
/// queue more than a quarter full because of batching, so batching alone
/// can never cut anyone off (four senders batching to one reader at once
/// still fit).
const BATCH_SHARE: usize = 4;

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
