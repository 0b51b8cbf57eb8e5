//! A cluster for a test (issue 18): a real `redis-server` of its own and
//! real server binaries with `--redis`, and the reads the cluster tests
//! share.

use serde_json::Value;
use std::time::{Duration, Instant};

use super::binary::Binary;
use super::chat::User;
use super::redis::Redis;
use super::TempDir;

/// A node of the cluster: the binary on its own database file.
pub fn node(dir: &TempDir, name: &str, redis: &Redis, flags: &str) -> Binary {
    let db = dir.join(&format!("{name}.db"));
    Binary::start(&db, &format!("--redis {} {flags}", redis.url()), "")
}

/// A Redis of its own, a temp folder and `N` nodes on them (a, b, c...).
pub fn cluster<const N: usize>(name: &str) -> Option<(Redis, TempDir, [Binary; N])> {
    let redis = Redis::start()?;
    let dir = TempDir::new(name);
    let nodes =
        std::array::from_fn(|i| node(&dir, &((b'a' + i as u8) as char).to_string(), &redis, ""));
    Some((redis, dir, nodes))
}

/// Read until `done` says so (or 20 s pass), keeping every `message`.
pub fn collect(user: &mut User, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(&got) {
        assert!(Instant::now() < deadline, "timed out; got {}", got.len());
        let m = user.recv();
        if m["type"] == "message" {
            got.push(m);
        }
    }
    got
}

/// The next presence event of this kind about `name`, skipping the rest.
pub fn presence(user: &mut User, event: &str, name: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {event} of {name} within {within:?}");
        let Some(m) = user.recv_within(left) else {
            continue;
        };
        if m["type"] == "presence" && m["event"] == event && m["name"] == name {
            return m;
        }
    }
}

/// The next frame of this type, skipping messages and presence.
pub fn skip_to(user: &mut User, kind: &str) -> Value {
    loop {
        let m = user.recv();
        if m["type"] == kind {
            return m;
        }
        assert!(
            m["type"] == "presence" || m["type"] == "message",
            "expected {kind}: {m}"
        );
    }
}

/// The next frame that is not presence.
pub fn next(user: &mut User) -> Value {
    loop {
        let m = user.recv();
        if m["type"] != "presence" {
            return m;
        }
    }
}

/// The texts of a `history` response's messages.
pub fn page_texts(page: &Value) -> Vec<&str> {
    let messages = page["result"]["messages"].as_array();
    messages
        .map(|m| m.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default()
}

pub fn seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}
