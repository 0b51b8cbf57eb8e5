//! Password hashes: Argon2id (RFC 9106) at OWASP's recommended cost
//! (m = 19 MiB, t = 2, p = 1), stored as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`), so the parameters travel
//! with each hash and can be raised later: [`needs_rehash`] tells a login
//! to store a new hash.
//!
//! ```text
//!  verify(password, stored) ── wait for one of MAX_CONCURRENT slots ──► Argon2id (19 MiB, ~tens of ms)
//!  verify(password, None)   ── the same work against a fixed dummy hash: an unknown name
//!                              costs what a wrong password costs, so timing tells nothing
//! ```
//!
//! Each hash holds 19 MiB while it runs; on a 512 MiB board, at most
//! [`MAX_CONCURRENT`] run at once, on the asking connection's own worker,
//! never under a lock that others need.

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::{Condvar, Mutex};

/// OWASP's Argon2id parameters: memory in KiB, passes, lanes.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// A password is this many bytes at least, and at most.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

/// Hashes that may run at once (each holds `M_COST_KIB`).
pub const MAX_CONCURRENT: usize = 2;

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashError(pub String);

/// Waits for a free hashing slot; at most [`MAX_CONCURRENT`] are taken.
/// Each slot owns its Argon2 memory, allocated once and reused: a hash
/// never allocates 19 MiB on the thread that runs it. (It did at first:
/// glibc then kept each worker's freed block in that thread's arena, and
/// 100 logins on 100 workers held 1.9 GB.)
#[derive(Default)]
pub struct Slots {
    /// Memory of the slots not in use, and how many are in use.
    free: Mutex<(Vec<Vec<Block>>, usize)>,
    freed: Condvar,
}

/// A taken slot with its memory, given back on drop.
struct Slot<'a> {
    slots: &'a Slots,
    memory: Vec<Block>,
}

/// How long a hash waits for a slot before it gives up (the caller then
/// answers "busy, try again" rather than queueing without end).
pub const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Slots {
    fn take(&self) -> Option<Slot<'_>> {
        let deadline = std::time::Instant::now() + SLOT_WAIT;
        let mut free = self.free.lock();
        while free.1 >= MAX_CONCURRENT {
            if self.freed.wait_until(&mut free, deadline).timed_out() && free.1 >= MAX_CONCURRENT {
                return None;
            }
        }
        free.1 += 1;
        let memory = free.0.pop().unwrap_or_default();
        Some(Slot {
            slots: self,
            memory,
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.slots.free.lock();
        free.0.push(std::mem::take(&mut self.memory));
        free.1 -= 1;
        self.slots.freed.notify_one();
    }
}

impl Slot<'_> {
    /// Argon2 of `password` with `salt` into `out`, in this slot's memory
    /// (grown once to what `params` need).
    fn compute(
        &mut self,
        argon2: &Argon2,
        params: &Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        let blocks = params.block_count();
        if self.memory.len() < blocks {
            self.memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut self.memory[..blocks])
    }
}

fn params() -> Params {
    // The constants are valid parameters; `Params::DEFAULT` is the fallback
    // the type offers if they were not.
    Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or(Params::DEFAULT)
}

/// Bytes of hash output stored.
const OUTPUT_LEN: usize = 32;

/// Hash `password` with a 16-byte random `salt` (the caller draws it from
/// the OS); the PHC string to store.
pub fn hash(slots: &Slots, password: &str, salt: &[u8; 16]) -> Result<String, HashError> {
    let fail = |e: &dyn std::fmt::Display| HashError(e.to_string());
    let encoded = SaltString::encode_b64(salt).map_err(|e| fail(&e))?;
    let params = params();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; OUTPUT_LEN];
    let mut slot = slots.take().ok_or_else(|| HashError(BUSY.into()))?;
    slot.compute(&argon2, &params, password.as_bytes(), salt, &mut out)
        .map_err(|e| fail(&e))?;
    drop(slot);
    let output = Output::new(&out).map_err(|e| fail(&e))?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}${}${output}",
        encoded.as_str()
    ))
}

/// A hash of a password nobody has, at the same cost: verifying against it
/// takes as long as verifying a real one.
const DUMMY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c3dpdGNoYm9hcmRkdW1teQ$fRy4cOydLPsrG5FbpRU1P1tYU6qX8bMvGMXH3V3eB6Y";

/// What a hash that found no free slot within [`SLOT_WAIT`] says.
pub const BUSY: &str = "busy";

/// Does `password` match the `stored` PHC string? An unknown account
/// (`None`) or a stored string that does not parse does the same work
/// and answers no. The outputs are compared in constant time. `None`:
/// no slot was free within [`SLOT_WAIT`].
pub fn verify(slots: &Slots, password: &str, stored: Option<&str>) -> Option<bool> {
    let parsed = stored.and_then(|s| PasswordHash::new(s).ok());
    let (hash, real) = match parsed {
        Some(hash) => (hash, true),
        None => match PasswordHash::new(DUMMY) {
            Ok(hash) => (hash, false),
            Err(_) => return Some(false),
        },
    };
    let matched = matches(slots, password, &hash)?;
    Some(matched && real)
}

/// Recompute `hash` (its algorithm, version, parameters and salt) for
/// `password` and compare; `None` when no slot was free (a hash that
/// cannot be used answers no).
fn matches(slots: &Slots, password: &str, hash: &PasswordHash) -> Option<bool> {
    let mut slot = slots.take()?;
    let parts = || {
        let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
        let version = hash
            .version
            .map_or(Some(Version::V0x13), |v| Version::try_from(v).ok())?;
        Some((algorithm, version, Params::try_from(hash).ok()?, hash.hash?))
    };
    let Some((algorithm, version, params, expected)) = parts() else {
        return Some(false);
    };
    let mut salt = [0u8; 64];
    let Some(salt) = hash.salt.and_then(|s| s.decode_b64(&mut salt).ok()) else {
        return Some(false);
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let computed = slot.compute(&argon2, &params, password.as_bytes(), salt, &mut out);
    Some(computed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected))
}

/// Was `stored` made with other parameters than today's? Then a login
/// that verified it stores a new hash.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return true;
    };
    match Params::try_from(&hash) {
        Ok(params) => {
            hash.algorithm.as_str() != "argon2id"
                || (params.m_cost(), params.t_cost(), params.p_cost())
                    != (M_COST_KIB, T_COST, P_COST)
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let slots = Slots::default();
        let stored = hash(&slots, "correct horse", &[7; 16]).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert_eq!(verify(&slots, "correct horse", Some(&stored)), Some(true));
        assert_eq!(verify(&slots, "Correct horse", Some(&stored)), Some(false));
        assert_eq!(
            verify(&slots, "correct horse", None),
            Some(false),
            "no account"
        );
        assert_eq!(
            verify(&slots, "correct horse", Some("not a phc string")),
            Some(false)
        );
        assert!(!needs_rehash(&stored));
    }

    #[test]
    fn hashes_made_with_other_parameters_are_upgraded() {
        use argon2::password_hash::PasswordHasher;
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(&[1; 16]).unwrap();
        let old = weak.hash_password(b"pw", &salt).unwrap().to_string();
        let slots = Slots::default();
        assert_eq!(
            verify(&slots, "pw", Some(&old)),
            Some(true),
            "old hashes still verify"
        );
        assert!(needs_rehash(&old));
        assert!(needs_rehash("garbage"));
    }

    #[test]
    fn our_hashes_and_the_crates_own_verify_each_other() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let slots = Slots::default();
        let ours = hash(&slots, "correct horse", &[5; 16]).unwrap();
        let crate_hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(crate_hasher
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        let salt = SaltString::encode_b64(&[5; 16]).unwrap();
        let theirs = crate_hasher
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs, "the same PHC string as the crate makes");
        assert_eq!(verify(&slots, "correct horse", Some(&theirs)), Some(true));
    }

    #[test]
    fn the_dummy_hash_is_well_formed_at_todays_cost() {
        assert!(!needs_rehash(DUMMY));
    }

    #[test]
    fn an_unknown_name_costs_what_a_wrong_password_costs() {
        let slots = Slots::default();
        let stored = hash(&slots, "secret", &[3; 16]).unwrap();
        let time = |stored: Option<&str>| {
            let started = Instant::now();
            for _ in 0..3 {
                assert_eq!(verify(&slots, "guess", stored), Some(false));
            }
            started.elapsed()
        };
        let (wrong, unknown) = (time(Some(&stored)), time(None));
        let ratio = wrong.as_secs_f64() / unknown.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "wrong {wrong:?} vs unknown {unknown:?}"
        );
    }

    #[test]
    fn at_most_two_hashes_run_at_once() {
        let slots = Arc::new(Slots::default());
        let peak = Arc::new(Mutex::new((0usize, 0usize)));
        let workers: Vec<_> = (0..5)
            .map(|_| {
                let (slots, peak) = (Arc::clone(&slots), Arc::clone(&peak));
                std::thread::spawn(move || {
                    let _slot = slots.take().expect("a slot within SLOT_WAIT");
                    {
                        let mut p = peak.lock();
                        p.0 += 1;
                        p.1 = p.1.max(p.0);
                    }
                    std::thread::sleep(Duration::from_millis(30));
                    peak.lock().0 -= 1;
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(peak.lock().1, MAX_CONCURRENT);
    }
}
