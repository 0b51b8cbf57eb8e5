//! Who gets each event. Called with the registry locked: it assigns the
//! `seq`, encodes each distinct payload once, and queues the one shared
//! frame for every recipient. The caller flushes the queues after letting
//! go of the lock, so the whole conversation has one order that every
//! recipient sees, and no socket is written under the lock.
//!
//! ```text
//! broadcast  ─► every member (sender included)            history: broadcasts
//! direct     ─► the target + a copy to the sender
//! multicast  ─► each listed member once + the sender
//! publish    ─► the topic's subscribers                    history: that topic
//! request    ─► a response to the sender only
//! ```

use serde_json::{json, Value};
use std::sync::Arc;

use super::history::Window;
use super::registry::{Outbox, Registry};
use super::wire::{self, Ack, Body, ErrorCode, Inbound, MessageOut, Problem, To};
use super::{unix_ms, Chat, ClientId};

/// Route one parsed message from `from`.
pub fn route(chat: &Chat, reg: &mut Registry, out: &mut Outbox, from: ClientId, msg: Inbound) {
    let Some(sender) = reg.members.get(&from) else {
        return;
    };
    let sender_name = sender.name.clone();
    let id = msg.id.as_ref();
    let result = match msg.body {
        Body::Broadcast { text } => {
            let m = message("broadcast", &sender_name, None, None, &text);
            let (seq, delivered, json) = deliver(chat, reg, out, Targets::Everyone, m);
            reg.broadcasts.push(seq, Arc::from(json));
            ack_message(chat, reg, out, from, id, seq, delivered, None);
            Ok(())
        }
        Body::Direct { to, text } => match reg.find(&to) {
            None => Err(Problem::new(
                ErrorCode::UnknownUser,
                format!("nobody is called {to:?}"),
                id,
            )),
            Some(target) => {
                let target_name = reg.members[&target].name.clone();
                let mut targets = vec![target];
                if target != from {
                    targets.push(from);
                }
                let m = message(
                    "direct",
                    &sender_name,
                    Some(To::One(&target_name)),
                    None,
                    &text,
                );
                let (seq, delivered, _) = deliver(chat, reg, out, Targets::These(&targets), m);
                ack_message(chat, reg, out, from, id, seq, delivered, None);
                Ok(())
            }
        },
        Body::Multicast { to, text } => {
            let mut targets = Vec::new();
            let mut names = Vec::new();
            let mut unknown = Vec::new();
            for name in &to {
                match reg.find(name) {
                    Some(t) if !targets.contains(&t) => {
                        targets.push(t);
                        names.push(reg.members[&t].name.clone());
                    }
                    Some(_) => {}
                    None if !unknown.contains(name) => unknown.push(name.clone()),
                    None => {}
                }
            }
            if targets.is_empty() {
                Err(Problem::new(
                    ErrorCode::UnknownUser,
                    format!("nobody is called any of {unknown:?}"),
                    id,
                ))
            } else {
                if !targets.contains(&from) {
                    targets.push(from);
                }
                let m = message(
                    "multicast",
                    &sender_name,
                    Some(To::Many(&names)),
                    None,
                    &text,
                );
                let (seq, delivered, _) = deliver(chat, reg, out, Targets::These(&targets), m);
                let unknown = (!unknown.is_empty()).then_some(unknown.as_slice());
                ack_message(chat, reg, out, from, id, seq, delivered, unknown);
                Ok(())
            }
        }
        Body::Publish { topic, text } => match reg.topic(&topic) {
            None => Err(too_many_topics(chat, id)),
            Some(t) => {
                let subscribers: Vec<ClientId> = t.subscribers.iter().copied().collect();
                let topic_name = t.name.clone();
                let m = message("publish", &sender_name, None, Some(&topic_name), &text);
                let (seq, delivered, json) =
                    deliver(chat, reg, out, Targets::These(&subscribers), m);
                if let Some(t) = reg.topic(&topic) {
                    t.history.push(seq, Arc::from(json));
                }
                ack_message(chat, reg, out, from, id, seq, delivered, None);
                Ok(())
            }
        },
        Body::Subscribe { topic } => match reg.topic(&topic) {
            None => Err(too_many_topics(chat, id)),
            Some(t) => {
                t.subscribers.insert(from);
                let name = t.name.clone();
                if let Some(member) = reg.members.get_mut(&from) {
                    member.topics.insert(topic.to_ascii_lowercase());
                }
                ack_topic(chat, reg, out, from, id, &name);
                Ok(())
            }
        },
        Body::Unsubscribe { topic } => {
            let key = topic.to_ascii_lowercase();
            let subscribed = reg
                .members
                .get_mut(&from)
                .is_some_and(|m| m.topics.remove(&key));
            match reg.topics.get_mut(&key) {
                Some(t) if subscribed => {
                    t.subscribers.remove(&from);
                    let name = t.name.clone();
                    ack_topic(chat, reg, out, from, id, &name);
                    Ok(())
                }
                _ => Err(Problem::new(
                    ErrorCode::UnknownTopic,
                    format!("not subscribed to {topic:?}"),
                    id,
                )),
            }
        }
        Body::Request { method, params } => {
            let id = id.cloned().unwrap_or(Value::Null);
            let reply = request(chat, reg, out, from, &id, method.as_deref(), &params);
            send(chat, reg, out, from, &reply);
            Ok(())
        }
    };
    if let Err(problem) = result {
        send(chat, reg, out, from, &wire::error(&problem));
    }
}

fn too_many_topics(chat: &Chat, id: Option<&Value>) -> Problem {
    let why = format!(
        "{} topics exist, each with subscribers",
        chat.settings.max_topics
    );
    Problem::new(ErrorCode::TooManyTopics, why, id)
}

fn message<'a>(
    kind: &'static str,
    from: &'a str,
    to: Option<To<'a>>,
    topic: Option<&'a str>,
    text: &'a str,
) -> MessageOut<'a> {
    MessageOut {
        kind_of: "message",
        kind,
        from,
        to,
        topic,
        text,
        seq: 0,
        ts: 0,
    }
}

/// Who a chat message goes to.
enum Targets<'a> {
    /// Every member, the sender included (a broadcast).
    Everyone,
    These(&'a [ClientId]),
}

/// Give a message the next `seq` and the time, encode it once, and queue
/// the frame for every target. Returns (seq, how many took it, the JSON,
/// for the streams that keep history).
fn deliver(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    targets: Targets,
    mut m: MessageOut,
) -> (u64, usize, String) {
    reg.seq += 1;
    reg.routed += 1;
    m.seq = reg.seq;
    m.ts = unix_ms();
    let json = wire::to_json(&m);
    let frame = (chat.encode)(&json);
    let delivered = match targets {
        Targets::Everyone => reg.queue_everyone(out, &frame, None),
        Targets::These(ids) => reg.queue_all(out, ids.iter().copied(), &frame),
    };
    (m.seq, delivered, json)
}

/// Queue one JSON text for one member.
fn send(chat: &Chat, reg: &mut Registry, out: &mut Outbox, to: ClientId, json: &str) {
    reg.queue(out, to, &(chat.encode)(json));
}

#[allow(clippy::too_many_arguments)]
fn ack_message(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    to: ClientId,
    id: Option<&Value>,
    seq: u64,
    delivered: usize,
    unknown: Option<&[String]>,
) {
    if let Some(id) = id {
        let ack = Ack {
            kind_of: "ack",
            id,
            seq: Some(seq),
            delivered: Some(delivered),
            topic: None,
            unknown,
        };
        send(chat, reg, out, to, &wire::to_json(&ack));
    }
}

fn ack_topic(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    to: ClientId,
    id: Option<&Value>,
    topic: &str,
) {
    if let Some(id) = id {
        let ack = Ack {
            kind_of: "ack",
            id,
            seq: None,
            delivered: None,
            topic: Some(topic),
            unknown: None,
        };
        send(chat, reg, out, to, &wire::to_json(&ack));
    }
}

/// Answer a `request`: the JSON of the `response` message.
fn request(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    from: ClientId,
    id: &Value,
    method: Option<&str>,
    params: &Value,
) -> String {
    let Some(method) = method else {
        return wire::response_error(
            id,
            ErrorCode::BadRequest,
            "a request needs a method (a string)",
        );
    };
    let ok = |result: &Value| wire::response_raw(id, &wire::to_json(result));
    match method {
        "users" => ok(&json!({ "users": reg.user_names() })),
        "topics" => {
            let mut topics: Vec<(&str, usize)> = reg
                .topics
                .values()
                .filter(|t| !t.subscribers.is_empty())
                .map(|t| (t.name.as_str(), t.subscribers.len()))
                .collect();
            topics.sort_unstable_by_key(|(n, _)| n.to_ascii_lowercase());
            let topics: Vec<Value> = topics
                .iter()
                .map(|(n, s)| json!({ "name": n, "subscribers": s }))
                .collect();
            ok(&json!({ "topics": topics }))
        }
        "history" => history(chat, reg, id, params),
        "whoami" => {
            let Some(me) = reg.members.get(&from) else {
                return wire::response_error(id, ErrorCode::BadRequest, "not joined");
            };
            let topics: Vec<&str> = me
                .topics
                .iter()
                .filter_map(|k| reg.topics.get(k))
                .map(|t| t.name.as_str())
                .collect();
            ok(&json!({ "id": from.to_string(), "name": me.name, "topics": topics }))
        }
        "rename" => rename(chat, reg, out, from, id, params),
        "time" => ok(&json!({ "unix_ms": unix_ms() })),
        "echo" => ok(params),
        "stats" => ok(&json!({
            "connections": reg.members.len(),
            "messages": reg.routed,
            "uptime_s": chat.started.elapsed().as_secs(),
        })),
        other => {
            let shown: String = other.chars().take(40).collect();
            wire::response_error(
                id,
                ErrorCode::UnknownMethod,
                &format!("unknown method {shown:?}"),
            )
        }
    }
}

fn history(chat: &Chat, reg: &Registry, id: &Value, params: &Value) -> String {
    let bad = |why: &str| wire::response_error(id, ErrorCode::BadRequest, why);
    let size = chat.settings.history;
    let seq_param = |name: &str| match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(()),
    };
    let limit = match params.get("limit") {
        None | Some(Value::Null) => 50.min(size.max(1)),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => (n as u64).min(size.max(1) as u64) as usize,
            Some(_) => return bad("limit must be at least 1"),
            None if v.as_u64().is_some() => size.max(1),
            None => return bad("limit must be a whole number"),
        },
    };
    let window = match (seq_param("before"), seq_param("after")) {
        (Err(()), _) => return bad("before must be a seq (a whole number)"),
        (_, Err(())) => return bad("after must be a seq (a whole number)"),
        (Ok(Some(_)), Ok(Some(_))) => return bad("before and after cannot be used together"),
        (Ok(Some(b)), Ok(None)) => Window::Before(b),
        (Ok(None), Ok(Some(a))) => Window::After(a),
        (Ok(None), Ok(None)) => Window::Latest,
    };
    let page = match params.get("topic") {
        None | Some(Value::Null) => reg.broadcasts.page(window, limit),
        Some(Value::String(t)) => match reg.topics.get(&t.to_ascii_lowercase()) {
            Some(topic) => topic.history.page(window, limit),
            None => super::history::History::new(0).page(window, limit),
        },
        Some(_) => return bad("topic must be a string"),
    };
    let messages: Vec<&str> = page.messages.iter().map(|m| &**m).collect();
    let result = format!(
        r#"{{"messages":[{}],"complete":{},"more":{}}}"#,
        messages.join(","),
        page.complete,
        page.more
    );
    wire::response_raw(id, &result)
}

fn rename(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    from: ClientId,
    id: &Value,
    params: &Value,
) -> String {
    let Some(new) = params.get("name").and_then(Value::as_str) else {
        return wire::response_error(id, ErrorCode::BadName, "params.name must be a name");
    };
    if !wire::valid_name(new) {
        return wire::response_error(
            id,
            ErrorCode::BadName,
            "a name is 1-32 letters, digits, _ - .",
        );
    }
    if reg.find(new).is_some_and(|owner| owner != from) {
        return wire::response_error(id, ErrorCode::NameTaken, &format!("{new:?} is taken"));
    }
    let Some(old) = reg.rename(from, new) else {
        return wire::response_error(id, ErrorCode::BadRequest, "not joined");
    };
    if old != new {
        chat.presence(reg, out, from, "rename", new, Some(&old));
    }
    wire::response_raw(id, &wire::to_json(&json!({ "name": new })))
}
