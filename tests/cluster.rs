//! Cluster mode with real parts (issue 18): a real `redis-server` on a unix
//! socket in a temp folder, and two or three real server binaries on
//! loopback with `--redis`, driven by independent WebSocket clients
//! (tungstenite). What one order, shared names, presence, history and
//! faults look like from outside.

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::binary::Binary;
use support::chat::User;
use support::redis::Redis;
use support::TempDir;

/// A node of the cluster: the binary on its own database file.
fn node(dir: &TempDir, name: &str, redis: &Redis, flags: &str) -> Binary {
    let db = dir.join(&format!("{name}.db"));
    Binary::start(&db, &format!("--redis {} {flags}", redis.url()), "")
}

/// A Redis of its own, a temp folder and `N` nodes on them (a, b, c...).
fn cluster<const N: usize>(name: &str) -> Option<(Redis, TempDir, [Binary; N])> {
    let redis = Redis::start()?;
    let dir = TempDir::new(name);
    let nodes =
        std::array::from_fn(|i| node(&dir, &((b'a' + i as u8) as char).to_string(), &redis, ""));
    Some((redis, dir, nodes))
}

/// Read until `done` says so (or 20 s pass), keeping every `message`.
fn collect(user: &mut User, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
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
fn presence(user: &mut User, event: &str, name: &str, within: Duration) -> Value {
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
fn skip_to(user: &mut User, kind: &str) -> Value {
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
fn next(user: &mut User) -> Value {
    loop {
        let m = user.recv();
        if m["type"] != "presence" {
            return m;
        }
    }
}

fn seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// Broadcasts from users on three nodes at once reach everyone in one
/// order; direct, multicast and topic messages cross nodes to exactly
/// their recipients; each ack counts the sender's own node.
#[test]
fn three_nodes_deliver_every_kind_of_message_in_one_order() {
    let Some(redis) = Redis::start() else { return };
    let dir = TempDir::new("cluster-order");
    let nodes: Vec<Binary> = ["a", "b", "c"]
        .iter()
        .map(|n| node(&dir, n, &redis, ""))
        .collect();
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
    let mut zed = User::join(a.addr, "zed");
    assert_eq!(zed.name(), "zed");
    let mut other = User::join(b.addr, "ZED");
    assert_eq!(other.name(), "ZED-2", "taken on node a");
    assert_eq!(other.welcome["users"], json!(["ZED-2", "zed"]));
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
    let texts: Vec<&str> = page["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["two", "three"]);
    assert_eq!(page["result"]["complete"], true);
}

/// A node started later reads the history back from Redis: `history`
/// gives the same page on every node.
#[test]
fn a_node_started_later_has_the_same_history() {
    let Some(redis) = Redis::start() else { return };
    let dir = TempDir::new("cluster-history");
    let a = node(&dir, "a", &redis, "");
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

/// Redis paused (SIGSTOP), then resumed: sends during the pause get
/// `unavailable` (never silence), `/healthz` says degraded, and afterwards
/// everything goes on in one order with no duplicates.
#[test]
fn a_paused_redis_refuses_clearly_and_recovers_in_order() {
    let Some((redis, _dir, [a, b])) = cluster("cluster-pause") else {
        return;
    };
    let mut ann = User::join(a.addr, "ann");
    let mut bob = User::join(b.addr, "bob");
    ann.send(json!({"type": "broadcast", "text": "before", "id": 0}));
    bob.recv_type("message");
    skip_to(&mut ann, "ack");
    redis.signal("STOP");
    // The first reaches Redis, which does not answer: in doubt, its sender
    // waits (Redis might have numbered it). The next two find Redis away:
    // refused at once.
    ann.send(json!({"type": "broadcast", "text": "during 1", "id": 1}));
    std::thread::sleep(Duration::from_secs(2));
    let mut outcomes = HashMap::new();
    for i in 2..=3 {
        ann.send(json!({"type": "broadcast", "text": format!("during {i}"), "id": i}));
        let reply = next(&mut ann);
        outcomes.insert(reply["id"].as_u64().unwrap(), reply);
    }
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    for (i, reply) in &outcomes {
        assert!((2..=3).contains(i), "{reply}");
        assert_eq!(reply["type"], "error", "send {i}: {reply}");
        assert_eq!(reply["code"], "unavailable", "send {i}: {reply}");
    }
    assert!(support::eventually(Duration::from_secs(10), || {
        support::http(a.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").0 == 503
    }));
    let metrics = || {
        let (_, _, body) = support::http(a.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        String::from_utf8(body).unwrap()
    };
    assert!(metrics().contains("\nswitchboard_cluster_connected 0\n"));
    redis.signal("CONT");
    // Redis ran the first after its deadline: numbered nothing; once that
    // is certain its sender is told.
    let first = next(&mut ann);
    assert_eq!(
        (first["type"].as_str(), first["id"].as_u64()),
        (Some("error"), Some(1)),
        "{first}"
    );
    assert_eq!(first["code"], "unavailable");
    assert!(support::eventually(Duration::from_secs(20), || {
        support::http(a.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").0 == 200
    }));
    let now = metrics();
    assert!(now.contains("\nswitchboard_cluster_connected 1\n"), "{now}");
    assert!(support::eventually(Duration::from_secs(10), || {
        metrics().contains("\nswitchboard_cluster_nodes 2\n")
    }));
    for text in ["after 1", "after 2"] {
        ann.send(json!({"type": "broadcast", "text": text, "id": text}));
        assert_eq!(next(&mut ann)["type"], "message");
        assert_eq!(next(&mut ann)["type"], "ack");
    }
    let got = collect(&mut bob, |got| got.len() >= 2);
    let texts: Vec<&str> = got.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        ["after 1", "after 2"],
        "no duplicate, nothing of the refused"
    );
    bob.expect_silence(Duration::from_millis(500));
}

/// Accounts are shared: a user registered on A logs in on B with the
/// password, and its session token from A opens a session on B; a guest on
/// B cannot take the name; signing in on B ends the session on A (the
/// later sign-in wins, as on one node).
#[test]
fn a_user_registered_on_one_node_signs_in_on_another() {
    let Some((_redis, _dir, [a, b])) = cluster("cluster-accounts") else {
        return;
    };
    let mut on_a = User::join(a.addr, "someone");
    let r = on_a.request(
        json!(1),
        "register",
        json!({"name": "alice", "password": "correct horse"}),
    );
    assert_eq!(r["result"]["name"], "alice", "{r}");
    let token = r["result"]["token"].as_str().unwrap().to_owned();
    on_a.recv_type("welcome");

    // A guest on B may not take it (the directory is shared).
    let guest = User::join(b.addr, "alice");
    assert_eq!(guest.name(), "alice-2");
    drop(guest);
    // The token from A opens a session on B.
    let mut by_token = User::join(b.addr, "");
    by_token.send(json!({"type": "auth", "token": token}));
    let welcome = by_token.recv_type("welcome");
    assert_eq!(
        (welcome["name"].as_str(), welcome["guest"].as_bool()),
        (Some("alice"), Some(false))
    );
    // ... and ends the older session on A.
    assert_eq!(on_a.expect_close(), 4002, "signed in elsewhere");
    drop(by_token);
    // The password works on B too.
    let mut on_b = User::join(b.addr, "x");
    let r = on_b.request(
        json!(2),
        "login",
        json!({"name": "alice", "password": "correct horse"}),
    );
    assert_eq!(r["result"]["name"], "alice", "{r}");
    let wrong = User::join(b.addr, "y").request(
        json!(3),
        "login",
        json!({"name": "alice", "password": "wrong horse!"}),
    );
    assert!(wrong["error"].is_object(), "{wrong}");
}

/// Redis killed and started again (with the append-only file synced at
/// every write, docs/SCALING.md) while users send: sends get `unavailable`
/// while it is away, `/healthz` says degraded; afterwards the order goes
/// on from where it was, nothing twice, and history still resumes.
#[test]
fn a_restarted_redis_loses_nothing_acked_and_the_order_goes_on() {
    let Some(mut redis) = Redis::start_durable() else {
        return;
    };
    let dir = TempDir::new("cluster-restart");
    let a = node(&dir, "a", &redis, "");
    let b = node(&dir, "b", &redis, "");
    let mut ann = User::join(a.addr, "ann");
    let mut bob = User::join(b.addr, "bob");
    let mut acked = Vec::new();
    for i in 0..3 {
        ann.send(json!({"type": "broadcast", "text": format!("before {i}"), "id": i}));
        acked.push(skip_to(&mut ann, "ack")["seq"].as_u64().unwrap());
    }
    let first = collect(&mut bob, |got| got.len() >= 3);
    let healthz = |addr| support::http(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").0;

    // Away: a send is refused clearly, and both nodes say degraded.
    redis.stop();
    ann.send(json!({"type": "broadcast", "text": "while away", "id": "w"}));
    let refused = next(&mut ann);
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("unavailable")),
        "{refused}"
    );
    assert!(support::eventually(Duration::from_secs(10), || healthz(
        a.addr
    ) == 503
        && healthz(b.addr) == 503));

    redis.start_again();
    assert!(support::eventually(Duration::from_secs(20), || healthz(
        a.addr
    ) == 200
        && healthz(b.addr) == 200));
    ann.send(json!({"type": "broadcast", "text": "after", "id": "after"}));
    let after = skip_to(&mut ann, "ack")["seq"].as_u64().unwrap();
    assert_eq!(
        after,
        acked[2] + 1,
        "the order goes on: nothing acked was lost"
    );
    let got = collect(&mut bob, |got| !got.is_empty());
    assert_eq!(got[0]["text"], "after", "nothing twice, nothing refused");
    bob.expect_silence(Duration::from_millis(300));
    let page = bob.request(json!(1), "history", json!({"after": first[0]["seq"]}));
    let texts: Vec<&str> = page["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["before 1", "before 2", "after"]);
    assert_eq!(page["result"]["complete"], true);
}

/// Subscriptions cut while users send (Redis's `CLIENT KILL TYPE pubsub`,
/// as its output-buffer limit would): each node reconnects and back-fills
/// the gap from the stream; every message arrives once, in order, and
/// every sender gets every ack.
#[test]
fn a_cut_subscription_is_back_filled_in_order() {
    use switchboard::cluster::{Address, Conn};
    let Some((redis, _dir, [a, b])) = cluster("cluster-backfill") else {
        return;
    };
    let mut ann = User::join(a.addr, "ann");
    let mut bob = User::join(b.addr, "bob");
    const N: usize = 300;
    let address = Address::parse(&redis.url()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut admin = Conn::open(&address, Duration::from_secs(2)).unwrap();
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(40));
                admin.call(&["CLIENT", "KILL", "TYPE", "pubsub"]).unwrap();
            }
        });
        for i in 0..N {
            ann.send(json!({"type": "broadcast", "text": format!("m{i}"), "id": i}));
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    let got = collect(&mut bob, |got| got.len() >= N);
    let texts: Vec<String> = got
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    let sent: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, sent, "all of them, once, in order");
    let s = seqs(&got);
    assert!(s.windows(2).all(|w| w[0] < w[1]));
    let mut acks = 0;
    while acks < N {
        if next(&mut ann)["type"] == "ack" {
            acks += 1;
        }
    }
    bob.expect_silence(Duration::from_millis(300));
}

/// Moderation reaches every node: a moderator on A kicks a guest on B,
/// mutes and then bans an account connected to B; the ban holds on A too.
/// The moderator's account is made with `switchboard user --redis`.
#[test]
fn a_moderator_on_one_node_acts_on_users_of_another() {
    let Some((redis, dir, [a, b])) = cluster("cluster-moderation") else {
        return;
    };
    let secret = dir.join("pw");
    std::fs::write(&secret, "moderator-pw\n").unwrap();
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "user",
            "add",
            "mod",
            "--role",
            "moderator",
            "--redis",
            &redis.url(),
        ])
        .arg("--password-file")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut m = User::join(a.addr, "x");
    let r = m.request(
        json!(1),
        "login",
        json!({"name": "mod", "password": "moderator-pw"}),
    );
    assert_eq!(r["result"]["name"], "mod", "{r}");
    let mut gus = User::join(b.addr, "gus");
    let mut bob = User::join(b.addr, "y");
    let r = bob.request(
        json!(2),
        "register",
        json!({"name": "bob", "password": "password-1"}),
    );
    assert_eq!(r["result"]["name"], "bob", "{r}");
    presence(&mut m, "rename", "bob", Duration::from_secs(5));

    // kick a guest of node b: Close 4000 there.
    let r = m.request(
        json!(3),
        "kick",
        json!({"name": "gus", "reason": "cool off"}),
    );
    assert_eq!(r["result"], json!({}), "{r}");
    assert_eq!(gus.expect_close(), 4000);
    // mute an account of node b: its messages are refused there.
    let r = m.request(json!(4), "mute", json!({"name": "bob", "seconds": 60}));
    assert!(r["result"]["until_ms"].is_u64(), "{r}");
    // (The order reaches node b through Redis: try a few times.)
    let muted = (0..20).any(|i| {
        std::thread::sleep(Duration::from_millis(100));
        bob.send(json!({"type": "broadcast", "text": "let me speak", "id": i}));
        loop {
            let reply = next(&mut bob);
            match reply["type"].as_str() {
                Some("error") => break reply["code"] == "muted",
                Some("ack") => break false,
                _ => {}
            }
        }
    });
    assert!(muted, "bob is muted on node b");
    // ban it: Close 4003 on node b, and no sign-in on node a.
    let r = m.request(json!(6), "ban", json!({"name": "bob", "reason": "again"}));
    assert!(r["error"].is_null(), "{r}");
    assert_eq!(bob.expect_close(), 4003);
    let mut again = User::join(a.addr, "z");
    let r = again.request(
        json!(7),
        "login",
        json!({"name": "bob", "password": "password-1"}),
    );
    assert_eq!(r["error"]["code"], "banned", "{r}");
}
