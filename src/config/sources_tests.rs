//! The file, the environment and the command line, and their order.

use super::*;

fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-sources-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn flag(name: &str, value: &str) -> (String, Option<String>) {
    (name.to_owned(), Some(value.to_owned()))
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let path = file(
        "order.toml",
        "# a comment\nmax-connections = 100\nrate = 7\nburst = \"9\"\ntrace = true\n",
    );
    let loaded = load(
        &[flag("config", path.to_str().unwrap()), flag("rate", "5")],
        env(&[
            ("SWITCHBOARD_MAX_CONNECTIONS", "200"),
            ("SWITCHBOARD_RATE", "6"),
            ("HOME", "/root"),
        ]),
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(
        (c.max_connections, c.rate, c.burst, c.trace),
        (200, 5, 9, true)
    );
    let source = |name: &str| {
        loaded
            .settings
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.source.clone())
    };
    assert_eq!(source("rate"), Some(Source::Flag));
    assert_eq!(
        source("max-connections"),
        Some(Source::Env("SWITCHBOARD_MAX_CONNECTIONS".into()))
    );
    assert_eq!(source("burst"), Some(Source::File(path.clone(), 4)));
    assert_eq!(source("listen"), None);
    let shown = effective(&loaded.settings);
    assert!(shown.contains("rate = 5"), "{shown}");
    assert!(shown.contains("# command line"), "{shown}");
    assert!(
        shown.contains(&format!("# {}:4", path.display())),
        "{shown}"
    );
    assert!(shown.contains("listen = \"0.0.0.0:8080\""), "{shown}");
    assert!(shown.contains("trace = true"), "{shown}");
}

#[test]
fn the_environment_names_the_file_and_switches_take_words() {
    let path = file("env.toml", "log-level = \"debug\"\n");
    let loaded = load(
        &[],
        env(&[
            ("SWITCHBOARD_CONFIG", path.to_str().unwrap()),
            ("SWITCHBOARD_TRACE", "yes"),
            ("SWITCHBOARD_NO_SUCH_FLAG", "1"),
            ("SWITCHBOARD_REQUIRE_ALL", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(loaded.config.log_level, log::LevelFilter::Debug);
    assert!(loaded.config.trace);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains("SWITCHBOARD_NO_SUCH_FLAG"));
    // A switch turned off by a higher source stays off.
    let path = file("off.toml", "trace = true\n");
    let off = load(
        &[flag("config", path.to_str().unwrap())],
        env(&[("SWITCHBOARD_TRACE", "0")]),
    )
    .unwrap();
    assert!(!off.config.trace);
    // And `--trace=false` on the command line turns off the variable's.
    let flag_off = load(
        &[flag("trace", "false")],
        env(&[("SWITCHBOARD_TRACE", "1")]),
    )
    .unwrap();
    assert!(!flag_off.config.trace);
    assert!(load(&[flag("trace", "maybe")], []).is_err());
    let e = load(&[], env(&[("SWITCHBOARD_TRACE", "maybe")])).unwrap_err();
    assert!(e.contains("SWITCHBOARD_TRACE"), "{e}");
}

#[test]
fn errors_name_the_file_and_the_line() {
    let cases = [
        (
            "unknown.toml",
            "rate = 5\n\nmax-conections = 3\n",
            ":3: unknown key \"max-conections\"",
        ),
        (
            "value.toml",
            "rate = 5\nmax-frame = \"lots\"\n",
            ":2: --max-frame: \"lots\"",
        ),
        (
            "kind.toml",
            "trace = \"on\"\n",
            ":1: trace must be true or false",
        ),
        ("float.toml", "\nrate = 1.5\n", ":2: rate must be a string"),
        ("syntax.toml", "rate = 5\nburst = = 3\n", ":2: "),
        ("table.toml", "[server]\nrate = 5\n", ":1: "),
        (
            "nested.toml",
            "config = \"other.toml\"\n",
            ":1: a config file cannot name another",
        ),
    ];
    for (name, text, want) in cases {
        let path = file(name, text);
        let e = load(&[flag("config", path.to_str().unwrap())], []).unwrap_err();
        assert!(e.starts_with(&path.display().to_string()), "{name}: {e}");
        assert!(e.contains(want), "{name}: {e}");
    }
    let e = load(&[flag("config", "/nonexistent/switchboard.toml")], []).unwrap_err();
    assert!(e.contains("/nonexistent/switchboard.toml"), "{e}");
}

#[test]
fn lists_join_and_secrets_are_redacted() {
    let path = file(
        "lists.toml",
        "trusted-proxy = [\"10.0.0.0/8\", \"127.0.0.1\"]\nallowed-origins = [\"https://a.example\", \"https://b.example\"]\n",
    );
    let loaded = load(&[flag("config", path.to_str().unwrap())], []).unwrap();
    assert_eq!(loaded.config.trusted_proxies.len(), 2);
    assert_eq!(
        redact("redis", "redis://user:hunter2@host:6379/0"),
        "redis://user:(redacted)@host:6379/0"
    );
    assert_eq!(redact("jwt-secret", "hunter2"), "(redacted)");
    assert_eq!(redact("jwt-secret-file", "/etc/key"), "/etc/key");
}
