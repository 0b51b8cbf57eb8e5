//! Accounts over the wire (docs/PROTOCOL.md, Accounts): register, login,
//! sessions that survive a reconnect, names that belong to their owner,
//! private messages that wait, `--auth required`, and the refusals:
//! wrong passwords (throttled), revoked tokens. Real server, real SQLite
//! file, real sockets. Moderation and JWTs are in `moderation.rs` and
//! `tokens.rs`.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::chat::User;
use support::{start, TempDir};
use switchboard::config::AuthMode;
use switchboard::Server;

/// A server with accounts in a fresh database file.
fn server(dir: &TempDir, tweak: impl FnOnce(&mut switchboard::Config)) -> Server {
    let db = dir.join("chat.db");
    start(move |c| {
        c.db = db;
        c.rate = 0;
        tweak(c);
    })
}

/// Register `name` on a new guest connection: the response, then the
/// connection is `name`.
fn register(server: &Server, name: &str, password: &str) -> (User, String) {
    let mut u = User::join(server.local_addr(), "someone");
    let r = u.request(
        json!(1),
        "register",
        json!({"name": name, "password": password}),
    );
    assert_eq!(r["result"]["name"], name, "{r}");
    let token = r["result"]["token"].as_str().expect("a token").to_owned();
    let welcome = u.recv_type("welcome");
    assert_eq!(welcome["name"], name);
    assert_eq!(welcome["guest"], false);
    u.welcome = welcome;
    (u, token)
}

/// A connection that sends `token` first: its second welcome.
fn resume(server: &Server, token: &str) -> User {
    let mut u = User::join(server.local_addr(), "");
    u.send(json!({"type": "auth", "token": token}));
    let welcome = u.recv_type("welcome");
    u.welcome = welcome;
    u
}

#[test]
fn a_session_survives_a_reconnect_with_its_name_and_topics() {
    let dir = TempDir::new("accounts-resume");
    let server = server(&dir, |_| {});
    let (mut alice, token) = register(&server, "alice", "correct horse");
    assert_eq!(alice.welcome["roles"], json!(["user"]));
    alice.send(json!({"type": "subscribe", "topic": "news", "id": "s"}));
    assert_eq!(alice.recv_type("ack")["topic"], "news");
    drop(alice);

    let back = resume(&server, &token);
    assert_eq!(back.welcome["name"], "alice");
    assert_eq!(
        back.welcome["subscribed"],
        json!(["news"]),
        "{}",
        back.welcome
    );
    assert!(back.welcome["registered"]
        .as_array()
        .unwrap()
        .contains(&json!("alice")));

    // The same over a restart of the server on the same file.
    drop(back);
    drop(server);
    let server = self::server(&dir, |_| {});
    let mut again = resume(&server, &token);
    assert_eq!(again.welcome["name"], "alice");
    let me = again.request(json!(2), "whoami", json!({}));
    assert_eq!(me["result"]["guest"], false);
    assert_eq!(me["result"]["topics"], json!(["news"]));
}

#[test]
fn a_guest_cannot_take_a_registered_name() {
    let dir = TempDir::new("accounts-names");
    let server = server(&dir, |_| {});
    let (alice, _) = register(&server, "alice", "correct horse");
    drop(alice);
    let mut guest = User::join(server.local_addr(), "Alice");
    assert_eq!(guest.name(), "Alice-2", "a free variant");
    assert_eq!(guest.welcome["guest"], true);
    let r = guest.request(json!(1), "rename", json!({"name": "alice"}));
    assert_eq!(r["error"]["code"], "name_taken", "{r}");
    let r = guest.request(
        json!(2),
        "register",
        json!({"name": "ALICE", "password": "12345678"}),
    );
    assert_eq!(r["error"]["code"], "name_taken", "{r}");
    let r = guest.request(
        json!(3),
        "register",
        json!({"name": "zed", "password": "short"}),
    );
    assert_eq!(r["error"]["code"], "weak_password", "{r}");
    let users = guest.request(json!(4), "users", json!({}));
    // (alice's own leave may still be on its way: only the guest is checked.)
    let registered = users["result"]["registered"].as_array().unwrap();
    assert!(!registered.contains(&json!("Alice-2")), "{users}");
}

#[test]
fn wrong_passwords_are_refused_alike_and_throttled_per_account() {
    let dir = TempDir::new("accounts-throttle");
    let server = server(&dir, |_| {});
    drop(register(&server, "alice", "correct horse").0);
    drop(register(&server, "bob", "battery staple").0);
    let mut guest = User::join(server.local_addr(), "g");
    let login = |g: &mut User, id: u64, name: &str, pw: &str| {
        g.request(json!(id), "login", json!({"name": name, "password": pw}))
    };
    let unknown = login(&mut guest, 1, "nobody", "whatever1");
    let wrong = login(&mut guest, 2, "alice", "whatever1");
    assert_eq!(unknown["error"]["code"], "bad_credentials");
    assert_eq!(unknown["error"], wrong["error"], "the same answer for both");
    // With the one above, five failures on alice.
    for id in 3..7 {
        assert_eq!(
            login(&mut guest, id, "alice", "nope-nope")["error"]["code"],
            "bad_credentials"
        );
    }
    // The fifth failure on alice locked her account for a while...
    let locked = login(&mut guest, 7, "alice", "correct horse");
    assert_eq!(locked["error"]["code"], "throttled", "{locked}");
    assert!(locked["error"]["retry_after_ms"].as_u64().unwrap() > 0);
    // ...but bob signs in normally, from the same address.
    let ok = login(&mut guest, 8, "bob", "battery staple");
    assert_eq!(ok["result"]["name"], "bob", "{ok}");
    assert_eq!(guest.recv_type("welcome")["name"], "bob");
}

#[test]
fn logout_and_a_password_change_revoke_sessions() {
    let dir = TempDir::new("accounts-revoke");
    let server = server(&dir, |_| {});
    let (mut alice, first) = register(&server, "alice", "correct horse");
    let r = alice.request(json!(1), "logout", json!({}));
    assert_eq!(r["result"], json!({}));
    assert_eq!(alice.expect_close(), 1000);
    let mut stale = User::join(server.local_addr(), "x");
    stale.send(json!({"type": "auth", "token": first, "id": 9}));
    let refused = stale.recv_type("error");
    assert_eq!(refused["code"], "bad_token", "{refused}");
    assert_eq!(refused["id"], 9);

    // Two sessions; a password change ends the other one too.
    let mut g = User::join(server.local_addr(), "g");
    let a = g.request(
        json!(1),
        "login",
        json!({"name": "alice", "password": "correct horse"}),
    );
    let other = a["result"]["token"].as_str().unwrap().to_owned();
    g.recv_type("welcome");
    let mut h = User::join(server.local_addr(), "h");
    let b = h.request(
        json!(1),
        "login",
        json!({"name": "alice", "password": "correct horse"}),
    );
    assert!(b["result"]["token"].is_string());
    assert_eq!(g.expect_close(), 4002, "the older connection was replaced");
    h.recv_type("welcome");
    let changed = h.request(
        json!(2),
        "passwd",
        json!({"old": "correct horse", "new": "new password!"}),
    );
    let fresh = changed["result"]["token"]
        .as_str()
        .expect("a new token")
        .to_owned();
    let mut old = User::join(server.local_addr(), "o");
    old.send(json!({"type": "auth", "token": other}));
    assert_eq!(old.recv_type("error")["code"], "bad_token");
    drop(h);
    assert_eq!(resume(&server, &fresh).welcome["name"], "alice");
}

#[test]
fn a_private_message_waits_for_its_offline_reader() {
    let dir = TempDir::new("accounts-waiting");
    let server = server(&dir, |_| {});
    let (bob, bob_token) = register(&server, "bob", "battery staple");
    drop(bob);
    let (mut alice, _) = register(&server, "alice", "correct horse");
    alice.send(json!({"type": "direct", "to": "bob", "text": "call me", "id": 1}));
    let copy = alice.recv_type("message");
    assert_eq!(copy["to"], "bob");
    let ack = alice.recv_type("ack");
    assert_eq!(ack["stored"], json!(["bob"]), "{ack}");
    assert_eq!(ack["delivered"], 1);
    alice.send(json!({"type": "multicast", "to": ["bob", "ghost"], "text": "lunch?", "id": 2}));
    alice.recv_type("message");
    let ack = alice.recv_type("ack");
    assert_eq!(ack["stored"], json!(["bob"]));
    assert_eq!(ack["unknown"], json!(["ghost"]));

    // Bob signs in later: his welcome, then both, in order, marked late.
    let mut bob = resume(&server, &bob_token);
    let first = bob.recv_type("message");
    let second = bob.recv_type("message");
    assert_eq!(
        (first["text"].clone(), first["late"].clone()),
        (json!("call me"), json!(true))
    );
    assert_eq!(second["text"], "lunch?");
    assert!(first["seq"].as_u64() < second["seq"].as_u64());
    // Delivered once: the next sign-in has nothing waiting.
    drop(bob);
    let mut bob = resume(&server, &bob_token);
    bob.expect_silence(Duration::from_millis(300));

    // The conversation, from either side; a guest has none.
    let mine = bob.request(json!(3), "history", json!({"with": "alice"}));
    let texts: Vec<Value> = mine["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, [json!("call me"), json!("lunch?")]);
    let theirs = alice.request(json!(4), "history", json!({"with": "BOB", "limit": 1}));
    assert_eq!(theirs["result"]["messages"][0]["text"], "lunch?");
    assert_eq!(theirs["result"]["more"], true);
    let mut guest = User::join(server.local_addr(), "g");
    let none = guest.request(json!(5), "history", json!({"with": "alice"}));
    assert_eq!(none["error"]["code"], "not_allowed");
}

#[test]
fn required_mode_gives_nothing_of_the_chat_before_signing_in() {
    let dir = TempDir::new("accounts-required");
    let server = server(&dir, |c| {
        c.auth = AuthMode::Required;
        c.auth_timeout = Duration::from_millis(700);
    });
    let addr = server.local_addr();
    let mut waiting = support::tungstenite(addr, "/chat?name=eve");
    let first = read_json(&mut waiting);
    assert_eq!(first["type"], "auth_required", "{first}");
    send_json(
        &mut waiting,
        json!({"type": "broadcast", "text": "hi", "id": 1}),
    );
    assert_eq!(read_json(&mut waiting)["code"], "auth_required");
    send_json(
        &mut waiting,
        json!({"type": "request", "method": "users", "id": 2}),
    );
    let users = read_json(&mut waiting);
    assert_eq!(users["error"]["code"], "auth_required", "{users}");
    // Someone signs up meanwhile: the waiting connection hears nothing of it.
    let mut carol = support::tungstenite(addr, "/chat");
    assert_eq!(read_json(&mut carol)["type"], "auth_required");
    send_json(
        &mut carol,
        json!({"type":"request","id":1,"method":"register","params":{"name":"carol","password":"12345678"}}),
    );
    assert!(read_json(&mut carol)["result"]["token"].is_string());
    assert_eq!(read_json(&mut carol)["type"], "welcome");
    // ...and is closed when its time is up.
    match waiting.read() {
        Ok(tungstenite::Message::Close(Some(close))) => {
            assert_eq!(u16::from(close.code), 4001);
            assert_eq!(close.reason, "authentication required");
        }
        other => panic!("expected Close 4001, got {other:?}"),
    }
}

fn read_json(ws: &mut support::Tung) -> Value {
    loop {
        match ws.read().expect("a frame") {
            tungstenite::Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn send_json(ws: &mut support::Tung, value: Value) {
    ws.send(tungstenite::Message::text(value.to_string()))
        .unwrap();
}
