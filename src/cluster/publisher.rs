//! `ws-bus-out` (issue 18): this node's messages numbered by the publish
//! script, and its presence changes published, in the order the router
//! queued them. What is waiting goes in one pipeline (up to [`BATCH`]
//! commands written, then their replies read), so a burst costs one round
//! trip per batch rather than per message.
//!
//! ```text
//!  channel ─► batch ─► EVALSHA publish ... (one per message)   ─► replies in order:
//!                      PUBLISH sb:presence + EVAL release       seq: delivered by ws-bus-in
//!                                                                LATE, EPOCH, an error: unavailable
//!  Redis away: every message refused at once (a reconnect tried once a second)
//! ```

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use crate::chat::registry::fold;
use crate::chat::remote::Change;
use crate::chat::Chat;

use super::bus::{Loops, Out, RedisBus, CALL, POLL};
use super::conn::{Address, Conn, Error};
use super::names;
use super::payload::encode;
use super::presence;
use super::resp::Reply;
use super::script::{self, CHANNEL, EPOCH_KEY, LOG_KEY, SEQ_KEY};

/// The most items sent in one pipeline.
const BATCH: usize = 64;
const DOWN: &str = "the message bus is unavailable; not sent";

/// `ws-bus-out`: until the bus stops; then the presence changes still
/// queued (the last members' leaves) go out, and a message still queued is
/// refused.
pub fn run_publisher(loops: &Loops, bus: &RedisBus, chat: &Chat) {
    let mut conn: Option<(Conn, String)> = None;
    let mut retry_at = Instant::now();
    let mut doubt = InDoubt::default();
    while !loops.stop.load(SeqCst) {
        if conn.is_none() && Instant::now() >= retry_at {
            conn = connect(&loops.address);
            bus.publishing.store(conn.is_some(), SeqCst);
            if conn.is_none() {
                retry_at = Instant::now() + Duration::from_secs(1);
            }
        }
        if let Some((c, _)) = conn.as_mut() {
            if let Err(e) = doubt.settle(c, bus, chat) {
                log::warn!("bus: {e}; messages are refused until redis is back");
                conn = None;
                bus.publishing.store(false, SeqCst);
            }
        }
        let Ok(first) = loops.rx.recv_timeout(POLL) else {
            continue;
        };
        let mut batch = vec![first];
        batch.extend(loops.rx.try_iter().take(BATCH - 1));
        let Some((c, sha)) = conn.as_mut() else {
            refuse(&batch, chat, DOWN);
            continue;
        };
        if bus.diverged.load(SeqCst) {
            refuse(&batch, chat, LOST);
            continue;
        }
        if let Err(failed) = pipeline(c, sha, loops, &batch, bus, chat) {
            // Down: refused at once until a reconnect works. A message
            // written but not answered may have been numbered: it is in
            // doubt until Redis is back (see `InDoubt`); one never written
            // is refused now.
            log::warn!(
                "bus: {}; messages are refused until redis is back",
                failed.error
            );
            conn = None;
            bus.publishing.store(false, SeqCst);
            doubt.add(&batch[failed.answered..failed.written]);
            refuse(&batch[failed.written..], chat, DOWN);
        }
    }
    let rest: Vec<Out> = loops.rx.try_iter().collect();
    match conn.as_mut() {
        Some((c, sha)) if !bus.diverged.load(SeqCst) => {
            if let Err(failed) = pipeline(c, sha, loops, &rest, bus, chat) {
                refuse(&rest[failed.answered..], chat, DOWN);
            }
        }
        _ => refuse(&rest, chat, DOWN),
    }
    // Stopping: no connection is left to answer these.
    doubt.give_up(chat);
}

const LOST: &str = "the message bus lost its history; this server must restart";

fn refuse(batch: &[Out], chat: &Chat, why: &str) {
    for out in batch {
        match out {
            Out::Message(token, _) => chat.bus_failed(*token, why),
            // Carried out on this node only; said once, in the log.
            Out::Enforce(order) => {
                log::warn!(
                    "bus: redis is away: a moderation order reached this node only: {order:?}"
                )
            }
            // Repaired by the next beat's list.
            Out::Presence(..) => {}
        }
    }
}

/// Messages written to Redis whose reply never came: Redis may have
/// numbered them (and will publish them) or not. Their senders wait; they
/// are never told `unavailable` about a message that is then delivered.
/// Once Redis is back, its clock past every deadline (the script numbers
/// nothing after its deadline) and this node's delivery caught up with
/// Redis's last seq, any still waiting was not numbered: refused then.
#[derive(Default)]
struct InDoubt {
    tokens: Vec<u64>,
    deadline: u64,
    /// Redis's last seq once its clock passed the deadline.
    settle_at: Option<u64>,
}

impl InDoubt {
    fn add(&mut self, batch: &[Out]) {
        for out in batch {
            if let Out::Message(token, _) = out {
                self.tokens.push(*token);
                self.deadline = self.deadline.max(deadline());
                // A later deadline: the point of certainty must be found
                // again (a seq read before may be below this one's).
                self.settle_at = None;
            }
        }
    }

    fn settle(&mut self, c: &mut Conn, bus: &RedisBus, chat: &Chat) -> Result<(), Error> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        if self.settle_at.is_none() {
            let time = c.call(&["TIME"])?;
            let now_ms = match time.items() {
                [secs, micros] => {
                    let (s, us) = (secs.int().unwrap_or(0), micros.int().unwrap_or(0));
                    (s.max(0) as u64) * 1000 + (us.max(0) as u64) / 1000
                }
                _ => 0,
            };
            if now_ms <= self.deadline {
                return Ok(());
            }
            // An error reply (loading, busy) says nothing: ask again later.
            match script::last_seq(c)? {
                Some(last) => self.settle_at = Some(last),
                None => return Ok(()),
            }
        }
        if self
            .settle_at
            .is_some_and(|s| crate::chat::bus::Bus::last_seq(bus) >= s)
        {
            self.give_up(chat);
        }
        Ok(())
    }

    /// Refuse every message still in doubt (one delivered meanwhile has
    /// no sender waiting: a no-op).
    fn give_up(&mut self, chat: &Chat) {
        for token in self.tokens.drain(..) {
            chat.bus_failed(token, DOWN);
        }
        self.settle_at = None;
        self.deadline = 0;
    }
}

/// The deadline of a message sent now: the script numbers nothing later.
fn deadline() -> u64 {
    crate::chat::unix_ms() + CALL.as_millis() as u64
}

/// How far a pipeline got before it failed.
struct Failed {
    error: Error,
    /// Items whose replies were all read.
    answered: usize,
    /// Items written whole.
    written: usize,
}

/// Send every item, then read every reply.
fn pipeline(
    c: &mut Conn,
    sha: &str,
    loops: &Loops,
    batch: &[Out],
    bus: &RedisBus,
    chat: &Chat,
) -> Result<(), Failed> {
    let keep = loops.keep.to_string();
    let mut releases = vec![false; batch.len()];
    for (i, out) in batch.iter().enumerate() {
        let sent = match out {
            Out::Message(token, m) => {
                let payload = encode(&loops.node, *token, m);
                // Run after this, the script refuses: the sender is told.
                c.send(&[
                    "EVALSHA",
                    sha,
                    "3",
                    SEQ_KEY,
                    LOG_KEY,
                    EPOCH_KEY,
                    &payload,
                    &keep,
                    CHANNEL,
                    &loops.epoch,
                    &deadline().to_string(),
                ])
            }
            Out::Enforce(order) => {
                let json = presence::encode_order(&loops.node, order);
                c.send(&["PUBLISH", presence::CHANNEL, &json])
            }
            Out::Presence(version, change) => {
                let json = presence::encode_change(&loops.node, *version, change);
                c.send(&["PUBLISH", presence::CHANNEL, &json])
                    .and_then(|()| match released(change, chat) {
                        Some(name) => {
                            releases[i] = true;
                            c.send(&names::release_command(&fold(name), &loops.node))
                        }
                        None => Ok(()),
                    })
            }
        };
        // A command not written whole cannot have run: this one and the
        // rest are refused, the ones before it are in doubt.
        sent.map_err(|error| Failed {
            error,
            answered: 0,
            written: i,
        })?;
    }
    let failed = |error, i| Failed {
        error,
        answered: i,
        written: batch.len(),
    };
    for (i, out) in batch.iter().enumerate() {
        match out {
            Out::Message(token, _) => {
                let reply = c.read().map_err(|e| failed(e, i))?;
                answer(reply, *token, loops, bus, chat);
            }
            Out::Presence(..) => {
                c.read().map_err(|e| failed(e, i + 1))?;
                if releases[i] {
                    c.read().map_err(|e| failed(e, i + 1))?;
                }
            }
            Out::Enforce(_) => {
                c.read().map_err(|e| failed(e, i + 1))?;
            }
        }
    }
    Ok(())
}

/// The name a change gives back (a leave, the old name of a rename),
/// unless a member here has taken it again meanwhile (its claim, which is
/// this node's, must stay).
fn released<'c>(change: &'c Change, chat: &Chat) -> Option<&'c String> {
    let name = match change {
        Change::Leave { name } => name,
        Change::Rename { old, .. } => old,
        Change::Join { .. } => return None,
    };
    (!chat.is_here(name)).then_some(name)
}

/// The script's reply: a seq (ws-bus-in delivers it), or a refusal.
fn answer(reply: Reply, token: u64, loops: &Loops, bus: &RedisBus, chat: &Chat) {
    match reply {
        Reply::Int(seq) => bus.numbered(seq.max(0) as u64, token, chat),
        Reply::Error(e) if e.starts_with("LATE") => {
            log::warn!("bus: redis ran a message after its deadline: refused");
            chat.bus_failed(token, DOWN);
        }
        Reply::Error(e) if e.starts_with("EPOCH") => {
            log::error!(
                "bus: redis lost its data (epoch {} is gone): restart every node to begin a new epoch",
                loops.epoch
            );
            chat.bus_failed(token, LOST);
        }
        other => {
            log::warn!("bus: redis refused a message: {other:?}");
            chat.bus_failed(token, "the message bus refused the message");
        }
    }
}

fn connect(address: &Address) -> Option<(Conn, String)> {
    let mut conn = Conn::open(address, CALL).ok()?;
    let sha = conn.call(&["SCRIPT", "LOAD", script::PUBLISH]).ok()?;
    let sha = sha.text()?.to_owned();
    log::info!("bus: publishing through {address}");
    Some((conn, sha))
}
