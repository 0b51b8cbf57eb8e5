//! `RedisBus` with a real `redis-server` (issue 18): two chat nodes in one
//! process, each with its own members, share one Redis. Messages sent on
//! both at once reach the members of both, in one `seq` order that is the
//! same everywhere; each sender's ack counts its own node's recipients;
//! a paused Redis gets `unavailable` errors, never silence, and after it
//! resumes everything goes on in order.

mod support;

use parking_lot::Mutex;
use serde_json::Value;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::redis::Redis;
use switchboard::chat::bus::Bus;
use switchboard::chat::identity::Standing;
use switchboard::chat::ring::Ring;
use switchboard::chat::{Chat, Frame, Settings, Sink};
use switchboard::cluster::bus::RedisBus;
use switchboard::cluster::Address;

/// A member's connection that keeps every frame it is sent.
#[derive(Default)]
struct Collect(Mutex<Vec<Value>>);

impl Sink for Collect {
    fn queue(&self, frame: Frame) -> bool {
        self.0.lock().push(serde_json::from_slice(&frame).unwrap());
        true
    }
    fn flush(&self) {}
    fn is_cut_off(&self) -> bool {
        false
    }
    fn close(&self, _: u16, _: &str) {}
}

impl Collect {
    fn of(&self, kind: &str) -> Vec<Value> {
        self.0
            .lock()
            .iter()
            .filter(|f| f["type"] == kind)
            .cloned()
            .collect()
    }
}

/// One node: a chat on a RedisBus, and its two bus threads.
struct Node {
    chat: Arc<Chat>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Node {
    fn start(redis: &Redis, name: &str) -> Node {
        let address = Address::parse(&redis.url()).unwrap();
        let epoch = switchboard::cluster::start::epoch(&address, "e1").unwrap();
        let (bus, loops) = RedisBus::new(address, name.to_owned(), epoch, 0);
        let settings = Settings {
            history: 100,
            max_topics: 10,
            max_text: 1000,
            max_message: 10_000,
            rate: 0,
            burst: 10,
            batch_messages: 1,
            batch_bytes: 1,
            durable_acks: false,
            auth: "none",
            registration_open: false,
            max_recipients: 10,
            max_subscriptions: 10,
        };
        let encode: fn(&str) -> Frame = |json| Arc::from(json.as_bytes());
        let chat = Arc::new(Chat::new(
            settings,
            encode,
            Arc::new(Ring::new(100)),
            bus.clone() as Arc<dyn Bus>,
        ));
        let loops = Arc::new(loops);
        let stop = Arc::clone(&loops.stop);
        let publisher = {
            let (loops, chat, bus) = (Arc::clone(&loops), Arc::clone(&chat), Arc::clone(&bus));
            std::thread::spawn(move || {
                switchboard::cluster::publisher::run_publisher(&loops, &bus, &chat)
            })
        };
        let subscriber = {
            let (loops, chat) = (Arc::clone(&loops), Arc::clone(&chat));
            std::thread::spawn(move || {
                switchboard::cluster::subscriber::run_subscriber(&loops, &bus, &chat)
            })
        };
        Node {
            chat,
            stop,
            threads: vec![publisher, subscriber],
        }
    }

    fn join(&self, name: &str) -> (switchboard::chat::Client, Arc<Collect>) {
        let sink = Arc::new(Collect::default());
        let client = self.chat.join(
            Some(name),
            Standing::Guest,
            Arc::from("test"),
            &[],
            sink.clone(),
        );
        (client, sink)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn texts(sink: &Collect) -> Vec<(u64, String)> {
    sink.of("message")
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn two_nodes_one_order() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = (Node::start(&redis, "a"), Node::start(&redis, "b"));
    std::thread::sleep(Duration::from_millis(300)); // both subscribed
    let (mut ann, ann_sink) = a.join("ann");
    let (mut amy, amy_sink) = a.join("amy");
    let (mut bob, bob_sink) = b.join("bob");
    // Both nodes send at once.
    let each = 100;
    let sender = |mut client: switchboard::chat::Client, chat: Arc<Chat>, who: &'static str| {
        std::thread::spawn(move || {
            for i in 0..each {
                let msg = format!(r#"{{"type":"broadcast","text":"{who} {i}","id":{i}}}"#);
                client.on_text(&chat, &msg).unwrap();
                client.flush();
            }
            client
        })
    };
    let (ann_t, bob_t) = (
        sender(ann, Arc::clone(&a.chat), "ann"),
        sender(bob, Arc::clone(&b.chat), "bob"),
    );
    ann = ann_t.join().unwrap();
    bob = bob_t.join().unwrap();
    wait_for("every message on every member", || {
        [&ann_sink, &amy_sink, &bob_sink]
            .iter()
            .all(|s| s.of("message").len() == 2 * each)
    });
    let order = texts(&ann_sink);
    assert_eq!(texts(&amy_sink), order, "the same order on the same node");
    assert_eq!(texts(&bob_sink), order, "the same order on the other node");
    let seqs: Vec<u64> = order.iter().map(|(s, _)| *s).collect();
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..first + 2 * each as u64).collect::<Vec<_>>(),
        "gapless, ascending"
    );
    // Each sender's own messages keep their order.
    for who in ["ann", "bob"] {
        let mine: Vec<&String> = order
            .iter()
            .map(|(_, t)| t)
            .filter(|t| t.starts_with(who))
            .collect();
        let sent: Vec<String> = (0..each).map(|i| format!("{who} {i}")).collect();
        assert_eq!(mine.into_iter().cloned().collect::<Vec<_>>(), sent);
    }
    // Acks: one per message, with its seq, counting this node's members.
    wait_for("every ack", || {
        ann_sink.of("ack").len() == each && bob_sink.of("ack").len() == each
    });
    for ack in ann_sink.of("ack") {
        assert_eq!(ack["delivered"], 2, "ann and amy on node a: {ack}");
    }
    for ack in bob_sink.of("ack") {
        assert_eq!(ack["delivered"], 1, "bob alone on node b: {ack}");
    }
    assert!(amy_sink.of("ack").is_empty());

    // Redis paused: a message sent to it is in doubt (its sender waits);
    // one sent once the node knows Redis is away is refused with
    // `unavailable`, not lost in silence; resumed, the one in doubt is
    // refused too (Redis ran it past its deadline), and messages flow
    // again, in order, on both nodes.
    redis.signal("STOP");
    let unavailable = |id: &str| {
        amy_sink
            .of("error")
            .iter()
            .any(|e| e["code"] == "unavailable" && e["id"] == id)
    };
    for id in ["p", "q"] {
        let msg = format!(r#"{{"type":"broadcast","text":"while paused","id":"{id}"}}"#);
        amy.on_text(&a.chat, &msg).unwrap();
        amy.flush();
        std::thread::sleep(Duration::from_secs(2));
    }
    wait_for("an unavailable error", || unavailable("q"));
    assert!(!unavailable("p"), "in doubt while Redis is paused");
    redis.signal("CONT");
    wait_for("the one in doubt refused", || unavailable("p"));
    let mut resumed = false;
    for attempt in 0..50 {
        let msg = format!(r#"{{"type":"broadcast","text":"after {attempt}","id":"r{attempt}"}}"#);
        amy.on_text(&a.chat, &msg).unwrap();
        amy.flush();
        std::thread::sleep(Duration::from_millis(200));
        if bob_sink
            .of("message")
            .iter()
            .any(|m| m["text"].as_str().unwrap().starts_with("after"))
        {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "messages flow again after Redis resumes");
    wait_for("both nodes caught up", || {
        texts(&bob_sink).len() == texts(&ann_sink).len()
    });
    assert_eq!(texts(&bob_sink), texts(&ann_sink), "still one order");

    // Redis drops every subscriber (as for its output-buffer limit) while
    // messages are sent: each node back-fills what it missed from the
    // stream, in order, none twice.
    let before = texts(&ann_sink).len();
    let address = Address::parse(&redis.url()).unwrap();
    let mut admin = switchboard::cluster::Conn::open(&address, Duration::from_secs(2)).unwrap();
    admin.call(&["CLIENT", "KILL", "TYPE", "pubsub"]).unwrap();
    for i in 0..30 {
        let msg = format!(r#"{{"type":"broadcast","text":"gap {i}","id":"g{i}"}}"#);
        amy.on_text(&a.chat, &msg).unwrap();
        amy.flush();
    }
    wait_for("the messages sent while unsubscribed", || {
        [&ann_sink, &bob_sink]
            .iter()
            .all(|s| texts(s).len() >= before + 30)
    });
    std::thread::sleep(Duration::from_millis(200)); // nothing more comes
    let (on_a, on_b) = (texts(&ann_sink), texts(&bob_sink));
    assert_eq!(on_a.len(), before + 30, "none twice");
    assert_eq!(on_a, on_b, "the same, in the same order, on both nodes");
    let seqs: Vec<u64> = on_a.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "ascending");

    // Something that is not a message takes a seq: it is skipped, and
    // what comes after it is not held back.
    use switchboard::cluster::script;
    let sha = admin.call(&["SCRIPT", "LOAD", script::PUBLISH]).unwrap();
    let sha = sha.text().unwrap().to_owned();
    let junk = [
        "EVALSHA",
        &sha,
        "2",
        script::SEQ_KEY,
        script::LOG_KEY,
        "not a message",
        "1000",
        script::CHANNEL,
    ];
    admin.call(&junk).unwrap();
    amy.on_text(
        &a.chat,
        r#"{"type":"broadcast","text":"after the junk","id":"j"}"#,
    )
    .unwrap();
    amy.flush();
    wait_for("the message after the junk, on both nodes", || {
        [&ann_sink, &bob_sink]
            .iter()
            .all(|s| texts(s).iter().any(|(_, t)| t == "after the junk"))
    });
    drop((ann, bob, amy));
}
