//! The chat's side of accounts: signing a connection in, the registered
//! names, private messages that waited, and moderators' actions on
//! members. Checking a password or a token is not done here (it needs the
//! store and CPU time that must not hold the lock): the router hands
//! those requests back as [`Escalated`], the server checks them on the
//! connection's worker and then calls these methods with the result.
//!
//! ```text
//!  {"type":"auth"} / login / register / kick ... ─► router ─► Escalated ─► server (store, Argon2)
//!                                                                           │
//!  Chat::sign_in / kick / set_muted / close_address ◄───────────────────────┘
//! ```

use serde_json::Value;
use std::sync::Arc;

use super::identity::{Rank, Standing};
use super::registry::{fold, Outbox, Registry};
use super::remote::Order;
use super::{Chat, Client, ClientId};

/// What the chat cannot do itself and hands back to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escalated {
    /// `{"type":"auth","token":...}`.
    Auth { id: Option<Value>, token: String },
    /// An account or moderation request (`login`, `kick`, ...).
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// An account's subscriptions changed: save them.
    SaveTopics(Vec<String>),
}

/// The request methods the server answers (accounts and moderation).
pub const ACCOUNT_METHODS: [&str; 11] = [
    "register",
    "login",
    "logout",
    "passwd",
    "delete_account",
    "kick",
    "mute",
    "unmute",
    "ban",
    "unban",
    "moderation",
];

/// Who a moderator acts on, as the chat sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderation {
    /// The name as its owner has it.
    pub name: String,
    pub standing: Standing,
    pub address: Arc<str>,
}

/// A Close the chat asks a member's connection to send.
const SIGNED_IN_ELSEWHERE: (u16, &str) = (4002, "signed in elsewhere");

impl Chat {
    /// Make `name` free for its account: an older connection of the
    /// account is closed (4002) and leaves; a guest that has it (possible
    /// only if the account was made while the guest was connected) is
    /// renamed to a free variant.
    pub(super) fn make_room(&self, reg: &mut Registry, out: &mut Outbox, name: &str) {
        let Some(holder) = reg.find(name) else {
            return;
        };
        if reg.standing_of(holder).is_account() {
            if let Some(sink) = reg.sink_of(holder) {
                sink.close(SIGNED_IN_ELSEWHERE.0, SIGNED_IN_ELSEWHERE.1);
                out.note(&sink);
            }
            if let Some(old) = reg.remove(holder) {
                let why = Some(SIGNED_IN_ELSEWHERE.1);
                self.presence(reg, out, holder, "leave", &old, None, why);
            }
        } else {
            let variant = reg.free_name(Some(name));
            if let Some(old) = reg.rename(holder, &variant) {
                self.presence(reg, out, holder, "rename", &variant, Some(&old), None);
            }
        }
    }

    /// Sign a joined connection in to the account `name`: it takes the
    /// name (with `rename` presence), the account's saved `topics` are
    /// subscribed again, and a fresh welcome follows. A connection that
    /// was signed in to another account first drops that account's
    /// topics. False (and nothing done) if the connection is no longer a
    /// member (kicked, banned or replaced while its sign-in ran).
    pub fn sign_in(&self, client: &mut Client, name: &str, rank: Rank, topics: &[String]) -> bool {
        let mut reg = self.registry.lock();
        let out = &mut client.pending;
        let Some(current) = reg.name_of(client.id).map(fold) else {
            return false;
        };
        if reg.standing_of(client.id).is_account() && current != fold(name) {
            for topic in reg
                .topics_of(client.id)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
            {
                reg.unsubscribe(client.id, &topic);
            }
        }
        if reg.find(name) != Some(client.id) {
            self.make_room(&mut reg, out, name);
        }
        reg.accounts.add(name);
        reg.set_standing(client.id, Standing::Account(rank));
        if let Some(old) = reg.rename(client.id, name) {
            self.presence(&mut reg, out, client.id, "rename", name, Some(&old), None);
        }
        for topic in topics {
            if let Some(topic) = reg.use_topic(topic) {
                reg.subscribe(client.id, &topic);
            }
        }
        let welcome = self.welcome(&reg, client.id);
        reg.queue(out, client.id, &welcome);
        self.drop_cut_off(&mut reg, out);
        log::debug!("chat: {} signed in as {name}", client.id);
        true
    }

    /// Send the private messages that waited for this signed-in account,
    /// marked `"late":true`, oldest first. No lock is held while they are
    /// read.
    pub fn deliver_waiting(&self, client: &mut Client, name: &str) {
        let upto = self.bus.last_seq();
        for kept in self.history.take_waiting(&fold(name), upto) {
            let json = &kept.json;
            let late = format!("{},\"late\":true}}", &json[..json.len().saturating_sub(1)]);
            client.send_own(&(self.encode)(&late));
        }
    }

    /// Send `json` to this connection alone (flushed with its batch).
    pub fn reply(&self, client: &mut Client, json: &str) {
        client.send_own(&(self.encode)(json));
    }

    /// The name and standing of a connection.
    pub fn who(&self, client: &Client) -> Option<(String, Standing)> {
        let reg = self.registry.lock();
        let name = reg.name_of(client.id)?.to_owned();
        Some((name, reg.standing_of(client.id)))
    }

    /// The member called `name` (any case), if connected.
    pub fn member(&self, name: &str) -> Option<Moderation> {
        let reg = self.registry.lock();
        let id = reg.find(name)?;
        Some(Moderation {
            name: reg.name_of(id)?.to_owned(),
            standing: reg.standing_of(id),
            address: reg.address_of(id)?,
        })
    }

    /// Close the connection of the member called `name` with `code` and
    /// `reason`; the others get `leave` presence with the reason. False if
    /// nobody has that name.
    pub fn remove(&self, name: &str, code: u16, reason: &str) -> bool {
        let here = self.remove_here(name, code, reason);
        let elsewhere = self.bus.spans_hosts() && self.registry.lock().remote.contains(name);
        self.order(Order::Remove {
            name: name.to_owned(),
            code,
            reason: reason.to_owned(),
        });
        here || elsewhere
    }

    /// [`Chat::remove`] on this node only.
    pub(super) fn remove_here(&self, name: &str, code: u16, reason: &str) -> bool {
        let mut out = Outbox::default();
        let found = {
            let mut reg = self.registry.lock();
            match reg.find(name) {
                Some(id) => {
                    self.remove_member(&mut reg, &mut out, id, code, reason);
                    true
                }
                None => false,
            }
        };
        out.flush();
        found
    }

    /// Close every member connected from `address` (a ban); how many here.
    /// `spare_admins`: a moderator's ban leaves admins connected (the
    /// caller checked this node; on a cluster the others spare theirs).
    pub fn remove_address(
        &self,
        address: &str,
        code: u16,
        reason: &str,
        spare_admins: bool,
    ) -> usize {
        self.order(Order::RemoveAddress {
            address: address.to_owned(),
            code,
            reason: reason.to_owned(),
            spare_admins,
        });
        self.remove_address_here(address, code, reason, spare_admins)
    }

    /// [`Chat::remove_address`] on this node only.
    pub(super) fn remove_address_here(
        &self,
        address: &str,
        code: u16,
        reason: &str,
        spare_admins: bool,
    ) -> usize {
        let mut out = Outbox::default();
        let n = {
            let mut reg = self.registry.lock();
            let admin = Standing::Account(Rank::Admin);
            let ids: Vec<ClientId> = reg
                .at_address(address)
                .into_iter()
                .filter(|id| !(spare_admins && reg.standing_of(*id) == admin))
                .collect();
            for id in &ids {
                self.remove_member(&mut reg, &mut out, *id, code, reason);
            }
            ids.len()
        };
        out.flush();
        n
    }

    fn remove_member(
        &self,
        reg: &mut Registry,
        out: &mut Outbox,
        id: ClientId,
        code: u16,
        reason: &str,
    ) {
        if let Some(sink) = reg.sink_of(id) {
            sink.close(code, reason);
            out.note(&sink);
        }
        if let Some(old) = reg.remove(id) {
            self.presence(reg, out, id, "leave", &old, None, Some(reason));
        }
        self.drop_cut_off(reg, out);
    }

    /// Mute the member called `name` until `until` (Unix ms; 0 lifts it).
    /// False if nobody has that name.
    pub fn set_muted(&self, name: &str, until: u64) -> bool {
        self.order(Order::Mute {
            name: name.to_owned(),
            until,
        });
        self.mute_here(name, until)
    }

    /// On a cluster, the other nodes carry out the same order.
    fn order(&self, order: Order) {
        if self.bus.spans_hosts() {
            self.bus.enforce(&order);
        }
    }

    /// [`Chat::set_muted`] on this node only.
    pub(super) fn mute_here(&self, name: &str, until: u64) -> bool {
        let mut reg = self.registry.lock();
        match reg.find(name) {
            Some(id) => {
                reg.set_muted_until(id, until);
                true
            }
            None => false,
        }
    }

    /// Replace the registered names (at start, and when the CLI changed
    /// them): connected accounts get their rank as it is now, a guest that
    /// has a name now registered is renamed to a free variant, and the
    /// names of connected accounts that no longer exist are returned (the
    /// server closes them).
    pub fn set_accounts(&self, accounts: Vec<(String, Rank)>) -> Vec<String> {
        let mut out = Outbox::default();
        let gone = {
            let mut reg = self.registry.lock();
            let ranks: std::collections::HashMap<String, Rank> =
                accounts.iter().map(|(n, r)| (fold(n), *r)).collect();
            reg.accounts.set(accounts.into_iter().map(|(name, _)| name));
            let mut gone = Vec::new();
            let members: Vec<(ClientId, String)> = reg
                .local_members()
                .filter_map(|(n, _)| Some((reg.find(n)?, n.to_owned())))
                .collect();
            for (id, name) in members {
                match (reg.standing_of(id), ranks.get(&fold(&name))) {
                    (Standing::Account(_), Some(rank)) => {
                        reg.set_standing(id, Standing::Account(*rank))
                    }
                    (Standing::Account(_), None) => gone.push(name),
                    (Standing::Guest, Some(_)) => self.make_room(&mut reg, &mut out, &name),
                    (Standing::Guest, None) => {}
                }
            }
            gone
        };
        out.flush();
        gone
    }

    /// The standings of the members connected from `address`.
    pub fn standings_at(&self, address: &str) -> Vec<Standing> {
        let reg = self.registry.lock();
        reg.at_address(address)
            .into_iter()
            .map(|id| reg.standing_of(id))
            .collect()
    }

    /// A name was registered, or its account deleted.
    pub fn account_added(&self, name: &str) {
        self.registry.lock().accounts.add(name);
    }

    pub fn account_removed(&self, name: &str) {
        self.registry.lock().accounts.remove(name);
    }

    /// Is `name` (any case) registered? Its name as registered.
    pub fn registered(&self, name: &str) -> Option<String> {
        self.registry.lock().accounts.get(name).map(str::to_owned)
    }
}
