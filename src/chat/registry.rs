//! Who is connected: members by id, names (unique case-insensitively),
//! topics with their subscribers, and the history streams. One
//! `parking_lot::Mutex` guards all of it (see [`super::Chat`]); nothing in
//! here blocks or writes to a socket.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::history::History;
use super::wire::valid_name;
use super::{ClientId, Frame, Sink};

/// One connected user.
pub struct Member {
    /// The display name, in the case it was given.
    pub name: String,
    /// Where its frames go.
    pub sink: Arc<dyn Sink>,
    /// The topics it is subscribed to (lowercase keys).
    pub topics: BTreeSet<String>,
    /// The id of the last [`Outbox`] that noted this member's sink, so a
    /// batch flushes each recipient once however many frames it queued.
    outbox_mark: u64,
}

impl Member {
    /// Queue `frame` for this member; true if it was queued. Its sink goes
    /// into `outbox` once per batch, to be flushed after the lock.
    fn queue(&mut self, outbox: &mut Outbox, frame: &Frame) -> bool {
        let queued = self.sink.queue(Arc::clone(frame));
        // Noted even when refused: a refusal may be an overflow cut-off,
        // whose socket work the flush does (after the lock is released).
        if self.outbox_mark != outbox.id {
            self.outbox_mark = outbox.id;
            outbox.sinks.push(Arc::clone(&self.sink));
        }
        queued
    }
}

/// One topic: its subscribers and its history stream.
pub struct Topic {
    /// The name in the case it was first used.
    pub name: String,
    pub subscribers: BTreeSet<ClientId>,
    pub history: History,
    /// When it was last used (a counter, for evicting the longest idle).
    pub last_used: u64,
}

/// The recipients a batch of routing queued frames for, each noted once,
/// to flush after the registry lock is released.
///
/// A connection's worker keeps one outbox for all the messages of one read
/// and flushes it before it blocks in `read` again: with many messages in
/// one read, each recipient then gets all of them in one vectored write
/// instead of one write per message.
pub struct Outbox {
    /// Unique per batch: members remember it, to be noted only once.
    id: u64,
    sinks: Vec<Arc<dyn Sink>>,
}

/// Outbox ids; 0 is never used, so a new member is never "already noted".
static NEXT_OUTBOX: AtomicU64 = AtomicU64::new(1);

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox {
            id: NEXT_OUTBOX.fetch_add(1, Relaxed),
            sinks: Vec::new(),
        }
    }
}

impl Outbox {
    /// Write what was queued (outside the registry lock) and start a new
    /// batch.
    pub fn flush(&mut self) {
        for sink in self.sinks.drain(..) {
            sink.flush();
        }
        self.id = NEXT_OUTBOX.fetch_add(1, Relaxed);
    }
}

/// The chat's shared state.
pub struct Registry {
    pub members: BTreeMap<ClientId, Member>,
    /// Lowercase name -> member.
    names: HashMap<String, ClientId>,
    /// Lowercase topic name -> topic.
    pub topics: HashMap<String, Topic>,
    /// The broadcast stream's history.
    pub broadcasts: History,
    /// The last sequence number assigned.
    pub seq: u64,
    /// Chat messages routed since start.
    pub routed: u64,
    history_size: usize,
    max_topics: usize,
    clock: u64,
    guests: u64,
}

impl Registry {
    pub fn new(history_size: usize, max_topics: usize) -> Registry {
        Registry {
            members: BTreeMap::new(),
            names: HashMap::new(),
            topics: HashMap::new(),
            broadcasts: History::new(history_size),
            seq: 0,
            routed: 0,
            history_size,
            max_topics,
            clock: 0,
            guests: 0,
        }
    }

    /// Queue `frame` for one member; true if it was queued. The sink to
    /// flush goes into `outbox`.
    pub fn queue(&mut self, outbox: &mut Outbox, id: ClientId, frame: &Frame) -> bool {
        self.members
            .get_mut(&id)
            .is_some_and(|member| member.queue(outbox, frame))
    }

    /// Queue `frame` for every member but `except`, walking the members
    /// once (no list of ids, no lookup per recipient); returns how many
    /// took it.
    pub fn queue_everyone(
        &mut self,
        outbox: &mut Outbox,
        frame: &Frame,
        except: Option<ClientId>,
    ) -> usize {
        self.members
            .iter_mut()
            .filter(|(id, _)| Some(**id) != except)
            .map(|(_, member)| member.queue(outbox, frame))
            .filter(|&queued| queued)
            .count()
    }

    /// Queue `frame` for each of `ids`; returns how many took it.
    pub fn queue_all(
        &mut self,
        outbox: &mut Outbox,
        ids: impl IntoIterator<Item = ClientId>,
        frame: &Frame,
    ) -> usize {
        ids.into_iter()
            .filter(|id| self.queue(outbox, *id, frame))
            .count()
    }

    /// The member with this name (any case).
    pub fn find(&self, name: &str) -> Option<ClientId> {
        self.names.get(&name.to_ascii_lowercase()).copied()
    }

    /// A display name that nobody has: `requested` if it is valid and free,
    /// `requested-2`, `-3`... if taken (shortened to fit 32 characters),
    /// `guest-N` if missing or invalid.
    pub fn free_name(&mut self, requested: Option<&str>) -> String {
        match requested.filter(|n| valid_name(n)) {
            Some(name) if self.find(name).is_none() => name.to_owned(),
            Some(name) => (2u64..)
                .map(|n| {
                    let suffix = format!("-{n}");
                    let base = &name[..name.len().min(32 - suffix.len())];
                    format!("{base}{suffix}")
                })
                .find(|candidate| self.find(candidate).is_none())
                .unwrap_or_default(),
            None => loop {
                self.guests += 1;
                let candidate = format!("guest-{}", self.guests);
                if self.find(&candidate).is_none() {
                    break candidate;
                }
            },
        }
    }

    /// Add a member under a name from [`free_name`](Registry::free_name).
    pub fn insert(&mut self, id: ClientId, name: String, sink: Arc<dyn Sink>) {
        self.names.insert(name.to_ascii_lowercase(), id);
        self.members.insert(
            id,
            Member {
                name,
                sink,
                topics: BTreeSet::new(),
                outbox_mark: 0,
            },
        );
    }

    /// Remove a member and its subscriptions.
    pub fn remove(&mut self, id: ClientId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        self.names.remove(&member.name.to_ascii_lowercase());
        for key in &member.topics {
            if let Some(topic) = self.topics.get_mut(key) {
                topic.subscribers.remove(&id);
            }
        }
        Some(member)
    }

    /// Give a member a new name; the old one is returned.
    pub fn rename(&mut self, id: ClientId, new: &str) -> Option<String> {
        let member = self.members.get_mut(&id)?;
        let old = std::mem::replace(&mut member.name, new.to_owned());
        self.names.remove(&old.to_ascii_lowercase());
        self.names.insert(new.to_ascii_lowercase(), id);
        Some(old)
    }

    /// The topic stream for `name`, created if needed. When `max_topics`
    /// streams exist, the longest idle one without subscribers is dropped;
    /// `None` if every one has subscribers.
    pub fn topic(&mut self, name: &str) -> Option<&mut Topic> {
        let key = name.to_ascii_lowercase();
        self.clock += 1;
        if !self.topics.contains_key(&key) {
            if self.topics.len() >= self.max_topics {
                let idle = self
                    .topics
                    .iter()
                    .filter(|(_, t)| t.subscribers.is_empty())
                    .min_by_key(|(_, t)| t.last_used)
                    .map(|(k, _)| k.clone())?;
                self.topics.remove(&idle);
            }
            let topic = Topic {
                name: name.to_owned(),
                subscribers: BTreeSet::new(),
                history: History::new(self.history_size),
                last_used: self.clock,
            };
            self.topics.insert(key.clone(), topic);
        }
        let topic = self.topics.get_mut(&key)?;
        topic.last_used = self.clock;
        Some(topic)
    }

    /// Names of the topics that have subscribers, sorted.
    pub fn active_topics(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .topics
            .values()
            .filter(|t| !t.subscribers.is_empty())
            .map(|t| t.name.as_str())
            .collect();
        names.sort_unstable_by_key(|n| n.to_ascii_lowercase());
        names
    }

    /// Names of every member, in the order they joined.
    pub fn user_names(&self) -> Vec<&str> {
        self.members.values().map(|m| m.name.as_str()).collect()
    }
}
