//! Cluster mode under faults (issue 18), with a real `redis-server` and
//! real server binaries: Redis paused, killed and started again, and
//! subscriptions cut mid-stream. Clear errors while it is away, nothing
//! twice, nothing out of order, nothing acked lost.

mod support;

use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use support::chat::User;
use support::cluster::{cluster, collect, next, node, page_texts, seqs, skip_to};
use support::redis::Redis;
use support::TempDir;

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
    let texts = page_texts(&page);
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
