//! A chat message as it travels through Redis (issue 18): JSON that names
//! its node and its token there, so the sender's node can ack it.

use serde_json::{json, Value};

use crate::chat::bus::{Published, Targets};

/// A message as it travels through Redis.
pub fn encode(node: &str, token: u64, m: &Published) -> String {
    let (to, topic) = match &m.targets {
        Targets::Everyone => (Value::Null, Value::Null),
        Targets::One(name) => (json!(name), Value::Null),
        Targets::Many(names) => (json!(names), Value::Null),
        Targets::Topic(topic) => (Value::Null, json!(topic)),
    };
    json!({"node": node, "token": token, "kind": m.kind(), "from": m.from, "to": to,
           "topic": topic, "text": m.text, "ts": m.ts})
    .to_string()
}

/// A payload back into a message, with its node and token; None for one
/// that is not ours to read (it is logged and skipped, never a panic).
pub fn decode(payload: &[u8]) -> Option<(String, u64, Published)> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let text = |key: &str| v.get(key)?.as_str().map(str::to_owned);
    let targets = match v.get("kind")?.as_str()? {
        "broadcast" => Targets::Everyone,
        "direct" => Targets::One(text("to")?),
        "multicast" => Targets::Many(
            v.get("to")?
                .as_array()?
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
        ),
        "publish" => Targets::Topic(text("topic")?),
        _ => return None,
    };
    let published = Published {
        targets,
        from: text("from")?,
        text: text("text")?,
        ts: v.get("ts")?.as_u64()?,
    };
    Some((text("node")?, v.get("token")?.as_u64()?, published))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_travel_and_come_back_the_same() {
        for targets in [
            Targets::Everyone,
            Targets::One("bob".into()),
            Targets::Many(vec!["a".into(), "b".into()]),
            Targets::Topic("news".into()),
        ] {
            let m = Published {
                targets,
                from: "ann".into(),
                text: "hi \"there\"\n".into(),
                ts: 7,
            };
            let back = decode(encode("n1", 42, &m).as_bytes()).unwrap();
            assert_eq!(back, ("n1".to_owned(), 42, m));
        }
        for bad in [
            &b"not json"[..],
            b"{}",
            br#"{"kind":"shout","from":"a","text":"","ts":1,"node":"n","token":1}"#,
        ] {
            assert!(decode(bad).is_none());
        }
    }
}
