//! A counter for `/metrics`: one relaxed atomic, 64 bits wide where the
//! target has 64-bit atomics and 32 bits where it does not (some MIPS and
//! 32-bit ARM routers). A 32-bit counter wraps after 4 G; Prometheus'
//! `rate()` takes a counter that goes down for a restart, so a wrapped
//! total costs one scrape interval's rate, never a wrong one for long.

#[cfg(not(target_has_atomic = "64"))]
use std::sync::atomic::AtomicU32 as Cell;
#[cfg(target_has_atomic = "64")]
use std::sync::atomic::AtomicU64 as Cell;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Default)]
pub struct Counter(Cell);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    #[allow(clippy::cast_possible_truncation)]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n as _, Relaxed);
    }

    /// For a gauge (connections open now).
    #[allow(clippy::cast_possible_truncation)]
    pub fn sub(&self, n: u64) {
        self.0.fetch_sub(n as _, Relaxed);
    }

    #[allow(clippy::useless_conversion)] // u32 -> u64 on 32-bit targets
    pub fn get(&self) -> u64 {
        u64::from(self.0.load(Relaxed))
    }
}

/// Counters named by a fixed list of labels, so `/metrics` has a bounded
/// number of series whatever clients send.
#[derive(Debug)]
pub struct ByLabel<const N: usize> {
    pub labels: [&'static str; N],
    counts: [Counter; N],
}

impl<const N: usize> ByLabel<N> {
    pub fn new(labels: [&'static str; N]) -> ByLabel<N> {
        ByLabel {
            labels,
            counts: std::array::from_fn(|_| Counter::default()),
        }
    }

    /// Count one for `label`; a label not in the list counts as the last
    /// one (keep `other` last where that can happen).
    pub fn inc(&self, label: &str) {
        let at = self
            .labels
            .iter()
            .position(|l| *l == label)
            .unwrap_or(N - 1);
        self.counts[at].inc();
    }

    pub fn at(&self, index: usize) -> &Counter {
        &self.counts[index]
    }

    /// Every label with its count.
    pub fn each(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.labels
            .iter()
            .zip(&self.counts)
            .map(|(l, c)| (*l, c.get()))
    }
}
