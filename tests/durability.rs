//! The history file under faults, with the real binary: kill -9 while
//! clients broadcast, a file that is not a database, a disk that fills up,
//! and a backup of a live database.

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::binary::Binary;
use support::chat::User;
use support::{eventually, http, start, TempDir};

/// Every kept broadcast's seq, paging back through the whole history.
fn all_broadcasts(user: &mut User) -> Vec<u64> {
    let mut all = Vec::new();
    let mut before = Value::Null;
    for id in 0..1000 {
        let r = user.request(
            json!(id),
            "history",
            json!({"limit": 100, "before": before}),
        );
        let page: Vec<u64> = r["result"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        all.splice(0..0, page.iter().copied());
        if r["result"]["more"] == false || page.is_empty() {
            break;
        }
        before = json!(page[0]);
    }
    all
}

/// 10 clients broadcast as fast as their acks come back, until the
/// server is killed after `kill_after` acks; the acked seqs.
fn broadcast_until_killed(server: &mut Binary, kill_after: usize) -> BTreeSet<u64> {
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..10)
        .map(|c| {
            let mut user = User::join(server.addr, &format!("c{c}"));
            let (acked, count) = (Arc::clone(&acked), Arc::clone(&count));
            std::thread::spawn(move || {
                for i in 0..10_000 {
                    let sent = user.ws.send(tungstenite::Message::text(
                        json!({"type": "broadcast", "text": format!("c{c} m{i}"), "id": i})
                            .to_string(),
                    ));
                    if sent.is_err() {
                        return;
                    }
                    loop {
                        match user.ws.read() {
                            Ok(tungstenite::Message::Text(t)) => {
                                let m: Value = serde_json::from_str(&t).unwrap();
                                if m["type"] == "ack" {
                                    acked.lock().unwrap().insert(m["seq"].as_u64().unwrap());
                                    count.fetch_add(1, SeqCst);
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count.load(SeqCst) < kill_after && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill_9();
    for client in clients {
        let _ = client.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= kill_after, "only {} acks", acked.len());
    acked
}

#[test]
fn kill_9_loses_no_message_acked_with_durable_acks_and_seq_goes_on() {
    let dir = TempDir::new("kill9-durable");
    let db = dir.join("chat.db");
    let mut server = Binary::start(&db, "--durable-acks", "");
    let epoch = User::join(server.addr, "watcher").welcome["epoch"].clone();
    let acked = broadcast_until_killed(&mut server, 300);
    let restarted = start(|c| c.db = db.clone());
    let mut reader = User::join(restarted.local_addr(), "reader");
    assert_eq!(reader.welcome["epoch"], epoch, "the same history");
    let kept = all_broadcasts(&mut reader);
    let unique: HashSet<u64> = kept.iter().copied().collect();
    assert_eq!(unique.len(), kept.len(), "no message is kept twice");
    let lost: Vec<&u64> = acked.iter().filter(|s| !unique.contains(s)).collect();
    assert!(lost.is_empty(), "acked and lost: {lost:?}");
    let last = reader.welcome["seq"].as_u64().unwrap();
    assert!(
        last >= *acked.iter().max().unwrap(),
        "seq goes on past every acked one"
    );
    // Messages delivered but not yet stored at the kill are gone: a resume
    // from before it is not claimed complete.
    let r = reader.request(json!("resume"), "history", json!({"after": 0}));
    assert_eq!(r["result"]["complete"], false);
}

#[test]
fn kill_9_without_durable_acks_loses_at_most_the_newest_messages() {
    let dir = TempDir::new("kill9-fast");
    let db = dir.join("chat.db");
    let mut server = Binary::start(&db, "", "");
    let acked = broadcast_until_killed(&mut server, 300);
    let restarted = start(|c| c.db = db.clone());
    let mut reader = User::join(restarted.local_addr(), "reader");
    let kept: HashSet<u64> = all_broadcasts(&mut reader).into_iter().collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|s| !kept.contains(s))
        .collect();
    // What a crash can take is the newest: every acked message older than
    // the oldest lost one is there.
    if let Some(first_lost) = lost.first() {
        assert!(
            acked.range(..first_lost).all(|s| kept.contains(s)),
            "a hole below the lost tail"
        );
    }
    eprintln!(
        "kill -9 without --durable-acks: {} of {} acked messages lost (the last commit window)",
        lost.len(),
        acked.len()
    );
    let last = reader.welcome["seq"].as_u64().unwrap();
    assert!(
        last >= *acked.iter().max().unwrap(),
        "no seq is given out twice"
    );
}

#[test]
fn a_file_that_is_not_a_database_stops_the_start_with_one_line_unless_reset() {
    let dir = TempDir::new("notadb");
    let db = dir.join("chat.db");
    std::fs::write(&db, vec![b'x'; 8192]).unwrap();
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let out = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("switchboard:") || l.contains("[ERROR]"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("not a SQLite database"), "{stderr}");
    assert!(errors[0].contains(&db.display().to_string()), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");

    let server = Binary::start(&db, "--db-reset", "");
    let moved: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("chat.db.bad-"))
        .collect();
    assert_eq!(moved.len(), 1, "the bad file is kept aside");
    assert_eq!(
        std::fs::read(dir.join(&moved[0])).unwrap(),
        vec![b'x'; 8192]
    );
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains(&moved[0]),
        "the log names where it went: {log}"
    );
    let mut user = User::join(server.addr, "fresh");
    user.send(json!({"type": "broadcast", "text": "works", "id": 1}));
    assert_eq!(user.recv()["text"], "works");
}

#[test]
fn a_full_disk_degrades_health_but_not_the_chat_and_loses_nothing_committed() {
    let dir = TempDir::new("full");
    let db = dir.join("chat.db");
    // Files may grow to 400 KiB: the schema and a few messages fit.
    let server = Binary::start(&db, "", "ulimit -S -f 400 &&");
    let mut alice = User::join(server.addr, "alice");
    let mut bob = User::join(server.addr, "bob");
    alice.recv_type("presence");
    alice.send(json!({"type": "broadcast", "text": "first, stored", "id": 0}));
    let first = loop {
        let m = alice.recv();
        if m["type"] == "ack" {
            break m["seq"].as_u64().unwrap();
        }
    };
    assert!(eventually(Duration::from_secs(5), || {
        let (status, _, _) = http(server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        status == 200
    }));
    let big = "z".repeat(4000);
    let mut degraded = false;
    for i in 0..600 {
        alice.send(json!({"type": "broadcast", "text": format!("{i} {big}")}));
        // The chat goes on: bob gets every one.
        loop {
            let m = bob.recv();
            if m["type"] == "message" && m["text"].as_str().unwrap().starts_with(&format!("{i} ")) {
                break;
            }
        }
        if i % 20 == 19 {
            let (status, _, body) = http(server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            if status == 503 {
                assert_eq!(
                    String::from_utf8_lossy(&body).trim(),
                    "degraded: history not persisted"
                );
                degraded = true;
                break;
            }
        }
    }
    assert!(degraded, "the writes failed and /healthz said so");
    let log = server.log.lock().unwrap().join("\n");
    assert_eq!(
        log.matches("history: cannot write").count(),
        1,
        "logged once: {log}"
    );
    // Room again (the limit lifted on the running process): the kept
    // batch is written on the next retry and health is back.
    let lifted = Command::new("prlimit")
        .args([
            "--pid",
            &server.child.id().to_string(),
            "--fsize=unlimited:",
        ])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(lifted.success());
    assert!(
        eventually(Duration::from_secs(10), || {
            let (status, _, _) = http(server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            status == 200
        }),
        "healthy again once writes succeed"
    );
    drop(server);
    // Restarted without the limit: what was committed is there.
    let restarted = start(|c| c.db = db.clone());
    let mut reader = User::join(restarted.local_addr(), "reader");
    let kept = all_broadcasts(&mut reader);
    assert_eq!(kept.first(), Some(&first));
}

#[test]
fn a_live_database_is_backed_up_to_a_file_that_opens_as_history() {
    let dir = TempDir::new("backup");
    let db = dir.join("chat.db");
    let copy = dir.join("copy.db");
    let server = start(|c| c.db = db.clone());
    let mut alice = User::join(server.local_addr(), "alice");
    for i in 0..5 {
        alice.send(json!({"type": "broadcast", "text": format!("b{i}"), "id": i}));
    }
    let mut last = 0;
    while last == 0 {
        let m = alice.recv();
        if m["type"] == "ack" && m["id"] == 4 {
            last = m["seq"].as_u64().unwrap();
        }
    }
    assert!(eventually(Duration::from_secs(5), || server
        .store_health()
        .is_some_and(|h| h.persisted_seq >= last)));
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["backup", "--db"])
        .arg(&db)
        .arg("--to")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = start(|c| c.db = copy.clone());
    let mut reader = User::join(restored.local_addr(), "reader");
    assert_eq!(all_broadcasts(&mut reader).len(), 5);
    assert_ne!(
        reader.welcome["epoch"], alice.welcome["epoch"],
        "a restored copy replaces the history: a new epoch"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the copy is as private as the original");
}
