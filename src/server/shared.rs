//! What every thread of the server shares, and the live-connection table
//! that lets shutdown close or cut every connection.
//!
//! ```text
//!  conns: id ─► Conn { transport: Arc<Transport>,      the one descriptor
//!                      outbound: Option<Arc<Outbound>> once it is a WebSocket }
//! ```
//!
//! The table holds the same `Arc<Transport>` as the worker (never a
//! `try_clone`), so registering cannot fail and costs no descriptor. Its
//! lock is held only to insert, remove or copy out `Arc`s; the socket
//! work of shutdown happens after it is released.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use super::gate::Gate;
use super::memory::Memory;
use super::outbound::Outbound;
use super::stats::Stats;
use super::threads::Threads;
use super::transport::Transport;
use crate::auth::per_ip::PerIp;
use crate::chat::Chat;
use crate::http::origin::Policy;
use crate::protocol::frame::{self, OpCode};
use crate::protocol::CloseCode;
use crate::store::SqliteHistory;
use crate::Config;

/// One connection as shutdown sees it.
struct Conn {
    transport: Arc<Transport>,
    /// Set once the connection is a WebSocket.
    outbound: Option<Arc<Outbound>>,
    /// It is a chat connection (told of a restart before its Close).
    chat: bool,
}

/// What every thread of the server shares.
pub(crate) struct Shared {
    pub config: Config,
    pub chat: Arc<Chat>,
    /// The history file, when there is one (for `/healthz`).
    pub store: Option<Arc<SqliteHistory>>,
    /// The Redis bus in cluster mode (for `/healthz` and `/metrics`).
    pub redis: Option<Arc<crate::cluster::bus::RedisBus>>,
    /// Sign-in and tokens (`None` with `--auth none`).
    pub gate: Option<Arc<Gate>>,
    pub stats: Arc<Stats>,
    pub threads: Arc<Threads>,
    pub shutting_down: AtomicBool,
    /// Connections per address (`--max-per-ip`, `--connect-rate`); held
    /// only to count, by the accept loop and by connections that end.
    pub per_ip: Mutex<PerIp>,
    /// Bytes buffered for peers, server-wide (`--max-buffered`).
    pub memory: Arc<Memory>,
    /// The TLS settings, with `--tls-cert` and `--tls-key`.
    pub tls: Option<super::tls_config::Tls>,
    /// `--allowed-origins` in force (SIGHUP may replace it).
    origins: Mutex<Arc<Policy>>,
    /// The settings in force and their sources (for `/status`; SIGHUP
    /// replaces them).
    pub settings: Mutex<Vec<crate::config::Setting>>,
    /// The last 15 minutes of counters, one sample a second (`/status`).
    pub samples: super::status::Samples,
    started: std::time::Instant,
    conns: Mutex<HashMap<u64, Conn>>,
    /// Connections being served (the length of `conns`, without its lock).
    live: AtomicUsize,
    /// The last connection id given (every listener takes from it).
    last_id: crate::counter::AtomicU64,
}

impl Shared {
    pub fn new(
        config: Config,
        chat: Arc<Chat>,
        (store, redis): super::choose::Kept,
        gate: Option<Arc<Gate>>,
        threads: Arc<Threads>,
        tls: Option<super::tls_config::Tls>,
    ) -> Shared {
        Shared {
            tls,
            per_ip: Mutex::new(PerIp::new(config.per_ip_cap(), config.connect_rate)),
            memory: Arc::new(Memory::new(config.max_buffered)),
            origins: Mutex::new(Arc::new(config.allowed_origins.clone())),
            settings: Mutex::new(config.settings.clone()),
            samples: super::status::Samples::default(),
            config,
            chat,
            store,
            redis,
            gate,
            stats: Arc::new(Stats::default()),
            threads,
            shutting_down: AtomicBool::new(false),
            started: std::time::Instant::now(),
            conns: Mutex::new(HashMap::new()),
            live: AtomicUsize::new(0),
            last_id: crate::counter::AtomicU64::new(0),
        }
    }

    /// The `--allowed-origins` in force.
    pub fn origins(&self) -> Arc<Policy> {
        Arc::clone(&self.origins.lock())
    }

    pub fn set_origins(&self, policy: Policy) {
        *self.origins.lock() = Arc::new(policy);
    }

    /// Connections being served now.
    pub fn live(&self) -> usize {
        self.live.load(SeqCst)
    }

    /// A new connection id, unique across listeners.
    pub fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, SeqCst) + 1
    }

    /// How long a new connection has to send its request head: the
    /// `--handshake-timeout`, or a fifth of it (at least 1 s) while more
    /// than 90% of the workers are taken, so heads trickled in by many
    /// addresses cannot keep the last workers (issue 14).
    pub fn handshake_timeout(&self) -> std::time::Duration {
        let full = self.config.handshake_timeout;
        let live = self.live.load(SeqCst);
        if live * 10 > self.config.max_connections * 9 {
            full.min((full / 5).max(std::time::Duration::from_secs(1)))
        } else {
            full
        }
    }

    /// Milliseconds since the server started (a monotonic clock for
    /// admission's buckets).
    pub fn clock_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Why the server is degraded, if it is (`/healthz` says 503).
    pub fn degraded(&self) -> Option<&'static str> {
        if self.redis.as_ref().is_some_and(|bus| !bus.is_healthy()) {
            return Some("redis unreachable: messages refused");
        }
        let store = self.store.as_ref()?;
        (!store.health().writing).then_some("history not persisted")
    }

    pub fn register(&self, id: u64, transport: &Arc<Transport>) {
        let conn = Conn {
            transport: Arc::clone(transport),
            outbound: None,
            chat: false,
        };
        self.conns.lock().insert(id, conn);
        self.live.fetch_add(1, SeqCst);
    }

    pub fn set_outbound(&self, id: u64, out: &Arc<Outbound>, chat: bool) {
        if let Some(conn) = self.conns.lock().get_mut(&id) {
            conn.outbound = Some(Arc::clone(out));
            conn.chat = chat;
        }
    }

    pub fn unregister(&self, id: u64) {
        if self.conns.lock().remove(&id).is_some() {
            self.live.fetch_sub(1, SeqCst);
        }
    }

    /// Copies of every connection's handles, taken under the lock and
    /// used after it.
    fn handles(&self) -> Vec<(Arc<Transport>, Option<Arc<Outbound>>, bool)> {
        self.conns
            .lock()
            .values()
            .map(|c| (Arc::clone(&c.transport), c.outbound.clone(), c.chat))
            .collect()
    }

    /// Shutdown, first pass: every chat client is told to come back after
    /// its own random delay within `--restart-spread`, then every
    /// WebSocket gets Close 1001; a connection still in its HTTP phase is
    /// cut at once.
    pub fn close_all(&self) {
        for (transport, outbound, chat) in self.handles() {
            match outbound {
                Some(out) => self.goodbye(&out, chat),
                None => transport.shutdown(Shutdown::Both),
            }
        }
    }

    /// The server is stopping: a chat client is told when to come back
    /// (its own random delay within `--restart-spread`), then Close 1001.
    /// Also for a connection that became a WebSocket while shutdown began.
    pub fn goodbye(&self, out: &Arc<Outbound>, chat: bool) {
        if chat {
            let spread = self.config.restart_spread.as_millis() as u64;
            let random = std::collections::hash_map::RandomState::new();
            let retry = random.hash_one(out.id()) % spread.saturating_add(1);
            let json = crate::chat::messages::restarting(retry);
            let frame = frame::encode(OpCode::Text, json.as_bytes());
            // Like the Close behind it, past the queue's bounds: a full
            // queue must not turn it into a cut-off.
            out.queue_last(frame.into());
        }
        out.close(CloseCode::GoingAway, "server shutdown");
    }

    /// Shutdown, second pass: cut off whatever did not close in time.
    /// Returns how many were cut.
    pub fn cut_all(&self) -> usize {
        let left = self.handles();
        for (transport, outbound, _) in &left {
            transport.shutdown(Shutdown::Both);
            if let Some(out) = outbound {
                out.abort();
            }
        }
        left.len()
    }
}
