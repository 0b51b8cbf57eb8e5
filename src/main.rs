//! The `switchboard` command: flags onto [`Config`], logging, run until
//! Ctrl-C or SIGTERM, then shut down gracefully.

use std::io::IsTerminal;
use std::process::ExitCode;

use simplelog::{ColorChoice, ConfigBuilder, LevelFilter, TermLogger, TerminalMode};
use switchboard::{Config, Server};

/// What `--help` prints before and after the table of flags.
const ABOUT: &str = "\
switchboard: a small thread-per-connection WebSocket chat server

USAGE: switchboard [FLAGS]

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
    let Some((config, level)) = parse_args(std::env::args().skip(1))? else {
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
