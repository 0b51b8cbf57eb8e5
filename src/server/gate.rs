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

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::sync::Arc;

use crate::auth::accounts::{Account, Accounts, Active, Sanction, Target};
use crate::auth::throttle::{self, Throttle};
use crate::auth::{jwt, password, session, Role};
use crate::chat::identity::Rank;
use crate::chat::messages::ErrorCode;
use crate::chat::{unix_ms, wire, Chat};
use crate::config::{AuthMode, Config};

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
    /// Failed passwords per account and per address; registrations per
    /// address. Held only to count.
    throttles: Mutex<[Throttle; 3]>,
    /// Address bans in force (checked at every handshake, in memory).
    bans: Mutex<HashMap<String, Active>>,
    generation: AtomicI64,
}

const BY_ACCOUNT: usize = 0;
const BY_ADDRESS: usize = 1;
const REGISTRATIONS: usize = 2;

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
            ]),
            bans: Mutex::new(HashMap::new()),
            generation: AtomicI64::new(-1),
        })
    }

    /// Load (or, when the CLI changed the store, reload) the registered
    /// names and the address bans.
    pub fn refresh(&self, chat: &Chat) {
        let Ok(generation) = self.accounts.generation() else {
            return;
        };
        let now = unix_ms();
        if generation != self.generation.swap(generation, SeqCst) {
            match self.accounts.all() {
                Ok(all) => {
                    chat.set_accounts(all.into_iter().map(|(n, r)| (n, rank_of(r))).collect())
                }
                Err(e) => log::warn!("accounts: cannot load names: {e}"),
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
        let mut signed = self.signed_in(signed, None);
        if let Some(roles) = roles.filter(|r| !r.is_empty()) {
            signed.rank = rank_of(roles.into_iter().max().unwrap_or(Role::User));
        }
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
        let target = Target::Account(signed.name.clone());
        match self
            .accounts
            .sanction(Sanction::Ban, &target, unix_ms())
            .map_err(unavailable)?
        {
            Some(ban) => Err(Refused::new(
                ErrorCode::Banned,
                format!("banned: {}", ban.reason),
            )),
            None => Ok(signed),
        }
    }

    /// A throttle's wait for `key`, as a refusal.
    fn throttled(&self, which: usize, key: &str) -> Result<(), Refused> {
        let wait = self.throttles.lock()[which].wait_ms(key, unix_ms());
        if wait == 0 {
            return Ok(());
        }
        Err(Refused {
            code: ErrorCode::Throttled,
            message: "too many attempts; wait before trying again".into(),
            retry_after_ms: Some(wait),
        })
    }

    /// Check a password (throttled per account and per address): the
    /// account it signs in to.
    pub fn login(&self, name: &str, password: &str, address: &str) -> Result<SignedIn, Refused> {
        let account = self.verified(name, password, address)?;
        if account.hash.as_deref().is_some_and(password::needs_rehash) {
            if let Ok(hash) = self.hash(password) {
                let _ = self.accounts.set_hash(&account.name, &hash);
            }
        }
        self.unless_banned(self.signed_in(account, None))
    }

    /// Check a password without signing in (`passwd`, `delete_account`),
    /// throttled like a login.
    pub fn check_password(&self, name: &str, password: &str, address: &str) -> Result<(), Refused> {
        self.verified(name, password, address).map(|_| ())
    }

    /// The account, if `password` is its password. An unknown name, a
    /// token-only account and an over-long password all cost one Argon2id
    /// verify against a dummy hash, and give the same answer.
    fn verified(&self, name: &str, password: &str, address: &str) -> Result<Account, Refused> {
        let key = name.to_ascii_lowercase();
        self.throttled(BY_ACCOUNT, &key)?;
        self.throttled(BY_ADDRESS, address)?;
        let account = self.accounts.find(name).map_err(unavailable)?;
        let stored = account.as_ref().and_then(|a| a.hash.as_deref());
        let long = password.len() > MAX_PASSWORD;
        let candidate = if long { "" } else { password };
        let matched = password::verify(&self.slots, candidate, stored) && !long;
        match account {
            Some(account) if matched => {
                self.throttles.lock()[BY_ACCOUNT].succeeded(&key);
                Ok(account)
            }
            _ => {
                let now = unix_ms();
                let mut throttles = self.throttles.lock();
                throttles[BY_ACCOUNT].failed(&key, now);
                throttles[BY_ADDRESS].failed(address, now);
                drop(throttles);
                log::info!("auth: wrong password for {name:?} from {address}");
                Err(Refused::new(
                    ErrorCode::BadCredentials,
                    "wrong name or password",
                ))
            }
        }
    }

    /// A new hash of `password` (a fresh salt), if it is acceptable.
    pub fn hash(&self, password: &str) -> Result<String, Refused> {
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.len()) {
            return Err(Refused::new(
                ErrorCode::WeakPassword,
                format!("a password is {MIN_PASSWORD} to {MAX_PASSWORD} bytes"),
            ));
        }
        let salt = random::<16>()?;
        password::hash(&self.slots, password, &salt).map_err(|e| unavailable(e.0))
    }

    /// Create an account. A self-registration (not by an admin) is
    /// throttled per address.
    pub fn register(
        &self,
        name: &str,
        password: &str,
        address: Option<&str>,
    ) -> Result<(), Refused> {
        if let Some(address) = address {
            self.throttled(REGISTRATIONS, address)?;
        }
        if !wire::valid_name(name) {
            return Err(Refused::new(
                ErrorCode::BadName,
                "a name is 1-32 letters, digits, _ - .",
            ));
        }
        let hash = self.hash(password)?;
        if let Some(address) = address {
            self.throttles.lock()[REGISTRATIONS].failed(address, unix_ms());
        }
        let created = self
            .accounts
            .create(name, Some(&hash), Role::User, unix_ms())
            .map_err(unavailable)?;
        if !created {
            return Err(Refused::new(
                ErrorCode::NameTaken,
                format!("{name:?} is taken"),
            ));
        }
        log::info!("auth: account {name:?} registered");
        Ok(())
    }

    /// Give a signed-in account a new session token: (token, expires).
    pub fn new_session(&self, name: &str) -> Result<(String, String, u64), Refused> {
        let (token, stored) = session::new_token(&random::<{ session::TOKEN_BYTES }>()?);
        let expires = unix_ms() + self.session_ms;
        self.accounts
            .add_session(name, &stored, expires)
            .map_err(unavailable)?;
        Ok((token, stored, expires))
    }
}
