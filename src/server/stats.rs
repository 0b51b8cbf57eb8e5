//! Counters the server keeps about itself: read while it runs as a plain
//! [`Snapshot`], and written out by `/metrics` (`metrics.rs`). Each is a
//! relaxed atomic ([`Counter`]) bumped where the event happens; nothing
//! here takes a lock.

use crate::counter::{ByLabel, Counter};

/// Why a connection was refused before it became a WebSocket.
pub const REJECT_REASONS: [&str; 5] = ["pool_full", "per_ip", "origin", "auth", "handshake"];

/// The close codes the server sends, as `/metrics` labels (the last
/// takes every other code).
pub const CLOSE_CODES: [&str; 9] = [
    "1000", "1001", "1002", "1003", "1007", "1008", "1009", "1011", "other",
];

/// How a frame reached its socket (see `outbound/mod.rs`).
pub const WRITE_PATHS: [&str; 3] = ["direct", "combined", "drain"];

/// Server-wide counters, totals since start (but `open_websockets`).
/// Only the server updates them; everyone else reads a [`Snapshot`].
#[derive(Debug)]
pub struct Stats {
    pub(crate) accepted: Counter,
    pub(crate) rejected_busy: Counter,
    pub(crate) upgrades: Counter,
    pub(crate) open_websockets: Counter,
    pub(crate) messages_in: Counter,
    pub(crate) slow_consumers: Counter,
    pub(crate) drains_started: Counter,
    pub(crate) bytes_written: Counter,
    pub(crate) bytes_read: Counter,
    pub(crate) protocol_errors: Counter,
    pub(crate) refused_origins: Counter,
    pub(crate) rejected_per_ip: Counter,
    /// Handshakes refused 401/403 by the chat's admission (token, ban).
    pub(crate) rejected_auth: Counter,
    /// Requests to a WebSocket route that were not a valid handshake,
    /// and request heads that were bad or too slow.
    pub(crate) rejected_handshake: Counter,
    /// Close frames the server sent, by code.
    pub(crate) closes: ByLabel<9>,
    /// Frames written, by write path.
    pub(crate) delivered: ByLabel<3>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            accepted: Counter::default(),
            rejected_busy: Counter::default(),
            upgrades: Counter::default(),
            open_websockets: Counter::default(),
            messages_in: Counter::default(),
            slow_consumers: Counter::default(),
            drains_started: Counter::default(),
            bytes_written: Counter::default(),
            bytes_read: Counter::default(),
            protocol_errors: Counter::default(),
            refused_origins: Counter::default(),
            rejected_per_ip: Counter::default(),
            rejected_auth: Counter::default(),
            rejected_handshake: Counter::default(),
            closes: ByLabel::new(CLOSE_CODES),
            delivered: ByLabel::new(WRITE_PATHS),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// TCP connections accepted.
    pub accepted: u64,
    /// Connections refused with 503: every worker was busy, or no
    /// descriptor or thread was left for them.
    pub rejected_busy: u64,
    /// WebSocket handshakes completed.
    pub upgrades: u64,
    /// WebSocket connections open now.
    pub open_websockets: u64,
    /// Data messages received.
    pub messages_in: u64,
    /// Connections closed with 1008 because their queue overflowed.
    pub slow_consumers: u64,
    /// Times a drain thread took over a connection whose socket was full.
    pub drains_started: u64,
    /// Bytes written to sockets by the writers.
    pub bytes_written: u64,
    /// Connections failed for breaking RFC 6455.
    pub protocol_errors: u64,
    /// Handshakes refused (403) for their `Origin`.
    pub refused_origins: u64,
    /// Connections refused (429) for their address's limits.
    pub rejected_per_ip: u64,
}

impl Stats {
    /// Add one to a counter.
    pub(crate) fn count(&self, counter: &Counter) {
        counter.inc();
    }

    pub(crate) fn add_written(&self, n: usize) {
        self.bytes_written.add(n as u64);
    }

    /// A Close frame with this code went out.
    pub(crate) fn closed_with(&self, code: u16) {
        self.closes.inc(&code.to_string());
    }

    /// Why connections were refused, as `/metrics` labels.
    pub(crate) fn rejected(&self) -> [(&'static str, u64); 5] {
        let counts = [
            &self.rejected_busy,
            &self.rejected_per_ip,
            &self.refused_origins,
            &self.rejected_auth,
            &self.rejected_handshake,
        ];
        std::array::from_fn(|i| (REJECT_REASONS[i], counts[i].get()))
    }

    /// Read every counter.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            accepted: self.accepted.get(),
            rejected_busy: self.rejected_busy.get(),
            upgrades: self.upgrades.get(),
            open_websockets: self.open_websockets.get(),
            messages_in: self.messages_in.get(),
            slow_consumers: self.slow_consumers.get(),
            drains_started: self.drains_started.get(),
            bytes_written: self.bytes_written.get(),
            protocol_errors: self.protocol_errors.get(),
            refused_origins: self.refused_origins.get(),
            rejected_per_ip: self.rejected_per_ip.get(),
        }
    }
}
