//! Publishing a message and acking it: numbered at once by a one-process
//! bus (delivered and acked under the same lock), or later by a bus that
//! spans hosts (issue 18), which answers
//! `Later`, and hands every message back, numbered, strictly in `seq`
//! order, on every node. The sender's ack waits here for its own message.
//!
//! ```text
//!  router (lock) ─► bus.publish(m, token) = Later ─► hold_ack(token, sender, id)
//!  bus thread    ─► deliver_numbered(seq, m, Some(token) if ours)
//!                     deliver to this node's members, then the held ack
//!                     {"type":"ack","seq":..,"delivered":<this node's count>}
//!  bus thread    ─► bus_failed(token): the sender gets `unavailable`
//! ```

use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::bus::{Publish, Published};
use super::history::AfterDurable;
use super::messages::{self, Ack, ErrorCode, Problem};
use super::registry::{Outbox, Registry};
use super::{router, Chat, ClientId};

/// What an ack lists besides its seq: names nobody has, and offline
/// accounts the message waits for.
#[derive(Default)]
pub(super) struct Extra<'a> {
    pub unknown: Option<&'a [String]>,
    pub stored: Option<&'a [String]>,
}

/// The ack of a message: its seq, how many took it here, and who did not
/// get it (unknown) or gets it later (stored).
pub(super) fn ack_frame(
    chat: &Chat,
    id: &Value,
    seq: u64,
    delivered: usize,
    extra: &Extra,
) -> super::Frame {
    let ack = Ack {
        kind_of: "ack",
        id,
        seq: Some(seq),
        delivered: Some(delivered),
        topic: None,
        unknown: extra.unknown,
        stored: extra.stored,
    };
    (chat.encode)(&messages::to_json(&ack))
}

/// Hand a message to the bus; when it is numbered at once, deliver it
/// here and ack it to the sender.
pub(super) fn publish_and_ack(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    from: ClientId,
    id: Option<&Value>,
    published: Published,
    extra: Extra,
) {
    let token = chat.next_token();
    match chat.bus.publish(&published, token) {
        Publish::Now(seq) => {
            let delivered = router::deliver(chat, reg, out, seq, &published, Some(from));
            if let Some(id) = id {
                let frame = ack_frame(chat, id, seq, delivered, &extra);
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
        // The bus delivers it (and the sender sees its own copy) later;
        // the ack waits for it (numbered.rs).
        Publish::Later => chat.hold_ack(token, from, id, extra.unknown, extra.stored),
        Publish::Unavailable => {
            let why = "the message bus is unavailable; not sent";
            let problem = Problem::new(ErrorCode::Unavailable, why, id);
            chat.send(reg, out, from, &messages::error(&problem));
        }
    }
}

/// An ack waiting for its message to come back numbered.
#[derive(Debug)]
pub(super) struct PendingAck {
    from: ClientId,
    /// The message's `id`: no id, no ack (but an error all the same).
    id: Option<Value>,
    unknown: Option<Vec<String>>,
    stored: Option<Vec<String>>,
}

impl Chat {
    /// A new token for a message this node hands to the bus.
    pub(super) fn next_token(&self) -> u64 {
        self.next_token.fetch_add(1, Relaxed) + 1
    }

    /// Keep the ack of `token` until the bus brings the message back.
    /// (Called with the registry lock held; the lock order is registry,
    /// then pending.)
    pub(super) fn hold_ack(
        &self,
        token: u64,
        from: ClientId,
        id: Option<&Value>,
        unknown: Option<&[String]>,
        stored: Option<&[String]>,
    ) {
        let ack = PendingAck {
            from,
            id: id.cloned(),
            unknown: unknown.map(<[String]>::to_vec),
            stored: stored.map(<[String]>::to_vec),
        };
        self.pending.lock().insert(token, ack);
    }

    /// The bus numbered a message: deliver it to this node's members, in
    /// the order the bus calls this (strictly by `seq`). `token` is the
    /// message's own token when this node sent it: its sender gets the
    /// ack, with the number of members of this node that took it.
    pub fn deliver_numbered(&self, seq: u64, published: &Published, token: Option<u64>) -> usize {
        self.deliver_numbered_all([(seq, published, token)])
    }

    /// Several numbered messages in a row (`seq` order), under one lock and
    /// with one flush per recipient; the deliveries are counted.
    pub fn deliver_numbered_all<'a>(
        &self,
        messages: impl IntoIterator<Item = (u64, &'a Published, Option<u64>)>,
    ) -> usize {
        let mut out = Outbox::default();
        let mut delivered = 0;
        {
            let mut reg = self.registry.lock();
            for (seq, published, token) in messages {
                delivered += self.deliver_one(&mut reg, &mut out, seq, published, token);
            }
            self.drop_cut_off(&mut reg, &mut out);
        }
        out.flush();
        delivered
    }

    fn deliver_one(
        &self,
        reg: &mut Registry,
        out: &mut Outbox,
        seq: u64,
        published: &Published,
        token: Option<u64>,
    ) -> usize {
        let pending = token.and_then(|t| self.pending.lock().remove(&t));
        let sender = pending.as_ref().map(|p| p.from);
        let delivered = router::deliver(self, reg, out, seq, published, sender);
        if let Some((p, id)) = pending.as_ref().and_then(|p| Some((p, p.id.as_ref()?))) {
            let extra = Extra {
                unknown: p.unknown.as_deref(),
                stored: p.stored.as_deref(),
            };
            let frame = ack_frame(self, id, seq, delivered, &extra);
            reg.queue(out, p.from, &frame);
        }
        self.bus.delivered(seq);
        delivered
    }

    /// History numbered before this node started, read back from the bus:
    /// kept, delivered to nobody.
    pub fn remember(&self, seq: u64, published: &Published) {
        let reg = self.registry.lock();
        router::remember(self, &reg, seq, published);
    }

    /// The bus could not number this node's message `token` (its broker is
    /// away): the sender is told, never left waiting.
    pub fn bus_failed(&self, token: u64, why: &str) {
        let mut out = Outbox::default();
        {
            let mut reg = self.registry.lock();
            let Some(p) = self.pending.lock().remove(&token) else {
                return;
            };
            let problem = Problem::new(ErrorCode::Unavailable, why, p.id.as_ref());
            let frame = (self.encode)(&messages::error(&problem));
            reg.queue(&mut out, p.from, &frame);
        }
        out.flush();
    }
}
