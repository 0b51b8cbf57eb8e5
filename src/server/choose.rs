//! The server picks the implementations behind the chat's seams
//! (`../shared/DESIGN.md`: only `server` chooses): history in a SQLite
//! file or in memory, numbered by the one-process bus; accounts in the
//! same file; and the history writer's thread.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::gate;
use super::outbound;
use super::threads::Threads;
use crate::auth::accounts::Accounts;
use crate::chat::bus::LocalBus;
use crate::chat::ring::Ring;
use crate::chat::{self, Chat};
use crate::cluster::accounts::RedisAccounts;
use crate::cluster::bus::{Loops, RedisBus};
use crate::config::{AuthMode, SyncMode};
use crate::protocol::{frame, OpCode};
use crate::store::{self, SqliteAccounts, SqliteHistory};
use crate::{Config, Error};

/// Ask the history writer to commit what is queued and end; join it.
pub(super) fn stop_writer(store: Option<&SqliteHistory>, writer: Option<JoinHandle<()>>) {
    if let Some(store) = store {
        store.stop();
    }
    if let Some(writer) = writer {
        let _ = writer.join();
    }
}

/// What `chat_for` chose: the chat, the history file (if any) and its
/// writer thread, and in cluster mode the Redis bus and what its threads
/// need (they start once the chat is shared).
type Chosen = (
    Chat,
    Option<Arc<SqliteHistory>>,
    Option<JoinHandle<()>>,
    Option<(Arc<RedisBus>, Loops)>,
);

/// What the server keeps of the choice: the history file, the Redis bus.
pub(super) type Kept = (Option<Arc<SqliteHistory>>, Option<Arc<RedisBus>>);

/// The chat, with the implementations this server uses behind its seams:
/// history in a SQLite file (the default) or in memory (`--db :memory:`),
/// numbered by the one-process bus from where the file left off; or with
/// `--redis`, history in memory read back from Redis, numbered by Redis.
pub(super) fn chat_for(config: &Config, threads: &Threads) -> Result<Chosen, Error> {
    let settings = chat::Settings {
        history: config.history,
        max_topics: config.max_topics,
        max_text: config.max_text,
        max_message: config.max_message,
        rate: config.rate,
        burst: config.burst,
        batch_messages: (config.max_queue / BATCH_SHARE).clamp(1, outbound::MAX_IOV),
        batch_bytes: (config.max_queue_bytes / BATCH_SHARE).clamp(1, 64 * 1024),
        durable_acks: config.durable_acks,
        auth: config.auth.as_str(),
        registration_open: config.registration_open,
        max_recipients: config.max_recipients,
        max_subscriptions: config.max_subscriptions,
    };
    let encode: fn(&str) -> chat::Frame =
        |json| frame::encode(OpCode::Text, json.as_bytes()).into();
    if let Some(address) = &config.redis {
        let (chat, bus, loops) = super::cluster::chat_on(config, address, settings, encode)?;
        return Ok((chat, None, None, Some((bus, loops))));
    }
    let Some(path) = config.db_file() else {
        log::info!("history: in memory only (--db :memory:), lost on restart");
        let chat = Chat::new(
            settings,
            encode,
            Arc::new(Ring::new(config.history).bounded(config.history_bytes())),
            Arc::new(LocalBus::default()),
        );
        return Ok((chat, None, None, None));
    };
    let options = store::Options {
        path: path.to_owned(),
        reset: config.db_reset,
        sync_full: config.sync == SyncMode::Full,
        ring: config.history,
        ring_bytes: config.history_bytes(),
        retain_messages: config.retain_messages,
        retain_days: config.retain_days,
    };
    let opened = store::open(&options).map_err(Error::Store)?;
    log::info!(
        "history: {} (epoch {}, last seq {}, synchronous={})",
        path.display(),
        opened.epoch,
        opened.last_seq,
        if options.sync_full { "FULL" } else { "NORMAL" }
    );
    let (history, writer) = SqliteHistory::new(opened, &options);
    let history = Arc::new(history);
    let bus = LocalBus::starting_after(history.last_seq());
    let writer = threads
        .spawn_service(
            "ws-history",
            config.thread_stack.max(WRITER_STACK),
            move || writer.run(),
        )
        .map_err(Error::Spawn)?;
    let chat = Chat::new(settings, encode, history.clone(), Arc::new(bus));
    Ok((chat, Some(history), Some(writer), None))
}

/// How often `ws-accounts` looks for changes made by the CLI.
pub(super) const ACCOUNTS_EVERY: Duration = Duration::from_secs(2);

/// The sign-in machinery (`None` with `--auth none`): accounts in the
/// history file, or in memory with `--db :memory:`, or in Redis with
/// `--redis`. Names and bans are
/// loaded before anything listens.
pub(super) fn gate_for(config: &Config, chat: &Chat) -> Result<Option<Arc<gate::Gate>>, Error> {
    if config.auth == AuthMode::None {
        return Ok(None);
    }
    let accounts: Arc<dyn Accounts> = match (&config.redis, config.db_file()) {
        // A cluster's accounts are shared by every node.
        (Some(address), _) => Arc::new(RedisAccounts::new(address.clone())),
        (None, Some(path)) => Arc::new(SqliteAccounts::open(path)),
        (None, None) => Arc::new(SqliteAccounts::in_memory().map_err(Error::Config)?),
    };
    let gate = gate::Gate::new(config, accounts).map_err(Error::Config)?;
    gate.refresh(chat);
    log::info!(
        "accounts: --auth {}, registration {}{}",
        config.auth.as_str(),
        if config.registration_open {
            "open"
        } else {
            "closed"
        },
        if config.jwt_secret_file.is_some() {
            ", JWTs accepted"
        } else {
            ""
        }
    );
    Ok(Some(Arc::new(gate)))
}

/// SQLite's own stack use is larger than a worker's; its writer gets
/// at least this much.
pub(super) const WRITER_STACK: usize = 1024 * 1024;

/// A worker flushes what it routed once it reaches a quarter of a
/// recipient's queue bounds: a reader that keeps up then never sees its
/// queue more than a quarter full because of batching, so batching alone
/// can never cut anyone off (four senders batching to one reader at once
/// still fit).
const BATCH_SHARE: usize = 4;
