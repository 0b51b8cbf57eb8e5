//! The chat's side of a cluster (issue 18): what the other nodes' changes,
//! lists and moderation orders do to the members here, a guest's name
//! claimed across hosts before it is used, and this node's own list. The
//! state is [`Remote`](super::remote::Remote), under the registry lock;
//! the cluster adapter (`cluster/`) calls these from its threads, and the
//! bus is told of this node's changes (`Chat::presence`).
//!
//! ```text
//!  ws-bus-in: change / order of another node ─► remote_change / enforce_here
//!  ws-beat:   lists of the others, node gone  ─► remote_snapshot / remote_gone
//!             this node's list                ◄── local_snapshot
//!  worker:    join / rename of a guest        ─► bus.claim (no lock held) ─► lock
//! ```

use serde_json::Value;

use super::bus::Claim;
use super::registry::{fold, Outbox, Registry};
use super::remote::{Change, Order, Snapshot};
use super::{messages, requests, Chat};

/// Names a guest's join tries to claim before it takes one on trust.
const CLAIM_TRIES: usize = 8;

impl Chat {
    /// `node` announced `change` (its `version`th): shown to the members here.
    pub fn remote_change(&self, node: &str, version: u64, change: Change) {
        self.apply_remote(|remote| remote.change(node, version, change));
    }

    /// `node`'s whole list, read at a beat.
    pub fn remote_snapshot(&self, node: &str, snapshot: Snapshot) {
        self.apply_remote(|remote| remote.snapshot(node, snapshot));
    }

    /// `node` stopped beating: its members leave.
    pub fn remote_gone(&self, node: &str) {
        self.apply_remote(|remote| remote.gone(node));
    }

    /// The members `node` had, as last known here.
    pub fn remote_names_of(&self, node: &str) -> Vec<String> {
        self.registry.lock().remote.names_of(node)
    }

    /// The nodes this one knows members of.
    pub fn remote_nodes(&self) -> Vec<String> {
        self.registry.lock().remote.nodes()
    }

    /// Carry out another node's moderation order on the members here.
    pub fn enforce_here(&self, order: &Order) {
        match order {
            Order::Remove { name, code, reason } => {
                self.remove_here(name, *code, reason);
            }
            Order::RemoveAddress {
                address,
                code,
                reason,
                spare_admins,
            } => {
                self.remove_address_here(address, *code, reason, *spare_admins);
            }
            Order::Mute { name, until } => {
                self.mute_here(name, *until);
            }
        }
    }

    /// A member of another node called `name` (any case): its name and
    /// whether it is signed in to an account.
    pub fn remote_member(&self, name: &str) -> Option<(String, bool)> {
        let reg = self.registry.lock();
        let (found, account) = reg.remote.find(name)?;
        Some((found.to_owned(), account))
    }

    /// Is `name` a member here now (a name this node must keep claimed)?
    pub fn is_here(&self, name: &str) -> bool {
        self.registry.lock().find(name).is_some()
    }

    /// This node's list, for the others.
    pub fn local_snapshot(&self) -> Snapshot {
        let reg = self.registry.lock();
        Snapshot {
            version: reg.remote.version,
            members: reg
                .local_members()
                .map(|(n, a)| (n.to_owned(), a))
                .collect(),
            topics: reg
                .local_topics()
                .into_iter()
                .map(|(t, n)| (t.to_owned(), n))
                .collect(),
        }
    }

    /// Another node holds the claim on `name`, which a guest here has (two
    /// nodes took it at once): the guest here gives way, renamed to a free
    /// variant.
    pub fn name_lost(&self, name: &str) {
        let mut out = Outbox::default();
        {
            let mut reg = self.registry.lock();
            let Some(holder) = reg.find(name) else {
                return;
            };
            if reg.standing_of(holder).is_account() {
                return; // an account's name is its own
            }
            let variant = reg.free_name(Some(name));
            if let Some(old) = reg.rename(holder, &variant) {
                log::info!("cluster: {old} is taken on another node; renamed {variant}");
                self.presence(
                    &mut reg,
                    &mut out,
                    holder,
                    "rename",
                    &variant,
                    Some(&old),
                    None,
                );
            }
            self.drop_cut_off(&mut reg, &mut out);
        }
        out.flush();
    }

    /// A free name for a guest, claimed across hosts: `requested` or a
    /// variant (see `Registry::free_name`), skipping what other nodes
    /// claimed first. Called with no lock held (the claim may wait).
    pub(super) fn claim_free_name(&self, requested: Option<&str>) -> String {
        let mut taken = Vec::new();
        loop {
            let candidate = self.registry.lock().free_name_avoiding(requested, &taken);
            if taken.len() >= CLAIM_TRIES || self.bus.claim(&candidate) != Claim::Taken {
                // After that many clashes the name is used on trust; the
                // claim made at the next beat settles it (`name_lost`).
                return candidate;
            }
            taken.push(fold(&candidate));
        }
    }

    /// `rename` across hosts: claim the name, then rename as on one node.
    pub(super) fn rename_claimed(&self, client: &mut super::Client, id: Value, name: &str) {
        let reply = if self.bus.claim(name) == Claim::Taken {
            let why = format!("{name:?} is taken");
            messages::response_error(&id, messages::ErrorCode::NameTaken, &why)
        } else {
            let mut reg = self.registry.lock();
            let params = serde_json::json!({ "name": name });
            let out = &mut client.pending;
            // Claimed: it answers now (never `Err`).
            match requests::rename(self, &mut reg, out, client.id, &id, &params, true) {
                Ok(reply) => reply,
                Err(_) => return,
            }
        };
        client.send_own(&(self.encode)(&reply));
    }

    fn apply_remote(&self, apply: impl FnOnce(&mut super::remote::Remote) -> Vec<Change>) {
        let mut out = Outbox::default();
        {
            let mut reg = self.registry.lock();
            for change in apply(&mut reg.remote) {
                self.show_remote(&mut reg, &mut out, &change);
            }
            self.drop_cut_off(&mut reg, &mut out);
        }
        out.flush();
    }

    /// Show a change elsewhere to every member here. An account that signs
    /// in elsewhere ends its session here (the later sign-in wins, as on
    /// one node).
    fn show_remote(&self, reg: &mut Registry, out: &mut Outbox, change: &Change) {
        let (event, name, old, account) = match change {
            Change::Join { name, account } => ("join", name, None, *account),
            Change::Leave { name } => ("leave", name, None, false),
            Change::Rename { old, new, account } => ("rename", new, Some(old.as_str()), *account),
        };
        if account && event != "leave" && reg.find(name).is_some() {
            self.make_room(reg, out, name);
        }
        let presence = messages::Presence {
            kind_of: "presence",
            event,
            name,
            old,
            registered: account,
            reason: None,
        };
        let frame = (self.encode)(&messages::to_json(&presence));
        reg.queue_everyone(out, &frame, None);
    }
}
