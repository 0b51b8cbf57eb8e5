//! Presence across hosts (issue 18): each node announces its changes on a
//! channel at once, and every beat writes its whole list under its node
//! key (which expires), claims its guests' names again, and reads the
//! other nodes' lists. A lost announcement is repaired within one beat; a
//! node that dies without a word has its members leave once its key
//! expires ([`names::TTL`]).
//!
//! ```text
//!  ws-bus-out: PUBLISH sb:presence {"node","v","event","name","old","account"}
//!  ws-beat, every BEAT:
//!    SET {sb}:node:<me> {"v","members","topics"} PX TTL; SADD {sb}:nodes <me>
//!    keep each guest's {sb}:name:<folded> (lost to another node: renamed here)
//!    SMEMBERS {sb}:nodes, GET each key ─► chat.remote_snapshot / remote_gone
//! ```

use serde_json::{json, Value};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use crate::chat::registry::fold;
use crate::chat::remote::{Change, Order, Snapshot};
use crate::chat::Chat;

use super::bus::Loops;
use super::conn::{Conn, Error};
use super::names;

/// The channel of presence changes.
pub const CHANNEL: &str = "sb:presence";
/// How often a node beats (a fifth of the time-to-live).
pub const BEAT: Duration = Duration::from_secs(3);

/// A change as it travels.
pub fn encode_change(node: &str, version: u64, change: &Change) -> String {
    let (event, name, old, account) = match change {
        Change::Join { name, account } => ("join", name, None, *account),
        Change::Leave { name } => ("leave", name, None, false),
        Change::Rename { old, new, account } => ("rename", new, Some(old), *account),
    };
    json!({"node": node, "v": version, "event": event, "name": name, "old": old,
           "account": account})
    .to_string()
}

/// A change back, with its node and version; None if it is not one.
pub fn decode_change(payload: &[u8]) -> Option<(String, u64, Change)> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let text = |key: &str| v.get(key)?.as_str().map(str::to_owned);
    let account = v.get("account")?.as_bool()?;
    let change = match v.get("event")?.as_str()? {
        "join" => Change::Join {
            name: text("name")?,
            account,
        },
        "leave" => Change::Leave {
            name: text("name")?,
        },
        "rename" => Change::Rename {
            old: text("old")?,
            new: text("name")?,
            account,
        },
        _ => return None,
    };
    Some((text("node")?, v.get("v")?.as_u64()?, change))
}

/// A moderator's order as it travels (on the presence channel).
pub fn encode_order(node: &str, order: &Order) -> String {
    let body = match order {
        Order::Remove { name, code, reason } => {
            json!({"kind": "remove", "name": name, "code": code, "reason": reason})
        }
        Order::RemoveAddress {
            address,
            code,
            reason,
            spare_admins,
        } => json!({"kind": "remove_address", "address": address, "code": code, "reason": reason,
                    "spare_admins": spare_admins}),
        Order::Mute { name, until } => json!({"kind": "mute", "name": name, "until": until}),
    };
    json!({"node": node, "event": "enforce", "order": body}).to_string()
}

/// An order back, with its node; None if the payload is not one.
pub fn decode_order(payload: &[u8]) -> Option<(String, Order)> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    if v.get("event")?.as_str()? != "enforce" {
        return None;
    }
    let o = v.get("order")?;
    let text = |key: &str| o.get(key)?.as_str().map(str::to_owned);
    let code = || u16::try_from(o.get("code")?.as_u64()?).ok();
    let order = match o.get("kind")?.as_str()? {
        "remove" => Order::Remove {
            name: text("name")?,
            code: code()?,
            reason: text("reason")?,
        },
        "remove_address" => Order::RemoveAddress {
            address: text("address")?,
            code: code()?,
            reason: text("reason")?,
            spare_admins: o.get("spare_admins")?.as_bool()?,
        },
        "mute" => Order::Mute {
            name: text("name")?,
            until: o.get("until")?.as_u64()?,
        },
        _ => return None,
    };
    Some((v.get("node")?.as_str()?.to_owned(), order))
}

pub fn encode_snapshot(s: &Snapshot) -> String {
    json!({"v": s.version, "members": s.members, "topics": s.topics}).to_string()
}

pub fn decode_snapshot(payload: &[u8]) -> Option<Snapshot> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let pairs = |key: &str| v.get(key)?.as_array().cloned();
    let members = pairs("members")?
        .iter()
        .map(|m| Some((m.get(0)?.as_str()?.to_owned(), m.get(1)?.as_bool()?)))
        .collect::<Option<_>>()?;
    let topics = pairs("topics")?
        .iter()
        .map(|t| Some((t.get(0)?.as_str()?.to_owned(), t.get(1)?.as_u64()? as usize)))
        .collect::<Option<_>>()?;
    Some(Snapshot {
        version: v.get("v")?.as_u64()?,
        members,
        topics,
    })
}

/// `ws-beat`: one beat every [`BEAT`] until the bus stops; Redis away
/// skips beats (the others then see this node go, after the TTL).
pub fn run_beats(loops: &Loops, chat: &Chat) {
    let mut conn: Option<Conn> = None;
    let mut next = Instant::now();
    while !loops.stop.load(SeqCst) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100).min(next - Instant::now()));
            continue;
        }
        next = Instant::now() + BEAT;
        if conn.is_none() {
            conn = Conn::open(&loops.address, super::bus::CALL).ok();
        }
        if let Some(c) = conn.as_mut() {
            if let Err(e) = beat(c, &loops.node, chat) {
                log::warn!("cluster: beat failed ({e}); trying again in {BEAT:?}");
                conn = None;
            }
        }
    }
    // Stopping: the others see this node go at their next beat, not a TTL
    // later.
    if let Some(c) = conn.as_mut() {
        let _ = names::goodbye(c, &loops.node);
    }
}

fn beat(conn: &mut Conn, node: &str, chat: &Chat) -> Result<(), Error> {
    let snapshot = chat.local_snapshot();
    names::beat(conn, node, &encode_snapshot(&snapshot), names::TTL)?;
    let guests: Vec<String> = snapshot
        .members
        .iter()
        .filter(|(_, account)| !account)
        .map(|(name, _)| name.clone())
        .collect();
    let kept = names::keep_all(conn, guests.iter().map(|n| fold(n)), node, names::TTL)?;
    for (name, kept) in guests.iter().zip(kept) {
        if !kept {
            chat.name_lost(name);
        }
    }
    let (alive, gone) = names::nodes(conn)?;
    // Nodes known here whose key is gone (another node may have been the
    // one to forget them first).
    let vanished: Vec<String> = chat
        .remote_nodes()
        .into_iter()
        .filter(|n| !alive.iter().any(|(a, _)| a == n) && !gone.contains(n))
        .collect();
    for other in vanished {
        gone_node(conn, chat, &other)?;
    }
    for (other, list) in alive {
        if other == node {
            continue;
        }
        match decode_snapshot(list.as_bytes()) {
            Some(snapshot) => chat.remote_snapshot(&other, snapshot),
            None => log::warn!("cluster: node {other} wrote a list that is not ours: skipped"),
        }
    }
    for other in gone {
        if names::forget(conn, &other)? {
            log::info!("cluster: node {other} stopped beating; its users leave");
        }
        gone_node(conn, chat, &other)?;
    }
    Ok(())
}

/// A node is gone: the names its members held are freed first (only if
/// that node still holds them), so that when its users see the `leave`
/// they can take their names back on another node at once.
fn gone_node(conn: &mut Conn, chat: &Chat, node: &str) -> Result<(), Error> {
    for name in chat.remote_names_of(node) {
        names::release(conn, &fold(&name), node)?;
    }
    chat.remote_gone(node);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_and_lists_travel_and_come_back_the_same() {
        for change in [
            Change::Join {
                name: "ann".into(),
                account: true,
            },
            Change::Leave { name: "bob".into() },
            Change::Rename {
                old: "a".into(),
                new: "b".into(),
                account: false,
            },
        ] {
            let back = decode_change(encode_change("n1", 9, &change).as_bytes());
            assert_eq!(back, Some(("n1".to_owned(), 9, change)));
        }
        for order in [
            Order::Remove {
                name: "ann".into(),
                code: 4003,
                reason: "banned: spam".into(),
            },
            Order::RemoveAddress {
                address: "10.0.0.7".into(),
                code: 4003,
                reason: "x".into(),
                spare_admins: true,
            },
            Order::Mute {
                name: "bob".into(),
                until: 99,
            },
        ] {
            let back = decode_order(encode_order("n1", &order).as_bytes());
            assert_eq!(back, Some(("n1".to_owned(), order)));
        }
        assert!(decode_order(br#"{"node":"n","event":"enforce","order":{"kind":"remove","name":"a","code":70000,"reason":""}}"#).is_none());
        let s = Snapshot {
            version: 3,
            members: vec![("ann".into(), true), ("bob".into(), false)],
            topics: vec![("news".into(), 2)],
        };
        assert_eq!(decode_snapshot(encode_snapshot(&s).as_bytes()), Some(s));
        for bad in [
            &b"{}"[..],
            b"[1]",
            br#"{"v":1,"members":[[1,2]],"topics":[]}"#,
        ] {
            assert!(decode_snapshot(bad).is_none());
            assert!(decode_change(bad).is_none());
        }
    }
}
