//! The `switchboard` command: flags onto [`Config`], logging, run until
//! Ctrl-C or SIGTERM, then shut down gracefully; and the `backup`
//! subcommand.

use std::io::IsTerminal;
use std::process::ExitCode;

use simplelog::{ColorChoice, ConfigBuilder, LevelFilter, TermLogger, TerminalMode};
use switchboard::config::sources;
use switchboard::Server;

#[path = "cli/admin.rs"]
mod admin;

/// What `--help` prints before and after the table of flags.
const ABOUT: &str = "\
switchboard: a small thread-per-connection WebSocket chat server

USAGE: switchboard [FLAGS]
       switchboard [FLAGS] config   (print the effective configuration and where each value came from)
       switchboard backup --db PATH --to FILE   (a consistent copy of a live history database)
       switchboard user add|passwd|delete|list|role ...   (accounts; `switchboard user` for help)

Routes: /chat (chat), /echo (echo), /healthz, / (web client).

Every flag may also be set as a SWITCHBOARD_<FLAG> variable (SWITCHBOARD_MAX_CONNECTIONS=2000)
or as a key of the --config file (max-connections = 2000); flags > environment > file.
SIGHUP reloads the TLS files, --log-level, --allowed-origins, --max-per-ip and --connect-rate.

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

/// glibc serves a block of 128 KiB or more with its own `mmap`, and gives
/// it back on `free`; but after such a block is freed it raises that
/// threshold (up to 32 MiB), so later large blocks (an echo, a history
/// reply) come from per-thread arenas, which keep freed memory. With a
/// few hundred workers that is hundreds of MiB the server no longer holds
/// but the system cannot get back, and `--max-buffered` would bound
/// nothing. Fixing the threshold keeps RSS within the budget (tested in
/// `tests/memory.rs`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_blocks_to_the_system() {
    // SAFETY: mallopt only sets an allocator parameter. It is called once,
    // before the server starts any thread. (The only `unsafe` in the
    // project: the library forbids it.)
    let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    if ok != 1 {
        log::debug!("mallopt(M_MMAP_THRESHOLD) refused; large blocks may stay in arenas");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_blocks_to_the_system() {}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("backup") {
        args.next();
        return admin::backup(args);
    }
    if args.peek().map(String::as_str) == Some("user") {
        args.next();
        return admin::user(args.collect());
    }
    let Some(asked) = parse_args(args)? else {
        return Ok(());
    };
    let loaded = sources::load(&asked.flags, environment()?)?;
    if asked.show_config {
        print!("{}", sources::effective(&loaded.config.settings));
        return Ok(());
    }
    return_large_blocks_to_the_system();
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
    // The logger passes everything; `log`'s own maximum filters, so
    // SIGHUP can raise the level as well as lower it.
    TermLogger::init(LevelFilter::Trace, log_config, TerminalMode::Stderr, colors)
        .map_err(|e| e.to_string())?;
    log::set_max_level(log_level(&loaded.config));
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
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
    let server = Server::start(loaded.config).map_err(|e| match std::error::Error::source(&e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    })?;
    for signal in signals.forever() {
        if signal == signal_hook::consts::SIGHUP {
            reload(&server, &asked.flags);
            continue;
        }
        log::info!("signal {signal} received");
        break;
    }
    server.shutdown();
    Ok(())
}

/// SIGHUP: read the file and the environment again (the command line
/// stays as it was) and apply what can change while connections stay up.
fn reload(server: &Server, flags: &[(String, Option<String>)]) {
    match environment().and_then(|env| sources::load(flags, env)) {
        Ok(loaded) => {
            log::set_max_level(log_level(&loaded.config));
            server.reload(&loaded.config);
        }
        Err(e) => log::error!("SIGHUP: {e}; nothing reloaded"),
    }
}

/// The environment's variables. One that is not UTF-8 is skipped, unless
/// it is ours (`SWITCHBOARD_...`): then it is an error naming it.
fn environment() -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (key, value) in std::env::vars_os() {
        let ours = key.to_string_lossy().starts_with(sources::ENV_PREFIX);
        match (key.into_string(), value.into_string()) {
            (Ok(key), Ok(value)) => vars.push((key, value)),
            (key, _) if ours => {
                let key = key.unwrap_or_else(|k| k.to_string_lossy().into_owned());
                return Err(format!("{key}: the value is not UTF-8"));
            }
            _ => {}
        }
    }
    Ok(vars)
}

/// The log level in force: `--log-level`, but at least `info` with
/// `--trace` (the trace is logged at info).
fn log_level(config: &switchboard::Config) -> LevelFilter {
    if config.trace {
        config.log_level.max(LevelFilter::Info)
    } else {
        config.log_level
    }
}

/// What the command line asks for.
struct Asked {
    /// `(flag, value)` pairs in order; a switch has no value.
    flags: Vec<(String, Option<String>)>,
    /// `switchboard config`: print the effective configuration.
    show_config: bool,
}

/// The command line's flags. `Ok(None)` means help or version was printed.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Asked>, String> {
    let mut asked = Asked {
        flags: Vec::new(),
        show_config: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{ABOUT}{}{HELP_FLAGS}", switchboard::config::help());
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("switchboard {}", switchboard::VERSION);
                return Ok(None);
            }
            "config" => {
                asked.show_config = true;
                continue;
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
                let switch = switchboard::config::flags()
                    .any(|f| f.name == flag && f.kind == switchboard::config::Kind::Switch);
                let value = if switch { None } else { args.next() };
                (flag, value)
            }
        };
        asked.flags.push((name.to_owned(), value));
    }
    Ok(Some(asked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(args: &[&str]) -> Result<switchboard::Config, String> {
        let asked = parse_args(args.iter().map(|s| s.to_string()))?.expect("not help");
        sources::load(&asked.flags, []).map(|loaded| loaded.config)
    }

    #[test]
    fn no_flags_give_the_defaults() {
        assert_eq!(parse(&[]).unwrap(), switchboard::Config::default());
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
