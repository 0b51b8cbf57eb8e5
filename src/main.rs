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
       switchboard user add|passwd|delete|list|role ...   (accounts; `switchboard user` for help)

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
        return backup(args);
    }
    if args.peek().map(String::as_str) == Some("user") {
        args.next();
        return user(args.collect());
    }
    let Some((config, level)) = parse_args(args)? else {
        return Ok(());
    };
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
    TermLogger::init(level, log_config, TerminalMode::Stderr, colors).map_err(|e| e.to_string())?;

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
    let server = Server::start(config).map_err(|e| match std::error::Error::source(&e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    })?;
    for signal in signals.forever() {
        if signal == signal_hook::consts::SIGHUP {
            // Reload what can be reloaded: the TLS certificate and key.
            if !server.reload() {
                log::info!("SIGHUP: nothing reloaded");
            }
            continue;
        }
        log::info!("signal {signal} received");
        break;
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

const USER_USAGE: &str = "\
usage: switchboard user add NAME [--role admin|moderator|user] [--password-file FILE] [--db PATH]
       switchboard user passwd NAME [--password-file FILE] [--db PATH]
       switchboard user delete NAME [--db PATH]
       switchboard user list [--db PATH]
       switchboard user role NAME admin|moderator|user [--db PATH]
The password is asked for (without echo) unless --password-file gives it (its
first line) or stdin is not a terminal (then its first line is read). --db
defaults to switchboard.db. A running server sees the change within seconds.";

/// `switchboard user ...`: accounts in a database file, whether or not a
/// server is running on it.
fn user(args: Vec<String>) -> Result<(), String> {
    use switchboard::auth::accounts::Accounts;
    use switchboard::auth::{password, Role};
    let (mut db, mut password_file, mut role, mut words) =
        ("switchboard.db".to_owned(), None, None, Vec::new());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--db" => db = value("--db")?,
            "--password-file" => password_file = Some(value("--password-file")?),
            "--role" => role = Some(value("--role")?),
            flag if flag.starts_with("--") => {
                return Err(format!("unknown flag {flag}\n{USER_USAGE}"))
            }
            _ => words.push(arg),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let parse_role =
        |r: &str| Role::parse(r).ok_or(format!("no role {r:?} (admin, moderator, user)"));
    let accounts = switchboard::store::admin::open(db.as_ref())?;
    let fail = |e: switchboard::auth::accounts::StoreError| e.to_string();
    let hash = |name: &str| -> Result<String, String> {
        let secret = read_password(name, password_file.as_deref())?;
        if !(password::MIN_LEN..=password::MAX_LEN).contains(&secret.len()) {
            return Err(format!(
                "a password is {} to {} bytes",
                password::MIN_LEN,
                password::MAX_LEN
            ));
        }
        let mut salt = [0u8; 16];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").map_err(|e| e.to_string())?,
            &mut salt,
        )
        .map_err(|e| e.to_string())?;
        password::hash(&password::Slots::default(), &secret, &salt).map_err(|e| e.0)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    match words.as_slice() {
        ["add", name] => {
            if !switchboard::chat::wire::valid_name(name) {
                return Err(format!(
                    "{name:?} is not a valid name (1-32 letters, digits, _ - .)"
                ));
            }
            let role = parse_role(role.as_deref().unwrap_or("user"))?;
            if accounts.find(name).map_err(fail)?.is_some() {
                return Err(format!("{name:?} already has an account"));
            }
            let hash = hash(name)?;
            if !accounts
                .create(name, Some(&hash), role, now)
                .map_err(fail)?
            {
                return Err(format!("{name:?} already has an account"));
            }
            println!("added {name} ({})", role.as_str());
        }
        ["passwd", name] => {
            if accounts.find(name).map_err(fail)?.is_none() {
                return Err(format!("no account {name:?}"));
            }
            let hash = hash(name)?;
            accounts.set_hash(name, &hash).map_err(fail)?;
            accounts.revoke_all(name).map_err(fail)?;
            println!("password of {name} changed; its sessions were revoked");
        }
        ["delete", name] => {
            if !accounts.delete(name).map_err(fail)? {
                return Err(format!("no account {name:?}"));
            }
            println!("deleted {name}");
        }
        ["list"] => {
            for (name, role) in accounts.all().map_err(fail)? {
                println!("{name}\t{}", role.as_str());
            }
        }
        ["role", name, role] => {
            let role = parse_role(role)?;
            if !accounts.set_role(name, role).map_err(fail)? {
                return Err(format!("no account {name:?}"));
            }
            println!("{name} is now {}", role.as_str());
        }
        _ => return Err(USER_USAGE.to_owned()),
    }
    accounts.changed().map_err(fail)
}

/// A password: the first line of `file`, or asked on the terminal without
/// echo, or the first line of stdin when it is not a terminal.
fn read_password(name: &str, file: Option<&str>) -> Result<String, String> {
    let first_line = |text: &str| text.lines().next().unwrap_or("").to_owned();
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        return Ok(first_line(&text));
    }
    let mut line = String::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        return Ok(first_line(&line));
    }
    let stty = |arg: &str| {
        std::fs::File::open("/dev/tty")
            .and_then(|tty| {
                std::process::Command::new("stty")
                    .arg(arg)
                    .stdin(tty)
                    .status()
            })
            .is_ok_and(|s| s.success())
    };
    eprint!("password for {name}: ");
    let hidden = stty("-echo");
    let read = std::io::stdin().read_line(&mut line);
    if hidden {
        stty("echo");
    }
    eprintln!();
    read.map_err(|e| e.to_string())?;
    Ok(first_line(&line))
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
                println!("switchboard {}", switchboard::VERSION);
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
                let switch = switchboard::config::flags()
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
