//! `/metrics` (issue 16): the Prometheus text format 0.0.4, read by a
//! strict parser written here from the format's description, and the
//! counters checked after a scripted session; who may read it where.

mod support;

use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;
use support::chat::User;
use support::{http, Raw, TempDir};

/// One sample: the family's name, its labels, its value.
type Series = BTreeMap<(String, Vec<(String, String)>), f64>;

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Labels `{a="x",b="y\"z"}` with the format's three escapes.
fn labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").ok_or(format!("no =\" in {text}"))?;
        if !is_name(name) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err("newline in a label value".into()),
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        out.push((name.to_owned(), value));
        rest = &after[end + 1..];
        rest = match rest.strip_prefix(',') {
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return Err(format!("junk after a label: {rest:?}")),
        };
    }
    Ok(out)
}

/// Parse the whole exposition, refusing anything the format does not
/// allow: samples before their `# TYPE`, families split or repeated,
/// unknown types, counters not named `_total`, duplicate series, values
/// that are not numbers, a missing final newline.
fn parse(text: &str) -> Result<Series, String> {
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    let mut series = Series::new();
    let (mut seen, mut current, mut helped) = (HashSet::new(), None::<(String, String)>, None);
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !is_name(name) || seen.contains(name) {
                return Err(at("HELP for a bad or repeated family".into()));
            }
            helped = Some(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| at("TYPE without a type".into()))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at(format!("unknown type {kind}")));
            }
            if helped.as_deref() != Some(name) || !seen.insert(name.to_owned()) {
                return Err(at("TYPE without its HELP, or repeated".into()));
            }
            if kind == "counter" && !name.ends_with("_total") {
                return Err(at("a counter not named _total".into()));
            }
            current = Some((name.to_owned(), kind.to_owned()));
        } else if line.starts_with('#') || line.is_empty() {
            return Err(at("a comment or blank line we never write".into()));
        } else {
            let (head, value) = line.rsplit_once(' ').ok_or_else(|| at("no value".into()))?;
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest
                        .strip_suffix('}')
                        .ok_or_else(|| at("unclosed labels".into()))?;
                    (name, labels(inner).map_err(at)?)
                }
                None => (head, Vec::new()),
            };
            if current.as_ref().map(|(f, _)| f.as_str()) != Some(name) {
                return Err(at("a sample outside its family".into()));
            }
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().map_err(|_| at("not a number".into()))?,
            };
            if current.as_ref().is_some_and(|(_, k)| k == "counter") && value < 0.0 {
                return Err(at("a negative counter".into()));
            }
            if series.insert((name.to_owned(), labels), value).is_some() {
                return Err(at("a duplicate series".into()));
            }
        }
    }
    Ok(series)
}

#[test]
fn the_parser_refuses_what_the_format_does_not_allow() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\"} 1\n";
    assert!(parse(good).is_ok());
    for bad in [
        "# TYPE a_total counter\na_total 1\n",
        "# HELP a A.\n# TYPE a counter\na 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n",
        "# HELP a_total A.\n# TYPE a_total counter\nb_total 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total one\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

fn scrape(addr: SocketAddr) -> Series {
    let (status, head, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    parse(&String::from_utf8(body).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

fn value(series: &Series, name: &str, label: Option<(&str, &str)>) -> f64 {
    let labels = label.map_or_else(Vec::new, |(k, v)| vec![(k.to_owned(), v.to_owned())]);
    *series
        .get(&(name.to_owned(), labels))
        .unwrap_or_else(|| panic!("no {name} {label:?}"))
}

/// Read frames until one of type `kind` (others are skipped).
fn until(user: &mut User, kind: &str) -> serde_json::Value {
    for _ in 0..100 {
        let frame = user.recv();
        if frame["type"] == kind {
            return frame;
        }
    }
    panic!("no {kind} in 100 frames");
}

#[test]
fn a_scripted_session_shows_in_the_counters() {
    let tmp = TempDir::new("metrics");
    let server = support::start(|c| {
        c.db = tmp.join("metrics.db");
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        c.rate = 0;
    });
    let (addr, metrics) = (server.local_addr(), server.metrics_addr().unwrap());
    let before = scrape(metrics);
    let mut alice = User::join(addr, "alice");
    let mut bob = User::join(addr, "bob");
    let mut carol = User::join(addr, "carol");
    bob.send(json!({"type": "subscribe", "topic": "news", "id": 1}));
    until(&mut bob, "ack");
    for i in 0..3 {
        alice.send(json!({"type": "broadcast", "text": format!("b{i}"), "id": i}));
        until(&mut alice, "ack");
    }
    alice.send(json!({"type": "direct", "to": "bob", "text": "d", "id": 10}));
    until(&mut alice, "ack");
    alice.send(json!({"type": "multicast", "to": ["bob", "carol"], "text": "m", "id": 11}));
    until(&mut alice, "ack");
    alice.send(json!({"type": "publish", "topic": "news", "text": "t", "id": 12}));
    until(&mut alice, "ack");
    until(&mut carol, "message");
    // A request that is not a handshake, an origin refused, a protocol
    // error (an unmasked frame: Close 1002).
    let (status, _, _) = http(addr, b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 426);
    let refused =
        support::upgrade_request("/chat").replace("http://127.0.0.1", "https://evil.example");
    assert_eq!(http(addr, refused.as_bytes()).0, 403);
    let mut raw = Raw::connect(addr, "/echo");
    raw.send_raw(&[0x81, 0x01, b'x']);
    raw.expect_close(1002);

    // The /echo connection's worker ends just after its Close: wait for it
    // (the counters below do not move meanwhile).
    let mut after = scrape(metrics);
    for _ in 0..250 {
        if value(&after, "switchboard_websockets_open", None) == 3.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        after = scrape(metrics);
    }
    let grew = |name: &str, label: Option<(&str, &str)>| {
        value(&after, name, label) - value(&before, name, label)
    };
    for (kind, n) in [
        ("broadcast", 3.0),
        ("direct", 1.0),
        ("multicast", 1.0),
        ("topic", 1.0),
    ] {
        assert_eq!(
            grew("switchboard_chat_messages_total", Some(("kind", kind))),
            n,
            "{kind}"
        );
    }
    // 3 broadcasts to 3, a direct to 2 (with the sender), a multicast to
    // 3, a topic message to bob: 9 + 2 + 3 + 1.
    assert_eq!(grew("switchboard_chat_deliveries_total", None), 15.0);
    assert_eq!(
        grew(
            "switchboard_connections_rejected_total",
            Some(("reason", "handshake"))
        ),
        1.0
    );
    assert_eq!(
        grew(
            "switchboard_connections_rejected_total",
            Some(("reason", "origin"))
        ),
        1.0
    );
    assert_eq!(
        grew("switchboard_closes_sent_total", Some(("code", "1002"))),
        1.0
    );
    assert_eq!(grew("switchboard_protocol_errors_total", None), 1.0);
    assert_eq!(grew("switchboard_websocket_upgrades_total", None), 4.0);
    assert_eq!(value(&after, "switchboard_chat_members", None), 3.0);
    assert_eq!(value(&after, "switchboard_websockets_open", None), 3.0);
    let written: f64 = ["direct", "combined", "drain"]
        .iter()
        .map(|p| grew("switchboard_frames_written_total", Some(("path", p))))
        .sum();
    assert!(
        written >= 15.0 + 3.0,
        "every delivery and welcome was written: {written}"
    );
    assert!(grew("switchboard_websocket_received_bytes_total", None) > 100.0);
    assert!(grew("switchboard_websocket_sent_bytes_total", None) > 300.0);
    assert!(value(&after, "process_resident_memory_bytes", None) > 1e6);
    assert!(value(&after, "process_threads", None) >= 4.0);
    assert!(value(&after, "process_open_fds", None) >= 4.0);
    let build = after
        .keys()
        .find(|(n, _)| n == "switchboard_build_info")
        .unwrap();
    let keys: Vec<&str> = build.1.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["version", "commit"]);
    // History: the 4 kept messages (3 broadcasts, 1 topic) and the two
    // private ones are numbered; the writer commits them within moments.
    assert!(support::eventually(Duration::from_secs(5), || {
        let now = scrape(metrics);
        value(&now, "switchboard_history_lag_messages", None) == 0.0
            && value(&now, "switchboard_history_persisted_seq", None) >= 6.0
            && value(&now, "switchboard_history_commits_total", None) >= 1.0
    }));
    assert!(after.contains_key(&(
        "switchboard_auth_failures_total".to_owned(),
        vec![("reason".to_owned(), "bad_token".to_owned())]
    )));
    drop((bob, carol));
    server.shutdown();
}

#[test]
fn only_allowed_clients_may_read_metrics_and_status() {
    let server = support::start(|c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        c.metrics_allow = vec![switchboard::config::Cidr::parse("127.0.0.2").unwrap()];
    });
    let (addr, metrics) = (server.local_addr(), server.metrics_addr().unwrap());
    let get = |from: u8, to: SocketAddr, path: &str| {
        let mut s = support::connect_from(from, to);
        std::io::Write::write_all(
            &mut s,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut raw).unwrap();
        support::parse_response(&raw).0
    };
    for path in ["/metrics", "/status", "/status.json"] {
        assert_eq!(
            get(1, addr, path),
            404,
            "{path} from 127.0.0.1 on the main port"
        );
        assert_eq!(get(2, addr, path), 200, "{path} from 127.0.0.2 (allowed)");
        assert_eq!(get(1, metrics, path), 200, "{path} on the metrics listener");
    }
    assert_eq!(get(1, metrics, "/healthz"), 200);
    for path in ["/", "/chat", "/echo", "/app.js"] {
        assert_eq!(
            get(1, metrics, path),
            404,
            "{path} is not on the metrics listener"
        );
    }
    assert_eq!(
        get(1, addr, "/"),
        200,
        "the main port serves the page to all"
    );
    server.shutdown();
}

#[test]
fn a_signed_in_admin_may_see_the_status_page_from_anywhere() {
    let tmp = TempDir::new("metrics-admin");
    let db = tmp.join("admin.db");
    let password = tmp.join("password");
    std::fs::write(&password, "a long admin password\n").unwrap();
    for (name, role) in [("boss", "admin"), ("pat", "user")] {
        let made = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["user", "add", name, "--role", role, "--password-file"])
            .arg(&password)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
    }
    // Nobody is in --metrics-allow: only the cookie can open /status.
    let server = support::binary::Binary::start(&db, "--metrics-allow 192.0.2.1", "");
    let host = format!("127.0.0.1:{}", server.addr.port());
    let cookie_of = |name: &str| {
        let body = format!("name={name}&password=a+long+admin+password");
        let request = format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, head, _) = http(server.addr, request.as_bytes());
        assert_eq!(status, 200, "{head}");
        let set = head
            .lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: "))
            .unwrap();
        set.split(';').next().unwrap().to_owned()
    };
    let status = |path: &str, cookie: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{cookie}\r\n");
        http(server.addr, request.as_bytes()).0
    };
    let admin = format!("Cookie: {}\r\n", cookie_of("boss"));
    let user = format!("Cookie: {}\r\n", cookie_of("pat"));
    assert_eq!(status("/status", ""), 404);
    assert_eq!(status("/status", &user), 404, "a user is not an admin");
    assert_eq!(status("/status", &admin), 200);
    assert_eq!(status("/status.json", &admin), 200);
    assert_eq!(
        status("/metrics", &admin),
        404,
        "metrics are for the scraper's address only"
    );
}
