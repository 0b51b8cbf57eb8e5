//! Account requests on a chat connection, run on its own worker after
//! the chat handed them back ([`Escalated`]): `auth`, `register`, `login`,
//! `logout`, `passwd`, `delete_account` (moderation is in
//! `moderation.rs`). See `docs/PROTOCOL.md`, Accounts.
//!
//! ```text
//!  ChatHandler ── Escalated ──► run ──► Gate (store, Argon2, throttles)
//!                                  └──► Chat::sign_in / join as the account,
//!                                       then the private messages that waited
//! ```

use serde_json::{json, Value};

use super::gate::{Refused, SignedIn};
use super::handlers::ChatHandler;
use super::handlers::Refusal;
use super::moderation;
use crate::auth::accounts::{Sanction, Target};
use crate::chat::identity::{Rank, Standing};
use crate::chat::messages::{self, ErrorCode, Problem};
use crate::chat::{unix_ms, Escalated};
use crate::protocol::CloseCode;

/// A string param, or a `bad_request` refusal naming it.
pub fn text<'a>(params: &'a Value, key: &str) -> Result<&'a str, Refused> {
    params.get(key).and_then(Value::as_str).ok_or_else(|| {
        Refused::new(
            ErrorCode::BadRequest,
            format!("params.{key} must be a string"),
        )
    })
}

/// Do what the chat handed back. `Err` closes the connection.
pub fn run(h: &mut ChatHandler, call: Escalated) -> Result<(), Refusal> {
    match call {
        Escalated::Auth { id, token } => {
            match h.gate().and_then(|gate| gate.check_token(&token)) {
                Ok(signed) => h.become_account(signed),
                Err(refused) => h.reply(&error_message(&refused, id.as_ref())),
            }
            Ok(())
        }
        Escalated::SaveTopics(topics) => {
            if let (Some(me), Ok(gate)) = (h.me.as_ref(), h.gate()) {
                if let Err(e) = gate.accounts.set_topics(&me.name, &topics) {
                    log::warn!("accounts: cannot save {}'s topics: {e}", me.name);
                }
            }
            Ok(())
        }
        Escalated::Request { id, method, params } => {
            let answer = match method.as_str() {
                "register" => register(h, &params),
                "login" => login(h, &params),
                "logout" => logout(h).map(|()| Step::Close(json!({}), "signed out")),
                "passwd" => passwd(h, &params),
                "delete_account" => delete_account(h, &params),
                _ => moderation::run(h, &method, &params).map(Step::Reply),
            };
            match answer {
                Ok(Step::Reply(result)) => h.reply(&ok(&id, &result)),
                Ok(Step::SignIn(result, signed)) => {
                    h.reply(&ok(&id, &result));
                    h.become_account(signed);
                }
                Ok(Step::Close(result, why)) => {
                    h.reply(&ok(&id, &result));
                    return Err((CloseCode::NormalClosure, why));
                }
                Err(refused) => h.reply(&error_response(&refused, &id)),
            }
            Ok(())
        }
    }
}

/// What a request leads to after its response.
pub enum Step {
    Reply(Value),
    /// The response, then the connection is this account.
    SignIn(Value, SignedIn),
    /// The response, then Close 1000 with this reason.
    Close(Value, &'static str),
}

fn ok(id: &Value, result: &Value) -> String {
    messages::response_raw(id, &messages::to_json(result))
}

/// A refusal as a `response` error (with `retry_after_ms` when throttled).
pub fn error_response(refused: &Refused, id: &Value) -> String {
    match refused.retry_after_ms {
        Some(ms) => {
            messages::response_error_with(id, refused.code, &refused.message, "retry_after_ms", ms)
        }
        None => messages::response_error(id, refused.code, &refused.message),
    }
}

/// A refusal as an `error` message (the answer to `auth`).
pub fn error_message(refused: &Refused, id: Option<&Value>) -> String {
    let problem = Problem::new(refused.code, refused.message.clone(), id);
    match refused.retry_after_ms {
        Some(ms) => messages::error_with(&problem, "retry_after_ms", ms),
        None => messages::error(&problem),
    }
}

/// The result of a sign-in: the account, its roles, a new session token.
fn signed_result(h: &ChatHandler, mut signed: SignedIn) -> Result<Step, Refused> {
    let (token, stored, expires) = h.gate()?.new_session(&signed.name)?;
    signed.session = Some(stored);
    let result = json!({
        "name": signed.name,
        "roles": Standing::Account(signed.rank).roles(),
        "token": token,
        "expires_ms": expires,
    });
    Ok(Step::SignIn(result, signed))
}

fn register(h: &mut ChatHandler, params: &Value) -> Result<Step, Refused> {
    let name = text(params, "name")?;
    let password = text(params, "password")?;
    let gate = h.gate()?;
    let admin = h.rank() == Some(Rank::Admin);
    if !admin && !gate.registration_open {
        return Err(Refused::new(
            ErrorCode::RegistrationClosed,
            "registration is closed; ask an admin",
        ));
    }
    // A name someone else uses now is not free (the guest keeps it).
    if let Some(holder) = h.chat.member(name) {
        if h.own_name().as_deref() != Some(holder.name.as_str()) {
            return Err(Refused::new(
                ErrorCode::NameTaken,
                format!("{name:?} is in use"),
            ));
        }
    }
    let address = (!admin).then(|| h.address.to_string());
    gate.register(name, password, address.as_deref())?;
    h.chat.account_added(name);
    if admin {
        return Ok(Step::Reply(json!({ "name": name, "roles": ["user"] })));
    }
    let signed = SignedIn {
        name: name.to_owned(),
        rank: Rank::User,
        topics: Vec::new(),
        session: None,
    };
    signed_result(h, signed)
}

fn login(h: &mut ChatHandler, params: &Value) -> Result<Step, Refused> {
    let name = text(params, "name")?;
    let password = text(params, "password")?;
    let signed = h.gate()?.login(name, password, &h.address)?;
    signed_result(h, signed)
}

fn logout(h: &mut ChatHandler) -> Result<(), Refused> {
    let me = h.signed_in()?;
    if let Some(stored) = &me.session {
        h.gate()?
            .accounts
            .revoke_session(stored)
            .map_err(super::gate::unavailable)?;
    }
    Ok(())
}

fn passwd(h: &mut ChatHandler, params: &Value) -> Result<Step, Refused> {
    let me = h.signed_in()?.clone();
    let gate = h.gate()?;
    let new = text(params, "new")?;
    let other = params
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.eq_ignore_ascii_case(&me.name));
    let (name, own) = match other {
        Some(_) if h.rank() != Some(Rank::Admin) => {
            return Err(Refused::new(
                ErrorCode::NotAllowed,
                "only an admin sets another's password",
            ))
        }
        Some(name) => (name.to_owned(), false),
        None => {
            gate.check_password(&me.name, text(params, "old")?, &h.address)?;
            (me.name.clone(), true)
        }
    };
    let hash = gate.hash(new)?;
    let unavailable = super::gate::unavailable;
    if !gate.accounts.set_hash(&name, &hash).map_err(unavailable)? {
        return Err(Refused::new(
            ErrorCode::UnknownUser,
            format!("no account {name:?}"),
        ));
    }
    // Every session of the account ends, on every device.
    gate.accounts.revoke_all(&name).map_err(unavailable)?;
    log::info!("auth: password of {name:?} changed by {}", me.name);
    if !own {
        return Ok(Step::Reply(json!({})));
    }
    let (token, stored, expires) = gate.new_session(&name)?;
    if let Some(me) = h.me.as_mut() {
        me.session = Some(stored);
    }
    Ok(Step::Reply(
        json!({ "token": token, "expires_ms": expires }),
    ))
}

fn delete_account(h: &mut ChatHandler, params: &Value) -> Result<Step, Refused> {
    let gate = h.gate()?;
    let me = h.signed_in()?.clone();
    let unavailable = super::gate::unavailable;
    let other = params.get("name").and_then(Value::as_str);
    match other {
        Some(name) if !name.eq_ignore_ascii_case(&me.name) => {
            if h.rank() != Some(Rank::Admin) {
                return Err(Refused::new(
                    ErrorCode::NotAllowed,
                    "only an admin deletes another's account",
                ));
            }
            if !gate.accounts.delete(name).map_err(unavailable)? {
                return Err(Refused::new(
                    ErrorCode::UnknownUser,
                    format!("no account {name:?}"),
                ));
            }
            h.chat.remove(name, 4000, "account deleted by an admin");
            h.chat.account_removed(name);
            log::info!("auth: account {name:?} deleted by {}", me.name);
            Ok(Step::Reply(json!({})))
        }
        _ => {
            // An account made by a JWT has no password: its token vouched.
            let account = gate.accounts.find(&me.name).map_err(unavailable)?;
            if account.is_some_and(|a| a.hash.is_some()) {
                gate.check_password(&me.name, text(params, "password")?, &h.address)?;
            }
            gate.accounts.delete(&me.name).map_err(unavailable)?;
            h.chat.account_removed(&me.name);
            log::info!("auth: account {:?} deleted by its owner", me.name);
            Ok(Step::Close(json!({}), "account deleted"))
        }
    }
}

/// An account's mute in force, applied at sign-in (it outlives reconnects).
pub fn restore_mute(h: &ChatHandler, name: &str) {
    let Ok(gate) = h.gate() else {
        return;
    };
    let target = Target::Account(name.to_owned());
    if let Ok(Some(mute)) = gate.accounts.sanction(Sanction::Mute, &target, unix_ms()) {
        h.chat.set_muted(name, mute.until.unwrap_or(u64::MAX));
    }
}
