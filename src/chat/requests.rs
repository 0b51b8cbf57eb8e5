//! The `request` methods: a `response` to the sender only.
//!
//! ```text
//! users, topics, whoami, rename, time, echo, stats ─► answered under the registry lock
//! history, search ─► checked under the lock, answered AFTER it is released
//! ```
//!
//! A history store may read a disk; answering under the registry lock
//! would stall every conversation behind that read. So `history` and
//! `search` are returned as a [`Deferred`] query that [`Chat`] runs once
//! the lock is gone. The reply may overlap live messages that arrived meanwhile:
//! clients drop a `seq` they have already seen (see `docs/PROTOCOL.md`).

use serde_json::{json, Value};

use super::accounts::{Escalated, ACCOUNT_METHODS};
use super::history::{Kept, Search, Stream, Window};
use super::messages::{self, ErrorCode};
use super::registry::{fold, Outbox, Registry};
use super::wire::valid_name;
use super::{unix_ms, Chat, ClientId};

/// A request to answer after the registry lock is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferred {
    History {
        id: Value,
        stream: Stream,
        window: Window,
        limit: usize,
    },
    Search {
        id: Value,
        search: Search,
    },
    /// `history` with `with`: a signed-in user's private conversation.
    Conversation {
        id: Value,
        owner: String,
        peer: String,
        before: Option<u64>,
        limit: usize,
    },
    /// Not for the chat at all: the server does it (see [`Escalated`]).
    Escalate(Escalated),
    /// `rename` across hosts: the name is claimed first, with no lock held.
    Rename {
        id: Value,
        name: String,
    },
}

/// The most messages one `search` returns.
pub const MAX_SEARCH: usize = 100;
/// The longest `q` of a `search`, in bytes.
pub const MAX_QUERY: usize = 200;

/// Answer a `request` from `from`; a history query is returned instead.
pub fn answer(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    from: ClientId,
    id: Value,
    method: Option<&str>,
    params: Value,
) -> Option<Deferred> {
    let reply = match method {
        None => messages::response_error(
            &id,
            ErrorCode::BadRequest,
            "a request needs a method (a string)",
        ),
        Some(method) if ACCOUNT_METHODS.contains(&method) => {
            if chat.settings.auth == "none" {
                messages::response_error(
                    &id,
                    ErrorCode::AuthDisabled,
                    "this server has no accounts (--auth none)",
                )
            } else {
                let method = method.to_owned();
                return Some(Deferred::Escalate(Escalated::Request {
                    id,
                    method,
                    params,
                }));
            }
        }
        Some("history") if params.get("with").is_some() => {
            match conversation_query(reg, from, id, &params) {
                Ok(query) => return Some(query),
                Err(reply) => reply,
            }
        }
        Some("history") => match history_query(chat, id, &params) {
            Ok(query) => return Some(query),
            Err(reply) => reply,
        },
        Some("search") => match search_query(id, &params) {
            Ok(query) => return Some(query),
            Err(reply) => reply,
        },
        Some("rename") => match rename(chat, reg, out, from, &id, &params, false) {
            Ok(reply) => reply,
            Err(claim_first) => return Some(claim_first),
        },
        Some(method) => plain(chat, reg, from, &id, method, params),
    };
    chat.send(reg, out, from, &reply);
    None
}

/// The methods that only read the registry.
fn plain(
    chat: &Chat,
    reg: &Registry,
    from: ClientId,
    id: &Value,
    method: &str,
    params: Value,
) -> String {
    let result = match method {
        "users" => json!({ "users": reg.user_names(), "registered": reg.account_names() }),
        "topics" => {
            let topics: Vec<Value> = reg
                .active_topics()
                .iter()
                .map(|(n, s)| json!({ "name": n, "subscribers": s }))
                .collect();
            json!({ "topics": topics })
        }
        "whoami" => match reg.name_of(from) {
            Some(name) => json!({
                "id": from.to_string(),
                "name": name,
                "topics": reg.topics_of(from),
                "guest": !reg.standing_of(from).is_account(),
                "roles": reg.standing_of(from).roles(),
            }),
            None => return messages::response_error(id, ErrorCode::BadRequest, "not joined"),
        },
        "time" => json!({ "unix_ms": unix_ms() }),
        "echo" => params,
        "stats" => json!({
            "connections": reg.len(),
            "messages": chat.routed(),
            "uptime_s": chat.started.elapsed().as_secs(),
        }),
        other => {
            let shown: String = other.chars().take(40).collect();
            return messages::response_error(
                id,
                ErrorCode::UnknownMethod,
                &format!("unknown method {shown:?}"),
            );
        }
    };
    messages::response_raw(id, &messages::to_json(&result))
}

/// Check a history request's params; `Err` is the error response.
fn history_query(chat: &Chat, id: Value, params: &Value) -> Result<Deferred, String> {
    let bad = |why: &str| messages::response_error(&id, ErrorCode::BadRequest, why);
    let size = chat.settings.history.max(1);
    let seq_param = |name: &str| match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(()),
    };
    let limit = match params.get("limit") {
        None | Some(Value::Null) => 50.min(size),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => (n as u64).min(size as u64) as usize,
            Some(_) => return Err(bad("limit must be at least 1")),
            None if v.as_u64().is_some() => size,
            None => return Err(bad("limit must be a whole number")),
        },
    };
    let window = match (seq_param("before"), seq_param("after")) {
        (Err(()), _) => return Err(bad("before must be a seq (a whole number)")),
        (_, Err(())) => return Err(bad("after must be a seq (a whole number)")),
        (Ok(Some(_)), Ok(Some(_))) => return Err(bad("before and after cannot be used together")),
        (Ok(Some(b)), Ok(None)) => Window::Before(b),
        (Ok(None), Ok(Some(a))) => Window::After(a),
        (Ok(None), Ok(None)) => Window::Latest,
    };
    let stream = match params.get("topic") {
        None | Some(Value::Null) => Stream::Broadcasts,
        Some(Value::String(t)) => Stream::Topic(fold(t)),
        Some(_) => return Err(bad("topic must be a string")),
    };
    Ok(Deferred::History {
        id,
        stream,
        window,
        limit,
    })
}

/// The most messages one `history` `with` page returns.
pub const MAX_CONVERSATION: usize = 100;

/// Check a `history` `with` request; `Err` is the error response.
fn conversation_query(
    reg: &Registry,
    from: ClientId,
    id: Value,
    params: &Value,
) -> Result<Deferred, String> {
    let bad = |why: &str| messages::response_error(&id, ErrorCode::BadRequest, why);
    let Some(owner) = reg
        .name_of(from)
        .filter(|_| reg.standing_of(from).is_account())
    else {
        return Err(messages::response_error(
            &id,
            ErrorCode::NotAllowed,
            "sign in to read private history (guests have none)",
        ));
    };
    let peer = match params.get("with") {
        Some(Value::String(peer)) if valid_name(peer) => fold(peer),
        _ => return Err(bad("with must be a name")),
    };
    let (limit, before) = limit_and_before(params, 50, MAX_CONVERSATION).map_err(bad)?;
    if params.get("after").is_some_and(|a| !a.is_null()) {
        return Err(bad("with pages back with before only"));
    }
    Ok(Deferred::Conversation {
        owner: fold(owner),
        id,
        peer,
        before,
        limit,
    })
}

/// The `limit` (default `default`, more than `max` taken as `max`) and
/// `before` params of a page that goes back; `Err` says which is bad.
fn limit_and_before(
    params: &Value,
    default: usize,
    max: usize,
) -> Result<(usize, Option<u64>), &'static str> {
    let limit = match params.get("limit") {
        None | Some(Value::Null) => default,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => (n as usize).min(max),
            _ => return Err("limit must be a whole number, at least 1"),
        },
    };
    let before = match params.get("before") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or("before must be a seq")?),
    };
    Ok((limit, before))
}

/// Check a search request's params; `Err` is the error response.
fn search_query(id: Value, params: &Value) -> Result<Deferred, String> {
    let bad = |why: &str| messages::response_error(&id, ErrorCode::BadRequest, why);
    let q = match params.get("q") {
        Some(Value::String(q)) if q.trim().is_empty() => return Err(bad("q must not be empty")),
        Some(Value::String(q)) if q.len() > MAX_QUERY => {
            return Err(bad(&format!("q is longer than {MAX_QUERY} bytes")))
        }
        Some(Value::String(q)) => q.clone(),
        _ => return Err(bad("params.q must be a string")),
    };
    let (limit, before) = limit_and_before(params, 20, MAX_SEARCH).map_err(bad)?;
    let stream = match params.get("topic") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if valid_name(t) => Some(Stream::Topic(fold(t))),
        Some(_) => return Err(bad("topic must be a topic name")),
    };
    Ok(Deferred::Search {
        id,
        search: Search {
            q,
            stream,
            before,
            // One more than asked, to tell whether there are more.
            limit: limit + 1,
        },
    })
}

/// Run a deferred query, with no lock held: the JSON of the response.
pub fn run(chat: &Chat, deferred: &Deferred) -> String {
    match deferred {
        Deferred::History {
            id,
            stream,
            window,
            limit,
        } => {
            let page = chat.history.page(stream, *window, *limit);
            let tail = format!(r#""complete":{},"more":{}"#, page.complete, page.more);
            page_response(id, &page.messages, &tail)
        }
        Deferred::Search { id, search } => match chat.history.search(search) {
            Ok(mut found) => {
                let more = found.len() >= search.limit;
                found.truncate(search.limit - 1);
                page_response(id, &found, &format!(r#""more":{more}"#))
            }
            Err(why) => messages::response_error(id, ErrorCode::BadRequest, &why),
        },
        Deferred::Conversation {
            id,
            owner,
            peer,
            before,
            limit,
        } => {
            let page = chat.history.conversation(owner, peer, *before, *limit);
            page_response(id, &page.messages, &format!(r#""more":{}"#, page.more))
        }
        // Taken by `Chat::handle` before it runs anything.
        Deferred::Escalate(_) | Deferred::Rename { .. } => {
            messages::response_error(&Value::Null, ErrorCode::BadRequest, "not a query")
        }
    }
}

/// `{"type":"response","id":ID,"result":{"messages":[...],TAIL}}`, the
/// kept messages' JSON copied once into a string of the exact size (a
/// page can be megabytes: no intermediate copies).
fn page_response(id: &Value, kept: &[Kept], tail: &str) -> String {
    let head = messages::response_raw(id, r#"{"messages":["#);
    // response_raw closed the object it opened: reopen it.
    let head = &head[..head.len() - 1];
    let size = head.len() + kept.iter().map(|k| k.json.len() + 1).sum::<usize>() + tail.len() + 4;
    let mut out = String::with_capacity(size);
    out.push_str(head);
    for (i, k) in kept.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&k.json);
    }
    out.push_str("],");
    out.push_str(tail);
    out.push_str("}}");
    out
}

/// `rename`; across hosts a new name must be claimed first (`Err`: the
/// caller claims it with no lock held, then calls again with `claimed`).
pub(super) fn rename(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    from: ClientId,
    id: &Value,
    params: &Value,
    claimed: bool,
) -> Result<String, Deferred> {
    let Some(new) = params.get("name").and_then(Value::as_str) else {
        let why = "params.name must be a name";
        return Ok(messages::response_error(id, ErrorCode::BadName, why));
    };
    if !valid_name(new) {
        let why = "a name is 1-32 letters, digits, _ - .";
        return Ok(messages::response_error(id, ErrorCode::BadName, why));
    }
    if reg.standing_of(from).is_account() {
        let why = "an account keeps its name (register another to change it)";
        return Ok(messages::response_error(id, ErrorCode::NotAllowed, why));
    }
    let own = reg.find(new) == Some(from);
    if !own && !reg.is_free(new) {
        let why = format!("{new:?} is taken");
        return Ok(messages::response_error(id, ErrorCode::NameTaken, &why));
    }
    if !own && !claimed && chat.bus.spans_hosts() {
        let (id, name) = (id.clone(), new.to_owned());
        return Err(Deferred::Rename { id, name });
    }
    let Some(old) = reg.rename(from, new) else {
        return Ok(messages::response_error(
            id,
            ErrorCode::BadRequest,
            "not joined",
        ));
    };
    if old != new {
        chat.presence(reg, out, from, "rename", new, Some(&old), None);
    }
    Ok(messages::response_raw(
        id,
        &messages::to_json(&json!({ "name": new })),
    ))
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
