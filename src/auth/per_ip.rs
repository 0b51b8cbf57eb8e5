//! Admission per address (a number the server derives from the peer's
//! IP: see `server::gate::address_group`), checked in the accept loop
//! before a worker is taken: at most so many connections open at once from one address, and
//! new ones at most at a steady rate (a token bucket holding ten seconds'
//! worth). So one address cannot hold the pool, nor churn it. Time is
//! passed in (milliseconds), so tests set the clock.
//!
//! ```text
//!  accept ─► key (IPv4, or IPv6 /64) ─► open < max_open?  no ─► 429
//!                                       a token left?     no ─► 429 + Retry-After
//!                                       yes: open += 1 ... connection ends: open -= 1
//! ```

use std::collections::HashMap;

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// It already has `max_open` connections open.
    TooMany,
    /// It opened connections faster than the rate; try after this long.
    TooFast {
        retry_after_ms: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    open: usize,
    tokens: f64,
    last: u64,
}

/// The open connections and connection tokens of each address.
#[derive(Debug)]
pub struct PerIp {
    max_open: usize,
    /// New connections per second (0: no rate limit).
    rate: f64,
    burst: f64,
    entries: HashMap<u128, Entry>,
    /// Forget idle addresses when this many are tracked, or a minute
    /// after the last time.
    prune_at: usize,
    pruned: u64,
}

/// How often idle addresses are forgotten at the latest (ms).
const PRUNE_EVERY: u64 = 60_000;

/// Seconds of rate an address may spend at once.
pub const BURST_SECONDS: f64 = 10.0;

impl PerIp {
    pub fn new(max_open: usize, rate: u32) -> PerIp {
        PerIp {
            max_open: max_open.max(1),
            rate: f64::from(rate),
            burst: f64::from(rate) * BURST_SECONDS,
            entries: HashMap::new(),
            prune_at: 1024,
            pruned: 0,
        }
    }

    /// New limits (SIGHUP); the counts of open connections stay, and a
    /// bucket holding more than the new burst is trimmed on its next use.
    pub fn set_limits(&mut self, max_open: usize, rate: u32) {
        self.max_open = max_open.max(1);
        self.rate = f64::from(rate);
        self.burst = f64::from(rate) * BURST_SECONDS;
    }

    /// May `key` open one more connection now? If so it is counted until
    /// [`release`](PerIp::release).
    pub fn admit(&mut self, key: u128, now: u64) -> Verdict {
        if self.entries.len() >= self.prune_at || now.saturating_sub(self.pruned) >= PRUNE_EVERY {
            self.prune(now);
        }
        let (rate, burst) = (self.rate, self.burst);
        let entry = self.entries.entry(key).or_insert(Entry {
            open: 0,
            tokens: burst,
            last: now,
        });
        if entry.open >= self.max_open {
            return Verdict::TooMany;
        }
        if rate > 0.0 {
            let elapsed = now.saturating_sub(entry.last) as f64 / 1000.0;
            entry.tokens = (entry.tokens + elapsed * rate).min(burst);
            entry.last = now;
            if entry.tokens < 1.0 {
                let wait = ((1.0 - entry.tokens) / rate * 1000.0).ceil() as u64;
                return Verdict::TooFast {
                    retry_after_ms: wait.max(1),
                };
            }
            entry.tokens -= 1.0;
        }
        entry.open += 1;
        Verdict::Admit
    }

    /// A connection of `key` ended.
    pub fn release(&mut self, key: u128) {
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.open = entry.open.saturating_sub(1);
        }
    }

    /// Forget addresses with nothing open whose bucket has refilled: they
    /// are as if new. Memory stays proportional to busy addresses.
    fn prune(&mut self, now: u64) {
        let (rate, burst) = (self.rate, self.burst);
        self.entries.retain(|_, e| {
            let refilled = rate <= 0.0
                || e.tokens + now.saturating_sub(e.last) as f64 / 1000.0 * rate >= burst;
            e.open > 0 || !refilled
        });
        self.prune_at = (self.entries.len() * 2).max(1024);
        self.pruned = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_max_open() {
        let mut p = PerIp::new(2, 0);
        assert_eq!(p.admit(1, 0), Verdict::Admit);
        assert_eq!(p.admit(1, 0), Verdict::Admit);
        assert_eq!(p.admit(1, 0), Verdict::TooMany);
        assert_eq!(
            p.admit(2, 0),
            Verdict::Admit,
            "another address is not affected"
        );
        p.release(1);
        assert_eq!(p.admit(1, 0), Verdict::Admit);
    }

    #[test]
    fn new_connections_come_at_most_at_the_rate_after_a_burst() {
        let mut p = PerIp::new(1000, 2);
        for i in 0..20 {
            assert_eq!(p.admit(1, 0), Verdict::Admit, "{i}: a burst of 10 s worth");
        }
        assert_eq!(
            p.admit(1, 0),
            Verdict::TooFast {
                retry_after_ms: 500
            }
        );
        assert_eq!(p.admit(1, 500), Verdict::Admit, "one token per 500 ms");
        assert_eq!(p.admit(2, 500), Verdict::Admit);
    }

    #[test]
    fn idle_addresses_are_forgotten() {
        let mut p = PerIp::new(10, 1);
        for i in 0..5000 {
            assert_eq!(p.admit(i, 0), Verdict::Admit);
            p.release(i);
        }
        // An hour later they have all refilled: the next admit prunes.
        p.admit(u128::MAX, 3_600_000);
        assert!(p.entries.len() < 1100, "{}", p.entries.len());
    }
}
