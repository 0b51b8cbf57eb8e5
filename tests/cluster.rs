//! Cluster mode with real parts (issue 18): a real `redis-server` on a unix
//! socket in a temp folder, and two or three real server binaries on
//! loopback with `--redis`, driven by independent WebSocket clients
//! (tungstenite). What one order, shared names, presence, history and
//! faults look like from outside.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::chat::User;
use support::cluster::{cluster, node, page_texts, presence, seqs, skip_to};

/// Broadcasts from users on three nodes at once reach everyone in one
/// order; direct, multicast and topic messages cross nodes to exactly
/// their recipients; each ack counts the sender's own node.
#[test]
fn three_nodes_deliver_every_kind_of_message_in_one_order() {
    let Some((_redis, _dir, nodes)) = cluster::<3>("cluster-order") else {
        return;
    };
    let mut users: Vec<User> = ["ann", "bob", "cy"]
        .iter()
        .zip(&nodes)
        .map(|(name, n)| User::join(n.addr, name))
        .collect();
    let names: Vec<String> = users.iter().map(User::name).collect();
    assert_eq!(names, ["ann", "bob", "cy"], "names are unique and free");
    // Everyone is listed everywhere (presence crossed the nodes).
    for (i, n) in nodes.iter().enumerate() {
        let mut probe = User::join(n.addr, "probe");
        assert!(support::eventually(Duration::from_secs(10), || {
            let listed = probe.request(json!(i), "users", json!({}));
            let users = listed["result"]["users"].as_array().unwrap().clone();
            names.iter().all(|name| users.contains(&json!(name)))
        }));
    }

    // Concurrent broadcasts from all three.
    const EACH: usize = 40;
    std::thread::scope(|s| {
        let handles: Vec<_> = users
            .iter_mut()
            .map(|u| {
                s.spawn(move || {
                    for i in 0..EACH {
                        let text = format!("{} {i}", u.name());
                        u.send(json!({"type": "broadcast", "text": text, "id": i}));
                    }
                    let (mut got, mut acks) = (Vec::new(), 0);
                    while got.len() < 3 * EACH || acks < EACH {
                        let m = u.recv();
                        match m["type"].as_str() {
                            Some("message") => got.push(m),
                            Some("ack") => acks += 1,
                            _ => {}
                        }
                    }
                    got
                })
            })
            .collect();
        let seen: Vec<Vec<Value>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let order: Vec<(u64, String)> = seen[0]
            .iter()
            .map(|m| {
                (
                    m["seq"].as_u64().unwrap(),
                    m["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for (i, other) in seen.iter().enumerate() {
            let theirs: Vec<(u64, String)> = other
                .iter()
                .map(|m| {
                    (
                        m["seq"].as_u64().unwrap(),
                        m["text"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            assert_eq!(theirs, order, "user {i} saw another order");
        }
        let s = seqs(&seen[0]);
        assert!(s.windows(2).all(|w| w[0] < w[1]), "strictly by seq: {s:?}");
        // Each sender's own messages in the order it sent them.
        for name in &names {
            let mine: Vec<&str> = order
                .iter()
                .filter(|(_, t)| t.starts_with(&format!("{name} ")))
                .map(|(_, t)| t.as_str())
                .collect();
            let sent: Vec<String> = (0..EACH).map(|i| format!("{name} {i}")).collect();
            assert_eq!(mine, sent);
        }
    });
    // Acks name the seq and count this node's recipients.
    let (ann, rest) = users.split_first_mut().unwrap();
    ann.send(json!({"type": "broadcast", "text": "counted", "id": "k"}));
    let ack = loop {
        let ack = skip_to(ann, "ack");
        if ack["id"] == "k" {
            break ack;
        }
    };
    assert_eq!(ack["id"], "k");
    assert!(ack["seq"].as_u64().unwrap() > (3 * EACH) as u64);
    assert_eq!(ack["delivered"], 1, "ann alone on node a: {ack}");
    for u in rest.iter_mut() {
        assert_eq!(u.recv_type("message")["text"], "counted");
    }

    // A direct message to a member of another node, and a multicast.
    ann.send(json!({"type": "direct", "to": "CY", "text": "psst", "id": 1}));
    let (bob, cy) = rest.split_at_mut(1);
    let (bob, cy) = (&mut bob[0], &mut cy[0]);
    let got = cy.recv_type("message");
    assert_eq!(
        (got["kind"].as_str(), got["text"].as_str()),
        (Some("direct"), Some("psst"))
    );
    let copy = ann.recv_type("message");
    assert_eq!(
        copy["seq"], got["seq"],
        "the sender's copy has the same seq"
    );
    assert_eq!(ann.recv_type("ack")["seq"], got["seq"]);
    ann.send(json!({"type": "multicast", "to": ["bob", "nobody"], "text": "m", "id": 2}));
    assert_eq!(bob.recv_type("message")["kind"], "multicast");
    ann.recv_type("message");
    let ack = ann.recv_type("ack");
    assert_eq!(ack["unknown"], json!(["nobody"]));
    // A topic: only its subscribers, on whichever node.
    cy.send(json!({"type": "subscribe", "topic": "news", "id": 3}));
    cy.recv_type("ack");
    bob.send(json!({"type": "publish", "topic": "news", "text": "extra", "id": 4}));
    assert_eq!(cy.recv_type("message")["topic"], "news");
    assert_eq!(bob.recv_type("ack")["delivered"], 0, "no subscriber on b");
    ann.expect_silence(Duration::from_millis(300));
    // Subscriber counts are cluster-wide (the lists go round each beat).
    assert!(support::eventually(Duration::from_secs(10), || {
        let r = ann.request(json!("t"), "topics", json!({}));
        r["result"]["topics"] == json!([{"name": "news", "subscribers": 1}])
    }));
}

/// A name taken on one node cannot be taken on another; a rename to it is
/// refused; a node killed with -9 has its users' `leave` delivered within
/// the TTL; a user who comes back elsewhere resumes with `history after`.
#[test]
fn names_are_unique_presence_crosses_and_a_dead_node_leaves() {
    let Some((_redis, _dir, [mut a, b])) = cluster("cluster-names") else {
        return;
    };
    // Joined at once on two nodes: the claim in Redis decides, whether or
    // not node b has heard of node a's member yet.
    let first = User::join(a.addr, "quick");
    let second = User::join(b.addr, "quick");
    assert_eq!(
        (first.name(), second.name()),
        ("quick".into(), "quick-2".into())
    );

    let mut zed = User::join(a.addr, "zed");
    assert_eq!(zed.name(), "zed");
    let mut probe = User::join(b.addr, "probe");
    assert!(support::eventually(Duration::from_secs(5), || {
        let users = probe.request(json!("u"), "users", json!({}));
        users["result"]["users"]
            .as_array()
            .unwrap()
            .contains(&json!("zed"))
    }));
    let mut other = User::join(b.addr, "ZED");
    assert_eq!(other.name(), "ZED-2", "taken on node a");
    let listed = other.welcome["users"].as_array().unwrap().clone();
    assert!(
        listed.contains(&json!("zed")) && listed.contains(&json!("ZED-2")),
        "{listed:?}"
    );
    presence(&mut zed, "join", "ZED-2", Duration::from_secs(5));
    let refused = other.request(json!(1), "rename", json!({"name": "Zed"}));
    assert_eq!(refused["error"]["code"], "name_taken", "{refused}");
    let renamed = other.request(json!(2), "rename", json!({"name": "yan"}));
    assert_eq!(renamed["result"]["name"], "yan");
    let seen = presence(&mut zed, "rename", "yan", Duration::from_secs(5));
    assert_eq!(seen["old"], "ZED-2");

    // zed hears a message, then its node dies.
    other.send(json!({"type": "broadcast", "text": "one", "id": 1}));
    let last = zed.recv_type("message")["seq"].as_u64().unwrap();
    let epoch = zed.welcome["epoch"].clone();
    let killed = Instant::now();
    a.kill_9();
    for text in ["two", "three"] {
        other.send(json!({"type": "broadcast", "text": text, "id": text}));
    }
    let left = presence(&mut other, "leave", "zed", Duration::from_secs(30));
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_secs(5),
        "left only once the key expired: {took:?}, {left}"
    );

    // zed comes back on b, under its old name, and catches up.
    let mut back = User::join(b.addr, "zed");
    assert_eq!(back.name(), "zed", "the dead node's claim is gone");
    assert_eq!(back.welcome["epoch"], epoch, "one history, one epoch");
    let page = back.request(json!(9), "history", json!({"after": last}));
    let texts = page_texts(&page);
    assert_eq!(texts, ["two", "three"]);
    assert_eq!(page["result"]["complete"], true);
}

/// A node started later reads the history back from Redis: `history`
/// gives the same page on every node.
#[test]
fn a_node_started_later_has_the_same_history() {
    // One node first; the second starts once there is history.
    let Some((redis, dir, [a])) = cluster("cluster-history") else {
        return;
    };
    let mut ann = User::join(a.addr, "ann");
    for i in 0..5 {
        ann.send(json!({"type": "broadcast", "text": format!("b{i}"), "id": i}));
        skip_to(&mut ann, "ack");
    }
    ann.send(json!({"type": "publish", "topic": "t", "text": "in t", "id": "t"}));
    let last = skip_to(&mut ann, "ack")["seq"].clone();
    let b = node(&dir, "b", &redis, "");
    let mut bob = User::join(b.addr, "bob");
    assert_eq!(bob.welcome["seq"], last, "b starts where the cluster is");
    let here = ann.request(json!(1), "history", json!({"limit": 10}));
    let there = bob.request(json!(1), "history", json!({"limit": 10}));
    assert_eq!(here["result"], there["result"]);
    let topic = bob.request(json!(2), "history", json!({"topic": "t"}));
    assert_eq!(topic["result"]["messages"][0]["text"], "in t");
}
