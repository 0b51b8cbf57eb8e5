//! Tokens (docs/PROTOCOL.md, Signing in): HS256 JWTs from an application
//! backend (forged, expired, wrong `kid`, `alg: none`, oversized and
//! truncated ones refused; another server's secret refused), and the
//! handshake paths: `Sec-WebSocket-Protocol: switchboard.v1, bearer.TOKEN`
//! and `?token=` (only with `--allow-query-token`).

mod support;

use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use support::chat::User;
use support::{start, Raw, TempDir};
use switchboard::auth::jwt;
use switchboard::Server;

const KEY: &str = "k1 0123456789abcdef0123456789abcdef-one";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-one";

fn server(dir: &TempDir, query_tokens: bool) -> Server {
    let keys = dir.join("jwt.keys");
    std::fs::write(&keys, format!("# rotation: k1 now\n{KEY}\n")).unwrap();
    let db = dir.join("chat.db");
    start(move |c| {
        c.db = db;
        c.jwt_secret_file = Some(keys);
        c.jwt_audience = Some("chat".into());
        c.allow_query_token = query_tokens;
        // A partner site whose pages may open WebSockets here (but never
        // with our cookie).
        c.allowed_origins =
            switchboard::http::origin::Policy::parse("https://partner.example").unwrap();
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(header: Value, claims: Value, key: &[u8]) -> String {
    jwt::sign(&header, &claims, key)
}

fn good(name: &str) -> String {
    token(
        json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}),
        json!({"sub": name, "exp": now() + 60, "aud": "chat", "roles": ["moderator"]}),
        SECRET,
    )
}

/// The answer to `{"type":"auth","token":...}` on a guest connection.
fn auth(server: &Server, token: &str) -> Value {
    let mut u = User::join(server.local_addr(), "g");
    u.send(json!({"type": "auth", "token": token, "id": 1}));
    loop {
        let m = u.recv();
        if m["type"] != "presence" {
            return m;
        }
    }
}

#[test]
fn a_backend_jwt_signs_in_and_every_bad_one_is_refused() {
    let dir = TempDir::new("tokens-jwt");
    let server = server(&dir, false);
    let welcome = auth(&server, &good("dana"));
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(
        (welcome["name"].clone(), welcome["roles"].clone()),
        (json!("dana"), json!(["moderator"]))
    );

    let claims = json!({"sub": "dana", "exp": now() + 60, "aud": "chat"});
    let header = json!({"alg": "HS256", "kid": "k1"});
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let forged = {
        let t = good("dana");
        let (body, _) = t.rsplit_once('.').unwrap();
        format!("{body}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    };
    let bad = [
        ("forged signature", forged),
        (
            "expired",
            token(
                header.clone(),
                json!({"sub": "dana", "exp": now() - 1, "aud": "chat"}),
                SECRET,
            ),
        ),
        (
            "wrong kid",
            token(json!({"alg": "HS256", "kid": "k9"}), claims.clone(), SECRET),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "k1"})),
                b64(&claims)
            ),
        ),
        (
            "another server's secret",
            token(
                header.clone(),
                claims.clone(),
                b"another-secret-another-secret-another",
            ),
        ),
        (
            "wrong audience",
            token(
                header.clone(),
                json!({"sub": "dana", "exp": now() + 60, "aud": "other"}),
                SECRET,
            ),
        ),
        (
            "no exp",
            token(
                header.clone(),
                json!({"sub": "dana", "aud": "chat"}),
                SECRET,
            ),
        ),
        ("truncated", good("dana")[..40].to_owned()),
        (
            "oversized",
            format!("{}.{}", good("dana"), "A".repeat(5000)),
        ),
    ];
    for (what, t) in bad {
        let answer = auth(&server, &t);
        assert_eq!(answer["code"], "bad_token", "{what}: {answer}");
    }
    // A JWT's name is now registered: a guest cannot take it.
    assert_eq!(User::join(server.local_addr(), "dana").name(), "dana-2");
    // A name someone registered with a password is not the backend's.
    let mut u = User::join(server.local_addr(), "x");
    let r = u.request(
        json!(1),
        "register",
        json!({"name": "hana", "password": "password-1"}),
    );
    assert!(r["result"]["token"].is_string(), "{r}");
    assert_eq!(auth(&server, &good("hana"))["code"], "bad_token");
}

#[test]
fn a_token_in_the_subprotocol_opens_the_chat_as_its_account() {
    let dir = TempDir::new("tokens-subprotocol");
    let server = server(&dir, false);
    let addr = server.local_addr();
    let upgrade = |protocols: &str, path: &str| {
        let mut raw = Raw::tcp(addr);
        let request = support::upgrade_request(path).replace(
            "\r\n\r\n",
            &format!("\r\nSec-WebSocket-Protocol: {protocols}\r\n\r\n"),
        );
        raw.send_raw(request.as_bytes());
        (raw.read_http_head(), raw)
    };
    let (head, mut raw) = upgrade(&format!("switchboard.v1, bearer.{}", good("erin")), "/chat");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("Sec-WebSocket-Protocol: switchboard.v1\r\n"),
        "{head}"
    );
    assert!(
        !head.contains("bearer"),
        "the token is never echoed: {head}"
    );
    let welcome: Value = serde_json::from_str(&raw.read_text()).unwrap();
    assert_eq!(
        (welcome["name"].clone(), welcome["guest"].clone()),
        (json!("erin"), json!(false))
    );

    let (head, _) = upgrade("switchboard.v1, bearer.not-a-token", "/chat");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // Query tokens are off unless asked for.
    let (head, _) = upgrade("switchboard.v1", &format!("/chat?token={}", good("erin")));
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

#[test]
fn a_query_token_works_only_when_allowed() {
    let dir = TempDir::new("tokens-query");
    let server = server(&dir, true);
    let mut u = User::join_path(
        server.local_addr(),
        &format!("/chat?token={}", good("finn")),
    );
    assert_eq!(u.name(), "finn");
    let me = u.request(json!(1), "whoami", json!({}));
    assert_eq!(me["result"]["roles"], json!(["moderator"]));
}

#[test]
fn a_page_of_this_server_signs_in_with_an_httponly_cookie_and_no_other_site_can_use_it() {
    let dir = TempDir::new("tokens-cookie");
    let server = server(&dir, false);
    let addr = server.local_addr();
    // An account to sign in to.
    let mut u = User::join(addr, "x");
    let r = u.request(
        json!(1),
        "register",
        json!({"name": "gwen", "password": "password-1"}),
    );
    assert!(r["result"]["token"].is_string());
    drop(u);
    let host = format!("127.0.0.1:{}", addr.port());
    let post = |origin: &str, body: &str| {
        let request = format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        support::http(addr, request.as_bytes())
    };
    let ours = format!("http://{host}");
    let (status, _, _) = post("https://evil.example", "name=gwen&password=password-1");
    assert_eq!(status, 403, "another site's page cannot sign in");
    let (status, _, body) = post(&ours, "name=gwen&password=wrong-one");
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    let (status, head, body) = post(&ours, "name=gwen&password=password-1");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let set = head
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .expect("a cookie")
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(
        !String::from_utf8_lossy(&body).contains("token"),
        "the token stays in the cookie"
    );
    let cookie = set.split(';').next().unwrap().to_owned();

    // The handshake carries the cookie: ours signs in, another site's
    // page (Origin) gets a guest.
    let open = |origin: &str| {
        let mut raw = Raw::tcp(addr);
        let request = support::upgrade_request("/chat?name=visitor")
            .replace("Host: 127.0.0.1\r\n", &format!("Host: {host}\r\n"))
            .replace(
                "Origin: http://127.0.0.1\r\n",
                &format!("Origin: {origin}\r\nCookie: {cookie}\r\n"),
            );
        raw.send_raw(request.as_bytes());
        assert!(raw.read_http_head().starts_with("HTTP/1.1 101"));
        let welcome: Value = serde_json::from_str(&raw.read_text()).unwrap();
        welcome
    };
    let mine = open(&ours);
    assert_eq!(
        (mine["name"].clone(), mine["guest"].clone()),
        (json!("gwen"), json!(false))
    );
    let theirs = open("https://partner.example");
    assert_eq!(
        (theirs["name"].clone(), theirs["guest"].clone()),
        (json!("visitor"), json!(true))
    );
}
