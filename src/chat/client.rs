//! One connection's side of the chat, owned by its worker: the token
//! bucket that limits its rate (checked with no lock), and the recipients
//! of what it routed since its last flush.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::messages::{self, ErrorCode, Problem};
use super::registry::Outbox;
use super::{wire, Chat, ClientId, Frame, Kick, Settings, Sink};

/// One connection's side of the chat: its id, its rate limit, and the
/// recipients of what it routed since its last flush. Owned by the
/// connection's worker, so checking the limit takes no lock.
pub struct Client {
    pub id: ClientId,
    /// Its own connection: answers that need no registry lock go here.
    sink: Arc<dyn Sink>,
    limiter: RateLimiter,
    /// Recipients of what was routed since the last flush.
    pub(super) pending: Outbox,
    /// What the server must do for this connection (sign-in, account
    /// requests), taken after each message.
    pub(super) escalated: Vec<super::Escalated>,
    /// Messages and text bytes routed since the last flush.
    batched: usize,
    batched_bytes: usize,
}

impl Client {
    pub(super) fn new(id: ClientId, sink: Arc<dyn Sink>, settings: &Settings) -> Client {
        Client {
            id,
            sink,
            limiter: RateLimiter::new(settings.rate, settings.burst),
            pending: Outbox::default(),
            escalated: Vec::new(),
            batched: 0,
            batched_bytes: 0,
        }
    }

    /// A text message arrived. `Err` means close the connection (1008).
    /// What it routes is queued; [`flush`](Client::flush) writes it.
    pub fn on_text(&mut self, chat: &Chat, text: &str) -> Result<(), Kick> {
        match self.limiter.take(Instant::now()) {
            Admit::Yes => {
                chat.handle(self, text);
                self.batched += 1;
                self.batched_bytes += text.len();
                if self.batched >= chat.settings.batch_messages
                    || self.batched_bytes >= chat.settings.batch_bytes
                {
                    self.flush();
                }
            }
            Admit::No => {
                let problem = Problem {
                    code: ErrorCode::RateLimited,
                    message: format!(
                        "over {} messages per second; message dropped",
                        chat.settings.rate
                    ),
                    id: wire::peek_id(text),
                };
                self.send_own(&(chat.encode)(&messages::error(&problem)));
            }
            Admit::Kick => return Err(Kick("rate limit")),
        }
        Ok(())
    }

    /// What the last messages asked of the server (see
    /// [`Escalated`](super::Escalated)).
    pub fn take_escalated(&mut self) -> Vec<super::Escalated> {
        std::mem::take(&mut self.escalated)
    }

    /// Queue a frame for this client alone, with no lock: it is flushed
    /// with the rest of the batch.
    pub(super) fn send_own(&mut self, frame: &Frame) {
        self.sink.queue(Arc::clone(frame));
        self.pending.note(&self.sink);
    }

    /// Flush every recipient of what was routed since the last flush:
    /// called by the worker before it waits for more input.
    pub fn flush(&mut self) {
        self.pending.flush();
        self.batched = 0;
        self.batched_bytes = 0;
    }
}

enum Admit {
    Yes,
    No,
    Kick,
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up; each
/// data message takes one. Refusing more than 3 × burst messages within
/// 10 s means the client ignores `rate_limited` errors: it is closed.
struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    refused: VecDeque<Instant>,
}

/// The window in which refusals are counted.
const FLOOD_WINDOW: Duration = Duration::from_secs(10);
/// Refusals, in bursts, that a client may draw within [`FLOOD_WINDOW`]
/// before it is closed. A client that reads its `rate_limited` errors
/// slows down after the first few; three bursts' worth means it does not
/// read them, and every refusal still costs the server a parse and a frame.
const FLOOD_BURSTS: f64 = 3.0;

impl RateLimiter {
    fn new(rate: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: Instant::now(),
            refused: VecDeque::new(),
        }
    }

    fn take(&mut self, now: Instant) -> Admit {
        if self.rate == 0.0 {
            return Admit::Yes;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Yes;
        }
        while self
            .refused
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > FLOOD_WINDOW)
        {
            self.refused.pop_front();
        }
        self.refused.push_back(now);
        if self.refused.len() as f64 > FLOOD_BURSTS * self.burst {
            Admit::Kick
        } else {
            Admit::No
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_admits_a_burst_then_the_rate() {
        let mut l = RateLimiter::new(10, 5);
        let t0 = l.last;
        for _ in 0..5 {
            assert!(matches!(l.take(t0), Admit::Yes));
        }
        assert!(matches!(l.take(t0), Admit::No));
        assert!(
            matches!(l.take(t0 + Duration::from_millis(100)), Admit::Yes),
            "one token after 100 ms at 10/s"
        );
    }

    #[test]
    fn a_flood_past_three_bursts_of_refusals_is_kicked() {
        let mut l = RateLimiter::new(1, 2);
        let t0 = l.last;
        let results: Vec<bool> = (0..10).map(|_| matches!(l.take(t0), Admit::Kick)).collect();
        // 2 admitted, 6 refused (3 x burst), the 9th refusal... kicked.
        assert_eq!(results.iter().position(|k| *k), Some(8));
    }

    #[test]
    fn rate_zero_means_no_limit() {
        let mut l = RateLimiter::new(0, 1);
        let t0 = l.last;
        assert!((0..10_000).all(|_| matches!(l.take(t0), Admit::Yes)));
    }
}
