//! The `switchboard` command: flags onto [`Config`], logging, run until
//! Ctrl-C or SIGTERM, then shut down gracefully; and the `backup`
//! subcommand.

use std::io::IsTerminal;
use std::process::ExitCode;

use simplelog::{ColorChoice, ConfigBuilder, LevelFilter, TermLogger, TerminalMode};
use switchboard::{Config, Server};

/// What `--help` prints before and after the table of flags.
const ABOUT: &str = "\
switchboard: a small thread-per-connection WebSocket chat server

USAGE: switchboard [FLAGS]
       switchboard backup --db PATH --to FILE   (a consistent copy of a live history database)

Routes: /chat (chat), /echo (echo), /healthz, / (web client).

FLAGS (defaults in brackets; sizes take KiB/MiB, durations ms/s/m):
";
const HELP_FLAGS: &str = "\
  -h, --help                  this text
  -V, --version               the version
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("backup") {
        args.next();
        return backup(args);
    }
    let Some((config, level)) = parse_args(args)? else {
        return Ok(());
    };
    // Colors only on a terminal, so redirected logs stay plain text.
    let colors = if std::io::stderr().is_terminal() {
        ColorChoice::Auto
    } else {
        ColorChoice::Never
    };
    let log_config = ConfigBuilder::new()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .set_time_format_rfc3339()
        .build();
    TermLogger::init(level, log_config, TerminalMode::Stderr, colors).map_err(|e| e.to_string())?;

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    // A write past the file-size limit (RLIMIT_FSIZE) raises SIGXFSZ, which
    // would kill the process; caught, the write fails with EFBIG instead,
    // and the history writer treats it as a full disk.
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let server = Server::start(config).map_err(|e| match std::error::Error::source(&e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    })?;
    if let Some(signal) = signals.forever().next() {
        log::info!("signal {signal} received");
    }
    server.shutdown();
    Ok(())
}

/// `switchboard backup --db PATH --to FILE`.
fn backup(args: impl Iterator<Item = String>) -> Result<(), String> {
    let (mut db, mut to) = (None, None);
    let mut args = args;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("backup: {flag} needs a value"))?;
        match flag.as_str() {
            "--db" => db = Some(value),
            "--to" => to = Some(value),
            other => {
                return Err(format!(
                    "backup: unknown flag {other} (usage: backup --db PATH --to FILE)"
                ))
            }
        }
    }
    let (Some(db), Some(to)) = (db, to) else {
        return Err("usage: switchboard backup --db PATH --to FILE".into());
    };
    switchboard::store::backup::run(db.as_ref(), to.as_ref())?;
    println!("backed up {db} to {to}");
    Ok(())
}

/// Flags onto a config. `Ok(None)` means help or version was printed.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<(Config, LevelFilter)>, String> {
    let mut config = Config::default();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{ABOUT}{}{HELP_FLAGS}", switchboard::config::help());
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("switchboard {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            _ => {}
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?} (see --help)"));
        };
        // Accept both `--flag value` and `--flag=value`.
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => {
                let switch = switchboard::config::FLAGS
                    .iter()
                    .any(|f| f.name == flag && f.kind == switchboard::config::Kind::Switch);
                let value = if switch { None } else { args.next() };
                (flag, value)
            }
        };
        config.set(name, value.as_deref())?;
    }
    config.validate()?;
    let mut level = config.log_level;
    if config.trace && level < LevelFilter::Info {
        // The trace is logged at info; make sure it shows.
        level = LevelFilter::Info;
    }
    Ok(Some((config, level)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(args: &[&str]) -> Result<Config, String> {
        parse_args(args.iter().map(|s| s.to_string())).map(|r| r.expect("not help").0)
    }

    #[test]
    fn no_flags_give_the_defaults() {
        assert_eq!(parse(&[]).unwrap(), Config::default());
    }

    #[test]
    fn flags_are_field_names_in_kebab_case() {
        let c = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--max-connections=4",
            "--thread-stack",
            "256KiB",
            "--ping-interval",
            "500ms",
        ])
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.max_connections, 4);
        assert_eq!(c.thread_stack, 256 * 1024);
        assert_eq!(c.ping_interval, Duration::from_millis(500));
    }

    #[test]
    fn a_switch_takes_no_value_and_the_next_flag_still_counts() {
        let c = parse(&["--trace", "--rate", "5", "--log-level=debug"]).unwrap();
        assert!(c.trace);
        assert_eq!(c.rate, 5);
        assert_eq!(c.log_level, LevelFilter::Debug);
        assert!(parse(&["stray"])
            .unwrap_err()
            .contains("unexpected argument"));
    }

    #[test]
    fn bad_values_are_errors_that_name_the_flag() {
        let e = parse(&["--max-frame", "lots"]).unwrap_err();
        assert!(e.contains("--max-frame"), "{e}");
        assert!(parse(&["--nope"]).unwrap_err().contains("unknown flag"));
        assert!(parse(&["--max-connections", "0"])
            .unwrap_err()
            .contains("--max-connections"));
    }
}
