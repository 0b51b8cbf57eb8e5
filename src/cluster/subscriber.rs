//! `ws-bus-in` (issue 18): every numbered message delivered on this node
//! strictly in `seq` order, and the other nodes' presence changes.
//!
//! ```text
//!  SUBSCRIBE sb:messages sb:presence
//!    "seq payload" ─► Reorder ─► chat.deliver_numbered, in seq order
//!      a gap (a reconnect, a dropped push, an output-buffer limit) waits
//!      GAP_GRACE for a late push, then is back-filled with XRANGE
//!    presence change of another node ─► chat.remote_change
//! ```

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use crate::chat::bus::Published;
use crate::chat::Chat;

use super::bus::{Loops, RedisBus, CALL, POLL, QUEUE};
use super::conn::{Address, Conn};
use super::order::Reorder;
use super::payload::decode;
use super::presence;
use super::resp::Reply;
use super::script::{self, CHANNEL, LOG_KEY};

/// How long a gap may wait for a late push before it is back-filled.
const GAP_GRACE: Duration = Duration::from_millis(50);
/// Stream entries fetched (and delivered under one lock) at a time.
const PAGE: u64 = 1000;

/// `ws-bus-in`: deliver every message, strictly in `seq` order, on this
/// node. After a reconnect it first back-fills what it missed.
pub fn run_subscriber(loops: &Loops, bus: &RedisBus, chat: &Chat) {
    let mut order: Option<Reorder<Item>> = None;
    let mut backoff = Duration::from_millis(100);
    while !loops.stop.load(SeqCst) {
        match subscribe(&loops.address) {
            Some((sub, fetch, current)) => {
                backoff = Duration::from_millis(100);
                // History up to `start_after` was read at start.
                let order =
                    order.get_or_insert_with(|| Reorder::starting_after(loops.start_after, QUEUE));
                if current + 1 < order.next() {
                    log::error!(
                        "bus: redis is at seq {current}, this node at {}: redis lost data; \
                         messages are refused until this node restarts",
                        order.next() - 1
                    );
                    bus.diverged.store(true, SeqCst);
                }
                bus.subscribed.store(true, SeqCst);
                let mut session = Session {
                    loops,
                    bus,
                    chat,
                    fetch,
                    order,
                };
                if current >= session.order.next() {
                    session.backfill(session.order.next(), current);
                }
                session.run(sub);
                bus.subscribed.store(false, SeqCst);
            }
            None => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A numbered message as it waits its turn: this node's token if it sent
/// it, and the message; None for one that could not be read.
type Item = Option<(Option<u64>, Published)>;

/// A subscriber connection, a second one to fetch with, and the last seq
/// given out when it subscribed (nothing after it can be missed).
fn subscribe(address: &Address) -> Option<(Conn, Conn, u64)> {
    let mut sub = Conn::open(address, CALL).ok()?;
    sub.send(&["SUBSCRIBE", CHANNEL, presence::CHANNEL]).ok()?;
    for _ in 0..2 {
        let confirmed = sub.read().ok()?;
        if confirmed.items().first().and_then(Reply::text) != Some("subscribe") {
            return None;
        }
    }
    sub.set_read_timeout(POLL).ok()?;
    let mut fetch = Conn::open(address, CALL).ok()?;
    let current = tail(&mut fetch)?;
    log::info!("bus: subscribed through {address} at seq {current}");
    Some((sub, fetch, current))
}

struct Session<'a> {
    loops: &'a Loops,
    bus: &'a RedisBus,
    chat: &'a Chat,
    fetch: Conn,
    order: &'a mut Reorder<Item>,
}

impl Session<'_> {
    /// Read pushes until the connection fails or the bus stops.
    fn run(&mut self, mut sub: Conn) {
        let mut gap_since: Option<Instant> = None;
        // A fetch that failed ends the session: a new one back-fills.
        while !self.loops.stop.load(SeqCst) && !self.fetch.is_dead() {
            match sub.read() {
                Ok(pushed) => {
                    // This push and every one already received behind it,
                    // delivered in one go (one flush per member).
                    let mut ready = Vec::new();
                    self.take(&pushed, &mut ready);
                    while let Some(pushed) = sub.buffered() {
                        self.take(&pushed, &mut ready);
                    }
                    self.deliver(ready);
                }
                // Quiet: a turn of the loop (to look at `stop` and gaps).
                Err(super::conn::Error::Io(e)) if is_timeout(&e) && !sub.is_dead() => {}
                Err(e) => {
                    log::warn!("bus: subscriber lost ({e}); reconnecting");
                    return;
                }
            }
            match (self.order.missing(), gap_since) {
                (Some(_), None) => gap_since = Some(Instant::now()),
                (Some((from, to)), Some(since))
                    if since.elapsed() > GAP_GRACE || self.order.overfull() =>
                {
                    self.backfill(from, to);
                    gap_since = None;
                }
                (None, _) => gap_since = None,
                _ => {}
            }
        }
    }

    /// One push: a numbered message joins `ready` once its turn comes; a
    /// presence change is applied after what is ready before it.
    fn take(&mut self, pushed: &Reply, ready: &mut Vec<(u64, Item)>) {
        let Some(Reply::Bulk(Some(data))) = pushed.items().get(2) else {
            return;
        };
        if pushed.items().get(1).and_then(Reply::text) == Some(presence::CHANNEL) {
            self.deliver(std::mem::take(ready));
            self.presence(data);
            return;
        }
        match script::split_pushed(data) {
            Some((seq, payload)) => ready.extend(self.offer(seq, payload)),
            None => log::warn!("bus: a push that is not ours: skipped"),
        }
    }

    /// Another node's presence change (our own come back too: skipped).
    fn presence(&self, data: &[u8]) {
        if let Some((node, order)) = presence::decode_order(data) {
            if node != self.loops.node {
                self.chat.enforce_here(&order);
            }
            return;
        }
        match presence::decode_change(data) {
            Some((node, _, _)) if node == self.loops.node => {}
            Some((node, version, change)) => self.chat.remote_change(&node, version, change),
            None => log::warn!("bus: a presence change that is not ours: skipped"),
        }
    }

    fn offer(&mut self, seq: u64, payload: &[u8]) -> Vec<(u64, Item)> {
        // One that cannot be read still takes its place in the order (as
        // nothing), so what comes after it is not held back.
        let item =
            decode(payload).map(|(node, token, m)| ((node == self.loops.node).then_some(token), m));
        if item.is_none() {
            log::warn!("bus: message {seq} could not be read: skipped");
        }
        self.order.offer(seq, item)
    }

    /// Deliver what is ready, in one go.
    fn deliver(&mut self, ready: Vec<(u64, Item)>) {
        let Some(&(last, _)) = ready.last() else {
            return;
        };
        let messages = ready
            .iter()
            .filter_map(|(seq, item)| item.as_ref().map(|(token, m)| (*seq, m, *token)));
        self.chat.deliver_numbered_all(messages);
        // Past any that could not be read, too.
        self.passed(last);
    }

    /// Everything up to `last` is behind this node now (delivered, or
    /// lost): the welcome's seq, and the senders of what was lost.
    fn passed(&self, last: u64) {
        self.bus.last.fetch_max(last, SeqCst);
        self.bus.delivered_up_to(last, self.chat);
    }

    /// Fetch `from..=to` from the stream, a page at a time; what it no
    /// longer has is lost (logged, and the senders here of what was lost
    /// are told), and delivery goes on after it. A gap beyond the last seq
    /// Redis gave out is no gap: what waits above it is not ours (dropped).
    fn backfill(&mut self, from: u64, to: u64) {
        let Some(last) = tail(&mut self.fetch) else {
            return; // the next push or gap tries again
        };
        if from > last {
            let dropped = self.order.drop_above(last);
            log::warn!(
                "bus: {dropped} pushes above seq {last}, which redis never gave out: dropped"
            );
            return;
        }
        let (mut from, to) = (from, to.min(last));
        while from <= to {
            let page_end = to.min(from.saturating_add(PAGE - 1));
            let range = self.fetch.call(&[
                "XRANGE",
                LOG_KEY,
                &script::entry_id(from),
                &script::entry_id(page_end),
            ]);
            // A failed call, or an error reply (loading, busy): try again
            // at the next push or gap.
            let Ok(range @ Reply::Array(_)) = range else {
                return;
            };
            let got = script::entries(&range);
            if got.first().map(|(s, _)| *s) != Some(from) {
                let resume = got.first().map_or(page_end + 1, |(s, _)| *s);
                let (lost, ready) = self.order.skip_to(resume);
                log::warn!("bus: {lost} messages before {resume} are no longer in the stream");
                // What waited below `resume` is delivered now; the rest
                // below it is lost, and its senders here are told (by
                // `delivered_up_to`, once `last` has passed them).
                self.deliver(ready);
                self.passed(resume - 1);
            }
            let mut ready = Vec::new();
            for (seq, payload) in got {
                ready.extend(self.offer(seq, &payload));
            }
            self.deliver(ready);
            from = page_end + 1;
        }
    }
}

/// The last seq Redis gave out; None if it cannot say.
fn tail(conn: &mut Conn) -> Option<u64> {
    script::last_seq(conn).ok().flatten()
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
