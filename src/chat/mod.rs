//! The chat: users, names, topics, history and the v1 JSON protocol of
//! `/chat`. No sockets, no disk, no broker here: a connection is a
//! [`Sink`] that takes encoded frames without blocking, the server supplies
//! the function that turns JSON text into a frame, and it chooses the
//! [`History`] and the [`Bus`] behind the chat.
//!
//! ```text
//!  worker of alice ── text ──► Client::on_text (rate limit) ──► Chat::handle
//!                                                                 │ lock registry
//!                          wire::parse ─► router::route ─► bus: seq; encode once,
//!                                                          queue to each target,
//!                                                          history.append
//!                                                                 │ unlock
//!                                        deferred history query ─► history.page
//!                                                   Outbox::flush ─► each Sink
//! ```
//!
//! | file | what |
//! |---|---|
//! | [`client`] | one connection's side: rate limit, batch of recipients |
//! | [`wire`] | the client's JSON -> [`wire::Inbound`] |
//! | [`messages`] | the server's JSON |
//! | [`registry`] | members, names, topics (one mutex) |
//! | [`router`] | who gets each message; acks |
//! | [`requests`] | request methods; history answered outside the lock |
//! | [`history`] | the `History` seam |
//! | [`ring`] | `Ring`, the in-memory history |
//! | [`bus`] | the `Bus` seam and `LocalBus`, one process's order |
//! | [`remote`] | the members of the other nodes of a cluster |
//! | `across.rs` | what the other nodes' changes and orders do here; claiming a guest's name |
//! | `numbered.rs` | publishing and acking: numbered at once (one process) or later by a bus across hosts, with the held acks |

mod accounts;
mod across;
pub mod bus;
mod client;
pub mod history;
pub mod identity;
pub mod messages;
mod numbered;
mod outbox;
pub mod registry;
pub mod remote;
pub mod requests;
pub mod ring;
pub mod router;
pub mod wire;

use parking_lot::Mutex;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::counter::{AtomicU64, ByLabel, Counter};
use bus::Bus;
use history::History;
use identity::Standing;
use registry::{Outbox, Registry};
use requests::Deferred;

pub use accounts::{Escalated, Moderation};
pub use client::Client;

/// One encoded frame, shared by every recipient.
pub type Frame = Arc<[u8]>;

/// Where a member's frames go: a connection's write queue.
pub trait Sink: Send + Sync {
    /// Queue a frame without blocking and without touching the socket
    /// (the caller holds the registry lock). False if the connection is
    /// closing or its queue overflowed (which cuts it off).
    fn queue(&self, frame: Frame) -> bool;
    /// Write what is queued (or finish a cut-off), without blocking for
    /// long; called with no lock held.
    fn flush(&self);
    /// Was the connection cut off because its queue overflowed (a slow
    /// consumer)? The chat then removes the member at once, under the same
    /// lock, instead of waiting for its worker to notice.
    fn is_cut_off(&self) -> bool;
    /// Queue a Close with this code and reason (a kick, a ban, another
    /// sign-in) without blocking; the next flush sends it.
    fn close(&self, code: u16, reason: &str);
}

/// A connection's chat identity, unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// The chat's limits and sizes (from the server `Config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Messages kept per history stream.
    pub history: usize,
    /// History streams (topics) kept at most.
    pub max_topics: usize,
    /// Longest `text`, in bytes.
    pub max_text: usize,
    /// The WebSocket message limit, announced in the welcome.
    pub max_message: u64,
    /// Messages per second per connection (0: no limit).
    pub rate: u32,
    /// Messages a connection may send at once.
    pub burst: u32,
    /// A worker flushes what it routed after this many messages even if
    /// more input is waiting (deferring flushes batches writes; the bound
    /// keeps queues well under their limit while it does).
    pub batch_messages: usize,
    /// ... or after this many bytes of text.
    pub batch_bytes: usize,
    /// Hold each `ack` of a kept message until the history store has
    /// committed it (`--durable-acks`).
    pub durable_acks: bool,
    /// `--auth`: `none`, `optional` or `required` (announced in the
    /// welcome; with `none` the account messages answer `auth_disabled`).
    pub auth: &'static str,
    /// `--registration open` (announced in the welcome).
    pub registration_open: bool,
    /// The most names one multicast may list.
    pub max_recipients: usize,
    /// The most topics one connection may be subscribed to (and four
    /// times as many for all the connections of one address).
    pub max_subscriptions: usize,
}

/// The chat server state shared by every connection.
pub struct Chat {
    registry: Mutex<Registry>,
    settings: Settings,
    encode: fn(&str) -> Frame,
    history: Arc<dyn History>,
    bus: Arc<dyn Bus>,
    started: Instant,
    next_id: AtomicU64,
    /// Chat messages routed since start, by kind (the `stats` request,
    /// `/metrics`).
    routed: ByLabel<4>,
    /// Copies of them queued for recipients.
    deliveries: Counter,
    /// Names this node's messages for a bus that numbers them later.
    next_token: AtomicU64,
    /// Acks waiting for their message to come back numbered (numbered.rs).
    pending: Mutex<std::collections::HashMap<u64, numbered::PendingAck>>,
}

/// Why a connection must be closed (with 1008).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kick(pub &'static str);

impl Chat {
    /// A chat whose frames are made by `encode` (JSON text -> frame
    /// bytes), keeping history in `history` and numbering messages with
    /// `bus`.
    pub fn new(
        settings: Settings,
        encode: fn(&str) -> Frame,
        history: Arc<dyn History>,
        bus: Arc<dyn Bus>,
    ) -> Chat {
        Chat {
            registry: Mutex::new(Registry::new(settings.max_topics, Arc::clone(&history))),
            settings,
            encode,
            history,
            bus,
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            routed: ByLabel::new(ROUTED_KINDS),
            deliveries: Counter::default(),
            next_token: AtomicU64::new(0),
            pending: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Join as a guest with a requested name (maybe replaced, see the
    /// welcome), or as an account under its own name. The welcome goes to
    /// the joiner, `join` presence to everyone else. `address` names where
    /// the connection comes from (for address bans).
    pub fn join(
        &self,
        requested: Option<&str>,
        standing: Standing,
        address: Arc<str>,
        topics: &[String],
        sink: Arc<dyn Sink>,
    ) -> Client {
        let id = ClientId(self.next_id.fetch_add(1, Relaxed) + 1);
        let mut out = Outbox::default();
        // Across hosts a guest's name is claimed first (this may wait on
        // the broker, so before the lock).
        let claimed = (self.bus.spans_hosts() && !standing.is_account())
            .then(|| self.claim_free_name(requested));
        let name = {
            let mut reg = self.registry.lock();
            let name = match (standing, requested) {
                (Standing::Account(_), Some(name)) => {
                    self.make_room(&mut reg, &mut out, name);
                    name.to_owned()
                }
                _ => reg.free_name(claimed.as_deref().or(requested)),
            };
            reg.insert(id, name.clone(), standing, address, Arc::clone(&sink));
            for topic in topics {
                if let Some(topic) = reg.use_topic(topic) {
                    reg.subscribe(id, &topic);
                }
            }
            let welcome = self.welcome(&reg, id);
            reg.queue(&mut out, id, &welcome);
            self.presence(&mut reg, &mut out, id, "join", &name, None, None);
            self.drop_cut_off(&mut reg, &mut out);
            name
        };
        out.flush();
        log::debug!("chat: {id} joined as {name}");
        Client::new(id, sink, &self.settings)
    }

    /// The welcome of member `id`, as it stands now.
    fn welcome(&self, reg: &Registry, id: ClientId) -> Frame {
        let id_text = id.to_string();
        let standing = reg.standing_of(id);
        let welcome = messages::Welcome {
            kind_of: "welcome",
            id: &id_text,
            name: reg.name_of(id).unwrap_or_default(),
            users: reg.user_names(),
            topics: reg.active_topics().iter().map(|(n, _)| *n).collect(),
            server: concat!("switchboard/", env!("CARGO_PKG_VERSION")),
            epoch: self.history.epoch(),
            seq: self.bus.last_seq(),
            limits: messages::Announced {
                max_message: self.settings.max_message,
                max_text: self.settings.max_text,
            },
            auth: self.settings.auth,
            registration: if self.settings.registration_open {
                "open"
            } else {
                "closed"
            },
            guest: !standing.is_account(),
            roles: standing.roles(),
            registered: reg.account_names(),
            subscribed: reg.topics_of(id),
        };
        (self.encode)(&messages::to_json(&welcome))
    }

    /// Leave: `leave` presence to everyone else.
    pub fn leave(&self, client: &mut Client) {
        client.flush();
        let mut out = Outbox::default();
        {
            let mut reg = self.registry.lock();
            let Some(name) = reg.remove(client.id) else {
                return;
            };
            self.presence(&mut reg, &mut out, client.id, "leave", &name, None, None);
            self.drop_cut_off(&mut reg, &mut out);
            log::debug!("chat: {} ({name}) left", client.id);
        }
        out.flush();
    }

    /// Route one text message from `client` (already rate-checked). The
    /// frames are queued now; the client flushes its outbox later. A
    /// history query is answered after the registry lock is released.
    fn handle(&self, client: &mut Client, text: &str) {
        let parsed = wire::parse_with(text, self.settings.max_text, self.settings.max_recipients);
        let deferred = {
            let mut reg = self.registry.lock();
            let deferred = match parsed {
                Ok(msg) => router::route(self, &mut reg, &mut client.pending, client.id, msg),
                Err(problem) => {
                    let json = messages::error(&problem);
                    self.send(&mut reg, &mut client.pending, client.id, &json);
                    None
                }
            };
            self.drop_cut_off(&mut reg, &mut client.pending);
            deferred
        };
        match deferred {
            Some(Deferred::Escalate(call)) => client.escalated.push(call),
            Some(Deferred::Rename { id, name }) => self.rename_claimed(client, id, &name),
            Some(deferred) => {
                let reply = requests::run(self, &deferred);
                client.send_own(&(self.encode)(&reply));
            }
            None => {}
        }
    }

    /// Queue one JSON text for one member.
    fn send(&self, reg: &mut Registry, out: &mut Outbox, to: ClientId, json: &str) {
        reg.queue(out, to, &(self.encode)(json));
    }

    #[allow(clippy::too_many_arguments)]
    fn presence(
        &self,
        reg: &mut Registry,
        out: &mut Outbox,
        subject: ClientId,
        event: &'static str,
        name: &str,
        old: Option<&str>,
        reason: Option<&str>,
    ) {
        let presence = messages::Presence {
            kind_of: "presence",
            event,
            name,
            old,
            registered: event != "leave" && reg.standing_of(subject).is_account(),
            reason,
        };
        let frame = (self.encode)(&messages::to_json(&presence));
        reg.queue_everyone(out, &frame, Some(subject));
        if self.bus.spans_hosts() {
            let (name, account) = (name.to_owned(), presence.registered);
            let change = match (event, old) {
                ("join", _) => remote::Change::Join { name, account },
                ("rename", Some(old)) => remote::Change::Rename {
                    old: old.to_owned(),
                    new: name,
                    account,
                },
                _ => remote::Change::Leave { name },
            };
            reg.remote.version += 1;
            self.bus.announce(reg.remote.version, &change);
        }
    }

    /// Members whose connections were cut off while this batch was queued
    /// leave now, with `leave` presence to the others (which may cut off
    /// more; each member leaves once, so this ends).
    fn drop_cut_off(&self, reg: &mut Registry, out: &mut Outbox) {
        while let Some(id) = reg.next_cut_off() {
            if let Some(name) = reg.remove(id) {
                log::debug!("chat: {id} ({name}) cut off");
                self.presence(reg, out, id, "leave", &name, None, None);
            }
        }
    }

    fn count_routed(&self, targets: &bus::Targets, recipients: usize) {
        let kind = match targets {
            bus::Targets::Everyone => 0,
            bus::Targets::One(_) => 1,
            bus::Targets::Many(_) => 2,
            bus::Targets::Topic(_) => 3,
        };
        self.routed.at(kind).inc();
        self.deliveries.add(recipients as u64);
    }

    /// Chat messages routed since start.
    pub fn routed(&self) -> u64 {
        self.routed.each().map(|(_, n)| n).sum()
    }

    /// Chat messages routed since start, by kind ([`ROUTED_KINDS`]).
    pub fn routed_by_kind(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.routed.each()
    }

    /// Copies of chat messages queued for recipients since start.
    pub fn deliveries(&self) -> u64 {
        self.deliveries.get()
    }

    /// The longest `text`, in bytes.
    pub fn max_text(&self) -> usize {
        self.settings.max_text
    }

    /// The name a member has now (for logs).
    pub fn name_of(&self, id: ClientId) -> Option<String> {
        self.registry.lock().name_of(id).map(str::to_owned)
    }

    /// Members connected now.
    pub fn members(&self) -> usize {
        self.registry.lock().len()
    }
}

/// The kinds of chat message, as `/metrics` labels.
pub const ROUTED_KINDS: [&str; 4] = ["broadcast", "direct", "multicast", "topic"];

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
