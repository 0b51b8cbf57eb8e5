//! The `switchboard` command: flags onto [`Config`], logging, run until
//! Ctrl-C or SIGTERM, then shut down gracefully.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use simplelog::{ColorChoice, ConfigBuilder, LevelFilter, TermLogger, TerminalMode};
use switchboard::{Config, Server};

const USAGE: &str = "\
switchboard: a small thread-per-connection WebSocket chat server

USAGE: switchboard [FLAGS]

Routes: /chat (chat), /echo (echo), /healthz, / (web client).

FLAGS (defaults in brackets; sizes take KiB/MiB, durations ms/s/m):
  --listen HOST:PORT          address to listen on [0.0.0.0:8080]; port 0 picks one
  --max-connections N         connections served at once, one worker thread each [1024]
  --thread-stack SIZE         stack of every server thread [128KiB]
  --handshake-timeout DUR     time allowed for the HTTP request head [10s]
  --max-header-bytes SIZE     largest HTTP request head (431 beyond) [8KiB]
  --max-frame SIZE            largest frame payload on any route [16MiB]
  --max-message SIZE          largest message on /chat [64KiB]
  --echo-max-message SIZE     largest message on /echo [16MiB]
  --max-queue N               frames queued for one slow reader before 1008 [4096]
  --max-queue-bytes SIZE      bytes queued for one slow reader before 1008 [4MiB]
  --write-timeout DUR         drop a connection whose socket takes no byte this long [30s]
  --ping-interval DUR         ping a connection quiet this long [30s]
  --idle-timeout DUR          close (1001) a connection silent this long [75s]
  --close-timeout DUR         wait this long for the peer's Close [2s]
  --history N                 chat messages kept per stream (broadcasts, each topic) [100]
  --max-topics N              topic history streams kept [1024]
  --max-text SIZE             longest chat text [4096]
  --rate N                    chat messages per second per connection, 0 = no limit [20]
  --burst N                   chat messages a connection may send at once [40]
  --trace                     log every connection's bytes: TCP events, handshake, each frame
  --web-root DIR              serve the web client from DIR instead of the built-in copy
  --log-level LEVEL           error, warn, info, debug or trace [info]
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
    let mut level = LevelFilter::Info;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("switchboard {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            _ => {}
        }
        if flag == "--trace" {
            config.trace = true;
            continue;
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let bad = |what: &str, v: &str| format!("{flag}: {v:?} is not {what}");
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                config.listen = parse_listen(&v).ok_or_else(|| bad("HOST:PORT", &v))?;
            }
            "--max-connections" => config.max_connections = number(&value()?, &bad)?,
            "--thread-stack" => config.thread_stack = size(&value()?, &bad)? as usize,
            "--handshake-timeout" => config.handshake_timeout = duration(&value()?, &bad)?,
            "--max-header-bytes" => config.max_header_bytes = size(&value()?, &bad)? as usize,
            "--max-frame" => config.max_frame = size(&value()?, &bad)?,
            "--max-message" => config.max_message = size(&value()?, &bad)?,
            "--echo-max-message" => config.echo_max_message = size(&value()?, &bad)?,
            "--max-queue" => config.max_queue = number(&value()?, &bad)?,
            "--max-queue-bytes" => config.max_queue_bytes = size(&value()?, &bad)? as usize,
            "--write-timeout" => config.write_timeout = duration(&value()?, &bad)?,
            "--ping-interval" => config.ping_interval = duration(&value()?, &bad)?,
            "--idle-timeout" => config.idle_timeout = duration(&value()?, &bad)?,
            "--close-timeout" => config.close_timeout = duration(&value()?, &bad)?,
            "--history" => config.history = number(&value()?, &bad)?,
            "--max-topics" => config.max_topics = number(&value()?, &bad)?,
            "--max-text" => config.max_text = size(&value()?, &bad)? as usize,
            "--rate" => config.rate = number(&value()?, &bad)? as u32,
            "--burst" => config.burst = number(&value()?, &bad)? as u32,
            "--web-root" => config.web_root = Some(value()?.into()),
            "--log-level" => {
                let v = value()?;
                level = v
                    .parse()
                    .map_err(|_| bad("a log level (error, warn, info, debug, trace)", &v))?;
            }
            other => return Err(format!("unknown flag {other} (see --help)")),
        }
    }
    config.validate()?;
    if config.trace && level < LevelFilter::Info {
        // The trace is logged at info; make sure it shows.
        level = LevelFilter::Info;
    }
    Ok(Some((config, level)))
}

/// `8080`, `:8080`, `127.0.0.1:8080`, `localhost:8080`, `[::1]:8080`.
fn parse_listen(v: &str) -> Option<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(port) = v.trim_start_matches(':').parse::<u16>() {
        return Some(([0, 0, 0, 0], port).into());
    }
    v.to_socket_addrs().ok()?.next()
}

fn number(v: &str, bad: &dyn Fn(&str, &str) -> String) -> Result<usize, String> {
    v.parse().map_err(|_| bad("a whole number", v))
}

/// Split `64KiB` into 64 and `kib` (the unit lowercased; empty if none).
fn number_and_unit(v: &str) -> Option<(u64, String)> {
    let lower = v.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    Some((digits.parse().ok()?, unit.to_owned()))
}

/// `65536`, `64KiB`, `64k`, `16MiB`, `16m`.
fn size(v: &str, bad: &dyn Fn(&str, &str) -> String) -> Result<u64, String> {
    let what = "a size (like 65536, 64KiB, 16MiB)";
    let (n, unit) = number_and_unit(v).ok_or_else(|| bad(what, v))?;
    let scale: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(bad(what, v)),
    };
    n.checked_mul(scale)
        .ok_or_else(|| bad("a size that fits in 64 bits", v))
}

/// `10s`, `500ms`, `2m`, or a plain number of seconds.
fn duration(v: &str, bad: &dyn Fn(&str, &str) -> String) -> Result<Duration, String> {
    let what = "a duration (like 500ms, 10s, 2m)";
    let (n, unit) = number_and_unit(v).ok_or_else(|| bad(what, v))?;
    match unit.as_str() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(bad(what, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn sizes_and_durations_take_units() {
        let bad = |what: &str, v: &str| format!("{v} is not {what}");
        assert_eq!(size("65536", &bad), Ok(65536));
        assert_eq!(size("64KiB", &bad), Ok(64 * 1024));
        assert_eq!(size("16m", &bad), Ok(16 * 1024 * 1024));
        assert!(size("12 parsecs", &bad).is_err());
        assert_eq!(duration("500ms", &bad), Ok(Duration::from_millis(500)));
        assert_eq!(duration("10", &bad), Ok(Duration::from_secs(10)));
        assert_eq!(duration("2m", &bad), Ok(Duration::from_secs(120)));
        assert!(duration("soon", &bad).is_err());
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
