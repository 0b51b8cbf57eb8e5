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

use crate::auth::accounts::Accounts;
use crate::chat::bus::LocalBus;
use crate::chat::ring::Ring;
use crate::chat::{self, Chat};
use crate::config::{AuthMode, SyncMode};
use crate::protocol::{frame, OpCode};
use crate::store::{self, Health, SqliteAccounts, SqliteHistory};
use crate::{Config, Error};
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
        let (chat, store, mut writer) = chat_for(&config, &threads)?;
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
        let shared = Arc::new(Shared::new(
            shared_config,
            chat,
            store,
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

/// Ask the history writer to commit what is queued and end; join it.
fn stop_writer(store: Option<&SqliteHistory>, writer: Option<JoinHandle<()>>) {
    if let Some(store) = store {
        store.stop();
    }
    if let Some(writer) = writer {
        let _ = writer.join();
    }
}

/// What `chat_for` chose: the chat, the history file (if any) and its
/// writer thread.
type Chosen = (Chat, Option<Arc<SqliteHistory>>, Option<JoinHandle<()>>);

/// The chat, with the implementations this server uses behind its seams:
/// history in a SQLite file (the default) or in memory (`--db :memory:`),
/// numbered by the one-process bus from where the file left off.
fn chat_for(config: &Config, threads: &Threads) -> Result<Chosen, Error> {
    let settings = chat::Settings {
        history: config.history,
        max_topics: config.max_topics,
        max_text: config.max_text,
        max_message: config.max_message,
        rate: config.rate,
        burst: config.burst,
        batch_messages: (config.max_queue / BATCH_SHARE).clamp(1, outbound::MAX_IOV),
        batch_bytes: (config.max_queue_bytes / BATCH_SHARE).clamp(1, 64 * 1024),
        durable_acks: config.durable_acks,
        auth: config.auth.as_str(),
        registration_open: config.registration_open,
        max_recipients: config.max_recipients,
        max_subscriptions: config.max_subscriptions,
    };
    let encode: fn(&str) -> chat::Frame =
        |json| frame::encode(OpCode::Text, json.as_bytes()).into();
    let Some(path) = config.db_file() else {
        log::info!("history: in memory only (--db :memory:), lost on restart");
        let chat = Chat::new(
            settings,
            encode,
            Arc::new(Ring::new(config.history).bounded(config.history_bytes())),
            Arc::new(LocalBus::default()),
        );
        return Ok((chat, None, None));
    };
    let options = store::Options {
        path: path.to_owned(),
        reset: config.db_reset,
        sync_full: config.sync == SyncMode::Full,
        ring: config.history,
        ring_bytes: config.history_bytes(),
        retain_messages: config.retain_messages,
        retain_days: config.retain_days,
    };
    let opened = store::open(&options).map_err(Error::Store)?;
    log::info!(
        "history: {} (epoch {}, last seq {}, synchronous={})",
        path.display(),
        opened.epoch,
        opened.last_seq,
        if options.sync_full { "FULL" } else { "NORMAL" }
    );
    let (history, writer) = SqliteHistory::new(opened, &options);
    let history = Arc::new(history);
    let bus = LocalBus::starting_after(history.last_seq());
    let writer = threads
        .spawn_service(
            "ws-history",
            config.thread_stack.max(WRITER_STACK),
            move || writer.run(),
        )
        .map_err(Error::Spawn)?;
    let chat = Chat::new(settings, encode, history.clone(), Arc::new(bus));
    Ok((chat, Some(history), Some(writer)))
}

/// How often `ws-accounts` looks for changes made by the CLI.
const ACCOUNTS_EVERY: Duration = Duration::from_secs(2);

/// The sign-in machinery (`None` with `--auth none`): accounts in the
/// history file, or in memory with `--db :memory:`. Names and bans are
/// loaded before anything listens.
fn gate_for(config: &Config, chat: &Chat) -> Result<Option<Arc<gate::Gate>>, Error> {
    if config.auth == AuthMode::None {
        return Ok(None);
    }
    let accounts: Arc<dyn Accounts> = match config.db_file() {
        Some(path) => Arc::new(SqliteAccounts::open(path)),
        None => Arc::new(SqliteAccounts::in_memory().map_err(Error::Config)?),
    };
    let gate = gate::Gate::new(config, accounts).map_err(Error::Config)?;
    gate.refresh(chat);
    log::info!(
        "accounts: --auth {}, registration {}{}",
        config.auth.as_str(),
        if config.registration_open {
            "open"
        } else {
            "closed"
        },
        if config.jwt_secret_file.is_some() {
            ", JWTs accepted"
        } else {
            ""
        }
    );
    Ok(Some(Arc::new(gate)))
}

/// SQLite's own stack use is larger than a worker's; its writer gets
/// at least this much.
const WRITER_STACK: usize = 1024 * 1024;

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
