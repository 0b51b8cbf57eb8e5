//! Server configuration: one plain struct, every default sized for a small
//! board. Each field has a command-line flag of the same name in
//! kebab-case (`max_connections` is `--max-connections`).
//!
//! [`flags`] (in `flags.rs`) is the one table of flags: name, value kind,
//! default, help. The command-line parser, `--help` and the README's
//! configuration table all come from it, and a test checks that its
//! defaults are `Config::default()` and that the README shows it as it is.
//! `sources.rs` reads the same flags from a TOML file and from
//! `SWITCHBOARD_<FLAG>` variables.

mod cidr;
mod flags;
mod flags_chat;
mod flags_limits;
mod flags_ops;
mod flags_store;
mod flags_tls;
pub mod sources;

pub use cidr::Cidr;
pub use flags::{flags, help, markdown_table, Flag, Kind};
pub use sources::{Setting, Source};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the server can be told. `Config::default()` is what
/// `switchboard` runs with when given no flags; its values are written
/// once, below, and shown by [`flags`] (a test keeps the two equal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The TOML file the settings were read from, if any (read again on
    /// SIGHUP).
    pub config: Option<PathBuf>,
    /// The settings given by the command line, the environment or the
    /// file, with their sources ([`sources::load`]); empty for defaults.
    pub settings: Vec<Setting>,
    /// Address to listen on. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// At most this many connections are served at once, each by its own
    /// worker thread; one more gets `503`.
    pub max_connections: usize,
    /// At most this many of them from one address (IPv6: one /64); one
    /// more gets `429`. 0: a quarter of `max_connections`.
    pub max_per_ip: usize,
    /// New connections per second one address may open (with bursts of
    /// ten seconds' worth); faster gets `429`. 0: no limit.
    pub connect_rate: u32,
    /// Stack size of every thread the server starts.
    pub thread_stack: usize,
    /// Time allowed for the whole HTTP request head.
    pub handshake_timeout: Duration,
    /// Largest HTTP request head; a larger one gets `431`.
    pub max_header_bytes: usize,
    /// Largest single frame payload on any route.
    pub max_frame: u64,
    /// Largest message on `/chat` (all fragments).
    pub max_message: u64,
    /// Largest message on `/echo`.
    pub echo_max_message: u64,
    /// Frames waiting for one slow reader before it is cut off (1008).
    pub max_queue: usize,
    /// Bytes waiting for one slow reader before it is cut off (1008).
    pub max_queue_bytes: usize,
    /// A connection whose socket accepts no byte for this long is dropped.
    pub write_timeout: Duration,
    /// The server pings a connection that has been quiet this long.
    pub ping_interval: Duration,
    /// A connection that has sent nothing (not even a pong) for this long
    /// is closed with 1001.
    pub idle_timeout: Duration,
    /// After sending Close, how long to wait for the peer's Close.
    pub close_timeout: Duration,
    /// A frame (or fragmented message) that has begun must be complete
    /// within this long, else Close 1008 (`frame timeout`).
    pub frame_timeout: Duration,
    /// Bytes held for peers in all: partial messages and outbound queues
    /// (`--max-buffered`).
    pub max_buffered: usize,
    /// Chat messages kept per history stream (broadcasts, each topic).
    pub history: usize,
    /// Bytes of JSON kept in memory per history stream.
    pub history_bytes: usize,
    /// Bytes of JSON kept in memory for all streams together.
    pub history_total_bytes: usize,
    /// Topic history streams kept; the longest idle one without
    /// subscribers is dropped first.
    pub max_topics: usize,
    /// Longest chat `text` in bytes (longer gets `too_long`).
    pub max_text: usize,
    /// The most names one multicast may list (more: `bad_request`).
    pub max_recipients: usize,
    /// The most topics one connection may be subscribed to; the
    /// connections of one address, four times as many.
    pub max_subscriptions: usize,
    /// Chat messages per second per connection; 0 turns the limit off.
    pub rate: u32,
    /// Chat messages a connection may send at once.
    pub burst: u32,
    /// Log an annotated picture of everything that crosses the wire: TCP
    /// events, the handshake, every frame both ways. Off, it costs
    /// nothing.
    pub trace: bool,
    /// Serve the web client from this directory instead of the copy built
    /// into the binary (for development).
    pub web_root: Option<PathBuf>,
    /// How much to log (the `switchboard` command sets up the logger; the
    /// server itself only logs through `log`).
    pub log_level: log::LevelFilter,
    /// The history database file; `:memory:` keeps history in memory only
    /// (lost on restart, as before there was a file).
    pub db: PathBuf,
    /// A `--db` file that is not a usable database is moved aside (named
    /// in the log) and a new history starts, instead of refusing to start.
    pub db_reset: bool,
    /// Hold each `ack` of a kept message (broadcast, topic) until it is
    /// committed to the file.
    pub durable_acks: bool,
    /// How commits reach the disk: `normal` survives a crash of the
    /// process, `full` also a power loss (each commit is synced).
    pub sync: SyncMode,
    /// Messages kept per history stream in the file (0: no limit).
    pub retain_messages: u64,
    /// Days a message is kept in the file (0: no limit).
    pub retain_days: u64,
    /// Who may chat: guests only, guests and accounts, or accounts only.
    pub auth: AuthMode,
    /// Anyone may `register` (else only the CLI and admins).
    pub registration_open: bool,
    /// With `--auth required`: how long a connection may take to sign in.
    pub auth_timeout: Duration,
    /// Days a session token stays valid.
    pub session_days: u64,
    /// Keys for HS256 JWTs from an application backend.
    pub jwt_secret_file: Option<PathBuf>,
    /// The `aud` a JWT must name.
    pub jwt_audience: Option<String>,
    /// `--redis`: cluster mode through this Redis (docs/SCALING.md).
    pub redis: Option<crate::cluster::Address>,
    /// Accept `?token=` on the handshake.
    pub allow_query_token: bool,
    /// Web pages of other origins that may open a WebSocket (our own page
    /// always may; clients without `Origin` always may).
    pub allowed_origins: crate::http::origin::Policy,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// PEM certificate chain and key: the listener speaks TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// With TLS: a second listener without it.
    pub listen_plain: Option<SocketAddr>,
    /// With TLS: a listener that redirects every request to https.
    pub redirect_http: Option<SocketAddr>,
    /// A listener for `/metrics`, `/status` and `/healthz` only.
    pub metrics_listen: Option<SocketAddr>,
    /// Clients that may read `/metrics` and `/status` on the main listener.
    pub metrics_allow: Vec<Cidr>,
    /// The longest `retry_after_ms` a restart notice gives a client.
    pub restart_spread: Duration,
}

/// `--auth`: how much the server asks of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Guests only (no account messages).
    None,
    /// Guests, and accounts that own their names.
    Optional,
    /// Nothing of the chat before signing in.
    Required,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Optional => "optional",
            AuthMode::Required => "required",
        }
    }
}

/// SQLite's `synchronous` setting for the history file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// WAL with `synchronous=NORMAL`: a commit survives a crash of the
    /// process; a power loss may take the last commits.
    Normal,
    /// `synchronous=FULL`: every commit is synced to the disk.
    Full,
}

/// The longest `--restart-spread`: our clients believe a restart notice
/// for at most this long.
pub const MAX_RESTART_SPREAD: Duration = Duration::from_secs(300);

/// The `--db` value that means "no file".
pub const MEMORY: &str = ":memory:";

impl Config {
    /// The per-address connection cap in force (`--max-per-ip`, or a
    /// quarter of the pool).
    pub fn per_ip_cap(&self) -> usize {
        match self.max_per_ip {
            0 => (self.max_connections / 4).max(1),
            n => n,
        }
    }

    /// The in-memory history's byte bounds.
    pub fn history_bytes(&self) -> crate::chat::ring::Bytes {
        crate::chat::ring::Bytes {
            per_stream: self.history_bytes,
            total: self.history_total_bytes,
        }
    }

    /// Is history kept in a file?
    pub fn db_file(&self) -> Option<&std::path::Path> {
        (self.db.as_os_str() != MEMORY).then_some(self.db.as_path())
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            config: None,
            settings: Vec::new(),
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            max_connections: 1024,
            max_per_ip: 0,
            connect_rate: 20,
            thread_stack: 128 * 1024,
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 8 * 1024,
            max_frame: 16 * 1024 * 1024,
            max_message: 64 * 1024,
            // What a small board can afford per echo client; the
            // conformance run (Autobahn case 9) sets 16 MiB.
            echo_max_message: 1024 * 1024,
            // 4096: small chat messages then reach the byte bound's memory
            // only after ~600 KB, and a reader ~30 ms behind a burst of 3M
            // deliveries/s is not taken for a slow one (1024 was).
            max_queue: 4096,
            max_queue_bytes: 4 * 1024 * 1024,
            write_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            close_timeout: Duration::from_secs(2),
            frame_timeout: Duration::from_secs(30),
            // Sized for a 512 MiB board: with the server's own ~30 MiB and
            // a 128 KiB stack per worker, 64 MiB of buffers leaves room.
            max_buffered: 64 * 1024 * 1024,
            history: 100,
            // 100 ordinary messages are ~20 KB; 100 of the worst (4096
            // control characters, six bytes each in JSON) are 2.4 MB.
            history_bytes: 512 * 1024,
            history_total_bytes: 16 * 1024 * 1024,
            max_topics: 1024,
            max_text: 4096,
            max_recipients: crate::chat::wire::MAX_RECIPIENTS,
            max_subscriptions: 64,
            rate: 20,
            burst: 40,
            trace: false,
            web_root: None,
            log_level: log::LevelFilter::Info,
            db: PathBuf::from("switchboard.db"),
            db_reset: false,
            durable_acks: false,
            sync: SyncMode::Normal,
            retain_messages: 100_000,
            retain_days: 0,
            auth: AuthMode::Optional,
            registration_open: true,
            auth_timeout: Duration::from_secs(10),
            session_days: 30,
            jwt_secret_file: None,
            jwt_audience: None,
            redis: None,
            allow_query_token: false,
            allowed_origins: crate::http::origin::Policy::default(),
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            listen_plain: None,
            redirect_http: None,
            metrics_listen: None,
            metrics_allow: vec![
                Cidr::parse("127.0.0.0/8").expect("a block"),
                Cidr::parse("::1").expect("a block"),
            ],
            restart_spread: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Check that the values make sense together.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max-connections", self.max_connections as u64),
            ("max-header-bytes", self.max_header_bytes as u64),
            ("max-frame", self.max_frame),
            ("max-message", self.max_message),
            ("echo-max-message", self.echo_max_message),
            ("max-queue", self.max_queue as u64),
            ("max-queue-bytes", self.max_queue_bytes as u64),
            ("max-buffered", self.max_buffered as u64),
            ("history-bytes", self.history_bytes as u64),
            ("history-total-bytes", self.history_total_bytes as u64),
            ("max-topics", self.max_topics as u64),
            ("max-text", self.max_text as u64),
            ("max-recipients", self.max_recipients as u64),
            ("max-subscriptions", self.max_subscriptions as u64),
            ("burst", u64::from(self.burst)),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("--{name} must be at least 1"));
        }
        let durations = [
            ("handshake-timeout", self.handshake_timeout),
            ("write-timeout", self.write_timeout),
            ("ping-interval", self.ping_interval),
            ("idle-timeout", self.idle_timeout),
            ("close-timeout", self.close_timeout),
            ("frame-timeout", self.frame_timeout),
            ("auth-timeout", self.auth_timeout),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return Err(format!("--{name} must be longer than 0"));
        }
        if self.thread_stack < 64 * 1024 {
            return Err("--thread-stack must be at least 64KiB".into());
        }
        if self.max_header_bytes < 256 {
            return Err("--max-header-bytes must be at least 256".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tls-cert and --tls-key go together".into());
        }
        if self.tls_cert.is_none() && (self.listen_plain.is_some() || self.redirect_http.is_some())
        {
            return Err("--listen-plain and --redirect-http need --tls-cert and --tls-key".into());
        }
        if self.durable_acks && self.db_file().is_none() {
            return Err("--durable-acks needs a --db file (not :memory:)".into());
        }
        if self.retain_messages > i64::MAX as u64 {
            return Err("--retain-messages is too large".into());
        }
        if self.retain_messages != 0 && self.retain_messages < self.history as u64 {
            return Err("--retain-messages must be 0 (no limit) or at least --history".into());
        }
        if self.retain_days > 36_500 {
            return Err("--retain-days must be at most 36500 (0: no limit)".into());
        }
        if self.session_days == 0 || self.session_days > 3650 {
            return Err("--session-days must be 1 to 3650".into());
        }
        if self.db.as_os_str().is_empty() {
            return Err("--db needs a path (or :memory:)".into());
        }
        // The frame loop reads with a timeout; the OS cannot do less than 1 ms.
        if self.restart_spread > MAX_RESTART_SPREAD {
            return Err("--restart-spread must be at most 5m (clients believe no longer)".into());
        }
        if self.ping_interval < Duration::from_millis(10) {
            return Err("--ping-interval must be at least 10ms".into());
        }
        Ok(())
    }
}
