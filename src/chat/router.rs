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

use super::bus::{Publish, Published, Targets};
use super::history::{AfterDurable, Stream};
use super::messages::{self, Ack, ErrorCode, MessageOut, Problem, To};
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
    let result = match msg.body {
        Body::Broadcast { text } => {
            publish_and_ack(
                chat,
                reg,
                out,
                from,
                id,
                publish(Targets::Everyone, text),
                None,
            );
            Ok(())
        }
        Body::Direct { to, text } => match reg.find(&to).and_then(|t| reg.name_of(t)) {
            None => Err(Problem::new(
                ErrorCode::UnknownUser,
                format!("nobody is called {to:?}"),
                id,
            )),
            Some(target) => {
                let m = publish(Targets::One(target.to_owned()), text);
                publish_and_ack(chat, reg, out, from, id, m, None);
                Ok(())
            }
        },
        Body::Multicast { to, text } => {
            let (mut names, mut unknown) = (Vec::new(), Vec::new());
            let (mut seen, mut seen_unknown) = (HashSet::new(), HashSet::new());
            for name in to {
                match reg.find(&name) {
                    Some(t) if seen.insert(t) => {
                        names.push(reg.name_of(t).unwrap_or(&name).to_owned());
                    }
                    Some(_) => {}
                    None if seen_unknown.insert(name.clone()) => unknown.push(name),
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
                let unknown = (!unknown.is_empty()).then_some(unknown.as_slice());
                let m = publish(Targets::Many(names), text);
                publish_and_ack(chat, reg, out, from, id, m, unknown);
                Ok(())
            }
        }
        Body::Publish { topic, text } => match reg.use_topic(&topic) {
            None => Err(too_many_topics(chat, id)),
            Some(name) => {
                let m = publish(Targets::Topic(name), text);
                publish_and_ack(chat, reg, out, from, id, m, None);
                Ok(())
            }
        },
        Body::Subscribe { topic } => match reg.use_topic(&topic) {
            None => Err(too_many_topics(chat, id)),
            Some(name) => {
                reg.subscribe(from, &name);
                ack_topic(chat, reg, out, from, id, &name);
                Ok(())
            }
        },
        Body::Unsubscribe { topic } => match reg.unsubscribe(from, &topic) {
            Some(name) => {
                ack_topic(chat, reg, out, from, id, &name);
                Ok(())
            }
            None => Err(Problem::new(
                ErrorCode::UnknownTopic,
                format!("not subscribed to {topic:?}"),
                id,
            )),
        },
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

fn too_many_topics(chat: &Chat, id: Option<&Value>) -> Problem {
    let why = format!(
        "{} topics exist, each with subscribers",
        chat.settings.max_topics
    );
    Problem::new(ErrorCode::TooManyTopics, why, id)
}

/// Hand a message to the bus; when it is numbered at once, deliver it
/// here and ack it to the sender.
fn publish_and_ack(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    from: ClientId,
    id: Option<&Value>,
    published: Published,
    unknown: Option<&[String]>,
) {
    match chat.bus.publish(&published) {
        Publish::Now(seq) => {
            let delivered = deliver(chat, reg, out, seq, &published, Some(from));
            if let Some(id) = id {
                let ack = Ack {
                    kind_of: "ack",
                    id,
                    seq: Some(seq),
                    delivered: Some(delivered),
                    topic: None,
                    unknown,
                };
                let frame = (chat.encode)(&messages::to_json(&ack));
                // --durable-acks: the ack of a kept message waits until it
                // is committed; the store sends it from its own thread.
                let held = chat.settings.durable_acks && published.targets.is_kept();
                match held.then(|| reg.sink_of(from)).flatten() {
                    Some(sink) => {
                        let held = Arc::clone(&frame);
                        let then: AfterDurable = Box::new(move || {
                            sink.queue(held);
                            sink.flush();
                        });
                        if chat.history.after_durable(seq, then).is_some() {
                            reg.queue(out, from, &frame);
                        }
                    }
                    None => {
                        reg.queue(out, from, &frame);
                    }
                }
            }
        }
        // The bus delivers it (and the sender sees its own copy) later.
        Publish::Later => {}
    }
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
    let json = messages::to_json(&m);
    let frame = (chat.encode)(&json);
    chat.count_routed();
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
    chat.history.assigned(seq);
    if let Some(stream) = stream_of(&published.targets) {
        chat.history
            .append(&stream, seq, published, Arc::from(json));
    }
    delivered
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
        };
        chat.send(reg, out, to, &messages::to_json(&ack));
    }
}
