//! Failed sign-ins, counted per account and per address, so that
//! guessing passwords is slow for an attacker and costs nobody else
//! anything. Time is passed in (milliseconds), so tests set the clock.
//!
//! ```text
//!  failure ─► count in a 15-minute window ─► past the free failures: locked for
//!             1 s, doubling with each further failure, at most 15 min
//!  success ─► the account's count is cleared (the address's is not)
//! ```
//!
//! Memory is bounded: at most [`MAX_KEYS`] keys are tracked, and when full
//! the ones whose window ended go first (then the oldest).

use std::collections::HashMap;

/// The window failures are counted in, and the longest lock.
pub const WINDOW_MS: u64 = 15 * 60 * 1000;
/// Failures allowed per account, and per address, before the lock.
pub const ACCOUNT_FREE: u32 = 5;
pub const ADDRESS_FREE: u32 = 20;
/// The first lock; each further failure doubles it.
pub const FIRST_LOCK_MS: u64 = 1000;
/// Keys tracked at most.
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    first: u64,
    locked_until: u64,
}

/// Failure counts for one kind of key (accounts, or addresses).
#[derive(Debug)]
pub struct Throttle {
    free: u32,
    entries: HashMap<String, Entry>,
}

impl Throttle {
    pub fn new(free: u32) -> Throttle {
        Throttle {
            free,
            entries: HashMap::new(),
        }
    }

    /// How long `key` must wait before it may try again (0: now).
    pub fn wait_ms(&self, key: &str, now: u64) -> u64 {
        self.entries
            .get(key)
            .map_or(0, |e| e.locked_until.saturating_sub(now))
    }

    /// A failed attempt by `key`.
    pub fn failed(&mut self, key: &str, now: u64) {
        if self.entries.len() >= MAX_KEYS && !self.entries.contains_key(key) {
            self.make_room(now);
        }
        let entry = self.entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            first: now,
            locked_until: 0,
        });
        if now.saturating_sub(entry.first) > WINDOW_MS && entry.locked_until <= now {
            *entry = Entry {
                failures: 0,
                first: now,
                locked_until: 0,
            };
        }
        entry.failures += 1;
        if entry.failures >= self.free {
            let doublings = (entry.failures - self.free).min(20);
            let lock = (FIRST_LOCK_MS << doublings).min(WINDOW_MS);
            entry.locked_until = now + lock;
        }
    }

    /// A success by `key`: its count starts again.
    pub fn succeeded(&mut self, key: &str) {
        self.entries.remove(key);
    }

    fn make_room(&mut self, now: u64) {
        self.entries
            .retain(|_, e| now.saturating_sub(e.first) <= WINDOW_MS || e.locked_until > now);
        if self.entries.len() >= MAX_KEYS {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.first)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_failures_then_a_doubling_lock() {
        let mut t = Throttle::new(5);
        for i in 0..4 {
            t.failed("alice", i);
            assert_eq!(t.wait_ms("alice", i), 0, "failure {} is free", i + 1);
        }
        t.failed("alice", 10);
        assert_eq!(t.wait_ms("alice", 10), 1000, "locked 1 s after the 5th");
        t.failed("alice", 1010);
        assert_eq!(t.wait_ms("alice", 1010), 2000, "doubled after the 6th");
        assert_eq!(t.wait_ms("bob", 1010), 0, "others are not affected");
        for n in 0..30 {
            t.failed("alice", 2000 + n);
        }
        assert_eq!(t.wait_ms("alice", 2029), WINDOW_MS, "capped at 15 minutes");
    }

    #[test]
    fn success_clears_and_old_failures_expire() {
        let mut t = Throttle::new(2);
        t.failed("a", 0);
        t.failed("a", 1);
        assert!(t.wait_ms("a", 1) > 0);
        t.succeeded("a");
        assert_eq!(t.wait_ms("a", 1), 0);
        t.failed("b", 0);
        t.failed("b", WINDOW_MS + 10);
        assert_eq!(t.wait_ms("b", WINDOW_MS + 10), 0, "a new window began");
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Throttle::new(5);
        for i in 0..(MAX_KEYS + 10) {
            t.failed(&format!("k{i}"), 0);
        }
        assert!(t.entries.len() <= MAX_KEYS);
    }
}
