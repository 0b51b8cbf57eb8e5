//! The flag table against `Config::default()`, the parser and the README.

use super::*;

/// A value of each kind that no default has.
fn unusual(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Address => Some("127.0.0.1:9"),
        Kind::Count | Kind::Size => Some("77"),
        Kind::Duration => Some("77ms"),
        Kind::Dir => Some("/tmp"),
        Kind::Level => Some("trace"),
        Kind::File => Some("/tmp/other.db"),
        Kind::Sync => Some("full"),
        // The last choice (never a default here).
        Kind::Choice(words) => words.rsplit('|').next(),
        Kind::Cidrs => Some("10.0.0.0/8"),
        Kind::Text => Some("https://other.example"),
        Kind::Url => Some("redis://127.0.0.1:6390/1"),
        Kind::Switch => None,
    }
}

#[test]
fn every_flag_sets_its_field() {
    let mut config = Config::default();
    for flag in flags() {
        let before = config.clone();
        config.set(flag.name, unusual(flag.kind)).unwrap();
        assert_ne!(config, before, "--{} changed nothing", flag.name);
    }
}

#[test]
fn the_table_defaults_are_the_config_defaults() {
    // Every field away from its default, then the table's defaults
    // applied: the result must be `Config::default()`.
    let mut config = Config::default();
    for flag in flags().filter(|f| f.kind != Kind::Switch) {
        config.set(flag.name, unusual(flag.kind)).unwrap();
    }
    for flag in flags() {
        match (flag.kind, flag.default) {
            (Kind::Switch, default) => assert_eq!(default, "off", "--{}", flag.name),
            (_, "-") => {}
            (_, default) => config
                .set(flag.name, Some(default))
                .unwrap_or_else(|e| panic!("--{}: {e}", flag.name)),
        }
    }
    // "-": no value on the command line.
    config.config = None;
    config.web_root = None;
    config.jwt_secret_file = None;
    config.jwt_audience = None;
    config.allowed_origins = Default::default();
    config.trusted_proxies = Vec::new();
    config.tls_cert = None;
    config.tls_key = None;
    config.listen_plain = None;
    config.redirect_http = None;
    config.metrics_listen = None;
    config.redis = None;
    assert_eq!(config, Config::default());
}

#[test]
fn retention_limits_are_checked() {
    let mut config = Config {
        retain_messages: 10,
        ..Config::default()
    };
    assert!(config.validate().unwrap_err().contains("--retain-messages"));
    config.retain_messages = u64::MAX;
    assert!(config.validate().is_err());
    config.retain_messages = 0;
    config.retain_days = 1_000_000;
    assert!(config.validate().unwrap_err().contains("--retain-days"));
    config.retain_days = 30;
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn numbers_that_do_not_fit_are_errors_not_wrapped() {
    let mut config = Config::default();
    let e = config.set("rate", Some("4294967297")).unwrap_err();
    assert!(e.contains("--rate") && e.contains("4294967295"), "{e}");
    assert_eq!(config.rate, 20);
    assert!(config.set("burst", Some("-1")).is_err());
    assert!(config.set("max-frame", Some("99999999999g")).is_err());
}

#[test]
fn sizes_and_durations_take_units() {
    assert_eq!(size::<u64>("65536"), Ok(65536));
    assert_eq!(size::<u64>("64KiB"), Ok(64 * 1024));
    assert_eq!(size::<usize>("16m"), Ok(16 * 1024 * 1024));
    assert!(size::<u64>("12 parsecs").is_err());
    assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
    assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
    assert!(duration("soon").is_err());
}

#[test]
fn bad_values_are_errors_that_name_the_flag() {
    let mut config = Config::default();
    let e = config.set("max-frame", Some("lots")).unwrap_err();
    assert!(e.contains("--max-frame") && e.contains("a size"), "{e}");
    assert!(config
        .set("nope", Some("1"))
        .unwrap_err()
        .contains("unknown flag"));
    assert!(config
        .set("listen", None)
        .unwrap_err()
        .contains("needs a value"));
    assert!(config.set("trace", Some("yes")).is_err());
}

#[test]
fn the_readme_shows_the_table_as_it_is() {
    let readme = include_str!("../../README.md");
    let table = markdown_table();
    assert!(
        readme.contains(&table),
        "README.md's configuration table differs from config::flags(); it should read:\n{table}"
    );
}

#[test]
fn a_redis_url_that_cannot_be_used_says_why_once() {
    let mut config = Config::default();
    let e = config.set("redis", Some("rediss://x:1/0")).unwrap_err();
    assert_eq!(
        e,
        "--redis: \"rediss://x:1/0\" is not a usable redis URL: TLS to Redis (rediss://) is not supported (redis://HOST:PORT/DB or redis+unix:///PATH?db=N)"
    );
    config
        .set("redis", Some("redis+unix:///run/redis.sock?db=2"))
        .unwrap();
    assert!(config.redis.is_some());
}
