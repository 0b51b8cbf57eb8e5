//! Moderators' requests: `kick`, `mute`, `unmute`, `ban`, `unban` and the
//! `moderation` log (see `docs/PROTOCOL.md`, Moderation). Sanctions are
//! stored (they outlive restarts); the chat carries out what applies to
//! members connected now.
//!
//! ```text
//!  kick  ─► Close 4000 + reason to the member; `leave` presence with the reason
//!  mute  ─► stored for an account; the member's messages get `muted` until then
//!  ban   ─► an account: stored, Close 4003, sign-in refused
//!           an address (or a guest's): stored, its chat connections closed, 403 at handshake
//! ```

use serde_json::{json, Value};
use std::net::IpAddr;

use super::gate::{address_key, unavailable, Refused};
use super::handlers::ChatHandler;
use super::signin::text;
use crate::auth::accounts::{Action, Active, Sanction, Target};
use crate::auth::Role;
use crate::chat::identity::{Rank, Standing};
use crate::chat::messages::ErrorCode;
use crate::chat::unix_ms;

/// The longest mute or timed ban: a year.
const MAX_SECONDS: u64 = 365 * 86_400;
/// A mute without `seconds`: ten minutes.
const DEFAULT_MUTE: u64 = 600;
/// The most actions one `moderation` request returns.
const MAX_ACTIONS: usize = 100;

fn not_allowed(why: &str) -> Refused {
    Refused::new(ErrorCode::NotAllowed, why)
}

/// Run one moderation method for a moderator or admin.
pub fn run(h: &mut ChatHandler, method: &str, params: &Value) -> Result<Value, Refused> {
    let me = h.signed_in()?.name.clone();
    let rank = h.rank().unwrap_or(Rank::User);
    if rank < Rank::Moderator {
        return Err(not_allowed("only moderators and admins may do that"));
    }
    let reason = params
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    let act = Act {
        h,
        me,
        rank,
        reason,
    };
    match method {
        "kick" => act.kick(text(params, "name")?),
        "mute" => {
            let seconds = seconds(params, Some(DEFAULT_MUTE))?.unwrap_or(DEFAULT_MUTE);
            act.mute(text(params, "name")?, seconds)
        }
        "unmute" => act.unmute(text(params, "name")?),
        "ban" => {
            let seconds = seconds(params, None)?;
            act.ban(target(params)?, seconds)
        }
        "unban" => act.unban(target(params)?),
        _ => act.log(params),
    }
}

fn seconds(params: &Value, default: Option<u64>) -> Result<Option<u64>, Refused> {
    match params.get("seconds") {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(s) if (1..=MAX_SECONDS).contains(&s) => Ok(Some(s)),
            _ => Err(Refused::new(
                ErrorCode::BadRequest,
                format!("seconds must be 1 to {MAX_SECONDS}"),
            )),
        },
    }
}

/// `name` or `address` of a ban.
enum Whom {
    Name(String),
    Address(String),
}

fn target(params: &Value) -> Result<Whom, Refused> {
    if let Some(address) = params.get("address").and_then(Value::as_str) {
        let ip: IpAddr = address
            .parse()
            .map_err(|_| Refused::new(ErrorCode::BadRequest, "address must be an IP address"))?;
        return Ok(Whom::Address(address_key(ip)));
    }
    Ok(Whom::Name(text(params, "name")?.to_owned()))
}

struct Act<'a> {
    h: &'a mut ChatHandler,
    me: String,
    rank: Rank,
    reason: String,
}

impl Act<'_> {
    /// Nobody acts on themselves, and a moderator not on an admin.
    fn may_act_on(&self, name: &str, standing: Option<Standing>) -> Result<(), Refused> {
        if name.eq_ignore_ascii_case(&self.me) {
            return Err(not_allowed("not on yourself"));
        }
        let admin = match standing {
            Some(Standing::Account(rank)) => rank == Rank::Admin,
            Some(Standing::Guest) => false,
            None => self.stored_role(name)? == Some(Role::Admin),
        };
        if admin && self.rank != Rank::Admin {
            return Err(not_allowed("a moderator cannot act on an admin"));
        }
        Ok(())
    }

    /// The account called `name`, as registered: from the chat's directory,
    /// or from the store for one made moments ago (on a cluster, on another
    /// node, before this one reloaded its directory).
    fn registered(&self, name: &str) -> Result<Option<String>, Refused> {
        if let Some(name) = self.h.chat.registered(name) {
            return Ok(Some(name));
        }
        let account = self.h.gate()?.accounts.find(name).map_err(unavailable)?;
        Ok(account.map(|a| a.name))
    }

    fn stored_role(&self, name: &str) -> Result<Option<Role>, Refused> {
        let account = self.h.gate()?.accounts.find(name).map_err(unavailable)?;
        Ok(account.map(|a| a.role))
    }

    fn record(&self, action: &str, target: &str, until: Option<u64>) -> Result<(), Refused> {
        let entry = Action {
            id: 0,
            ts: unix_ms(),
            by: self.me.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            reason: self.reason.clone(),
            until,
        };
        self.h
            .gate()?
            .accounts
            .record(&entry)
            .map_err(unavailable)?;
        log::info!(
            "moderation: {} {action} {target} until={until:?} reason={:?}",
            self.me,
            self.reason
        );
        Ok(())
    }

    fn kick(self, name: &str) -> Result<Value, Refused> {
        // Here, or (on a cluster) on another node: an account's rank is
        // then read from the store.
        let (target, standing) = match self.h.chat.member(name) {
            Some(member) => (member.name, Some(member.standing)),
            None => match self.h.chat.remote_member(name) {
                Some((found, account)) => (found, (!account).then_some(Standing::Guest)),
                None => {
                    let why = format!("nobody is called {name:?}");
                    return Err(Refused::new(ErrorCode::UnknownUser, why));
                }
            },
        };
        self.may_act_on(&target, standing)?;
        let why = if self.reason.is_empty() {
            "kicked by a moderator"
        } else {
            &self.reason
        };
        self.h.chat.remove(&target, 4000, why);
        self.record("kick", &target, None)?;
        Ok(json!({}))
    }

    fn mute(self, name: &str, seconds: u64) -> Result<Value, Refused> {
        let until = unix_ms() + seconds * 1000;
        let member = self.h.chat.member(name);
        let registered = self.registered(name)?;
        let elsewhere = self.h.chat.remote_member(name);
        let (shown, standing) = match (&member, &registered, elsewhere) {
            (_, Some(account), _) => (account.clone(), member.as_ref().map(|m| m.standing)),
            (Some(member), None, _) => (member.name.clone(), Some(member.standing)),
            // A guest on another node of a cluster.
            (None, None, Some((guest, _))) => (guest, Some(Standing::Guest)),
            (None, None, None) => {
                return Err(Refused::new(
                    ErrorCode::UnknownUser,
                    format!("nobody is called {name:?}"),
                ))
            }
        };
        self.may_act_on(&shown, standing)?;
        if registered.is_some() {
            let active = Active {
                until: Some(until),
                reason: self.reason.clone(),
            };
            let target = Target::Account(shown.clone());
            let gate = self.h.gate()?;
            gate.accounts
                .set_sanction(Sanction::Mute, &target, &active)
                .map_err(unavailable)?;
        }
        self.h.chat.set_muted(&shown, until);
        self.record("mute", &shown, Some(until))?;
        Ok(json!({ "until_ms": until }))
    }

    fn unmute(self, name: &str) -> Result<Value, Refused> {
        let member = self.h.chat.member(name);
        self.may_act_on(name, member.map(|m| m.standing))?;
        let gate = self.h.gate()?;
        let target = Target::Account(name.to_owned());
        gate.accounts
            .lift(Sanction::Mute, &target)
            .map_err(unavailable)?;
        self.h.chat.set_muted(name, 0);
        self.record("unmute", name, None)?;
        Ok(json!({}))
    }

    fn ban(self, whom: Whom, seconds: Option<u64>) -> Result<Value, Refused> {
        let until = seconds.map(|s| unix_ms() + s * 1000);
        let active = Active {
            until,
            reason: self.reason.clone(),
        };
        let why = format!("banned: {}", self.reason);
        let gate = self.h.gate()?;
        let address = match whom {
            Whom::Name(name) => {
                let member = self.h.chat.member(&name);
                match self.registered(&name)? {
                    Some(account) => {
                        self.may_act_on(&account, member.as_ref().map(|m| m.standing))?;
                        let target = Target::Account(account.clone());
                        gate.accounts
                            .set_sanction(Sanction::Ban, &target, &active)
                            .map_err(unavailable)?;
                        self.h.chat.remove(&account, 4003, &why);
                        self.record("ban", &account, until)?;
                        return Ok(json!({ "until_ms": until }));
                    }
                    // A guest: its address.
                    None => match member {
                        Some(member) => {
                            self.may_act_on(&member.name, Some(member.standing))?;
                            member.address.to_string()
                        }
                        // Its address is known to its own node only.
                        None if self.h.chat.remote_member(&name).is_some() => {
                            return Err(not_allowed(
                                "that guest is connected to another server: kick it, or ban its address there",
                            ))
                        }
                        None => {
                            return Err(Refused::new(
                                ErrorCode::UnknownUser,
                                format!("nobody is called {name:?}"),
                            ))
                        }
                    },
                }
            }
            Whom::Address(address) => address,
        };
        if *address == *self.h.address {
            return Err(not_allowed("not your own address"));
        }
        let admin_there = self
            .h
            .chat
            .standings_at(&address)
            .contains(&Standing::Account(Rank::Admin));
        if admin_there && self.rank != Rank::Admin {
            return Err(not_allowed("an admin is connected from that address"));
        }
        gate.accounts
            .set_sanction(Sanction::Ban, &Target::Address(address.clone()), &active)
            .map_err(unavailable)?;
        gate.note_address_ban(&address, Some(active));
        // An admin is spared by a moderator's ban on every node (this one
        // was checked above; the others check their own).
        let spare_admins = self.rank != Rank::Admin;
        self.h
            .chat
            .remove_address(&address, 4003, &why, spare_admins);
        self.record("ban", &address, until)?;
        Ok(json!({ "until_ms": until }))
    }

    fn unban(self, whom: Whom) -> Result<Value, Refused> {
        if let Whom::Name(name) = &whom {
            let member = self.h.chat.member(name);
            self.may_act_on(name, member.map(|m| m.standing))?;
        }
        let gate = self.h.gate()?;
        let (target, shown) = match whom {
            Whom::Name(name) => (Target::Account(name.clone()), name),
            Whom::Address(address) => {
                gate.note_address_ban(&address, None);
                (Target::Address(address.clone()), address)
            }
        };
        let lifted = gate
            .accounts
            .lift(Sanction::Ban, &target)
            .map_err(unavailable)?;
        if !lifted {
            return Err(Refused::new(
                ErrorCode::UnknownUser,
                format!("{shown:?} is not banned"),
            ));
        }
        self.record("unban", &shown, None)?;
        Ok(json!({}))
    }

    fn log(self, params: &Value) -> Result<Value, Refused> {
        let limit = params
            .get("limit")
            .and_then(Value::as_u64)
            .map_or(50, |n| (n as usize).clamp(1, MAX_ACTIONS));
        let before = params.get("before").and_then(Value::as_i64);
        let mut actions = self
            .h
            .gate()?
            .accounts
            .actions(before, limit + 1)
            .map_err(unavailable)?;
        let more = actions.len() > limit;
        actions.truncate(limit);
        let actions: Vec<Value> = actions
            .into_iter()
            .map(|a| {
                json!({
                    "id": a.id, "ts": a.ts, "by": a.by, "action": a.action,
                    "target": a.target, "reason": a.reason, "until_ms": a.until,
                })
            })
            .collect();
        Ok(json!({ "actions": actions, "more": more }))
    }
}
