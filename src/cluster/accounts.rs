//! `RedisAccounts` (issue 18): the accounts seam over Redis, so every node
//! of a cluster signs in the same users with the same sessions, bans and
//! moderation log: a user who registers on one host logs in on any other.
//! Every call runs on a connection's worker, no lock held (`pool.rs`).
//!
//! ```text
//!  {sb}:account:<folded>      HASH name hash role topics created
//!  {sb}:accounts              SET of folded names (the directory)
//!  {sb}:session:<sha256>      STRING folded name, expiring with the session
//!  {sb}:sessions:<folded>     ZSET sha256 -> expiry (at most max; oldest go)
//!  {sb}:sanction:<kind>:<t>   HASH until reason (expiring with it)
//!  {sb}:address-bans          SET of banned addresses (expired ones pruned)
//!  {sb}:actions               ZSET json by id (the newest 10 000)
//!  {sb}:accounts-gen          INCR on every change: the others reload
//! ```
//!
//! Each change that must be all-or-nothing is one Lua script.

use std::time::Duration;

use crate::auth::accounts::{
    Account, Accounts, Action, Active, Result, Sanction, StoreError, Target,
};
use crate::auth::Role;
use crate::chat::registry::fold;

use super::conn::{Address, Conn, Error};
use super::pool::Pool;
use super::resp::Reply;

const DIRECTORY: &str = "{sb}:accounts";
const GENERATION: &str = "{sb}:accounts-gen";
const ADDRESS_BANS: &str = "{sb}:address-bans";
const ACTIONS: &str = "{sb}:actions";
const ACTION_ID: &str = "{sb}:action-id";
/// Moderator actions kept.
const KEEP_ACTIONS: i64 = 10_000;

fn account_key(folded: &str) -> String {
    format!("{{sb}}:account:{folded}")
}
fn session_key(stored: &str) -> String {
    format!("{{sb}}:session:{stored}")
}
fn sessions_key(folded: &str) -> String {
    format!("{{sb}}:sessions:{folded}")
}
fn sanction_key(kind: Sanction, target: &Target) -> String {
    format!("{{sb}}:sanction:{}:{}", kind.as_str(), target.key())
}

/// Create: the name joins the directory only if nobody has it.
const CREATE: &str = "\
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'name', ARGV[2], 'role', ARGV[3], 'topics', '[]', 'created', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'hash', ARGV[5]) end
redis.call('INCR', KEYS[3])
return 1";

/// Set one field of an existing account.
const SET_FIELD: &str = "\
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('INCR', KEYS[2]) end
return 1";

/// Revoke every session of an account (its index and each session key).
const REVOKE_ALL: &str = "\
for _, s in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('DEL', '{sb}:session:' .. s)
end
redis.call('DEL', KEYS[1])
return 1";

/// Delete an account with its sessions (its sanctions stay).
const DELETE: &str = "\
for _, s in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  redis.call('DEL', '{sb}:session:' .. s)
end
redis.call('DEL', KEYS[4])
local gone = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return gone";

/// Put a sanction in force (replacing one of the same kind), expiring with
/// it; an address ban joins the list every node reloads.
const SET_SANCTION: &str = "\
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'reason', ARGV[1])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'until', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
if ARGV[3] ~= '' then redis.call('SADD', KEYS[2], ARGV[3]) end
redis.call('INCR', KEYS[3])
return 1";

/// Add a session; keep the account's newest `max` (by expiry).
const ADD_SESSION: &str = "\
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if extra > 0 then
  for _, s in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
    redis.call('DEL', '{sb}:session:' .. s)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
return 1";

/// Accounts, sessions and sanctions shared through Redis.
pub struct RedisAccounts {
    pool: Pool,
}

impl RedisAccounts {
    pub fn new(address: Address) -> RedisAccounts {
        RedisAccounts {
            pool: Pool::new(address, 4, Duration::from_millis(1500)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> std::result::Result<T, Error>) -> Result<T> {
        self.pool
            .with(f)
            .map_err(|e| StoreError(format!("accounts in redis: {e}")))
    }
}

/// A reply that must not be an error reply.
fn ok(reply: Reply) -> std::result::Result<Reply, Error> {
    match reply {
        Reply::Error(e) => Err(Error::Io(std::io::Error::other(e))),
        other => Ok(other),
    }
}

/// `HGETALL` as field -> text.
fn fields(reply: &Reply) -> std::collections::HashMap<String, String> {
    reply
        .items()
        .chunks(2)
        .filter_map(|kv| Some((kv[0].text()?.to_owned(), kv.get(1)?.text()?.to_owned())))
        .collect()
}

fn active_of(reply: &Reply, now: u64) -> Option<Active> {
    let f = fields(reply);
    let reason = f.get("reason")?.clone();
    let until = f.get("until").and_then(|u| u.parse().ok());
    until
        .is_none_or(|u| u > now)
        .then_some(Active { until, reason })
}

impl Accounts for RedisAccounts {
    fn all(&self) -> Result<Vec<(String, Role)>> {
        self.with(|c| {
            let folded = ok(c.call(&["SMEMBERS", DIRECTORY])?)?;
            let mut all = Vec::new();
            for key in folded.items().iter().filter_map(Reply::text) {
                let f = fields(&ok(c.call(&["HGETALL", &account_key(key)])?)?);
                if let (Some(name), Some(role)) = (f.get("name"), f.get("role")) {
                    all.push((name.clone(), Role::parse(role).unwrap_or(Role::User)));
                }
            }
            all.sort_by_key(|(name, _)| fold(name));
            Ok(all)
        })
    }

    fn find(&self, name: &str) -> Result<Option<Account>> {
        self.with(|c| {
            let f = fields(&ok(c.call(&["HGETALL", &account_key(&fold(name))])?)?);
            Ok(f.get("name").map(|n| Account {
                name: n.clone(),
                hash: f.get("hash").cloned(),
                role: f
                    .get("role")
                    .and_then(|r| Role::parse(r))
                    .unwrap_or(Role::User),
                topics: f
                    .get("topics")
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default(),
            }))
        })
    }

    fn create(&self, name: &str, hash: Option<&str>, role: Role, now: u64) -> Result<bool> {
        let key = account_key(&fold(name));
        let args = [
            "EVAL",
            CREATE,
            "3",
            DIRECTORY,
            &key,
            GENERATION,
            &fold(name),
            name,
            role.as_str(),
            &now.to_string(),
            hash.unwrap_or(""),
        ];
        self.with(|c| Ok(ok(c.call(&args)?)?.int() == Some(1)))
    }

    fn set_hash(&self, name: &str, hash: &str) -> Result<bool> {
        self.set_field(name, "hash", hash, false)
    }

    fn set_role(&self, name: &str, role: Role) -> Result<bool> {
        self.set_field(name, "role", role.as_str(), true)
    }

    fn delete(&self, name: &str) -> Result<bool> {
        let folded = fold(name);
        let (account, index) = (account_key(&folded), sessions_key(&folded));
        let args = [
            "EVAL", DELETE, "4", &account, DIRECTORY, GENERATION, &index, &folded,
        ];
        self.with(|c| Ok(ok(c.call(&args)?)?.int() == Some(1)))
    }

    fn set_topics(&self, name: &str, topics: &[String]) -> Result<()> {
        let json = serde_json::to_string(topics).unwrap_or_else(|_| "[]".into());
        self.set_field(name, "topics", &json, false).map(|_| ())
    }

    fn add_session(&self, name: &str, stored: &str, expires: u64, max: usize) -> Result<()> {
        let folded = fold(name);
        let (key, index) = (session_key(stored), sessions_key(&folded));
        let (expires, max) = (expires.to_string(), max.max(1).to_string());
        let args = [
            "EVAL",
            ADD_SESSION,
            "2",
            &key,
            &index,
            &folded,
            stored,
            &expires,
            &max,
        ];
        self.with(|c| ok(c.call(&args)?).map(|_| ()))
    }

    fn session(&self, stored: &str, now: u64) -> Result<Option<String>> {
        self.with(|c| {
            let Some(folded) = ok(c.call(&["GET", &session_key(stored)])?)?
                .text()
                .map(str::to_owned)
            else {
                return Ok(None);
            };
            let score = ok(c.call(&["ZSCORE", &sessions_key(&folded), stored])?)?;
            if score.int().is_some_and(|expires| expires as u64 <= now) {
                return Ok(None);
            }
            let name = ok(c.call(&["HGET", &account_key(&folded), "name"])?)?;
            Ok(name.text().map(str::to_owned))
        })
    }

    fn revoke_session(&self, stored: &str) -> Result<()> {
        self.with(|c| {
            let owner = ok(c.call(&["GET", &session_key(stored)])?)?;
            if let Some(folded) = owner.text() {
                ok(c.call(&["ZREM", &sessions_key(folded), stored])?)?;
            }
            ok(c.call(&["DEL", &session_key(stored)])?).map(|_| ())
        })
    }

    /// Session keys expire by themselves; each account's index drops its
    /// expired entries when a session is added.
    fn purge_sessions(&self, _now: u64) -> Result<()> {
        Ok(())
    }

    fn revoke_all(&self, name: &str) -> Result<()> {
        let index = sessions_key(&fold(name));
        self.with(|c| ok(c.call(&["EVAL", REVOKE_ALL, "1", &index])?).map(|_| ()))
    }

    fn sanction(&self, kind: Sanction, target: &Target, now: u64) -> Result<Option<Active>> {
        let key = sanction_key(kind, target);
        self.with(|c| Ok(active_of(&ok(c.call(&["HGETALL", &key])?)?, now)))
    }

    fn set_sanction(&self, kind: Sanction, target: &Target, active: &Active) -> Result<()> {
        let key = sanction_key(kind, target);
        let until = active.until.map_or(String::new(), |u| u.to_string());
        let ip = match (kind, target) {
            (Sanction::Ban, Target::Address(ip)) => ip.as_str(),
            _ => "",
        };
        let args = [
            "EVAL",
            SET_SANCTION,
            "3",
            &key,
            ADDRESS_BANS,
            GENERATION,
            &active.reason,
            &until,
            ip,
        ];
        self.with(|c| ok(c.call(&args)?).map(|_| ()))
    }

    fn lift(&self, kind: Sanction, target: &Target) -> Result<bool> {
        let key = sanction_key(kind, target);
        self.with(|c| {
            let lifted = ok(c.call(&["DEL", &key])?)?.int() == Some(1);
            if let (Sanction::Ban, Target::Address(ip)) = (kind, target) {
                ok(c.call(&["SREM", ADDRESS_BANS, ip])?)?;
            }
            ok(c.call(&["INCR", GENERATION])?)?;
            Ok(lifted)
        })
    }

    fn address_bans(&self, now: u64) -> Result<Vec<(String, Active)>> {
        self.with(|c| {
            let ips = ok(c.call(&["SMEMBERS", ADDRESS_BANS])?)?;
            let mut bans = Vec::new();
            for ip in ips.items().iter().filter_map(Reply::text) {
                let key = sanction_key(Sanction::Ban, &Target::Address(ip.to_owned()));
                match active_of(&ok(c.call(&["HGETALL", &key])?)?, now) {
                    Some(active) => bans.push((ip.to_owned(), active)),
                    None => {
                        ok(c.call(&["SREM", ADDRESS_BANS, ip])?)?;
                    }
                }
            }
            Ok(bans)
        })
    }

    fn record(&self, a: &Action) -> Result<i64> {
        self.with(|c| {
            let id = ok(c.call(&["INCR", ACTION_ID])?)?.int().unwrap_or(0);
            let json = serde_json::json!({"id": id, "ts": a.ts, "by": a.by, "action": a.action,
                "target": a.target, "reason": a.reason, "until": a.until});
            ok(c.call(&["ZADD", ACTIONS, &id.to_string(), &json.to_string()])?)?;
            let trim = (-KEEP_ACTIONS - 1).to_string();
            ok(c.call(&["ZREMRANGEBYRANK", ACTIONS, "0", &trim])?)?;
            Ok(id)
        })
    }

    fn actions(&self, before: Option<i64>, limit: usize) -> Result<Vec<Action>> {
        let below = before.map_or("+inf".to_owned(), |b| format!("({b}"));
        let limit = limit.to_string();
        let args = [
            "ZREVRANGEBYSCORE",
            ACTIONS,
            &below,
            "-inf",
            "LIMIT",
            "0",
            &limit,
        ];
        self.with(|c| {
            let found = ok(c.call(&args)?)?;
            Ok(found
                .items()
                .iter()
                .filter_map(Reply::text)
                .filter_map(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                .filter_map(|v| {
                    Some(Action {
                        id: v["id"].as_i64()?,
                        ts: v["ts"].as_u64()?,
                        by: v["by"].as_str()?.to_owned(),
                        action: v["action"].as_str()?.to_owned(),
                        target: v["target"].as_str()?.to_owned(),
                        reason: v["reason"].as_str()?.to_owned(),
                        until: v["until"].as_u64(),
                    })
                })
                .collect())
        })
    }

    fn generation(&self) -> Result<i64> {
        self.with(|c| Ok(ok(c.call(&["GET", GENERATION])?)?.int().unwrap_or(0)))
    }
}

impl RedisAccounts {
    /// Set one field of an existing account; false if there is none.
    /// `visible`: the others reload (a role shows in the chat).
    fn set_field(&self, name: &str, field: &str, value: &str, visible: bool) -> Result<bool> {
        let key = account_key(&fold(name));
        let visible = if visible { "1" } else { "0" };
        let args = [
            "EVAL", SET_FIELD, "2", &key, GENERATION, field, value, visible,
        ];
        self.with(|c| Ok(ok(c.call(&args)?)?.int() == Some(1)))
    }
}
