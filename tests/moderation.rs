//! Moderators and admins (docs/PROTOCOL.md, Moderation): kick, mute,
//! ban (an account, an address), and the moderation log; roles from the
//! `switchboard user` command, run as a real process on the same file
//! while the server runs.

mod support;

use serde_json::json;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;
use support::chat::User;
use support::{eventually, start, TempDir};
use switchboard::Server;

fn server(dir: &TempDir) -> Server {
    let db = dir.join("chat.db");
    start(move |c| {
        c.db = db;
        c.rate = 0;
    })
}

/// `switchboard user ARGS --db FILE`, with the password in a file.
fn user_cmd(dir: &TempDir, args: &[&str]) -> String {
    let secret = dir.join("pw");
    std::fs::write(&secret, "moderator-pw\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("user")
        .args(args)
        .arg("--db")
        .arg(dir.join("chat.db"))
        .arg("--password-file")
        .arg(&secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "user {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn login(addr: SocketAddr, name: &str, password: &str) -> User {
    let mut u = User::join(addr, "x");
    let r = u.request(
        json!("in"),
        "login",
        json!({"name": name, "password": password}),
    );
    assert_eq!(r["result"]["name"], name, "{r}");
    u.welcome = u.recv_type("welcome");
    u
}

fn register(addr: SocketAddr, name: &str) -> User {
    let mut u = User::join(addr, "x");
    let r = u.request(
        json!("reg"),
        "register",
        json!({"name": name, "password": "password-1"}),
    );
    assert_eq!(r["result"]["name"], name, "{r}");
    u.welcome = u.recv_type("welcome");
    u
}

#[test]
fn a_moderator_kicks_mutes_and_bans_and_it_is_all_logged() {
    let dir = TempDir::new("moderation");
    let server = server(&dir);
    let addr = server.local_addr();
    // The CLI works on the file while the server runs; the server picks
    // the account up within seconds.
    user_cmd(&dir, &["add", "mod", "--role", "moderator"]);
    assert!(user_cmd(&dir, &["list"]).contains("mod\tmoderator"));
    assert!(eventually(Duration::from_secs(5), || {
        let g = User::join(addr, "mod");
        g.name() != "mod"
    }));
    let mut m = login(addr, "mod", "moderator-pw");
    assert_eq!(m.welcome["roles"], json!(["moderator"]));

    // A user cannot moderate.
    let mut bob = register(addr, "bob");
    let r = bob.request(json!(1), "kick", json!({"name": "mod"}));
    assert_eq!(r["error"]["code"], "not_allowed");

    // kick: 4000 with the reason; the others see why bob left.
    let mut watcher = User::join(addr, "watcher");
    let r = m.request(
        json!(2),
        "kick",
        json!({"name": "bob", "reason": "cool off"}),
    );
    assert_eq!(r["result"], json!({}), "{r}");
    assert_eq!(close_of(&mut bob.ws), (4000, "cool off".to_owned()));
    let leave = loop {
        let p = watcher.recv_type("presence");
        if p["event"] == "leave" {
            break p;
        }
    };
    assert_eq!(
        (leave["name"].clone(), leave["reason"].clone()),
        (json!("bob"), json!("cool off"))
    );

    // mute: bob's messages are refused, also after he signs in again.
    let r = m.request(
        json!(3),
        "mute",
        json!({"name": "bob", "seconds": 60, "reason": "spam"}),
    );
    assert!(r["result"]["until_ms"].as_u64().is_some(), "{r}");
    let mut bob = login(addr, "bob", "password-1");
    bob.send(json!({"type": "broadcast", "text": "let me speak", "id": 4}));
    let refused = bob.recv_type("error");
    assert_eq!(refused["code"], "muted", "{refused}");
    assert!(refused["until_ms"].as_u64().is_some());
    let r = m.request(json!(5), "unmute", json!({"name": "bob"}));
    assert_eq!(r["result"], json!({}));
    bob.send(json!({"type": "broadcast", "text": "thanks", "id": 6}));
    assert_eq!(bob.recv_type("message")["text"], "thanks");
    assert_eq!(m.recv_type("message")["text"], "thanks");

    // ban: 4003, and no sign-in until it is lifted, even after a restart.
    let r = m.request(json!(7), "ban", json!({"name": "bob", "reason": "again"}));
    assert_eq!(r["result"]["until_ms"], json!(null), "{r}");
    assert_eq!(bob.expect_close(), 4003);
    drop((m, watcher));
    drop(server);
    let server = self::server(&dir);
    let addr = server.local_addr();
    let mut g = User::join(addr, "g");
    let r = g.request(
        json!(8),
        "login",
        json!({"name": "bob", "password": "password-1"}),
    );
    assert_eq!(r["error"]["code"], "banned", "{r}");

    // The log, newest first, for moderators only.
    let mut m = login(addr, "mod", "moderator-pw");
    let log = m.request(json!(9), "moderation", json!({"limit": 10}));
    let actions: Vec<String> = log["result"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["by"].as_str().unwrap(),
                a["action"].as_str().unwrap(),
                a["target"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "mod ban bob",
            "mod unmute bob",
            "mod mute bob",
            "mod kick bob"
        ]
    );
    let r = m.request(json!(10), "unban", json!({"name": "bob"}));
    assert_eq!(r["result"], json!({}));
    let r = g.request(
        json!(11),
        "login",
        json!({"name": "bob", "password": "password-1"}),
    );
    assert_eq!(r["result"]["name"], "bob", "{r}");
    g.recv_type("welcome");
    let r = m.request(json!(12), "unmute", json!({"name": "mod"}));
    assert_eq!(r["error"]["code"], "not_allowed", "not on oneself: {r}");

    // Demoted with the CLI while connected: the powers go within seconds.
    user_cmd(&dir, &["role", "mod", "user"]);
    let mut id = 100;
    assert!(eventually(Duration::from_secs(5), || {
        id += 1;
        let r = m.request(json!(id), "kick", json!({"name": "bob"}));
        r["error"]["code"] == "not_allowed"
    }));
}

#[test]
fn an_address_ban_closes_its_connections_and_refuses_new_ones() {
    let dir = TempDir::new("moderation-address");
    let db = dir.join("chat.db");
    // Listen on every loopback address, so 127.0.0.2 can connect.
    let server = start(move |c| {
        c.db = db;
        c.listen = "0.0.0.0:0".parse().unwrap();
    });
    let port = server.local_addr().port();
    let here: SocketAddr = ([127, 0, 0, 1], port).into();
    user_cmd(&dir, &["add", "mod", "--role", "moderator"]);
    assert!(eventually(Duration::from_secs(5), || User::join(
        here, "mod"
    )
    .name()
        != "mod"));
    let mut m = login(here, "mod", "moderator-pw");
    // A guest connecting from 127.0.0.2.
    let from_2 = || {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
            .unwrap();
        socket.connect(&here.into()).unwrap();
        TcpStream::from(socket)
    };
    let stream = from_2();
    stream.set_read_timeout(Some(support::TIMEOUT)).unwrap();
    let (mut troll, _) =
        tungstenite::client(format!("ws://{here}/chat?name=troll"), stream).unwrap();
    // Its welcome: it has joined.
    assert!(troll.read().unwrap().to_text().unwrap().contains("welcome"));
    let r = m.request(
        json!(1),
        "ban",
        json!({"name": "troll", "seconds": 60, "reason": "flood"}),
    );
    assert!(r["result"]["until_ms"].as_u64().is_some(), "{r}");
    assert_eq!(close_of(&mut troll), (4003, "banned: flood".to_owned()));
    let mut raw = support::Raw::from_stream(from_2());
    raw.send_raw(support::upgrade_request("/chat").as_bytes());
    assert!(
        raw.read_http_head().starts_with("HTTP/1.1 403"),
        "banned address refused"
    );
    // Others are not affected; and a moderator cannot ban their own address.
    let r = m.request(json!(2), "ban", json!({"address": "127.0.0.1"}));
    assert_eq!(r["error"]["code"], "not_allowed");
    assert_eq!(User::join(here, "fine").name(), "fine");
}

/// Read until the server's Close: its code and reason.
fn close_of(ws: &mut support::Tung) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(c))) => {
                return (u16::from(c.code), c.reason.to_string())
            }
            Ok(_) => {}
            Err(e) => panic!("no Close: {e}"),
        }
    }
}
