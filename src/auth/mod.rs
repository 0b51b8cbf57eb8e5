//! Identity, with CPU only (no I/O, no clock reads a test cannot set, no
//! randomness of its own: callers pass the time and the random bytes in).
//!
//! | file | what |
//! |---|---|
//! | [`password`] | Argon2id password hashes as PHC strings, at most a few at once |
//! | [`jwt`] | HS256 JSON Web Tokens from an application backend (RFC 7519, RFC 7515) |
//! | [`session`] | random session tokens, stored only as their SHA-256 |
//! | [`throttle`] | failed sign-ins counted per account and per address |
//! | [`per_ip`] | connections open and opened per address (admission) |
//! | [`accounts`] | the `Accounts` seam a store implements |
//!
//! The chat never sees a password or a token: the server checks them
//! here and tells the chat only who the connection is.

pub mod accounts;
pub mod jwt;
pub mod password;
pub mod per_ip;
pub mod session;
pub mod throttle;

/// Who a connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Not signed in: a name nobody registered.
    Guest,
    /// A registered account.
    User { name: String, roles: Vec<Role> },
}

/// What an account may do beyond chatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    User,
    Moderator,
    Admin,
}

impl Role {
    /// The role named in a token, a flag or the database.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "user" => Some(Role::User),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }
}
