//! Counters the server keeps about itself, readable while it runs.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Server-wide counters. All are totals since start.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub accepted: AtomicU64,
    /// Connections refused with 503 because every worker was busy.
    pub rejected_busy: AtomicU64,
    /// WebSocket handshakes completed.
    pub upgrades: AtomicU64,
    /// WebSocket connections open now.
    pub open_websockets: AtomicU64,
    /// Data messages received.
    pub messages_in: AtomicU64,
    /// Connections closed with 1008 because their queue overflowed.
    pub slow_consumers: AtomicU64,
    /// Times a drain thread took over a connection whose socket was full.
    pub drains_started: AtomicU64,
    /// Bytes written to sockets by the writers.
    pub bytes_written: AtomicU64,
    /// Connections failed for breaking RFC 6455.
    pub protocol_errors: AtomicU64,
}

impl Stats {
    pub(crate) fn add_written(&self, n: usize) {
        self.bytes_written.fetch_add(n as u64, Relaxed);
    }

    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}
