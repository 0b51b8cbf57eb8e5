//! Switchboard: a small thread-per-connection WebSocket chat server.
//!
//! ```no_run
//! use switchboard::{Config, Server};
//!
//! let config = Config { listen: "127.0.0.1:0".parse().unwrap(), ..Config::default() };
//! let server = Server::start(config).expect("bind");
//! println!("listening on {}", server.local_addr());
//! server.shutdown();
//! ```
//!
//! The crate is layered; each layer is a module that the ones above use:
//!
//! | module | what | uses |
//! |---|---|---|
//! | [`protocol`] | RFC 6455 with no I/O: handshake, frames, close, sessions | - |
//! | [`http`] | HTTP/1.1 request head and responses | - |
//! | [`chat`] | users, topics, history, the JSON wire protocol; no sockets | - |
//! | [`auth`] | passwords (Argon2id), HS256 tokens, session tokens; CPU only | - |
//! | [`counter`] | relaxed atomic counters for `/metrics` (no I/O) | - |
//! | [`cluster`] | Redis: a blocking RESP2 client (the base of the multi-host bus) | - |
//! | [`store`] | SQLite: durable history behind the chat's `History` seam | chat |
//! | `server` | accept loop, worker pool, connections, writers | protocol, http, chat, store |
//! | `fuzzing` | the bodies of the fuzz targets in `fuzz/` (hidden) | protocol, http, chat, auth |
//!
//! See the README for the architecture and the order to read the source.

#![forbid(unsafe_code)]

pub mod auth;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod counter;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod protocol;
mod server;
pub mod store;

pub use config::Config;

/// The version and the commit built (`0.1.0 (abc123def456)`), for
/// `--version`, the `/metrics` build info and `/status`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BUILT_FROM_COMMIT"),
    ")"
);
pub use server::{Server, Snapshot};

use std::fmt;

/// Errors that stop the server from starting.
#[derive(Debug)]
pub enum Error {
    /// The configuration is inconsistent; the text says which flag.
    Config(String),
    /// The listening socket could not be bound.
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// A thread could not be started.
    Spawn(std::io::Error),
    /// The history database could not be used.
    Store(store::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => write!(f, "invalid configuration: {why}"),
            Error::Bind { addr, .. } => write!(f, "cannot listen on {addr}"),
            Error::Spawn(_) => write!(f, "cannot start a thread"),
            Error::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(_) => None,
            Error::Bind { source, .. } => Some(source),
            Error::Spawn(source) => Some(source),
            Error::Store(_) => None,
        }
    }
}
