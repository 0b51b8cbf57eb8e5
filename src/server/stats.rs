//! Counters the server keeps about itself, readable while it runs as a
//! plain [`Snapshot`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Server-wide counters, totals since start (but `open_websockets`).
/// Only the server updates them; everyone else reads a [`Snapshot`].
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected_busy: AtomicU64,
    pub(crate) upgrades: AtomicU64,
    pub(crate) open_websockets: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) drains_started: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) refused_origins: AtomicU64,
    pub(crate) rejected_per_ip: AtomicU64,
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
    pub(crate) fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_written(&self, n: usize) {
        self.bytes_written.fetch_add(n as u64, Relaxed);
    }

    /// Read every counter.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            accepted: self.accepted.load(Relaxed),
            rejected_busy: self.rejected_busy.load(Relaxed),
            upgrades: self.upgrades.load(Relaxed),
            open_websockets: self.open_websockets.load(Relaxed),
            messages_in: self.messages_in.load(Relaxed),
            slow_consumers: self.slow_consumers.load(Relaxed),
            drains_started: self.drains_started.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            protocol_errors: self.protocol_errors.load(Relaxed),
            refused_origins: self.refused_origins.load(Relaxed),
            rejected_per_ip: self.rejected_per_ip.load(Relaxed),
        }
    }
}
