//! The v1 chat protocol, one test per pattern or rule, with several real
//! clients (tungstenite) on loopback.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::chat::User;
use support::start;

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// Join `n` users named u0..u(n-1); each has seen the others' joins
/// drained, so their next message is not presence.
fn users(addr: std::net::SocketAddr, n: usize) -> Vec<User> {
    let mut all: Vec<User> = Vec::new();
    for i in 0..n {
        let user = User::join(addr, &format!("u{i}"));
        for earlier in &mut all {
            let p = earlier.recv();
            assert_eq!(
                (p["type"].as_str(), p["event"].as_str()),
                (Some("presence"), Some("join"))
            );
        }
        all.push(user);
    }
    all
}

#[test]
fn welcome_says_who_is_here_and_the_limits() {
    let server = start(|_| {});
    let mut alice = User::join(server.local_addr(), "alice");
    alice.send(json!({"type": "subscribe", "topic": "news", "id": 1}));
    alice.recv_type("ack");
    let bob = User::join(server.local_addr(), "bob");
    let w = &bob.welcome;
    assert_eq!(w["name"], "bob");
    assert!(w["id"].as_str().unwrap().starts_with('c'));
    assert_eq!(names(&w["users"]), ["alice", "bob"]);
    assert_eq!(names(&w["topics"]), ["news"]);
    assert_eq!(
        w["server"],
        concat!("switchboard/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(w["epoch"].as_str().unwrap().len(), 6);
    assert_eq!(w["epoch"], alice.welcome["epoch"], "one history store");
    assert_eq!(w["seq"], 0);
    assert_eq!(w["limits"], json!({"max_message": 65536, "max_text": 4096}));
    assert_ne!(w["id"], alice.welcome["id"]);
}

#[test]
fn broadcast_reaches_all_three_users_in_order() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 3);
    u[0].send(json!({"type": "broadcast", "text": "one", "id": 1}));
    let mut firsts = Vec::new();
    for user in &mut u {
        let m = user.recv_type("message");
        assert_eq!(
            (m["text"].as_str(), m["from"].as_str(), m["kind"].as_str()),
            (Some("one"), Some("u0"), Some("broadcast"))
        );
        assert!(m["ts"].as_u64().unwrap() > 1_700_000_000_000);
        assert!(
            m.get("id").is_none(),
            "delivered messages never carry the sender's id"
        );
        firsts.push(m);
    }
    let ack = u[0].recv_type("ack");
    assert_eq!(
        (
            ack["id"].as_i64(),
            ack["seq"].clone(),
            ack["delivered"].as_u64()
        ),
        (Some(1), firsts[0]["seq"].clone(), Some(3))
    );
    // A plain line from another user comes after it, for everyone.
    u[1].send_text("two");
    for (user, first) in u.iter_mut().zip(&firsts) {
        let m = user.recv_type("message");
        assert_eq!(
            (m["text"].as_str(), m["from"].as_str()),
            (Some("two"), Some("u1"))
        );
        assert!(m["seq"].as_u64() > first["seq"].as_u64());
    }
}

#[test]
fn direct_reaches_only_the_target_and_the_sender() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 3);
    u[0].send(json!({"type": "direct", "to": "U1", "text": "psst", "id": "d1"}));
    for i in [0, 1] {
        let m = u[i].recv_type("message");
        assert_eq!(
            (m["kind"].as_str(), m["to"].as_str(), m["text"].as_str()),
            (Some("direct"), Some("u1"), Some("psst"))
        );
    }
    let ack = u[0].recv_type("ack");
    assert_eq!(
        (ack["id"].as_str(), ack["delivered"].as_u64()),
        (Some("d1"), Some(2))
    );
    u[2].expect_silence(Duration::from_millis(200));
}

#[test]
fn direct_to_oneself_is_delivered_once() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 1);
    u[0].send(json!({"type": "direct", "to": "u0", "text": "note", "id": 1}));
    assert_eq!(u[0].recv()["type"], "message");
    assert_eq!(u[0].recv()["delivered"], 1);
    u[0].expect_silence(Duration::from_millis(150));
}

#[test]
fn multicast_reaches_exactly_the_listed_users_once() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 4);
    u[0].send(json!({"type": "multicast", "to": ["u1", "u2", "U1", "ghost", "u0"], "text": "hey", "id": 5}));
    for i in [0, 1, 2] {
        let m = u[i].recv_type("message");
        assert_eq!(m["kind"], "multicast");
        assert_eq!(
            names(&m["to"]),
            ["u1", "u2", "u0"],
            "existing recipients, in order, once"
        );
    }
    let ack = u[0].recv_type("ack");
    assert_eq!(ack["delivered"], 3);
    assert_eq!(names(&ack["unknown"]), ["ghost"]);
    u[3].expect_silence(Duration::from_millis(200));
    for i in [1, 2] {
        u[i].expect_silence(Duration::from_millis(100));
    }
}

#[test]
fn multicast_to_nobody_known_is_unknown_user_and_delivers_nothing() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 2);
    u[0].send(json!({"type": "multicast", "to": ["ghost"], "text": "x", "id": 1}));
    let e = u[0].recv();
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str(), e["id"].as_i64()),
        (Some("error"), Some("unknown_user"), Some(1))
    );
    u[1].expect_silence(Duration::from_millis(150));
}

#[test]
fn pubsub_reaches_only_subscribers_and_stops_after_unsubscribe() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 3);
    u[1].send(json!({"type": "subscribe", "topic": "News", "id": "s"}));
    let ack = u[1].recv();
    assert_eq!(ack, json!({"type": "ack", "id": "s", "topic": "News"}));
    u[2].send(json!({"type": "subscribe", "topic": "news", "id": "s2"}));
    assert_eq!(u[2].recv()["type"], "ack");

    u[0].send(json!({"type": "publish", "topic": "news", "text": "extra", "id": 1}));
    for i in [1, 2] {
        let m = u[i].recv_type("message");
        assert_eq!(
            (m["kind"].as_str(), m["topic"].as_str(), m["text"].as_str()),
            (Some("publish"), Some("News"), Some("extra"))
        );
    }
    let ack = u[0].recv();
    assert_eq!(
        (ack["type"].as_str(), ack["delivered"].as_u64()),
        (Some("ack"), Some(2)),
        "the publisher is not subscribed"
    );

    u[2].send(json!({"type": "unsubscribe", "topic": "NEWS", "id": 2}));
    assert_eq!(u[2].recv()["type"], "ack");
    u[0].send(json!({"type": "publish", "topic": "news", "text": "later"}));
    assert_eq!(u[1].recv_type("message")["text"], "later");
    u[2].expect_silence(Duration::from_millis(200));
}

#[test]
fn publish_without_subscribers_is_acked_with_zero_and_unsubscribe_of_a_stranger_topic_fails() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 1);
    u[0].send(json!({"type": "publish", "topic": "void", "text": "echo?", "id": 1}));
    let ack = u[0].recv();
    assert_eq!(
        (ack["delivered"].as_u64(), ack["seq"].as_u64().is_some()),
        (Some(0), true)
    );
    u[0].send(json!({"type": "unsubscribe", "topic": "void", "id": 2}));
    let e = u[0].recv();
    assert_eq!(
        (e["code"].as_str(), e["id"].as_i64()),
        (Some("unknown_topic"), Some(2))
    );
}

#[test]
fn a_subscribed_publisher_gets_its_own_message() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 1);
    u[0].send(json!({"type": "subscribe", "topic": "me"}));
    u[0].send(json!({"type": "publish", "topic": "me", "text": "hi", "id": 1}));
    assert_eq!(u[0].recv()["type"], "message");
    assert_eq!(u[0].recv()["delivered"], 1);
}

#[test]
fn each_request_method_answers_and_echoes_the_id() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 2);
    u[1].send(json!({"type": "subscribe", "topic": "t1", "id": "a"}));
    u[1].send(json!({"type": "subscribe", "topic": "t2", "id": "b"}));
    u[1].recv_type("ack");
    u[1].recv_type("ack");

    let r = u[0].request(json!(1), "users", json!({}));
    assert_eq!(names(&r["result"]["users"]), ["u0", "u1"]);
    let r = u[0].request(json!("two"), "topics", json!({}));
    assert_eq!(
        r["result"]["topics"],
        json!([{"name": "t1", "subscribers": 1}, {"name": "t2", "subscribers": 1}])
    );
    let r = u[1].request(json!(3), "whoami", json!({}));
    assert_eq!(
        r["result"],
        json!({"id": u[1].welcome["id"], "name": "u1", "topics": ["t1", "t2"],
               "guest": true, "roles": []})
    );
    let r = u[0].request(json!(4), "time", json!({}));
    assert!(r["result"]["unix_ms"].as_u64().unwrap() > 1_700_000_000_000);
    let r = u[0].request(json!(5), "echo", json!({"deep": [1, {"x": null}]}));
    assert_eq!(r["result"], json!({"deep": [1, {"x": null}]}));
    u[0].send_text("counted");
    u[0].recv_type("message");
    let r = u[0].request(json!(6), "stats", json!({}));
    assert_eq!(
        (
            r["result"]["connections"].as_u64(),
            r["result"]["messages"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert!(r["result"]["uptime_s"].is_u64());
    let r = u[0].request(json!(7), "history", json!({}));
    assert_eq!(r["result"]["messages"][0]["text"], "counted");
    let r = u[0].request(json!(8), "dance", json!({}));
    assert_eq!(r["error"]["code"], "unknown_method");
    // Without params: the default is {}.
    u[0].send(json!({"type": "request", "id": 9, "method": "echo"}));
    assert_eq!(u[0].recv_type("response")["result"], json!({}));
    // A missing method is a response with bad_request.
    u[0].send(json!({"type": "request", "id": 10}));
    let r = u[0].recv_type("response");
    assert_eq!(
        (r["id"].as_i64(), r["error"]["code"].as_str()),
        (Some(10), Some("bad_request"))
    );
}

#[test]
fn rename_checks_the_name_and_tells_everyone_else() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 2);
    let r = u[0].request(json!(1), "rename", json!({"name": "U1"}));
    assert_eq!(r["error"]["code"], "name_taken");
    let r = u[0].request(json!(2), "rename", json!({"name": "no way"}));
    assert_eq!(r["error"]["code"], "bad_name");
    let r = u[0].request(json!(3), "rename", json!({"name": "Zed"}));
    assert_eq!(r["result"], json!({"name": "Zed"}));
    assert_eq!(
        u[1].recv(),
        json!({"type": "presence", "event": "rename", "name": "Zed", "old": "u0"})
    );
    u[0].expect_silence(Duration::from_millis(100));
    // The old name is free again, the new one is used for routing.
    u[1].send(json!({"type": "direct", "to": "zed", "text": "hi"}));
    assert_eq!(u[0].recv_type("message")["to"], "Zed");
}

#[test]
fn presence_goes_to_everyone_but_its_subject() {
    let server = start(|_| {});
    let mut a = User::join(server.local_addr(), "a");
    let b = User::join(server.local_addr(), "b");
    assert_eq!(
        a.recv(),
        json!({"type": "presence", "event": "join", "name": "b"})
    );
    drop(b);
    assert_eq!(
        a.recv(),
        json!({"type": "presence", "event": "leave", "name": "b"})
    );
}

#[test]
fn name_collisions_get_distinct_names() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let first = User::join(addr, "alice");
    let second = User::join(addr, "ALICE");
    let third = User::join(addr, "alice");
    assert_eq!(
        (first.name(), second.name(), third.name()),
        ("alice".into(), "ALICE-2".into(), "alice-3".into())
    );
    let long = "x".repeat(32);
    let a = User::join(addr, &long);
    let b = User::join(addr, &long);
    assert_eq!(a.name(), long);
    assert_eq!(
        b.name(),
        format!("{}-2", "x".repeat(30)),
        "shortened to fit 32"
    );
    let guest = User::join_path(addr, "/chat");
    let bad = User::join(addr, "not%20valid");
    assert!(guest.name().starts_with("guest-") && bad.name().starts_with("guest-"));
    assert_ne!(guest.name(), bad.name());
    let decoded = User::join(addr, "b%6Fb");
    assert_eq!(decoded.name(), "bob", "?name= is percent-decoded");
}

#[test]
fn malformed_messages_get_errors_and_the_connection_keeps_working() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 2);
    let cases = [
        (
            r#"{"type":"broadcast","text":"#.to_string(),
            "bad_json",
            None,
        ),
        (
            json!({"type": "shout", "id": 1}).to_string(),
            "unknown_type",
            Some(json!(1)),
        ),
        (
            json!({"text": "x", "id": "a"}).to_string(),
            "bad_request",
            Some(json!("a")),
        ),
        (json!({"type": 7}).to_string(), "bad_request", None),
        (
            json!({"type": "direct", "text": "x", "id": 2}).to_string(),
            "bad_request",
            Some(json!(2)),
        ),
        (
            json!({"type": "direct", "to": "ghost", "text": "x", "id": 3}).to_string(),
            "unknown_user",
            Some(json!(3)),
        ),
        (
            json!({"type": "broadcast", "text": "x", "id": true}).to_string(),
            "bad_request",
            None,
        ),
        (
            json!({"type": "multicast", "to": [], "text": "x"}).to_string(),
            "bad_request",
            None,
        ),
        (
            json!({"type": "subscribe", "topic": "bad topic"}).to_string(),
            "bad_request",
            None,
        ),
        (
            json!({"type": "request", "method": "users"}).to_string(),
            "bad_request",
            None,
        ),
    ];
    for (text, code, id) in cases {
        u[0].send_text(&text);
        let e = u[0].recv();
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(code)),
            "{text}"
        );
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(e.get("id"), id.as_ref(), "{text}");
    }
    u[1].expect_silence(Duration::from_millis(100));
    u[0].send(json!({"type": "broadcast", "text": "still fine"}));
    assert_eq!(u[1].recv()["text"], "still fine");
}

#[test]
fn an_id_that_is_neither_a_string_nor_a_number_is_bad_request_and_nothing_is_delivered() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 2);
    for id in ["null", "true", "[]", "{}", "[1]"] {
        u[0].send_text(&format!(
            r#"{{"type":"broadcast","text":"leaked {id}","id":{id}}}"#
        ));
        let e = u[0].recv();
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some("bad_request")),
            "id {id}: {e}"
        );
    }
    // A marker after them: if any had been broadcast, it would come first.
    u[0].send(json!({"type": "broadcast", "text": "marker"}));
    assert_eq!(u[1].recv()["text"], "marker", "nothing before the marker");
}

#[test]
fn plain_text_and_json_that_is_not_an_object_are_broadcast_verbatim() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 2);
    for text in ["hello there", "[1]", "\"hi\""] {
        u[0].send_text(text);
        assert_eq!(u[1].recv()["text"], text);
    }
}

#[test]
fn too_long_text_is_refused_and_not_delivered() {
    let server = start(|c| c.max_text = 10);
    let mut u = users(server.local_addr(), 2);
    u[0].send(json!({"type": "broadcast", "text": "x".repeat(11), "id": 1}));
    let e = u[0].recv();
    assert_eq!(
        (e["code"].as_str(), e["id"].as_i64()),
        (Some("too_long"), Some(1))
    );
    u[1].expect_silence(Duration::from_millis(150));
}

#[test]
fn binary_frames_are_refused_with_1003() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 1);
    u[0].ws
        .send(tungstenite::Message::binary(vec![1, 2, 3]))
        .unwrap();
    assert_eq!(u[0].expect_close(), 1003);
}

#[test]
fn a_flood_gets_rate_limited_then_closed_with_1008() {
    let server = start(|c| {
        c.rate = 1;
        c.burst = 2;
    });
    let mut u = users(server.local_addr(), 2);
    for i in 0..4 {
        u[0].send(json!({"type": "broadcast", "text": "spam", "id": i}));
    }
    // Two admitted (each: its message and its ack), two refused.
    let mut got = Vec::new();
    for _ in 0..6 {
        let m = u[0].recv();
        got.push((
            m["type"].as_str().unwrap().to_owned(),
            m["code"].as_str().unwrap_or("").to_owned(),
        ));
    }
    let limited = got.iter().filter(|(_, c)| c == "rate_limited").count();
    assert_eq!(limited, 2, "{got:?}");
    assert_eq!(got.iter().filter(|(t, _)| t == "ack").count(), 2, "{got:?}");
    // Keep flooding past 3 x burst refusals: closed.
    for _ in 0..10 {
        if u[0]
            .ws
            .send(tungstenite::Message::text("more spam"))
            .is_err()
        {
            break;
        }
    }
    let code = loop {
        match u[0].ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => break u16::from(f.code),
            Ok(_) => {}
            Err(e) => panic!("no close: {e}"),
        }
    };
    assert_eq!(code, 1008);
    // u1 saw the two admitted messages, then u0 leave.
    let seen: Vec<Value> = (0..3).map(|_| u[1].recv()).collect();
    assert_eq!(
        (seen[0]["text"].as_str(), seen[1]["text"].as_str()),
        (Some("spam"), Some("spam"))
    );
    assert_eq!(
        seen[2],
        json!({"type": "presence", "event": "leave", "name": "u0"})
    );
}

#[test]
fn history_returns_the_last_messages_and_pages_back() {
    let server = start(|c| c.history = 5);
    let mut u = users(server.local_addr(), 1);
    for i in 1..=8 {
        u[0].send_text(&format!("m{i}"));
        u[0].recv_type("message");
    }
    let texts = |r: &Value| -> Vec<String> {
        r["result"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = u[0].request(json!(1), "history", json!({"limit": 3}));
    assert_eq!(texts(&r), ["m6", "m7", "m8"]);
    assert_eq!(
        (
            r["result"]["complete"].as_bool(),
            r["result"]["more"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let oldest_seq = r["result"]["messages"][0]["seq"].clone();
    let r = u[0].request(
        json!(2),
        "history",
        json!({"limit": 3, "before": oldest_seq}),
    );
    assert_eq!(texts(&r), ["m4", "m5"], "only 5 are kept");
    let r = u[0].request(json!(3), "history", json!({"limit": 1000}));
    assert_eq!(texts(&r).len(), 5, "limit is clamped to the history size");
    for bad in [
        json!({"limit": 0}),
        json!({"limit": -1}),
        json!({"limit": "x"}),
        json!({"before": 1, "after": 2}),
    ] {
        let r = u[0].request(json!(4), "history", bad.clone());
        assert_eq!(r["error"]["code"], "bad_request", "{bad}");
    }
    let r = u[0].request(json!(5), "history", json!({"topic": "nothing-here"}));
    assert_eq!(
        (
            r["result"]["messages"].as_array().map(Vec::len),
            r["result"]["complete"].as_bool()
        ),
        (Some(0), Some(true))
    );
}

#[test]
fn history_after_returns_exactly_what_a_client_missed() {
    let server = start(|c| c.history = 4);
    let addr = server.local_addr();
    let mut talker = User::join(addr, "talker");
    let mut listener = User::join(addr, "listener");
    talker.recv_type("presence");
    talker.send_text("seen");
    let last_seen = listener.recv_type("message")["seq"].as_u64().unwrap();
    drop(listener);
    // Once the server has seen the listener go, what follows is missed.
    assert_eq!(talker.recv_type("message")["text"], "seen");
    assert_eq!(talker.recv_type("presence")["event"], "leave");
    for i in 1..=3 {
        talker.send_text(&format!("missed {i}"));
    }
    for _ in 1..=3 {
        talker.recv_type("message");
    }
    let mut back = User::join(addr, "listener");
    let r = back.request(json!(1), "history", json!({"after": last_seen}));
    let missed: Vec<&str> = r["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(missed, ["missed 1", "missed 2", "missed 3"]);
    assert_eq!(
        (
            r["result"]["complete"].as_bool(),
            r["result"]["more"].as_bool()
        ),
        (Some(true), Some(false))
    );
    // Page forward with a small limit.
    let r = back.request(json!(2), "history", json!({"after": last_seen, "limit": 2}));
    assert_eq!(
        (
            r["result"]["messages"].as_array().unwrap().len(),
            r["result"]["more"].as_bool()
        ),
        (2, Some(true))
    );
    // Two more: "missed 1" is evicted (4 kept), so catching up is incomplete.
    talker.send_text("x");
    talker.send_text("y");
    back.recv_type("message");
    back.recv_type("message");
    let r = back.request(json!(3), "history", json!({"after": last_seen}));
    assert_eq!(r["result"]["complete"], false);
    assert_eq!(r["result"]["messages"][0]["text"], "missed 2");
}

#[test]
fn topic_history_outlives_its_subscribers() {
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 1);
    u[0].send(json!({"type": "subscribe", "topic": "log"}));
    u[0].send(json!({"type": "publish", "topic": "log", "text": "entry"}));
    u[0].send(json!({"type": "unsubscribe", "topic": "log"}));
    u[0].recv_type("message");
    let r = u[0].request(json!(1), "topics", json!({}));
    assert_eq!(
        r["result"]["topics"],
        json!([]),
        "topics lists only topics with subscribers"
    );
    let r = u[0].request(json!(2), "history", json!({"topic": "LOG"}));
    assert_eq!(r["result"]["messages"][0]["text"], "entry");
    assert_eq!(r["result"]["messages"][0]["topic"], "log");
}

#[test]
fn every_recipient_sees_one_order_whoever_sends() {
    let server = start(|c| c.rate = 0);
    let mut u = users(server.local_addr(), 4);
    let senders: Vec<_> = u
        .drain(..2)
        .enumerate()
        .map(|(i, mut user)| {
            std::thread::spawn(move || {
                for n in 0..200 {
                    user.send_text(&format!("{i}-{n}"));
                }
                user
            })
        })
        .collect();
    let mut orders = Vec::new();
    for user in &mut u {
        let seqs: Vec<u64> = (0..400)
            .map(|_| user.recv_type("message")["seq"].as_u64().unwrap())
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing seq"
        );
        orders.push(seqs);
    }
    assert_eq!(orders[0], orders[1], "everyone sees the same order");
    for s in senders {
        s.join().unwrap();
    }
}

#[test]
fn one_broadcast_reaches_all_100_clients() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let mut all: Vec<User> = (0..100)
        .map(|i| User::join(addr, &format!("user{i}")))
        .collect();
    all[0].send(json!({"type": "broadcast", "text": "to everyone", "id": 1}));
    let mut reached = 0;
    for user in &mut all {
        let m = user.recv_type("message");
        assert_eq!(m["text"], "to everyone");
        reached += 1;
    }
    assert_eq!(reached, 100);
    assert_eq!(all[0].recv_type("ack")["delivered"], 100);
}

/// A server whose readers are cut off after 64 frames or 64 KiB queued.
fn small_queues() -> switchboard::Server {
    start(|c| {
        c.rate = 0;
        c.max_queue = 64;
        c.max_queue_bytes = 64 * 1024;
    })
}

#[test]
fn a_stalled_client_is_cut_off_while_the_others_keep_receiving() {
    let server = small_queues();
    let addr = server.local_addr();
    let mut a = User::join(addr, "a");
    let mut b = User::join(addr, "b");
    a.recv_type("presence");
    // The stalled client: subscribes to the feed, then never reads.
    let mut stalled = support::Raw::connect(addr, "/chat?name=stalled");
    stalled.send_text(r#"{"type":"subscribe","topic":"feed"}"#);
    b.send(json!({"type": "subscribe", "topic": "feed", "id": 1}));
    b.recv_type("ack"); // (skips the presence of stalled)
    a.recv_type("presence");
    let text = "z".repeat(3000);
    let started = std::time::Instant::now();
    let n = 2000;
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        let mut leave = false;
        while got < n {
            let m = b.recv();
            match m["type"].as_str() {
                Some("message") => got += 1,
                Some("presence") => leave |= m["event"] == "leave" && m["name"] == "stalled",
                _ => {}
            }
        }
        (got, leave, b)
    });
    // The publisher is not subscribed, so it has nothing to read.
    for _ in 0..n {
        a.send(json!({"type": "publish", "topic": "feed", "text": text}));
    }
    let (got, mut saw_leave, mut b) = reader.join().unwrap();
    assert_eq!(got, n, "nothing lost for the others");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the others were not held up"
    );
    assert_eq!(server.stats().slow_consumers, 1);
    if !saw_leave {
        assert_eq!(
            b.recv_type("presence")["name"],
            "stalled",
            "its leave goes out as for any disconnect"
        );
        saw_leave = true;
    }
    assert!(saw_leave);
    assert!(support::eventually(Duration::from_secs(5), || server
        .chat_members()
        == 2));
    drop(stalled);
}

#[test]
fn a_cut_off_client_that_reads_to_the_end_finds_close_1008_last() {
    let server = small_queues();
    let addr = server.local_addr();
    let mut a = User::join(addr, "a");
    // The slow one subscribes, then reads nothing until it is cut off.
    let mut slow = support::Raw::connect(addr, "/chat?name=slow");
    slow.send_text(r#"{"type":"subscribe","topic":"feed","id":1}"#);
    a.recv_type("presence");
    let text = "z".repeat(3000);
    let mut sent = 0;
    while server.stats().slow_consumers == 0 && sent < 5000 {
        a.send(json!({"type": "publish", "topic": "feed", "text": text}));
        sent += 1;
    }
    assert_eq!(server.stats().slow_consumers, 1, "cut off after {sent}");
    // It keeps talking before it reads (as a client behind on reading
    // does): that must not turn the server's close into a reset.
    for _ in 0..20 {
        slow.send_text("still here");
    }
    std::thread::sleep(Duration::from_millis(200));
    // Now it reads everything the kernel holds for it: whole frames, the
    // last of them Close 1008 "slow consumer", then the end of TCP.
    let mut last = None;
    for _ in 0..10_000 {
        let frame = slow.read();
        if frame.opcode == switchboard::protocol::OpCode::Close {
            last = Some(frame);
            break;
        }
    }
    let close = last.expect("a Close frame after the data");
    assert_eq!(close.close_code(), 1008);
    assert_eq!(&close.payload[2..], b"slow consumer");
    slow.expect_eof();
    // Everyone else was told it left.
    assert_eq!(a.recv_type("presence")["event"], "leave");
}

#[test]
fn heartbeats_close_a_silent_chat_connection() {
    let server = start(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(300);
    });
    let mut raw = support::Raw::connect(server.local_addr(), "/chat?name=quiet");
    let welcome = raw.read_text();
    assert!(welcome.contains("\"welcome\""));
    let close = raw.read_data();
    assert_eq!(close.close_code(), 1001);
}

#[test]
fn deeply_nested_json_neither_crashes_a_worker_nor_is_lost() {
    // Parsing, echoing and dropping JSON recurse per level and workers have
    // small stacks: 32 levels are allowed (in a debug build too), deeper
    // is bad_json before any parsing.
    let server = start(|_| {});
    let mut u = users(server.local_addr(), 1);
    let depth = 31;
    let params = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    u[0].send_text(&format!(
        r#"{{"type":"request","id":1,"method":"echo","params":{params}}}"#
    ));
    let r = u[0].recv_type("response");
    assert_eq!(r["result"].to_string(), params);
    let too_deep = format!(
        r#"{{"type":"request","id":2,"method":"echo","params":{}1{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    u[0].send_text(&too_deep);
    assert_eq!(u[0].recv()["code"], "bad_json");
    u[0].send_text("still alive");
    assert_eq!(u[0].recv_type("message")["text"], "still alive");
}
