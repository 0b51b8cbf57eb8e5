//! Messages a bus numbers later (issue 18): a bus that spans hosts answers
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

use super::bus::Published;
use super::messages::{self, ErrorCode, Problem};
use super::registry::Outbox;
use super::{router, Chat, ClientId};

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
        let mut out = Outbox::default();
        let delivered = {
            let mut reg = self.registry.lock();
            let pending = token.and_then(|t| self.pending.lock().remove(&t));
            let sender = pending.as_ref().map(|p| p.from);
            let delivered = router::deliver(self, &mut reg, &mut out, seq, published, sender);
            if let Some((p, id)) = pending.as_ref().and_then(|p| Some((p, p.id.as_ref()?))) {
                let extra = router::Extra {
                    unknown: p.unknown.as_deref(),
                    stored: p.stored.as_deref(),
                };
                let frame = router::ack_frame(self, id, seq, delivered, &extra);
                reg.queue(&mut out, p.from, &frame);
            }
            self.drop_cut_off(&mut reg, &mut out);
            delivered
        };
        out.flush();
        delivered
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
