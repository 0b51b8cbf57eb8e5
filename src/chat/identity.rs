//! Who a member is, as far as the chat needs to know: a guest, or an
//! account with a rank. The chat never sees a password or a token; the
//! server checks those and tells the chat the result (`Standing`).
//!
//! Also the directory of registered names: a guest may not take one, and a
//! private message to one that is offline waits for its owner.

use std::collections::HashMap;

use super::registry::fold;

/// What an account may do beyond chatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rank {
    User,
    Moderator,
    Admin,
}

impl Rank {
    pub fn as_str(self) -> &'static str {
        match self {
            Rank::User => "user",
            Rank::Moderator => "moderator",
            Rank::Admin => "admin",
        }
    }
}

/// A member's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not signed in: a name nobody registered.
    Guest,
    /// Signed in to an account.
    Account(Rank),
}

impl Standing {
    pub fn is_account(self) -> bool {
        matches!(self, Standing::Account(_))
    }

    /// May kick, mute and ban.
    pub fn moderates(self) -> bool {
        matches!(self, Standing::Account(Rank::Moderator | Rank::Admin))
    }

    /// The `roles` list of the welcome and `whoami`: `[]` for a guest.
    pub fn roles(self) -> Vec<&'static str> {
        match self {
            Standing::Guest => Vec::new(),
            Standing::Account(rank) => vec![rank.as_str()],
        }
    }
}

/// The registered names (folded key -> the name as registered).
#[derive(Debug, Default)]
pub struct Directory {
    names: HashMap<String, String>,
}

impl Directory {
    /// Replace the whole directory (at start, and when the CLI changed it).
    pub fn set(&mut self, names: impl IntoIterator<Item = String>) {
        self.names = names.into_iter().map(|n| (fold(&n), n)).collect();
    }

    pub fn add(&mut self, name: &str) {
        self.names.insert(fold(name), name.to_owned());
    }

    pub fn remove(&mut self, name: &str) {
        self.names.remove(&fold(name));
    }

    /// The account's name as registered, if `name` (any case) is one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.names.get(&fold(name)).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(&fold(name))
    }
}
