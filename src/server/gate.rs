//! The gate: sign-in and tokens, on the asking connection's worker.
//! Everything here may wait (a password hash, the accounts store), so it
//! runs with no lock held and never on another connection's behalf.
//!
//! ```text
//!  token  ─► a JWT (has dots): jwt::Keys::verify ─► its account (made on first use)
//!          └ else a session: SHA-256 ─► accounts.session ─► its account
//!  login  ─► throttle (per account, per address) ─► Argon2id verify (at most 2 at once;
//!            an unknown name verifies against a dummy hash: same answer, same time)
//!            ─► rehash if the parameters changed ─► a new session token
//!  every 2 s (ws-accounts): reload names and address bans if the CLI changed them
//! ```

use crate::counter::{AtomicI64, AtomicU64};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use crate::auth::accounts::{Account, Accounts, Active, Sanction, Target};
use crate::auth::throttle::{self, Throttle};
use crate::auth::{jwt, password, session, Role};
use crate::chat::identity::Rank;
use crate::chat::messages::ErrorCode;
use crate::chat::{unix_ms, wire, Chat};
use crate::config::{AuthMode, Config};

mod passwords;

/// A connection that signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The account's name as registered.
    pub name: String,
    pub rank: Rank,
    /// Its saved topics.
    pub topics: Vec<String>,
    /// The stored form of the session token it used or was given (what
    /// `logout` revokes); `None` for a JWT.
    pub session: Option<String>,
}

/// Why a sign-in or an account request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
    /// For `throttled`: when to try again.
    pub retry_after_ms: Option<u64>,
}

impl Refused {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refused {
        Refused {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

/// A store failure, as a client sees it (the details go to the log).
pub fn unavailable(e: impl std::fmt::Display) -> Refused {
    log::error!("accounts: {e}");
    Refused::new(
        ErrorCode::Unavailable,
        "accounts are unavailable; try again later",
    )
}

use crate::auth::password::{MAX_LEN as MAX_PASSWORD, MIN_LEN as MIN_PASSWORD};

/// Everything sign-in needs, shared by every worker.
pub struct Gate {
    pub mode: AuthMode,
    pub registration_open: bool,
    pub allow_query_token: bool,
    pub auth_timeout: std::time::Duration,
    session_ms: u64,
    pub accounts: Arc<dyn Accounts>,
    keys: Option<jwt::Keys>,
    slots: password::Slots,
    /// Failed passwords per account and per address; registrations and
    /// password hashes (of any outcome) per address. Held only to count.
    throttles: Mutex<[Throttle; 4]>,
    /// Accounts and addresses with a hash running now: at most one each,
    /// so many connections cannot race past the throttles together, nor
    /// one address take both hashing slots.
    hashing: Mutex<std::collections::HashSet<String>>,
    /// Address bans in force (checked at every handshake, in memory).
    bans: Mutex<HashMap<String, Active>>,
    generation: AtomicI64,
    refreshes: AtomicU64,
    /// Failed logins and tokens, by reason (`/metrics`).
    pub failures: crate::counter::ByLabel<6>,
}

/// Why a login or a token failed, as `/metrics` labels.
pub const FAILURE_REASONS: [&str; 6] = [
    "bad_credentials",
    "bad_token",
    "throttled",
    "banned",
    "unavailable",
    "other",
];

const BY_ACCOUNT: usize = 0;
const BY_ADDRESS: usize = 1;
const REGISTRATIONS: usize = 2;
const HASHES: usize = 3;
/// Password hashes (logins, registrations, password checks, whatever
/// their outcome) one address may ask for in the throttle's window
/// before it waits.
const HASHES_FREE: u32 = 60;
/// Sessions kept per account (the oldest go first).
pub const MAX_SESSIONS: usize = 100;

/// How an address is named for throttles and bans: an IPv4 address, or the
/// /64 an IPv6 address belongs to (one host usually has a whole /64).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The same grouping as a number, for the accept loop's per-address
/// count (no allocation per accepted connection): an IPv4 address, or an
/// IPv6 /64 with bit 63 set so that no IPv4 address equals it.
pub fn address_group(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) & !(u64::MAX as u128)) | 1 << 63,
        },
    }
}

/// `len` bytes from the OS's random source.
pub fn random<const N: usize>() -> Result<[u8; N], Refused> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(unavailable)?;
    Ok(bytes)
}

/// The keys of a `--jwt-secret-file`: one `KID SECRET` or `SECRET` per
/// line (`#` starts a comment). A secret shorter than 32 bytes is refused.
pub fn read_keys(path: &std::path::Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kid, secret) = match line.split_once(char::is_whitespace) {
            Some((kid, secret)) => (kid.to_owned(), secret.trim()),
            None => (String::new(), line),
        };
        if secret.len() < 32 {
            return Err(format!(
                "{shown} line {}: a secret needs at least 32 bytes",
                n + 1
            ));
        }
        keys.push((kid, secret.as_bytes().to_vec()));
    }
    if keys.is_empty() {
        return Err(format!("{shown}: no keys"));
    }
    Ok(keys)
}

fn rank_of(role: Role) -> Rank {
    match role {
        Role::User => Rank::User,
        Role::Moderator => Rank::Moderator,
        Role::Admin => Rank::Admin,
    }
}

impl Gate {
    pub fn new(config: &Config, accounts: Arc<dyn Accounts>) -> Result<Gate, String> {
        let keys = match &config.jwt_secret_file {
            Some(path) => Some(jwt::Keys::new(
                read_keys(path)?,
                config.jwt_audience.clone(),
            )),
            None => None,
        };
        Ok(Gate {
            mode: config.auth,
            registration_open: config.registration_open,
            allow_query_token: config.allow_query_token,
            auth_timeout: config.auth_timeout,
            session_ms: config.session_days * 86_400_000,
            accounts,
            keys,
            slots: password::Slots::default(),
            throttles: Mutex::new([
                Throttle::new(throttle::ACCOUNT_FREE),
                Throttle::new(throttle::ADDRESS_FREE),
                Throttle::new(throttle::ADDRESS_FREE),
                Throttle::new(HASHES_FREE),
            ]),
            hashing: Mutex::new(std::collections::HashSet::new()),
            bans: Mutex::new(HashMap::new()),
            generation: AtomicI64::new(-1),
            refreshes: AtomicU64::new(0),
            failures: crate::counter::ByLabel::new(FAILURE_REASONS),
        })
    }

    /// Load (or, when the CLI changed the store, reload) the registered
    /// names and the address bans.
    pub fn refresh(&self, chat: &Chat) {
        let Ok(generation) = self.accounts.generation() else {
            return;
        };
        let now = unix_ms();
        if generation != self.generation.load(SeqCst) {
            match self.accounts.all() {
                Ok(all) => {
                    let all = all.into_iter().map(|(n, r)| (n, rank_of(r))).collect();
                    for gone in chat.set_accounts(all) {
                        // Deleted while connected (`switchboard user delete`).
                        chat.remove(&gone, 4000, "account deleted");
                    }
                    self.generation.store(generation, SeqCst);
                }
                Err(e) => log::warn!("accounts: cannot load names: {e}"),
            }
        }
        // Expired sessions go about once a minute (every 30th refresh).
        if self.refreshes.fetch_add(1, SeqCst).is_multiple_of(30) {
            if let Err(e) = self.accounts.purge_sessions(now) {
                log::warn!("accounts: cannot delete expired sessions: {e}");
            }
        }
        match self.accounts.address_bans(now) {
            Ok(bans) => *self.bans.lock() = bans.into_iter().collect(),
            Err(e) => log::warn!("accounts: cannot load bans: {e}"),
        }
    }

    /// The ban in force on this address, if any.
    pub fn address_ban(&self, address: &str) -> Option<Active> {
        let now = unix_ms();
        let bans = self.bans.lock();
        bans.get(address)
            .filter(|b| b.until.is_none_or(|u| u > now))
            .cloned()
    }

    /// Remember (or forget) an address ban made now.
    pub fn note_address_ban(&self, address: &str, ban: Option<Active>) {
        let mut bans = self.bans.lock();
        match ban {
            Some(ban) => bans.insert(address.to_owned(), ban),
            None => bans.remove(address),
        };
    }

    /// A session token or a JWT: who it signs in.
    pub fn check_token(&self, token: &str) -> Result<SignedIn, Refused> {
        let result = self.token_once(token);
        self.count_failure(result)
    }

    /// A failure counted by its reason, for `/metrics`.
    fn count_failure(&self, result: Result<SignedIn, Refused>) -> Result<SignedIn, Refused> {
        if let Err(refused) = &result {
            self.failures.inc(match refused.code {
                ErrorCode::BadCredentials => "bad_credentials",
                ErrorCode::BadToken => "bad_token",
                ErrorCode::Throttled => "throttled",
                ErrorCode::Banned => "banned",
                ErrorCode::Unavailable => "unavailable",
                _ => "other",
            });
        }
        result
    }

    fn token_once(&self, token: &str) -> Result<SignedIn, Refused> {
        let bad = |why: &str| Refused::new(ErrorCode::BadToken, why);
        if token.len() > jwt::MAX_TOKEN {
            return Err(bad("token too long"));
        }
        let now = unix_ms();
        let (signed, roles) = if token.contains('.') {
            let Some(keys) = &self.keys else {
                return Err(bad("this server does not accept JWTs"));
            };
            let claims = keys
                .verify(token, now / 1000)
                .map_err(|why| bad(&format!("JWT refused: {why:?}")))?;
            if !wire::valid_name(&claims.name) {
                return Err(bad("JWT sub is not a valid name"));
            }
            let account = match self.accounts.find(&claims.name).map_err(unavailable)? {
                // A JWT names its user; a name someone registered with a
                // password is not the backend's to hand out.
                Some(account) if account.hash.is_some() => {
                    return Err(bad("that account signs in with a password, not a JWT"))
                }
                Some(account) => account,
                None => {
                    let role = claims.roles.iter().max().copied().unwrap_or(Role::User);
                    self.accounts
                        .create(&claims.name, None, role, now)
                        .map_err(unavailable)?;
                    self.accounts
                        .find(&claims.name)
                        .map_err(unavailable)?
                        .ok_or_else(|| bad("account vanished"))?
                }
            };
            (account, Some(claims.roles))
        } else {
            let stored = session::stored_form(token);
            let name = self
                .accounts
                .session(&stored, now)
                .map_err(unavailable)?
                .ok_or_else(|| bad("unknown, expired or revoked session"))?;
            let account = self
                .accounts
                .find(&name)
                .map_err(unavailable)?
                .ok_or_else(|| bad("the account was deleted"))?;
            let mut signed = self.signed_in(account, None);
            signed.session = Some(stored);
            return self.unless_banned(signed);
        };
        // A JWT's roles are the backend's word each time: none means user.
        let mut signed = self.signed_in(signed, None);
        let roles = roles.unwrap_or_default();
        signed.rank = rank_of(roles.into_iter().max().unwrap_or(Role::User));
        self.unless_banned(signed)
    }

    fn signed_in(&self, account: Account, session: Option<String>) -> SignedIn {
        SignedIn {
            name: account.name,
            rank: rank_of(account.role),
            topics: account.topics,
            session,
        }
    }

    fn unless_banned(&self, signed: SignedIn) -> Result<SignedIn, Refused> {
        match self.ban_of(&signed.name)? {
            Some(ban) => Err(Refused::new(
                ErrorCode::Banned,
                format!("banned: {}", ban.reason),
            )),
            None => Ok(signed),
        }
    }

    /// The ban in force on an account, if any.
    pub fn ban_of(&self, name: &str) -> Result<Option<Active>, Refused> {
        let target = Target::Account(name.to_owned());
        self.accounts
            .sanction(Sanction::Ban, &target, unix_ms())
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_grouped_ipv6_by_64_as_text_and_as_numbers() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let same = |a: &str, b: &str| {
            address_group(ip(a)) == address_group(ip(b)) && address_key(ip(a)) == address_key(ip(b))
        };
        assert!(same("2001:db8:1:2::1", "2001:db8:1:2:ffff::9"));
        assert!(!same("2001:db8:1:2::1", "2001:db8:1:3::1"));
        assert!(!same("127.0.0.1", "127.0.0.2"));
        assert!(same("::ffff:127.0.0.1", "127.0.0.1"));
        assert_ne!(address_group(ip("::1")), address_group(ip("0.0.0.0")));
    }
}
