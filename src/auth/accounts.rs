//! The accounts seam: what sign-in and moderation need from a store.
//! `store::SqliteAccounts` implements it over the database file; a
//! cluster store can implement it over Redis. Every method may block on
//! a disk or a network, so callers run them on a connection's own worker
//! with no lock held, never on the routing path.

use std::fmt;

use super::Role;

/// A store failure, in a line a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name in the case it was registered.
    pub name: String,
    /// Its Argon2id PHC string; `None` for an account that signs in only
    /// with tokens (made by a JWT).
    pub hash: Option<String>,
    pub role: Role,
    /// The topics it was subscribed to, restored at sign-in.
    pub topics: Vec<String>,
}

/// Who a sanction is against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An account, by name (any case).
    Account(String),
    /// An address as the server groups them (an IPv4 address, or an IPv6
    /// /64 prefix).
    Address(String),
}

impl Target {
    /// The key it is stored under: `account:NAME` (folded) or `address:IP`.
    pub fn key(&self) -> String {
        match self {
            Target::Account(name) => format!("account:{}", name.to_ascii_lowercase()),
            Target::Address(ip) => format!("address:{ip}"),
        }
    }
}

/// A mute or a ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sanction {
    Mute,
    Ban,
}

impl Sanction {
    pub fn as_str(self) -> &'static str {
        match self {
            Sanction::Mute => "mute",
            Sanction::Ban => "ban",
        }
    }
}

/// A sanction in force: until when (Unix ms; `None`: until lifted), why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub until: Option<u64>,
    pub reason: String,
}

/// One moderator action, as the `moderation` request shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub id: i64,
    pub ts: u64,
    pub by: String,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub until: Option<u64>,
}

/// Accounts, sessions, sanctions and the moderation log.
pub trait Accounts: Send + Sync {
    /// Every account's name and role (the chat's directory of registered
    /// names).
    fn all(&self) -> Result<Vec<(String, Role)>>;
    /// The account with this name (any case).
    fn find(&self, name: &str) -> Result<Option<Account>>;
    /// Create an account; false if the name is taken (any case).
    fn create(&self, name: &str, hash: Option<&str>, role: Role, now: u64) -> Result<bool>;
    /// Store a new password hash; false if there is no such account.
    fn set_hash(&self, name: &str, hash: &str) -> Result<bool>;
    fn set_role(&self, name: &str, role: Role) -> Result<bool>;
    /// Delete an account with its sessions and private messages (its
    /// sanctions stay: deleting and registering again lifts no mute or
    /// ban); false if there was none.
    fn delete(&self, name: &str) -> Result<bool>;
    fn set_topics(&self, name: &str, topics: &[String]) -> Result<()>;
    /// Keep a session (the SHA-256 of its token) until `expires` (Unix ms);
    /// an account keeps at most `max` sessions, the oldest going first.
    fn add_session(&self, name: &str, stored: &str, expires: u64, max: usize) -> Result<()>;
    /// The account of a live session (expired ones are deleted).
    fn session(&self, stored: &str, now: u64) -> Result<Option<String>>;
    fn revoke_session(&self, stored: &str) -> Result<()>;
    /// Delete the sessions that expired before `now`.
    fn purge_sessions(&self, now: u64) -> Result<()>;
    /// Revoke every session of an account.
    fn revoke_all(&self, name: &str) -> Result<()>;
    /// The sanction of this kind in force against `target` at `now`.
    fn sanction(&self, kind: Sanction, target: &Target, now: u64) -> Result<Option<Active>>;
    fn set_sanction(&self, kind: Sanction, target: &Target, active: &Active) -> Result<()>;
    /// Lift a sanction; false if there was none.
    fn lift(&self, kind: Sanction, target: &Target) -> Result<bool>;
    /// Every address ban in force (checked at each handshake, in memory).
    fn address_bans(&self, now: u64) -> Result<Vec<(String, Active)>>;
    /// Record a moderator action; its id.
    fn record(&self, action: &Action) -> Result<i64>;
    /// Moderator actions, newest first, with ids below `before`.
    fn actions(&self, before: Option<i64>, limit: usize) -> Result<Vec<Action>>;
    /// Changes whenever the store was changed by anyone else (the CLI
    /// while the server runs): the server then reloads what it caches.
    fn generation(&self) -> Result<i64>;
}
