//! The members of the other nodes of a cluster (issue 18): who is
//! connected elsewhere, so that names stay unique, `users` and the welcome
//! list everyone, a direct message can name a member on another host, and
//! `join`, `leave` and `rename` cross hosts. No I/O: the cluster adapter
//! feeds it what it reads from the broker.
//!
//! What the chat does with it is in `across.rs`.
//!
//! ```text
//!  this node: Chat::presence ─► version += 1 ─► bus.announce(version, change)
//!  other node: change (fast, may be lost)  ─┐
//!              snapshot (every beat, whole) ─┼─► Remote ─► presence frames here
//!              node gone (its key expired)  ─┘
//! ```
//!
//! Each node numbers its presence changes (`version`). A change newer than
//! what is known is applied at once (a gap marks the node incomplete); a
//! snapshot replaces the node's list if it is newer, or as new and the
//! list is incomplete, so a lost change is repaired within one beat and a
//! late snapshot never undoes a newer change.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::registry::{fold, Registry};

/// One change of presence, as nodes tell each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Join {
        name: String,
        account: bool,
    },
    Leave {
        name: String,
    },
    Rename {
        old: String,
        new: String,
        account: bool,
    },
}

/// A moderator's order, carried out on every node (a kick, a ban or a mute
/// reaches the member wherever it is connected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Close the member called `name`.
    Remove {
        name: String,
        code: u16,
        reason: String,
    },
    /// Close every member connected from `address` (but admins, when a
    /// moderator banned it).
    RemoveAddress {
        address: String,
        code: u16,
        reason: String,
        spare_admins: bool,
    },
    /// Mute the member called `name` until then (Unix ms; 0 lifts it).
    Mute { name: String, until: u64 },
}

/// What a node shows the others of itself, every beat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub version: u64,
    /// Names and whether each is an account.
    pub members: Vec<(String, bool)>,
    /// Topics with subscribers here, with how many.
    pub topics: Vec<(String, usize)>,
}

#[derive(Debug)]
struct Node {
    version: u64,
    /// Every change up to `version` was seen (none skipped).
    complete: bool,
    /// Folded name -> (name, account).
    members: BTreeMap<String, (String, bool)>,
    topics: Vec<(String, usize)>,
    /// The changes applied since the last snapshot, oldest first: a
    /// snapshot older than the newest of them is replayed forward with
    /// them, so a node that never stops changing still converges.
    recent: VecDeque<(u64, Change)>,
}

/// Changes kept per node between snapshots (a beat's worth of a busy node).
const RECENT: usize = 4096;

impl Default for Node {
    /// A node not heard of yet: nothing missed so far.
    fn default() -> Node {
        Node {
            version: 0,
            complete: true,
            members: BTreeMap::new(),
            topics: Vec::new(),
            recent: VecDeque::new(),
        }
    }
}

/// The other nodes' members and topics.
#[derive(Debug, Default)]
pub struct Remote {
    /// This node's own presence version (bumped per change it announces).
    pub version: u64,
    nodes: HashMap<String, Node>,
}

impl Remote {
    /// The node and name of a member elsewhere, any case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).map(|(name, _)| name)
    }

    /// A member elsewhere, any case: its name and whether it is an account.
    pub fn find(&self, name: &str) -> Option<(&str, bool)> {
        if self.nodes.is_empty() {
            return None; // one node, or none heard of yet: no allocation
        }
        let key = fold(name);
        self.nodes
            .values()
            .find_map(|n| n.members.get(&key).map(|(name, a)| (name.as_str(), *a)))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every member elsewhere: (name, account).
    pub fn members(&self) -> impl Iterator<Item = (&str, bool)> {
        self.nodes
            .values()
            .flat_map(|n| n.members.values().map(|(name, a)| (name.as_str(), *a)))
    }

    /// Subscribers elsewhere, by folded topic: (name, count).
    pub fn topics(&self) -> HashMap<String, (&str, usize)> {
        let mut all: HashMap<String, (&str, usize)> = HashMap::new();
        for (name, count) in self.nodes.values().flat_map(|n| n.topics.iter()) {
            all.entry(fold(name)).or_insert((name, 0)).1 += count;
        }
        all
    }

    /// The names of `node`'s members.
    pub fn names_of(&self, node: &str) -> Vec<String> {
        self.nodes.get(node).map_or_else(Vec::new, |n| {
            n.members.values().map(|(name, _)| name.clone()).collect()
        })
    }

    pub fn nodes(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// Apply a change `node` announced; what to show here is returned.
    pub fn change(&mut self, node: &str, version: u64, change: Change) -> Vec<Change> {
        let n = self.nodes.entry(node.to_owned()).or_default();
        if version <= n.version {
            return Vec::new(); // a snapshot already had it
        }
        n.complete = n.complete && version == n.version + 1;
        n.version = version;
        if n.recent.len() == RECENT {
            n.recent.pop_front();
        }
        n.recent.push_back((version, change.clone()));
        if apply(&mut n.members, &change) {
            vec![change]
        } else {
            Vec::new()
        }
    }

    /// Apply `node`'s whole list (written at its `version`); the joins,
    /// leaves and renames it implies are returned (a member whose case or
    /// standing changed is one rename). A list newer than what is known
    /// replaces it; an older one, when a change was missed, replaces it
    /// and the changes since are replayed on top.
    pub fn snapshot(&mut self, node: &str, snapshot: Snapshot) -> Vec<Change> {
        let n = self.nodes.entry(node.to_owned()).or_default();
        n.topics = snapshot.topics;
        while n
            .recent
            .front()
            .is_some_and(|(v, _)| *v <= snapshot.version)
        {
            n.recent.pop_front();
        }
        if snapshot.version <= n.version && n.complete {
            return Vec::new(); // nothing missed, and this is older
        }
        let mut members: BTreeMap<String, (String, bool)> = snapshot
            .members
            .into_iter()
            .map(|(name, a)| (fold(&name), (name, a)))
            .collect();
        // Replay what came after it; complete if no version is missing.
        let mut expected = snapshot.version + 1;
        let mut complete = true;
        for (v, change) in &n.recent {
            complete &= *v == expected;
            expected = v + 1;
            apply(&mut members, change);
        }
        n.version = n.version.max(snapshot.version);
        n.complete = complete && expected == n.version + 1;
        let shown = differences(&n.members, &members);
        n.members = members;
        shown
    }

    /// `node` is gone (its key expired): its members leave.
    pub fn gone(&mut self, node: &str) -> Vec<Change> {
        self.nodes.remove(node).map_or_else(Vec::new, |n| {
            n.members
                .into_values()
                .map(|(name, _)| Change::Leave { name })
                .collect()
        })
    }
}

/// Apply one change to a node's members; false if it changed nothing.
fn apply(members: &mut BTreeMap<String, (String, bool)>, change: &Change) -> bool {
    match change {
        Change::Join { name, account } => {
            members.insert(fold(name), (name.clone(), *account));
            true
        }
        Change::Leave { name } => members.remove(&fold(name)).is_some(),
        Change::Rename { old, new, account } => {
            members.remove(&fold(old));
            members.insert(fold(new), (new.clone(), *account));
            true
        }
    }
}

/// The changes that turn `was` into `now`.
fn differences(
    was: &BTreeMap<String, (String, bool)>,
    now: &BTreeMap<String, (String, bool)>,
) -> Vec<Change> {
    let mut shown = Vec::new();
    for (key, (name, _)) in was {
        if !now.contains_key(key) {
            shown.push(Change::Leave { name: name.clone() });
        }
    }
    for (key, (name, account)) in now {
        match was.get(key) {
            None => shown.push(Change::Join {
                name: name.clone(),
                account: *account,
            }),
            Some(old) if old != &(name.clone(), *account) => shown.push(Change::Rename {
                old: old.0.clone(),
                new: name.clone(),
                account: *account,
            }),
            Some(_) => {}
        }
    }
    shown
}

/// What the protocol lists: the members and topics of every node.
impl Registry {
    /// Names of every member: here in the order they joined, then elsewhere.
    pub fn user_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.local_members().map(|(n, _)| n).collect();
        names.extend(self.remote.members().map(|(n, _)| n));
        names
    }

    /// Names of the members signed in to accounts, here then elsewhere.
    pub fn account_names(&self) -> Vec<&str> {
        let here = self.local_members().filter(|(_, a)| *a);
        let there = self.remote.members().filter(|(_, a)| *a);
        here.chain(there).map(|(n, _)| n).collect()
    }

    /// Topics that have subscribers on any node, with how many, by name.
    pub fn active_topics(&self) -> Vec<(&str, usize)> {
        if self.remote.nodes.is_empty() {
            return self.local_topics();
        }
        let mut there = self.remote.topics();
        let mut all: Vec<(&str, usize)> = self
            .local_topics()
            .into_iter()
            .map(|(name, n)| (name, n + there.remove(&fold(name)).map_or(0, |t| t.1)))
            .collect();
        all.extend(there.into_values());
        all.sort_unstable_by_key(|(name, _)| fold(name));
        all
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
