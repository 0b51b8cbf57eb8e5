//! Who is connected: members by id, names (unique case-insensitively) and
//! topics with their subscribers. One `parking_lot::Mutex` guards all of
//! it (see [`super::Chat`]); nothing in here blocks or writes to a socket.
//!
//! Names and topics are compared without regard to ASCII case: every map
//! key goes through [`fold`], the one place that says so.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::history::{History, Stream};
use super::identity::{Directory, Standing};
pub use super::outbox::Outbox;
use super::remote::Remote;
use super::wire::valid_name;
use super::{ClientId, Frame, Sink};

/// One connected user.
struct Member {
    /// The display name, in the case it was given.
    name: String,
    /// Where its frames go.
    sink: Arc<dyn Sink>,
    /// The topics it is subscribed to (folded keys).
    topics: BTreeSet<String>,
    /// The id of the last [`Outbox`] that noted this member's sink, so a
    /// batch flushes each recipient once however many frames it queued.
    outbox_mark: u64,
    /// Its connection was cut off (it is in `Registry::cut`, to leave).
    cut: bool,
    /// Guest or account.
    standing: Standing,
    /// Its messages are refused until then (Unix ms; 0: not muted).
    muted_until: u64,
    /// Its address as the server names it (for address bans).
    address: Arc<str>,
}

impl Member {
    /// Queue `frame` for this member; true if it was queued. Its sink goes
    /// into `outbox` once per batch, to be flushed after the lock. A
    /// member whose connection this cut off is noted in `cut`, once.
    fn queue(
        &mut self,
        outbox: &mut Outbox,
        frame: &Frame,
        id: ClientId,
        cut: &mut Vec<ClientId>,
    ) -> bool {
        let queued = self.sink.queue(Arc::clone(frame));
        // Noted even when refused: a refusal may be an overflow cut-off,
        // whose socket work the flush does (after the lock is released).
        if self.outbox_mark != outbox.id {
            self.outbox_mark = outbox.id;
            outbox.sinks.push(Arc::clone(&self.sink));
        }
        if !queued && !self.cut && self.sink.is_cut_off() {
            self.cut = true;
            cut.push(id);
        }
        queued
    }
}

/// One topic: its subscribers. (Its history is kept by [`History`].)
struct Topic {
    /// The name in the case it was first used.
    name: String,
    subscribers: BTreeSet<ClientId>,
    /// When it was last used (a counter, for evicting the longest idle).
    last_used: u64,
}

/// The key under which a name or a topic is found: names and topics are
/// unique without regard to ASCII case (`Alice` and `alice` are one).
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// The chat's shared state.
pub struct Registry {
    members: BTreeMap<ClientId, Member>,
    /// Folded name -> member.
    names: HashMap<String, ClientId>,
    /// Folded topic name -> topic.
    topics: HashMap<String, Topic>,
    /// Members whose connections were cut off, to be removed.
    cut: Vec<ClientId>,
    /// Told when a topic is evicted, so it can drop that stream.
    history: Arc<dyn History>,
    max_topics: usize,
    clock: u64,
    guests: u64,
    /// The registered names: guests may not take them.
    pub accounts: Directory,
    /// Subscriptions held by the members of each address (a few
    /// connections must not take every topic slot).
    subscribed_from: HashMap<Arc<str>, usize>,
    /// The members of the other nodes of a cluster (`remote.rs`).
    pub remote: Remote,
}

impl Registry {
    pub fn new(max_topics: usize, history: Arc<dyn History>) -> Registry {
        Registry {
            members: BTreeMap::new(),
            names: HashMap::new(),
            topics: HashMap::new(),
            cut: Vec::new(),
            history,
            max_topics,
            clock: 0,
            guests: 0,
            accounts: Directory::default(),
            subscribed_from: HashMap::new(),
            remote: Remote::default(),
        }
    }

    /// Queue `frame` for one member; true if it was queued. The sink to
    /// flush goes into `outbox`.
    pub fn queue(&mut self, outbox: &mut Outbox, id: ClientId, frame: &Frame) -> bool {
        let cut = &mut self.cut;
        self.members
            .get_mut(&id)
            .is_some_and(|member| member.queue(outbox, frame, id, cut))
    }

    /// A member whose connection was cut off by what was queued, to be
    /// removed (see `Chat::drop_cut_off`).
    pub fn next_cut_off(&mut self) -> Option<ClientId> {
        self.cut.pop()
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
        let cut = &mut self.cut;
        self.members
            .iter_mut()
            .filter(|(id, _)| Some(**id) != except)
            .map(|(id, member)| member.queue(outbox, frame, *id, cut))
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

    /// Queue `frame` for a topic's subscribers; returns how many took it.
    pub fn queue_subscribers(&mut self, outbox: &mut Outbox, topic: &str, frame: &Frame) -> usize {
        let Some(topic) = self.topics.get(&fold(topic)) else {
            return 0;
        };
        let ids: Vec<ClientId> = topic.subscribers.iter().copied().collect();
        self.queue_all(outbox, ids, frame)
    }

    /// The member with this name (any case).
    pub fn find(&self, name: &str) -> Option<ClientId> {
        self.names.get(&fold(name)).copied()
    }

    /// A member's connection.
    pub fn sink_of(&self, id: ClientId) -> Option<Arc<dyn Sink>> {
        self.members.get(&id).map(|m| Arc::clone(&m.sink))
    }

    /// A member's display name.
    pub fn name_of(&self, id: ClientId) -> Option<&str> {
        self.members.get(&id).map(|m| m.name.as_str())
    }

    /// Members connected now.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// No member is connected.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A display name that nobody has: `requested` if it is valid and free,
    /// `requested-2`, `-3`... if taken (shortened to fit 32 characters),
    /// `guest-N` if missing or invalid.
    pub fn free_name(&mut self, requested: Option<&str>) -> String {
        self.free_name_avoiding(requested, &[])
    }

    /// A free name as [`Registry::free_name`], but none of `avoid` (folded:
    /// names another node claimed first).
    pub fn free_name_avoiding(&mut self, requested: Option<&str>, avoid: &[String]) -> String {
        let free = |reg: &Registry, name: &str| {
            reg.is_free(name) && (avoid.is_empty() || !avoid.contains(&fold(name)))
        };
        match requested.filter(|n| valid_name(n)) {
            Some(name) if free(self, name) => name.to_owned(),
            Some(name) => (2u64..)
                .map(|n| {
                    let suffix = format!("-{n}");
                    let base = &name[..name.len().min(32 - suffix.len())];
                    format!("{base}{suffix}")
                })
                .find(|candidate| free(self, candidate))
                .unwrap_or_default(),
            None => loop {
                self.guests += 1;
                let candidate = format!("guest-{}", self.guests);
                if free(self, &candidate) {
                    break candidate;
                }
            },
        }
    }

    /// Nobody is connected under `name` (here or on another node) and no
    /// account has it: a guest may take it.
    pub fn is_free(&self, name: &str) -> bool {
        self.find(name).is_none() && !self.accounts.contains(name) && !self.remote.contains(name)
    }

    /// Add a member under a free name (or its own account's name).
    pub fn insert(
        &mut self,
        id: ClientId,
        name: String,
        standing: Standing,
        address: Arc<str>,
        sink: Arc<dyn Sink>,
    ) {
        self.names.insert(fold(&name), id);
        self.members.insert(
            id,
            Member {
                name,
                sink,
                topics: BTreeSet::new(),
                outbox_mark: 0,
                cut: false,
                standing,
                muted_until: 0,
                address,
            },
        );
    }

    /// A member's standing (a guest if it is not a member).
    pub fn standing_of(&self, id: ClientId) -> Standing {
        self.members
            .get(&id)
            .map_or(Standing::Guest, |m| m.standing)
    }

    pub fn set_standing(&mut self, id: ClientId, standing: Standing) {
        if let Some(m) = self.members.get_mut(&id) {
            m.standing = standing;
        }
    }

    /// Until when a member is muted (Unix ms; 0: not muted).
    pub fn muted_until(&self, id: ClientId) -> u64 {
        self.members.get(&id).map_or(0, |m| m.muted_until)
    }

    pub fn set_muted_until(&mut self, id: ClientId, until: u64) {
        if let Some(m) = self.members.get_mut(&id) {
            m.muted_until = until;
        }
    }

    pub fn address_of(&self, id: ClientId) -> Option<Arc<str>> {
        self.members.get(&id).map(|m| Arc::clone(&m.address))
    }

    /// The members connected from `address`.
    pub fn at_address(&self, address: &str) -> Vec<ClientId> {
        self.members
            .iter()
            .filter(|(_, m)| &*m.address == address)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Remove a member and its subscriptions; its name is returned.
    pub fn remove(&mut self, id: ClientId) -> Option<String> {
        let member = self.members.remove(&id)?;
        self.names.remove(&fold(&member.name));
        self.count_subscriptions(&member.address, -(member.topics.len() as isize));
        for key in &member.topics {
            if let Some(topic) = self.topics.get_mut(key) {
                topic.subscribers.remove(&id);
            }
        }
        Some(member.name)
    }

    /// Give a member a new name; the old one is returned.
    pub fn rename(&mut self, id: ClientId, new: &str) -> Option<String> {
        let member = self.members.get_mut(&id)?;
        let old = std::mem::replace(&mut member.name, new.to_owned());
        self.names.remove(&fold(&old));
        self.names.insert(fold(new), id);
        Some(old)
    }

    /// Make sure the topic exists (created if needed) and mark it used;
    /// its name in the case first used is returned. When `max_topics`
    /// topics exist, the longest idle one without subscribers is dropped
    /// (and its history with it); `None` if every one has subscribers.
    pub fn use_topic(&mut self, name: &str) -> Option<String> {
        let key = fold(name);
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
                self.history.forget(&Stream::Topic(idle));
            }
            let topic = Topic {
                name: name.to_owned(),
                subscribers: BTreeSet::new(),
                last_used: self.clock,
            };
            self.topics.insert(key.clone(), topic);
        }
        let topic = self.topics.get_mut(&key)?;
        topic.last_used = self.clock;
        Some(topic.name.clone())
    }

    /// Subscribe a member to a topic that [`use_topic`](Registry::use_topic) made.
    pub fn subscribe(&mut self, id: ClientId, topic: &str) {
        let key = fold(topic);
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        if let Some(t) = self.topics.get_mut(&key) {
            t.subscribers.insert(id);
            if member.topics.insert(key) {
                let address = Arc::clone(&member.address);
                self.count_subscriptions(&address, 1);
            }
        }
    }

    /// How many topics a member is subscribed to, and how many
    /// subscriptions the members of its address hold in all.
    pub fn subscriptions(&self, id: ClientId) -> (usize, usize) {
        self.members.get(&id).map_or((0, 0), |m| {
            let at_address = self.subscribed_from.get(&m.address).copied();
            (m.topics.len(), at_address.unwrap_or(0))
        })
    }

    fn count_subscriptions(&mut self, address: &Arc<str>, change: isize) {
        let count = self.subscribed_from.entry(Arc::clone(address)).or_insert(0);
        *count = count.saturating_add_signed(change);
        if *count == 0 {
            self.subscribed_from.remove(address);
        }
    }

    /// Unsubscribe a member; the topic's name if it was subscribed.
    pub fn unsubscribe(&mut self, id: ClientId, topic: &str) -> Option<String> {
        let key = fold(topic);
        let member = self.members.get_mut(&id)?;
        if !member.topics.remove(&key) {
            return None;
        }
        let address = Arc::clone(&member.address);
        self.count_subscriptions(&address, -1);
        let t = self.topics.get_mut(&key)?;
        t.subscribers.remove(&id);
        Some(t.name.clone())
    }

    /// Topics that have subscribers here, with how many, sorted by name.
    pub fn local_topics(&self) -> Vec<(&str, usize)> {
        let mut topics: Vec<(&str, usize)> = self
            .topics
            .values()
            .filter(|t| !t.subscribers.is_empty())
            .map(|t| (t.name.as_str(), t.subscribers.len()))
            .collect();
        topics.sort_unstable_by_key(|(name, _)| fold(name));
        topics
    }

    /// The names of the topics a member is subscribed to.
    pub fn topics_of(&self, id: ClientId) -> Vec<&str> {
        self.members.get(&id).map_or_else(Vec::new, |m| {
            m.topics
                .iter()
                .filter_map(|k| self.topics.get(k))
                .map(|t| t.name.as_str())
                .collect()
        })
    }

    /// Every member here, in the order they joined: (name, account).
    pub fn local_members(&self) -> impl Iterator<Item = (&str, bool)> {
        self.members
            .values()
            .map(|m| (m.name.as_str(), m.standing.is_account()))
    }
}
