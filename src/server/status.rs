//! The live status page's data: once a second the `ws-sampler` thread
//! reads the counters into a ring of the last 15 minutes of samples
//! ([`Samples`]); `/status.json` returns the ring with the effective
//! configuration, the build and the uptime, and `/status` is a page that
//! draws it (plain SVG, no script from elsewhere).
//!
//! The ring's lock is held only to push one sample or copy the ring out;
//! the JSON is written after it is released.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use super::shared::Shared;

/// Samples kept: one a second for 15 minutes.
pub const KEPT: usize = 15 * 60;

/// The page (`src/server/status.html`), built into the binary.
pub const PAGE: &str = include_str!("status.html");

/// The counters at one second. Totals are cumulative (the page takes the
/// differences); the rest are levels.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Unix time, milliseconds.
    pub at_ms: u64,
    pub websockets: u64,
    pub members: u64,
    pub messages: u64,
    pub deliveries: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub slow_consumers: u64,
    pub history_lag: u64,
}

/// The last [`KEPT`] samples.
#[derive(Debug, Default)]
pub struct Samples(Mutex<VecDeque<Sample>>);

impl Samples {
    pub fn push(&self, sample: Sample) {
        let mut ring = self.0.lock();
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    pub fn copy(&self) -> Vec<Sample> {
        self.0.lock().iter().copied().collect()
    }
}

/// Read the counters now.
pub fn sample(shared: &Shared) -> Sample {
    let s = &shared.stats;
    let lag = shared.store.as_ref().map_or(0, |store| {
        let h = store.health();
        h.assigned_seq.saturating_sub(h.persisted_seq)
    });
    Sample {
        at_ms: crate::chat::unix_ms(),
        websockets: s.open_websockets.get(),
        members: shared.chat.members() as u64,
        messages: shared.chat.routed(),
        deliveries: shared.chat.deliveries(),
        bytes_in: s.bytes_read.get(),
        bytes_out: s.bytes_written.get(),
        slow_consumers: s.slow_consumers.get() + shared.memory.evictions.load(Relaxed),
        history_lag: lag,
    }
}

/// `/status.json`: `{"version", "uptime_s", "config", "fields",
/// "samples": [[at_ms, websockets, ...], ...]}`, oldest sample first.
pub fn json(shared: &Shared) -> String {
    let samples = shared.samples.copy();
    let settings = shared.settings.lock().clone();
    let config = crate::config::sources::effective(&settings);
    let mut out = String::with_capacity(64 + samples.len() * 80 + config.len());
    let _ = write!(
        out,
        "{{\"version\":{},\"uptime_s\":{},\"config\":{},\"fields\":[\"at_ms\",\"websockets\",\"members\",\"messages\",\"deliveries\",\"bytes_in\",\"bytes_out\",\"slow_consumers\",\"history_lag\"],\"samples\":[",
        serde_json::Value::from(crate::VERSION),
        shared.clock_ms() / 1000,
        serde_json::Value::from(config),
    );
    for (i, s) in samples.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(
            out,
            "{comma}[{},{},{},{},{},{},{},{},{}]",
            s.at_ms,
            s.websockets,
            s.members,
            s.messages,
            s.deliveries,
            s.bytes_in,
            s.bytes_out,
            s.slow_consumers,
            s.history_lag
        );
    }
    out.push_str("]}");
    out
}
