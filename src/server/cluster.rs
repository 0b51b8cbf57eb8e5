//! Cluster mode (`--redis`, issue 18): the server picks the Redis bus and
//! a history in memory read back from Redis, and starts the bus's three
//! threads through `Threads`; shutdown stops and joins them after the last
//! connection has left (so its `leave` still reaches the other nodes).
//!
//! ```text
//!  start:    epoch from redis ─► Chat(Ring with that epoch, RedisBus)
//!            history read back from the stream, before anything listens
//!  threads:  ws-bus-out (publish)  ws-bus-in (deliver in seq order)  ws-beat
//! ```

use parking_lot::Mutex;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::threads::Threads;
use crate::chat::bus::Bus;
use crate::chat::ring::{new_epoch, Ring};
use crate::chat::{self, Chat};
use crate::cluster::bus::{Loops, RedisBus, KEEP_MOST};
use crate::cluster::{presence, publisher, start, subscriber, Address};
use crate::{Config, Error};

/// A node reads back at most this many times `--history` messages of the
/// stream at start (its streams are interleaved in one log).
const READ_BACK_SHARE: u64 = 16;

/// The running bus: its threads and their stop.
pub(super) struct Cluster {
    pub bus: Arc<RedisBus>,
    loops: Arc<Loops>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The chat on a Redis bus, its history read back from Redis.
pub(super) fn chat_on(
    config: &Config,
    address: &Address,
    settings: chat::Settings,
    encode: fn(&str) -> chat::Frame,
) -> Result<(Chat, Arc<RedisBus>, Loops), Error> {
    let unreachable = |e: crate::cluster::Error| Error::Config(format!("--redis {address}: {e}"));
    let epoch = start::epoch(address, &new_epoch()).map_err(unreachable)?;
    let node = format!("{}-{}", std::process::id(), new_epoch());
    let ring = Ring::with_epoch(config.history, epoch.clone()).bounded(config.history_bytes());
    let (bus, mut loops) = RedisBus::new(address.clone(), node.clone(), epoch.clone(), 0);
    // The stream keeps what a history file would (`--retain-messages`).
    loops.keep = match config.retain_messages {
        0 => KEEP_MOST,
        n => n.min(KEEP_MOST),
    };
    let chat = Chat::new(
        settings,
        encode,
        Arc::new(ring),
        bus.clone() as Arc<dyn Bus>,
    );
    let count = (config.history as u64 * READ_BACK_SHARE).min(loops.keep);
    let last = start::read_back(address, &chat, count).map_err(unreachable)?;
    bus.started_after(&mut loops, last);
    log::info!("cluster: node {node} through {address}, epoch {epoch}, at seq {last}");
    Ok((chat, bus, loops))
}

impl Cluster {
    /// Start `ws-bus-out`, `ws-bus-in` and `ws-beat`.
    pub(super) fn start(
        bus: Arc<RedisBus>,
        loops: Loops,
        chat: &Arc<Chat>,
        threads: &Threads,
        stack: usize,
    ) -> Result<Cluster, Error> {
        let loops = Arc::new(loops);
        let cluster = Cluster {
            bus,
            loops,
            threads: Mutex::new(Vec::new()),
        };
        type Body = fn(&Loops, &RedisBus, &Chat);
        let bodies: [(&str, Body); 3] = [
            ("ws-bus-out", publisher::run_publisher),
            ("ws-bus-in", subscriber::run_subscriber),
            ("ws-beat", |loops, _, chat| presence::run_beats(loops, chat)),
        ];
        for (name, body) in bodies {
            let (loops, bus, chat) = (
                Arc::clone(&cluster.loops),
                Arc::clone(&cluster.bus),
                Arc::clone(chat),
            );
            match threads.spawn_service(name, stack, move || body(&loops, &bus, &chat)) {
                Ok(handle) => cluster.threads.lock().push(handle),
                Err(e) => {
                    cluster.stop();
                    return Err(Error::Spawn(e));
                }
            }
        }
        Ok(cluster)
    }

    /// Stop the threads (each within one read timeout) and join them; the
    /// second time does nothing.
    pub(super) fn stop(&self) {
        self.loops.stop.store(true, SeqCst);
        let handles: Vec<JoinHandle<()>> = self.threads.lock().drain(..).collect();
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
