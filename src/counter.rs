//! A counter for `/metrics`: one relaxed atomic, 64 bits wide where the
//! target has 64-bit atomics and 32 bits where it does not (some MIPS and
//! 32-bit ARM routers). A 32-bit counter wraps after 4 G; Prometheus'
//! `rate()` takes a counter that goes down for a restart, so a wrapped
//! total costs one scrape interval's rate, never a wrong one for long.
//!
//! The server's other 64-bit values (the chat's `seq`, ids, the store's
//! state) must not wrap: [`AtomicU64`] and [`AtomicI64`] here are std's
//! where the target has them, and elsewhere a small mutex around the
//! value with the same methods. Building with `--cfg
//! switchboard_no_atomic64` picks the fallbacks on any target, so CI can
//! check that they build and pass (`.ci/run`).

#[cfg(any(not(target_has_atomic = "64"), switchboard_no_atomic64))]
use std::sync::atomic::AtomicU32 as Cell;
#[cfg(all(target_has_atomic = "64", not(switchboard_no_atomic64)))]
use std::sync::atomic::AtomicU64 as Cell;
use std::sync::atomic::Ordering::Relaxed;

#[cfg(any(not(target_has_atomic = "64"), switchboard_no_atomic64))]
pub use narrow::{AtomicI64, AtomicU64};
#[cfg(all(target_has_atomic = "64", not(switchboard_no_atomic64)))]
pub use std::sync::atomic::{AtomicI64, AtomicU64};

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

/// 64-bit values behind a mutex, for targets without 64-bit atomics: the
/// methods of std's atomics that the server uses, orderings accepted and
/// not needed (the mutex orders everything).
#[cfg(any(not(target_has_atomic = "64"), switchboard_no_atomic64))]
mod narrow {
    use parking_lot::Mutex;
    use std::sync::atomic::Ordering;

    macro_rules! locked {
        ($name:ident, $t:ty) => {
            #[derive(Debug, Default)]
            pub struct $name(Mutex<$t>);

            impl $name {
                pub const fn new(value: $t) -> $name {
                    $name(parking_lot::const_mutex(value))
                }
                pub fn load(&self, _: Ordering) -> $t {
                    *self.0.lock()
                }
                pub fn store(&self, value: $t, _: Ordering) {
                    *self.0.lock() = value;
                }
                pub fn swap(&self, value: $t, _: Ordering) -> $t {
                    std::mem::replace(&mut *self.0.lock(), value)
                }
                pub fn fetch_add(&self, n: $t, _: Ordering) -> $t {
                    let mut v = self.0.lock();
                    let old = *v;
                    *v = old.wrapping_add(n);
                    old
                }
                pub fn fetch_sub(&self, n: $t, _: Ordering) -> $t {
                    let mut v = self.0.lock();
                    let old = *v;
                    *v = old.wrapping_sub(n);
                    old
                }
                pub fn fetch_max(&self, n: $t, _: Ordering) -> $t {
                    let mut v = self.0.lock();
                    let old = *v;
                    *v = old.max(n);
                    old
                }
                pub fn compare_exchange(
                    &self,
                    current: $t,
                    new: $t,
                    _: Ordering,
                    _: Ordering,
                ) -> Result<$t, $t> {
                    let mut v = self.0.lock();
                    if *v == current {
                        *v = new;
                        Ok(current)
                    } else {
                        Err(*v)
                    }
                }
            }
        };
    }

    locked!(AtomicU64, u64);
    locked!(AtomicI64, i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_wide_values_count() {
        let c = Counter::default();
        c.add(5);
        c.inc();
        c.sub(2);
        assert_eq!(c.get(), 4);
        let by = ByLabel::new(["a", "other"]);
        by.inc("a");
        by.inc("nobody");
        assert_eq!(by.each().collect::<Vec<_>>(), [("a", 1), ("other", 1)]);
        let seq = AtomicU64::new(u64::from(u32::MAX));
        assert_eq!(seq.fetch_add(1, Relaxed), u64::from(u32::MAX));
        assert_eq!(seq.load(Relaxed), 1 << 32, "no wrap at 32 bits");
        assert_eq!(seq.fetch_max(7, Relaxed), 1 << 32);
        let id = AtomicI64::new(-1);
        assert_eq!(id.swap(3, Relaxed), -1);
        assert_eq!(id.compare_exchange(3, 4, Relaxed, Relaxed), Ok(3));
    }
}
