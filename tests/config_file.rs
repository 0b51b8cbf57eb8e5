//! The config file, the environment and SIGHUP, against the real binary
//! (issue 16): precedence, `switchboard config`, errors that name the
//! file and line, and a reload that changes the Origin allow-list and the
//! per-address limit while a connection stays up.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use support::binary::Binary;
use support::{Raw, TempDir};

fn switchboard(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn config_prints_every_value_with_where_it_came_from() {
    let tmp = TempDir::new("config-show");
    let file = tmp.join("s.toml");
    std::fs::write(
        &file,
        "max-connections = 300\nrate = 7\nmax-buffered = \"32MiB\"\n",
    )
    .unwrap();
    let (ok, out, err) = switchboard(
        &["--config", file.to_str().unwrap(), "--rate", "5", "config"],
        &[
            ("SWITCHBOARD_MAX_CONNECTIONS", "400"),
            ("SWITCHBOARD_BURST", "9"),
        ],
    );
    assert!(ok, "{err}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .to_owned()
    };
    assert!(line("rate").contains("= 5") && line("rate").ends_with("# command line"));
    assert!(line("max-connections").contains("= 400"));
    assert!(line("max-connections").ends_with("# environment SWITCHBOARD_MAX_CONNECTIONS"));
    assert!(line("burst").ends_with("# environment SWITCHBOARD_BURST"));
    assert!(line("max-buffered").contains("\"32MiB\""));
    assert!(line("max-buffered").ends_with(&format!("# {}:3", file.display())));
    assert!(line("listen").ends_with("# default"));
    // Every flag of --help has its line.
    let (_, help, _) = switchboard(&["--help"], &[]);
    let flags = help
        .lines()
        .filter(|l| l.trim_start().starts_with("--"))
        .count();
    let shown = out.lines().filter(|l| l.contains(" # ")).count();
    assert_eq!(shown, flags, "{out}");
}

#[test]
fn a_bad_file_stops_the_start_with_one_line_naming_file_and_line() {
    let tmp = TempDir::new("config-bad");
    let file = tmp.join("bad.toml");
    std::fs::write(&file, "rate = 5\n# fine so far\nmax-conections = 3\n").unwrap();
    let (ok, _, err) = switchboard(&["--config", file.to_str().unwrap()], &[]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}:3: unknown key", file.display())),
        "{err}"
    );
    std::fs::write(&file, "idle-timeout = \"soon\"\n").unwrap();
    let (ok, _, err) = switchboard(&["--config", file.to_str().unwrap()], &[]);
    assert!(!ok && err.contains(":1: --idle-timeout"), "{err}");
    let (ok, _, err) = switchboard(&[], &[("SWITCHBOARD_MAX_FRAME", "huge")]);
    assert!(!ok && err.contains("SWITCHBOARD_MAX_FRAME"), "{err}");
    let (ok, _, err) = switchboard(&["--restart-spread", "10m"], &[]);
    assert!(
        !ok && err.contains("--restart-spread must be at most 5m"),
        "{err}"
    );
}

#[test]
fn a_variable_that_is_not_utf8_is_an_error_only_when_it_is_ours() {
    use std::os::unix::ffi::OsStrExt;
    let run = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("config")
            .env(key, std::ffi::OsStr::from_bytes(b"caf\xe9"))
            .output()
            .unwrap()
    };
    let theirs = run("SOME_OTHER_TOOL");
    assert!(theirs.status.success(), "{theirs:?}");
    let ours = run("SWITCHBOARD_LOG_LEVEL");
    let err = String::from_utf8_lossy(&ours.stderr);
    assert!(!ours.status.success() && err.lines().count() == 1, "{err}");
    assert!(
        err.contains("SWITCHBOARD_LOG_LEVEL: the value is not UTF-8"),
        "{err}"
    );
}

#[test]
fn the_version_names_the_commit() {
    let (ok, out, _) = switchboard(&["--version"], &[]);
    assert!(ok);
    // "switchboard 0.1.0 (abcdef012345)", or "(unknown)" outside git.
    let commit = out.trim().rsplit_once('(').unwrap().1.trim_end_matches(')');
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{out}"
    );
}

/// An upgrade on /echo with this Origin; the status.
fn upgrade(addr: SocketAddr, origin: &str) -> (u16, Raw) {
    let mut raw = Raw::tcp(addr);
    let request = support::upgrade_request("/echo")
        .replace("Origin: http://127.0.0.1", &format!("Origin: {origin}"));
    raw.stream.write_all(request.as_bytes()).unwrap();
    let head = raw.read_http_head();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

#[test]
fn sighup_reloads_origins_and_per_address_limits_keeping_connections() {
    let tmp = TempDir::new("config-reload");
    let file = tmp.join("live.toml");
    std::fs::write(&file, "max-per-ip = 2\n").unwrap();
    let server = Binary::start(
        &tmp.join("reload.db"),
        &format!("--config {} --connect-rate 0", file.display()),
        "",
    );
    let addr = server.addr;
    let (status, _) = upgrade(addr, "https://app.example");
    assert_eq!(status, 403, "another origin is refused by default");
    assert!(
        !server.log_text().contains("handshake ok"),
        "no debug lines at info"
    );
    let (status, mut kept) = upgrade(addr, "http://127.0.0.1");
    assert_eq!(status, 101);
    let (status, _second) = upgrade(addr, "http://127.0.0.1");
    assert_eq!(status, 101);
    let (status, _) = upgrade(addr, "http://127.0.0.1");
    assert_eq!(
        status, 429,
        "a third from one address is over --max-per-ip 2"
    );

    std::fs::write(
        &file,
        "max-per-ip = 4\nallowed-origins = [\"https://app.example\"]\nmax-connections = 99\nlog-level = \"debug\"\n",
    )
    .unwrap();
    server.signal("HUP");
    assert!(
        support::eventually(Duration::from_secs(5), || server
            .log_text()
            .contains("SIGHUP: reloaded allowed-origins, per-address limits, log-level")),
        "{}",
        server.log_text()
    );
    // The next log line: read from the server's stderr a moment later.
    assert!(support::eventually(Duration::from_secs(5), || server
        .log_text()
        .contains("in force only after a restart: max-connections")));
    let (status, _third) = upgrade(addr, "https://app.example");
    assert_eq!(status, 101, "the new origin and the new limit are in force");
    // What waits for a restart is not taken as in force: the next SIGHUP
    // names it again.
    server.signal("HUP");
    let restart_lines = || {
        server
            .log_text()
            .matches("in force only after a restart: max-connections")
            .count()
    };
    assert!(
        support::eventually(Duration::from_secs(5), || restart_lines() == 2),
        "{}",
        server.log_text()
    );
    assert!(
        support::eventually(Duration::from_secs(2), || server
            .log_text()
            .contains("handshake ok")),
        "debug lines are logged after the reload"
    );
    kept.assert_echoes("still here after the reload");

    // A file that no longer parses changes nothing.
    std::fs::write(&file, "max-per-ip = = 1\n").unwrap();
    server.signal("HUP");
    assert!(support::eventually(Duration::from_secs(5), || server
        .log_text()
        .contains("nothing reloaded")));
    let (status, _fourth) = upgrade(addr, "https://app.example");
    assert_eq!(status, 101);
    kept.assert_echoes("and after a bad file");
}
