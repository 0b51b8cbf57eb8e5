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
//! | `doors.rs` | with TLS: `--listen-plain` and `--redirect-http` |
//! | `forwarded.rs` | the client behind a `--trusted-proxy` |
//! | `refuse.rs` | 503 for connections the pool cannot take |
//! | `pool.rs`, `threads.rs` | bounded workers; every thread counted or joined |
//! | `shared.rs` | what threads share; the live-connection table |
//! | `transport.rs` | one connection's byte stream (`Plain` TCP or `Tls`) |
//! | `tls.rs`, `tls_config.rs` | TLS on a connection; the certificate and its reload |
//! | `socket.rs` | reading onto a buffer, lingering close, the listening socket |
//! | `connection.rs` | the HTTP phase: head, route, handshake |
//! | `websocket.rs` | the frame loop, heartbeat, closing handshake |
//! | `ending.rs` | how a connection ended; which deadline comes first |
//! | `handlers.rs` | `/echo` and `/chat` on an open WebSocket |
//! | `gate.rs` | sign-in: tokens, passwords, throttles, address bans |
//! | `signin.rs`, `moderation.rs` | account and moderator requests, on the asker's worker |
//! | `files.rs` | `--web-root` files: regular, inside the root, streamed |
//! | `web_login.rs` | `POST /login`, `/logout`: the browser's session cookie |
//! | `outbound/` | the write turn, its budget, closing and cut-off |
//! | `memory.rs` | `--max-buffered`: the server-wide budget and who goes |
//! | `narrate.rs` | `--trace` |
//! | `descriptors.rs` | the descriptor limit and budget |
//! | `stats.rs` | counters and their snapshot |

mod choose;
mod cluster;
mod connection;
mod descriptors;
mod doors;
mod ending;
mod files;
mod forwarded;
mod gate;
mod handlers;
mod listener;
mod memory;
mod metrics;
mod moderation;
mod narrate;
mod ops;
mod outbound;
mod pool;
mod refuse;
mod reload;
mod routes;
mod shared;
mod signin;
mod socket;
mod stats;
mod status;
mod threads;
mod tls;
mod tls_config;
mod transport;
mod web_login;
mod websocket;

pub use stats::Snapshot;

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::store::Health;
use crate::{Config, Error};
use choose::{chat_for, gate_for, stop_writer, ACCOUNTS_EVERY, WRITER_STACK};
use cluster::Cluster;
use listener::Accepted;
use listener::Door;
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
    /// `--listen-plain` and `--redirect-http`: their addresses and threads.
    doors: Mutex<Vec<(listener::Door, SocketAddr, JoinHandle<()>)>>,
    reject: Mutex<Option<JoinHandle<()>>>,
    /// `ws-history`, when history is kept in a file.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The Redis bus's threads, in cluster mode.
    cluster: Option<Cluster>,
    /// `ws-accounts` and the sender whose drop ends it.
    accounts: Mutex<Option<(crossbeam_channel::Sender<()>, JoinHandle<()>)>>,
    /// `ws-sampler` and the sender whose drop ends it.
    sampler: Mutex<Option<(crossbeam_channel::Sender<()>, JoinHandle<()>)>>,
}

impl Server {
    /// Bind the listening socket and start the accept thread.
    pub fn start(config: Config) -> Result<Server, Error> {
        config.validate().map_err(Error::Config)?;
        // Refused sockets hold descriptors too: in the reject queue, and
        // while their 503 lingers.
        let refused = refuse::REJECT_QUEUE + refuse::MAX_LINGERING;
        descriptors::raise_and_check(config.max_connections, refused);
        let threads = Arc::new(Threads::default());
        // The history file first: a file that cannot be used stops the
        // start with one line, before anything listens.
        let (chat, store, mut writer, bus) = chat_for(&config, &threads)?;
        let chat = Arc::new(chat);
        let gate = match gate_for(&config, &chat) {
            Ok(gate) => gate,
            Err(e) => {
                stop_writer(store.as_deref(), writer);
                return Err(e);
            }
        };
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => match tls_config::Tls::load(cert, key) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    stop_writer(store.as_deref(), writer);
                    return Err(Error::Config(e));
                }
            },
            _ => None,
        };
        let bound = socket::listen(config.listen, config.max_connections)
            .and_then(|listener| Ok((listener.local_addr()?, listener)));
        let (addr, listener) = match bound {
            Ok(bound) => bound,
            Err(source) => {
                stop_writer(store.as_deref(), writer);
                return Err(Error::Bind {
                    addr: config.listen,
                    source,
                });
            }
        };
        let extra = match doors::bind(&config) {
            Ok(extra) => extra,
            Err(e) => {
                stop_writer(store.as_deref(), writer);
                return Err(e);
            }
        };
        log::info!("listening on {addr}");
        log::debug!("config: {config:?}");

        // The port the main listener really has (the redirect names it).
        let mut shared_config = config.clone();
        shared_config.listen = addr;
        // Cluster mode: the bus's threads (stopped and joined when
        // `cluster` is dropped, should the start fail from here on).
        let cluster = match bus {
            Some((bus, loops)) => match Cluster::start(bus, loops, &chat, &threads, WRITER_STACK) {
                Ok(cluster) => Some(cluster),
                Err(e) => {
                    stop_writer(store.as_deref(), writer);
                    return Err(e);
                }
            },
            None => None,
        };
        let redis = cluster.as_ref().map(|c| Arc::clone(&c.bus));
        let shared = Arc::new(Shared::new(
            shared_config,
            chat,
            (store, redis),
            gate,
            Arc::clone(&threads),
            tls,
        ));
        let for_workers = Arc::clone(&shared);
        let pool = Pool::new(
            config.max_connections,
            config.thread_stack,
            Arc::clone(&threads),
            move |job: Accepted| {
                connection::serve(job.stream, job.peer, job.id, job.door, &for_workers);
                // The address's count goes down only now.
                drop(job.admitted);
            },
        );
        let stack = config.thread_stack;
        let (reject_tx, reject_rx) = crossbeam_channel::bounded(refuse::REJECT_QUEUE);
        let reject = threads
            .spawn_service("ws-reject", stack, move || refuse::reject_loop(reject_rx))
            .map_err(|e| {
                stop_writer(shared.store.as_deref(), writer.take());
                Error::Spawn(e)
            })?;
        let (accept_shared, accept_pool) = (Arc::clone(&shared), Arc::clone(&pool));
        let extra_tx = reject_tx.clone();
        let spawned = threads.spawn_service("ws-accept", stack, move || {
            listener::accept_loop(listener, Door::Main, accept_shared, accept_pool, reject_tx)
        });
        let accept = match spawned {
            Ok(accept) => accept,
            Err(e) => {
                drop(extra_tx);
                // The reject queue's sender went with the closure, so
                // ws-reject ends; so does the writer.
                let _ = reject.join();
                stop_writer(shared.store.as_deref(), writer.take());
                return Err(Error::Spawn(e));
            }
        };
        let doors = doors::spawn(extra, &shared, &pool, extra_tx);
        // ws-accounts: picks up what `switchboard user ...` changed while
        // the server runs, and lets address bans expire. It ends when its
        // channel's sender (kept by the Server) is dropped.
        let (accounts_stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let accounts = match shared.gate.clone() {
            Some(gate) => {
                let chat = Arc::clone(&shared.chat);
                threads
                    .spawn_service("ws-accounts", stack.max(WRITER_STACK), move || {
                        while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                            stopped.recv_timeout(ACCOUNTS_EVERY)
                        {
                            gate.refresh(&chat);
                        }
                    })
                    .ok()
            }
            None => None,
        };

        // ws-sampler: the counters once a second for `/status`; it ends
        // when its channel's sender (kept by the Server) is dropped.
        let (sampler_stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let for_sampler = Arc::clone(&shared);
        let sampler = threads
            .spawn_service("ws-sampler", stack, move || loop {
                for_sampler.samples.push(status::sample(&for_sampler));
                let waited = stopped.recv_timeout(Duration::from_secs(1));
                if !matches!(waited, Err(crossbeam_channel::RecvTimeoutError::Timeout)) {
                    break;
                }
            })
            .map_err(|e| log::warn!("cannot start ws-sampler ({e}); /status will show no samples"))
            .ok();

        Ok(Server {
            sampler: Mutex::new(sampler.map(|handle| (sampler_stop, handle))),
            shared,
            pool,
            addr,
            accept: Mutex::new(Some(accept)),
            doors: Mutex::new(doors),
            reject: Mutex::new(Some(reject)),
            writer: Mutex::new(writer),
            cluster,
            accounts: Mutex::new(accounts.map(|handle| (accounts_stop, handle))),
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

    /// The address of an extra listener (`--listen-plain`,
    /// `--redirect-http`), with its real port.
    pub fn door_addr(&self, plain: bool) -> Option<SocketAddr> {
        self.door(if plain {
            listener::Door::Plain
        } else {
            listener::Door::Redirect
        })
    }

    /// The address of `--metrics-listen`, with its real port.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.door(listener::Door::Metrics)
    }

    fn door(&self, want: listener::Door) -> Option<SocketAddr> {
        self.doors
            .lock()
            .iter()
            .find(|(door, _, _)| *door == want)
            .map(|(_, addr, _)| *addr)
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
        // Wake every accept() call: connect to ourselves.
        doors::wake(self.addr);
        let _ = accept.join();
        for (_, addr, thread) in self.doors.lock().drain(..) {
            doors::wake(addr);
            let _ = thread.join();
        }
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
        for service in [&self.accounts, &self.sampler] {
            if let Some((stop, thread)) = service.lock().take() {
                drop(stop);
                let _ = thread.join();
            }
        }
        // Every member has left: the bus sends their leaves, then stops.
        if let Some(cluster) = &self.cluster {
            cluster.stop();
        }
        // Every worker is gone: nothing more is appended. The writer
        // commits what is queued, records the last seq, and ends.
        stop_writer(self.shared.store.as_deref(), self.writer.lock().take());
        log::info!("stopped in {:.3}s", started.elapsed().as_secs_f64());
    }

    /// The history file's health, when history is kept in a file.
    pub fn store_health(&self) -> Option<Health> {
        self.shared.store.as_ref().map(|s| s.health())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
