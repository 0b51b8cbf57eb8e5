//! Accounts and moderation across the nodes of a cluster (issue 18), with
//! a real `redis-server` and real server binaries: one account, one
//! session, one ban list for every node.

mod support;

use serde_json::json;
use std::time::Duration;
use support::chat::User;
use support::cluster::{cluster, next, presence};

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
    for (name, role) in [("mod", "moderator"), ("boss", "admin")] {
        let made = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["user", "add", name, "--role", role, "--redis", &redis.url()])
            .arg("--password-file")
            .arg(&secret)
            .output()
            .unwrap();
        let why = String::from_utf8_lossy(&made.stderr);
        assert!(made.status.success(), "{why}");
    }
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

    // A moderator's address ban reaches a guest of node b on that address,
    // and spares the admin connected from it there.
    let mut boss = User::join_from(2, b.addr, "y");
    let r = boss.request(
        json!(8),
        "login",
        json!({"name": "boss", "password": "moderator-pw"}),
    );
    assert_eq!(r["result"]["name"], "boss", "{r}");
    boss.recv_type("welcome");
    let mut guest = User::join_from(2, b.addr, "guest2");
    presence(&mut m, "join", "guest2", Duration::from_secs(5));
    let r = m.request(json!(9), "ban", json!({"address": "127.0.0.2"}));
    assert!(r["error"].is_null(), "{r}");
    assert_eq!(guest.expect_close(), 4003);
    let still = boss.request(json!(10), "whoami", json!({}));
    assert_eq!(still["result"]["name"], "boss", "the admin stays");

    // The CLI on the cluster's accounts: list them, delete one; the deleted
    // one no longer signs in anywhere, and its name is free to register.
    let user = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("user")
            .args(args)
            .args(["--redis", &redis.url()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = user(&["list"]);
    assert!(
        listed.contains("boss\tadmin") && listed.contains("bob\tuser"),
        "{listed}"
    );
    user(&["delete", "bob"]);
    assert!(!user(&["list"]).contains("bob"));
    let mut gone = User::join(a.addr, "w");
    let r = gone.request(
        json!(11),
        "login",
        json!({"name": "bob", "password": "password-1"}),
    );
    assert_eq!(r["error"]["code"], "bad_credentials", "{r}");
    let r = gone.request(
        json!(12),
        "register",
        json!({"name": "bob", "password": "password-2"}),
    );
    assert_eq!(r["result"]["name"], "bob", "{r}");
}
