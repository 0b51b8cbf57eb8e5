//! Who gets each chat message. Called with the registry locked: it checks
//! the message, hands it to the [`Bus`](super::bus::Bus) for its `seq`,
//! encodes each distinct payload once, and queues the one shared frame for
//! every recipient. The caller flushes the queues after letting go of the
//! lock, so the whole conversation has one order that every recipient
//! sees, and no socket is written under the lock.
//!
//! ```text
//! broadcast  ─► every member (sender included)            history: broadcasts
//! direct     ─► the target + a copy to the sender
//! multicast  ─► each listed member once + the sender
//! publish    ─► the topic's subscribers                    history: that topic
//! subscribe, unsubscribe ─► an ack to the sender
//! request    ─► a response to the sender only (see `requests`)
//! ```

use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

use super::accounts::Escalated;
use super::bus::{Published, Targets};
use super::history::{PrivateCopy, Stream};
use super::messages::{self, Ack, ErrorCode, MessageOut, Problem, To};
use super::numbered::{publish_and_ack, Extra};
use super::registry::{fold, Outbox, Registry};
use super::requests::{self, Deferred};
use super::wire::{Body, Inbound};
use super::{unix_ms, Chat, ClientId};

/// Route one parsed message from `from`. What must wait until the lock is
/// released (a history query) is returned.
pub fn route(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    from: ClientId,
    msg: Inbound,
) -> Option<Deferred> {
    let sender = reg.name_of(from)?.to_owned();
    let id = msg.id.as_ref();
    let publish = |targets, text| Published {
        targets,
        from: sender.clone(),
        text,
        ts: unix_ms(),
    };
    if msg.body.is_chat_message() {
        let until = reg.muted_until(from);
        if until > unix_ms() {
            let problem = Problem::new(ErrorCode::Muted, "a moderator muted you", id);
            chat.send(
                reg,
                out,
                from,
                &messages::error_with(&problem, "until_ms", until),
            );
            return None;
        }
    }
    let result = match msg.body {
        Body::Broadcast { text } => {
            publish_and_ack(
                chat,
                reg,
                out,
                from,
                id,
                publish(Targets::Everyone, text),
                Extra::default(),
            );
            Ok(())
        }
        Body::Direct { to, text } => match member_named(reg, &to) {
            Some(target) => {
                let m = publish(Targets::One(target.to_owned()), text);
                publish_and_ack(chat, reg, out, from, id, m, Extra::default());
                Ok(())
            }
            // A registered user who is offline: it waits for them.
            None => match waits_for(chat, reg, &to) {
                Some(owner) => {
                    let stored = [owner.clone()];
                    let m = publish(Targets::One(owner), text);
                    let extra = Extra {
                        unknown: None,
                        stored: Some(&stored),
                    };
                    publish_and_ack(chat, reg, out, from, id, m, extra);
                    Ok(())
                }
                None => Err(Problem::new(
                    ErrorCode::UnknownUser,
                    format!("nobody is called {to:?}"),
                    id,
                )),
            },
        },
        Body::Multicast { to, text } => {
            let (mut names, mut unknown, mut stored) = (Vec::new(), Vec::new(), Vec::new());
            let (mut seen, mut seen_unknown) = (HashSet::new(), HashSet::new());
            for name in to {
                match member_named(reg, &name) {
                    Some(member) if seen.insert(fold(member)) => names.push(member.to_owned()),
                    Some(_) => {}
                    None if seen_unknown.insert(fold(&name)) => match waits_for(chat, reg, &name) {
                        Some(owner) => {
                            names.push(owner.clone());
                            stored.push(owner);
                        }
                        None => unknown.push(name),
                    },
                    None => {}
                }
            }
            if names.is_empty() {
                Err(Problem::new(
                    ErrorCode::UnknownUser,
                    format!("nobody is called any of {unknown:?}"),
                    id,
                ))
            } else {
                let extra = Extra {
                    unknown: (!unknown.is_empty()).then_some(unknown.as_slice()),
                    stored: (!stored.is_empty()).then_some(stored.as_slice()),
                };
                let m = publish(Targets::Many(names), text);
                publish_and_ack(chat, reg, out, from, id, m, extra);
                Ok(())
            }
        }
        Body::Publish { topic, text } => match reg.use_topic(&topic) {
            None => Err(too_many_topics(chat, id)),
            Some(name) => {
                let m = publish(Targets::Topic(name), text);
                publish_and_ack(chat, reg, out, from, id, m, Extra::default());
                Ok(())
            }
        },
        Body::Subscribe { topic } if over_subscribed(chat, reg, from, &topic) => {
            let max = chat.settings.max_subscriptions;
            Err(Problem::new(
                ErrorCode::TooManyTopics,
                format!(
                    "at most {max} topics per connection and {} per address",
                    max * ADDRESS_SHARE
                ),
                id,
            ))
        }
        Body::Subscribe { topic } => match reg.use_topic(&topic) {
            None => Err(too_many_topics(chat, id)),
            Some(name) => {
                reg.subscribe(from, &name);
                ack_topic(chat, reg, out, from, id, &name);
                return save_topics(reg, from);
            }
        },
        Body::Unsubscribe { topic } => match reg.unsubscribe(from, &topic) {
            Some(name) => {
                ack_topic(chat, reg, out, from, id, &name);
                return save_topics(reg, from);
            }
            None => Err(Problem::new(
                ErrorCode::UnknownTopic,
                format!("not subscribed to {topic:?}"),
                id,
            )),
        },
        Body::Auth { token } if chat.settings.auth != "none" => {
            let id = id.cloned();
            return Some(Deferred::Escalate(Escalated::Auth { id, token }));
        }
        Body::Auth { .. } => Err(Problem::new(
            ErrorCode::AuthDisabled,
            "this server has no accounts (--auth none)",
            id,
        )),
        Body::Request { method, params } => {
            let id = id.cloned().unwrap_or(Value::Null);
            return requests::answer(chat, reg, out, from, id, method.as_deref(), params);
        }
    };
    if let Err(problem) = result {
        chat.send(reg, out, from, &messages::error(&problem));
    }
    None
}

/// The name of the member called `name` (any case), here or on another
/// node of a cluster.
fn member_named<'r>(reg: &'r Registry, name: &str) -> Option<&'r str> {
    let here = reg.find(name).and_then(|t| reg.name_of(t));
    here.or_else(|| reg.remote.get(name))
}

fn too_many_topics(chat: &Chat, id: Option<&Value>) -> Problem {
    let why = format!(
        "{} topics exist, each with subscribers",
        chat.settings.max_topics
    );
    Problem::new(ErrorCode::TooManyTopics, why, id)
}

/// The registered name of an offline account a private message to `name`
/// can wait for, if the history store keeps private messages.
fn waits_for(chat: &Chat, reg: &Registry, name: &str) -> Option<String> {
    if !chat.history.keeps_private() {
        return None;
    }
    reg.accounts.get(name).map(str::to_owned)
}

/// The members of one address may hold this many times
/// `--max-subscriptions` subscriptions in all.
pub const ADDRESS_SHARE: usize = 4;

/// Would subscribing to a new `topic` take `from` (or its address) past
/// its share of topic slots?
fn over_subscribed(chat: &Chat, reg: &Registry, from: ClientId, topic: &str) -> bool {
    let max = chat.settings.max_subscriptions;
    if reg.topics_of(from).iter().any(|t| fold(t) == fold(topic)) {
        return false;
    }
    let (own, at_address) = reg.subscriptions(from);
    own >= max || at_address >= max * ADDRESS_SHARE
}

/// An account's subscriptions changed: the server saves them.
fn save_topics(reg: &Registry, from: ClientId) -> Option<Deferred> {
    if !reg.standing_of(from).is_account() {
        return None;
    }
    let topics = reg.topics_of(from).into_iter().map(str::to_owned).collect();
    Some(Deferred::Escalate(Escalated::SaveTopics(topics)))
}

/// Deliver a numbered message to the local members it names: encode it
/// once, queue the frame for each, keep it in history if its stream keeps
/// history. `sender` is the local sender, if any (it gets a copy of a
/// direct or multicast message). Returns how many members took it.
pub fn deliver(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    seq: u64,
    published: &Published,
    sender: Option<ClientId>,
) -> usize {
    let json = message_json(seq, published);
    let frame = (chat.encode)(&json);
    let delivered = match &published.targets {
        Targets::Everyone => reg.queue_everyone(out, &frame, None),
        Targets::Topic(topic) => reg.queue_subscribers(out, topic, &frame),
        Targets::One(name) => {
            let ids = reg.find(name).into_iter().chain(sender);
            queue_once(reg, out, ids, &frame)
        }
        Targets::Many(names) => {
            let ids: Vec<ClientId> = names.iter().filter_map(|n| reg.find(n)).collect();
            queue_once(reg, out, ids.into_iter().chain(sender), &frame)
        }
    };
    chat.count_routed(&published.targets, delivered);
    keep(chat, reg, seq, published, json);
    delivered
}

/// A numbered message as it is delivered.
fn message_json(seq: u64, published: &Published) -> String {
    let m = MessageOut {
        kind_of: "message",
        kind: published.kind(),
        from: &published.from,
        to: match &published.targets {
            Targets::One(name) => Some(To::One(name)),
            Targets::Many(names) => Some(To::Many(names)),
            _ => None,
        },
        topic: match &published.targets {
            Targets::Topic(topic) => Some(topic),
            _ => None,
        },
        text: &published.text,
        seq,
        ts: published.ts,
    };
    messages::to_json(&m)
}

/// Keep a numbered message in history if its stream keeps history.
fn keep(chat: &Chat, reg: &Registry, seq: u64, published: &Published, json: String) {
    chat.history.assigned(seq);
    if let Some(stream) = stream_of(&published.targets) {
        chat.history
            .append(&stream, seq, published, Arc::from(json));
    } else if chat.history.keeps_private() {
        let copies = private_copies(reg, published);
        if !copies.is_empty() {
            chat.history.append_private(seq, copies, Arc::from(json));
        }
    }
}

/// Keep a message numbered before this node started (read back from the
/// bus's stream), delivering it to nobody.
pub fn remember(chat: &Chat, reg: &Registry, seq: u64, published: &Published) {
    keep(chat, reg, seq, published, message_json(seq, published));
}

/// A private message is kept for each account it involves: the sender
/// (once per recipient) and each recipient (with the sender as the other
/// party; waiting if offline). Guests keep nothing: their names are reused.
fn private_copies(reg: &Registry, published: &Published) -> Vec<PrivateCopy> {
    let recipients: &[String] = match &published.targets {
        Targets::One(name) => std::slice::from_ref(name),
        Targets::Many(names) => names,
        _ => return Vec::new(),
    };
    let sender = fold(&published.from);
    let sender_kept = reg.accounts.contains(&sender);
    let mut copies = Vec::new();
    for to in recipients {
        let peer = fold(to);
        if sender_kept && peer != sender {
            copies.push(PrivateCopy {
                owner: sender.clone(),
                peer: peer.clone(),
                waiting: false,
            });
        }
        if reg.accounts.contains(&peer) {
            copies.push(PrivateCopy {
                owner: peer.clone(),
                peer: sender.clone(),
                waiting: reg.find(&peer).is_none(),
            });
        }
    }
    copies
}

/// The history stream that keeps messages to these targets, if any
/// (direct and multicast messages are not kept).
fn stream_of(targets: &Targets) -> Option<Stream> {
    match targets {
        Targets::Everyone => Some(Stream::Broadcasts),
        Targets::Topic(topic) => Some(Stream::Topic(fold(topic))),
        Targets::One(_) | Targets::Many(_) => None,
    }
}

/// Queue `frame` for each distinct member of `ids`.
fn queue_once(
    reg: &mut Registry,
    out: &mut Outbox,
    ids: impl Iterator<Item = ClientId>,
    frame: &super::Frame,
) -> usize {
    let mut seen = HashSet::new();
    let distinct: Vec<ClientId> = ids.filter(|id| seen.insert(*id)).collect();
    reg.queue_all(out, distinct, frame)
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
            stored: None,
        };
        chat.send(reg, out, to, &messages::to_json(&ack));
    }
}
