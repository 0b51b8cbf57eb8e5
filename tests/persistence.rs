//! History in a SQLite file: it survives restarts, pages deeper than the
//! ring, obeys retention, is searchable, migrates from older schema
//! versions, and the file is private. Real servers, a real file in a
//! temp folder, real clients.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use support::chat::User;
use support::{eventually, start, TempDir};
use switchboard::{Config, Server};

/// A server keeping history in `db`.
fn on_file(db: &Path, tweak: impl FnOnce(&mut Config)) -> Server {
    let db = db.to_owned();
    start(move |c| {
        c.db = db;
        c.rate = 0;
        tweak(c);
    })
}

fn seqs(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .expect("a list of messages")
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

fn texts(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

/// The next message of this `type`, skipping every other.
fn next(user: &mut User, kind: &str) -> Value {
    loop {
        let m = user.recv();
        if m["type"] == kind {
            return m;
        }
    }
}

/// Send broadcasts with ids and wait for each ack; their seqs.
fn broadcast(user: &mut User, texts: &[&str]) -> Vec<u64> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            user.send(json!({"type": "broadcast", "text": text, "id": i}));
            next(user, "ack")["seq"].as_u64().unwrap()
        })
        .collect()
}

/// Wait until the writer has committed up to `seq`.
fn persisted(server: &Server, seq: u64) {
    assert!(
        eventually(Duration::from_secs(5), || server
            .store_health()
            .is_some_and(|h| h.persisted_seq >= seq)),
        "seq {seq} committed"
    );
}

#[test]
fn history_survives_a_restart_and_seq_goes_on_in_the_same_epoch() {
    let dir = TempDir::new("restart");
    let db = dir.join("chat.db");
    let (epoch, sent) = {
        let server = on_file(&db, |_| {});
        let mut alice = User::join(server.local_addr(), "alice");
        let sent = broadcast(&mut alice, &["one", "two", "three"]);
        (alice.welcome["epoch"].clone(), sent)
    };
    let server = on_file(&db, |_| {});
    let mut bob = User::join(server.local_addr(), "bob");
    assert_eq!(bob.welcome["epoch"], epoch, "same file, same epoch");
    assert_eq!(bob.welcome["seq"], sent[2], "seq goes on from the file");
    let r = bob.request(json!(1), "history", json!({}));
    assert_eq!(texts(&r["result"]["messages"]), ["one", "two", "three"]);
    assert_eq!(seqs(&r["result"]["messages"]), sent);
    let next = broadcast(&mut bob, &["four"]);
    assert_eq!(
        next,
        [sent[2] + 1],
        "a clean stop records the exact last seq"
    );
}

#[test]
fn a_new_file_is_a_new_epoch() {
    let dir = TempDir::new("epoch");
    let first = on_file(&dir.join("a.db"), |_| {});
    let second = on_file(&dir.join("b.db"), |_| {});
    let a = User::join(first.local_addr(), "a");
    let b = User::join(second.local_addr(), "b");
    assert_ne!(a.welcome["epoch"], b.welcome["epoch"]);
}

#[test]
fn a_client_resuming_after_a_restart_gets_exactly_what_it_missed() {
    let dir = TempDir::new("resume");
    let db = dir.join("chat.db");
    let (seen, missed_before) = {
        let server = on_file(&db, |_| {});
        let mut alice = User::join(server.local_addr(), "alice");
        let mut bob = User::join(server.local_addr(), "bob");
        alice.recv_type("presence");
        let seen = broadcast(&mut alice, &["seen by bob"])[0];
        assert_eq!(next(&mut bob, "message")["seq"], seen);
        drop(bob); // bob goes offline
        let missed = broadcast(&mut alice, &["missed 1", "missed 2"]);
        (seen, missed)
    };
    let server = on_file(&db, |_| {});
    let mut carol = User::join(server.local_addr(), "carol");
    let missed_after = broadcast(&mut carol, &["missed 3"]);
    let mut bob = User::join(server.local_addr(), "bob");
    let r = bob.request(json!(1), "history", json!({"after": seen}));
    let result = &r["result"];
    assert_eq!(
        texts(&result["messages"]),
        ["missed 1", "missed 2", "missed 3"]
    );
    let mut expected = missed_before;
    expected.extend(missed_after);
    assert_eq!(seqs(&result["messages"]), expected);
    assert_eq!(result["complete"], true);
    assert_eq!(result["more"], false);
}

#[test]
fn paging_back_goes_past_the_ring_into_the_file() {
    let dir = TempDir::new("paging");
    let server = on_file(&dir.join("chat.db"), |c| c.history = 10);
    let mut alice = User::join(server.local_addr(), "alice");
    let all: Vec<String> = (0..45).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let sent = broadcast(&mut alice, &refs);
    persisted(&server, sent[44]);
    let mut got: Vec<u64> = Vec::new();
    let mut before: Option<u64> = None;
    for page in 0..10 {
        let params = match before {
            Some(b) => json!({"limit": 10, "before": b}),
            None => json!({"limit": 10}),
        };
        let r = alice.request(json!(page), "history", params);
        let page_seqs = seqs(&r["result"]["messages"]);
        assert!(page_seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");
        got.splice(0..0, page_seqs.iter().copied());
        if r["result"]["more"] == false {
            break;
        }
        before = page_seqs.first().copied();
    }
    assert_eq!(got, sent, "every message, in order, through the file");
}

#[test]
fn retention_keeps_the_newest_and_resume_past_it_is_incomplete() {
    let dir = TempDir::new("retention");
    let db = dir.join("chat.db");
    let sent = {
        let server = on_file(&db, |_| {});
        let mut alice = User::join(server.local_addr(), "alice");
        let texts: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        broadcast(&mut alice, &refs)
    };
    // Restart with a lower limit: the writer applies it at once.
    let server = on_file(&db, |c| {
        c.retain_messages = 5;
        c.history = 3;
    });
    let mut bob = User::join(server.local_addr(), "bob");
    let mut all_kept = || {
        let mut page = Vec::new();
        let mut before = json!(null);
        for id in 0..100 {
            let params = json!({"limit": 3, "before": before});
            let r = bob.request(json!(id), "history", params);
            let s = seqs(&r["result"]["messages"]);
            page.splice(0..0, s.iter().copied());
            if r["result"]["more"] == false || s.is_empty() {
                return page;
            }
            before = json!(s[0]);
        }
        page
    };
    assert!(
        eventually(Duration::from_secs(5), || all_kept() == sent[15..]),
        "only the newest 5 are kept"
    );
    let r = bob.request(json!("a"), "history", json!({"after": sent[2]}));
    assert_eq!(r["result"]["complete"], false, "some after it were deleted");
    let r = bob.request(json!("b"), "history", json!({"after": sent[15]}));
    assert_eq!(r["result"]["complete"], true);
}

#[test]
fn search_finds_words_newest_first_and_respects_topics() {
    let dir = TempDir::new("search");
    let server = on_file(&dir.join("chat.db"), |_| {});
    let mut alice = User::join(server.local_addr(), "alice");
    broadcast(
        &mut alice,
        &["Lunch on Friday?", "no lunch today", "the lighthouse"],
    );
    alice.send(json!({"type": "publish", "topic": "news", "text": "lunch menu posted", "id": "p"}));
    let last = next(&mut alice, "ack")["seq"].as_u64().unwrap();
    persisted(&server, last);
    // Searchable once indexed: within about a second of the commit.
    assert!(eventually(Duration::from_secs(5), || {
        let r = alice.request(json!(0), "search", json!({"q": "menu"}));
        !r["result"]["messages"].as_array().unwrap().is_empty()
    }));
    let r = alice.request(json!(1), "search", json!({"q": "LUNCH"}));
    assert_eq!(
        texts(&r["result"]["messages"]),
        ["lunch menu posted", "no lunch today", "Lunch on Friday?"],
        "every stream, newest first, any case"
    );
    let r = alice.request(json!(2), "search", json!({"q": "lunch", "topic": "news"}));
    assert_eq!(texts(&r["result"]["messages"]), ["lunch menu posted"]);
    let r = alice.request(json!(3), "search", json!({"q": "light*"}));
    assert_eq!(texts(&r["result"]["messages"]), ["the lighthouse"]);
    let r = alice.request(json!(4), "search", json!({"q": "lunch", "limit": 1}));
    assert_eq!(r["result"]["more"], true);
    let before = seqs(&r["result"]["messages"])[0];
    let r = alice.request(
        json!(5),
        "search",
        json!({"q": "lunch", "before": before, "limit": 5}),
    );
    assert_eq!(r["result"]["messages"].as_array().unwrap().len(), 2);
    let r = alice.request(json!(6), "search", json!({"q": "  "}));
    assert_eq!(r["error"]["code"], "bad_request");
    let r = alice.request(json!(7), "search", json!({"q": "\"unbalanced ( AND"}));
    assert!(
        r["result"]["messages"].is_array(),
        "any text is a valid query: {r}"
    );
}

#[test]
fn a_file_from_schema_version_1_migrates_and_stays_readable() {
    let dir = TempDir::new("migrate");
    let db = dir.join("old.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/history-v1.db"),
        &db,
    )
    .unwrap();
    let server = on_file(&db, |_| {});
    let mut alice = User::join(server.local_addr(), "alice");
    assert_eq!(alice.welcome["epoch"], "fixv1a");
    assert_eq!(alice.welcome["seq"], 12);
    let r = alice.request(json!(1), "history", json!({}));
    assert_eq!(seqs(&r["result"]["messages"]), [3, 8]);
    let r = alice.request(json!(2), "history", json!({"topic": "news"}));
    assert_eq!(seqs(&r["result"]["messages"]), [5, 12]);
    let r = alice.request(json!(3), "search", json!({"q": "lighthouse"}));
    assert_eq!(seqs(&r["result"]["messages"]), [12, 5]);
    assert_eq!(broadcast(&mut alice, &["new"]), [13]);
}

#[test]
fn the_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let db = dir.join("chat.db");
    let _server = on_file(&db, |_| {});
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn one_file_serves_one_server_and_reset_never_moves_a_busy_file() {
    let dir = TempDir::new("lock");
    let db = dir.join("chat.db");
    let _first = on_file(&db, |_| {});
    for reset in [false, true] {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            db: db.clone(),
            db_reset: reset,
            ..Config::default()
        };
        let e = Server::start(config)
            .err()
            .expect("a second server on the file is refused");
        assert!(
            e.to_string().contains("in use by another Switchboard"),
            "{e}"
        );
    }
    let files: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    assert!(
        files.iter().all(|f| !f
            .as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".bad-")),
        "nothing was moved aside"
    );
}
