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

use super::bus::{Loops, Out, RedisBus, CALL, KEEP, POLL};
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
    while !loops.stop.load(SeqCst) {
        if conn.is_none() && Instant::now() >= retry_at {
            conn = connect(&loops.address);
            bus.publishing.store(conn.is_some(), SeqCst);
            if conn.is_none() {
                retry_at = Instant::now() + Duration::from_secs(1);
            }
        }
        let Ok(first) = loops.rx.recv_timeout(POLL) else {
            continue;
        };
        let mut batch = vec![first];
        batch.extend(loops.rx.try_iter().take(BATCH - 1));
        let Some((c, sha)) = conn.as_mut() else {
            refuse(&batch, chat);
            continue;
        };
        if let Err((e, unanswered)) = pipeline(c, sha, loops, &batch, chat) {
            // Down: refused at once until a reconnect works. A message
            // whose reply never came was told `unavailable`; if Redis runs
            // it later, its deadline has passed and it numbers nothing.
            log::warn!("bus: {e}; messages are refused until redis is back");
            conn = None;
            bus.publishing.store(false, SeqCst);
            refuse(&batch[unanswered..], chat);
        }
    }
    let rest: Vec<Out> = loops.rx.try_iter().collect();
    match conn.as_mut() {
        Some((c, sha)) => {
            if let Err((_, unanswered)) = pipeline(c, sha, loops, &rest, chat) {
                refuse(&rest[unanswered..], chat);
            }
        }
        None => refuse(&rest, chat),
    }
}

fn refuse(batch: &[Out], chat: &Chat) {
    for out in batch {
        if let Out::Message(token, _) = out {
            chat.bus_failed(*token, DOWN);
        }
    }
}

/// Send every item, then read every reply. `Err` names the failure and
/// the first item whose replies were not all read.
fn pipeline(
    c: &mut Conn,
    sha: &str,
    loops: &Loops,
    batch: &[Out],
    chat: &Chat,
) -> Result<(), (Error, usize)> {
    let keep = KEEP.to_string();
    for out in batch {
        let sent = match out {
            Out::Message(token, m) => {
                let payload = encode(&loops.node, *token, m);
                // Run after this, the script refuses: the sender has been told.
                let deadline = crate::chat::unix_ms() + CALL.as_millis() as u64;
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
                    &deadline.to_string(),
                ])
            }
            Out::Presence(version, change) => {
                let json = presence::encode_change(&loops.node, *version, change);
                c.send(&["PUBLISH", presence::CHANNEL, &json])
                    .and_then(|()| match freed(change) {
                        Some(name) => c.send(&names::release_command(&fold(name), &loops.node)),
                        None => Ok(()),
                    })
            }
        };
        sent.map_err(|e| (e, 0))?;
    }
    for (i, out) in batch.iter().enumerate() {
        match out {
            Out::Message(token, _) => {
                let reply = c.read().map_err(|e| (e, i))?;
                answer(reply, *token, loops, chat);
            }
            Out::Presence(_, change) => {
                c.read().map_err(|e| (e, i + 1))?;
                if freed(change).is_some() {
                    c.read().map_err(|e| (e, i + 1))?;
                }
            }
        }
    }
    Ok(())
}

/// The name a change gives back (a leave, the old name of a rename).
fn freed(change: &Change) -> Option<&String> {
    match change {
        Change::Leave { name } => Some(name),
        Change::Rename { old, .. } => Some(old),
        Change::Join { .. } => None,
    }
}

/// The script's reply: a seq (ws-bus-in delivers it), or a refusal.
fn answer(reply: Reply, token: u64, loops: &Loops, chat: &Chat) {
    match reply {
        Reply::Int(_) => {}
        Reply::Error(e) if e.starts_with("LATE") => {
            log::warn!("bus: redis ran a message after its deadline: refused");
            chat.bus_failed(token, DOWN);
        }
        Reply::Error(e) if e.starts_with("EPOCH") => {
            log::error!(
                "bus: redis lost its data (epoch {} is gone): restart every node to begin a new epoch",
                loops.epoch
            );
            chat.bus_failed(
                token,
                "the message bus lost its history; this server must restart",
            );
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
