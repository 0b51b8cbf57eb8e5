//! Passwords at the gate: logins and registrations, each throttled per
//! account and per address, at most one hash at a time per account and
//! per address, and at most two hashes in the whole server (Argon2id is
//! memory-hard on purpose; `auth::password`).

use super::*;

impl Gate {
    /// Hold the right to hash for these keys (at most one hash each at a
    /// time), counting the hash against the address.
    fn hold(&self, keys: Vec<String>, address: &str) -> Result<Hashing<'_>, Refused> {
        self.throttled(HASHES, address)?;
        {
            let mut hashing = self.hashing.lock();
            if keys.iter().any(|k| hashing.contains(k)) {
                return Err(Refused {
                    code: ErrorCode::Throttled,
                    message: "another attempt is running; wait for it".into(),
                    retry_after_ms: Some(1000),
                });
            }
            hashing.extend(keys.iter().cloned());
        }
        self.throttles.lock()[HASHES].failed(address, unix_ms());
        Ok(Hashing { gate: self, keys })
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
        let result = self.login_once(name, password, address);
        self.count_failure(result)
    }

    fn login_once(&self, name: &str, password: &str, address: &str) -> Result<SignedIn, Refused> {
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
        let wrong = || Refused::new(ErrorCode::BadCredentials, "wrong name or password");
        // No account can have such a name: nothing to hash, nothing to count.
        if !wire::valid_name(name) {
            return Err(wrong());
        }
        let key = name.to_ascii_lowercase();
        self.throttled(BY_ACCOUNT, &key)?;
        self.throttled(BY_ADDRESS, address)?;
        let _hashing = self.hold(
            vec![format!("account:{key}"), format!("address:{address}")],
            address,
        )?;
        let account = self.accounts.find(name).map_err(unavailable)?;
        let stored = account.as_ref().and_then(|a| a.hash.as_deref());
        let long = password.len() > MAX_PASSWORD;
        let candidate = if long { "" } else { password };
        let matched = password::verify(&self.slots, candidate, stored).ok_or_else(busy)? && !long;
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
                Err(wrong())
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
        password::hash(&self.slots, password, &salt).map_err(|e| match e.0.as_str() {
            password::BUSY => busy(),
            _ => unavailable(e.0),
        })
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
        let _hashing = match address {
            Some(address) => Some(self.hold(vec![format!("address:{address}")], address)?),
            None => None,
        };
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
            .add_session(name, &stored, expires, MAX_SESSIONS)
            .map_err(unavailable)?;
        Ok((token, stored, expires))
    }
}

/// No hashing slot was free in time: try again.
fn busy() -> Refused {
    Refused {
        code: ErrorCode::Throttled,
        message: "the server is busy checking passwords; try again".into(),
        retry_after_ms: Some(1000),
    }
}

/// The right to run one hash for some keys, given back on drop.
struct Hashing<'a> {
    gate: &'a Gate,
    keys: Vec<String>,
}

impl Drop for Hashing<'_> {
    fn drop(&mut self) {
        let mut hashing = self.gate.hashing.lock();
        for key in &self.keys {
            hashing.remove(key);
        }
    }
}
