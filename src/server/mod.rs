//! The running server: threads, sockets and the writers between them.
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
//!                                   └──────────────────────────────┘
//! ```
//!
//! Threads: `ws-accept` and `ws-reject` (2), at most `max_connections`
//! workers, and at most one `ws-drain-ID` per connection whose socket
//! buffer is full: at most `2 + 2 × max_connections` in all, and
//! `2 + busy connections` on a server whose clients keep up.

mod connection;
mod listener;
mod outbound;
mod pool;
mod stats;
mod threads;

pub use stats::Stats;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::chat::{self, Chat};
use crate::protocol::{frame, CloseCode, OpCode};
use crate::{Config, Error};
use listener::{Accepted, Refused};
use outbound::Outbound;
use pool::Pool;
use threads::Threads;

/// One connection as shutdown sees it.
struct Conn {
    /// A handle on the socket, to cut it off if it does not close in time.
    socket: TcpStream,
    /// Set once the connection is a WebSocket.
    outbound: Option<Arc<Outbound>>,
}

/// What every thread of the server shares.
pub(crate) struct Shared {
    pub config: Config,
    pub chat: Arc<Chat>,
    pub stats: Arc<Stats>,
    pub threads: Arc<Threads>,
    pub shutting_down: AtomicBool,
    conns: Mutex<HashMap<u64, Conn>>,
}

impl Shared {
    fn register(&self, id: u64, stream: &TcpStream) {
        if let Ok(socket) = stream.try_clone() {
            self.conns.lock().insert(
                id,
                Conn {
                    socket,
                    outbound: None,
                },
            );
        }
    }

    fn set_outbound(&self, id: u64, out: &Arc<Outbound>) {
        if let Some(conn) = self.conns.lock().get_mut(&id) {
            conn.outbound = Some(Arc::clone(out));
        }
    }

    fn unregister(&self, id: u64) {
        self.conns.lock().remove(&id);
    }
}

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
        let listener =
            listen(config.listen, config.max_connections).map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        log::info!("listening on {addr}");
        log::debug!("config: {config:?}");

        let threads = Arc::new(Threads::default());
        let chat = Arc::new(Chat::new(
            chat::Settings {
                history: config.history,
                max_topics: config.max_topics,
                max_text: config.max_text,
                max_message: config.max_message,
                rate: config.rate,
                burst: config.burst,
                batch_messages: (config.max_queue / 4).clamp(1, outbound::MAX_IOV),
                batch_bytes: (config.max_queue_bytes / 4).clamp(1, 64 * 1024),
            },
            |json| frame::encode(OpCode::Text, json.as_bytes()).into(),
        ));
        let shared = Arc::new(Shared {
            chat,
            stats: Arc::new(Stats::default()),
            threads: Arc::clone(&threads),
            shutting_down: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            config,
        });
        let for_workers = Arc::clone(&shared);
        let pool = Pool::new(
            shared.config.max_connections,
            shared.config.thread_stack,
            Arc::clone(&threads),
            move |job: Accepted| connection::serve(job.stream, job.peer, job.id, &for_workers),
        );
        let stack = shared.config.thread_stack;

        let (reject_tx, reject_rx) = crossbeam_channel::bounded::<Refused>(listener::REJECT_QUEUE);
        let reject = std::thread::Builder::new()
            .name("ws-reject".into())
            .stack_size(stack)
            .spawn(move || listener::reject_loop(reject_rx))
            .map_err(Error::Spawn)?;
        let (accept_shared, accept_pool) = (Arc::clone(&shared), Arc::clone(&pool));
        let accept = std::thread::Builder::new()
            .name("ws-accept".into())
            .stack_size(stack)
            .spawn(move || listener::accept_loop(listener, accept_shared, accept_pool, reject_tx))
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

    /// Live counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
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

        // Close every WebSocket with 1001; connections still in their HTTP
        // phase are cut at once.
        let conns: Vec<(TcpStream, Option<Arc<Outbound>>)> = self
            .shared
            .conns
            .lock()
            .values()
            .filter_map(|c| Some((c.socket.try_clone().ok()?, c.outbound.clone())))
            .collect();
        for (socket, outbound) in &conns {
            match outbound {
                Some(out) => {
                    out.close(CloseCode::GoingAway, "server shutdown");
                }
                None => {
                    let _ = socket.shutdown(Shutdown::Both);
                }
            }
        }
        let grace = self.shared.config.close_timeout + Duration::from_millis(200);
        let started = Instant::now();
        if !self.shared.threads.wait_all(grace) {
            let left: Vec<TcpStream> = self
                .shared
                .conns
                .lock()
                .values()
                .filter_map(|c| c.socket.try_clone().ok())
                .collect();
            log::warn!(
                "{} connections did not close in {grace:?}; cutting them off",
                left.len()
            );
            for socket in left {
                let _ = socket.shutdown(Shutdown::Both);
            }
            for (_, out) in &conns {
                if let Some(out) = out {
                    out.abort();
                }
            }
            if !self.shared.threads.wait_all(Duration::from_secs(2)) {
                log::error!(
                    "{} threads still running after shutdown",
                    self.shared.threads.live()
                );
            }
        }
        log::info!("stopped in {:.3}s", started.elapsed().as_secs_f64());
    }
}

/// socket + bind + listen, with `SO_REUSEADDR` (a restarted server can bind
/// the port at once) and a listen backlog sized for bursts of connections:
/// the kernel finishes TCP handshakes into this queue before `accept()` runs,
/// and `std`'s fixed 128 drops SYNs (1 s client retries) in a connect storm.
/// The kernel caps it at `net.core.somaxconn`.
fn listen(addr: SocketAddr, max_connections: usize) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    let backlog = max_connections.clamp(128, 4096) as i32;
    socket.listen(backlog)?;
    Ok(socket.into())
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
