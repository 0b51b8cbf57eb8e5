//! The one table of flags ([`flags`]): the source of the command-line
//! parser ([`Config::set`]), of `--help` ([`help`]) and of the README's
//! configuration table ([`markdown_table`]). Values are parsed here:
//! sizes with units, durations, and numbers converted with `TryFrom`, so
//! a value too large for its field is an error, never wrapped.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use super::Config;

impl Config {
    /// Set one flag (`name` without the dashes) from its text value; a
    /// switch takes no value (`None`).
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), String> {
        let flag = flags()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("unknown flag --{name} (see --help)"))?;
        match (flag.kind, value) {
            (Kind::Switch, None) => (flag.set)(self, ""),
            (Kind::Switch, Some(_)) => Err(format!("--{name} takes no value")),
            (_, None) => Err(format!("--{name} needs a value")),
            (kind, Some(v)) => (flag.set)(self, v)
                .map_err(|what| format!("--{name}: {v:?} is not {}", what_is(kind, &what))),
        }
    }
}

/// What a flag's value is, for `--help` and for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `HOST:PORT`, `:PORT` or `PORT`.
    Address,
    /// A whole number.
    Count,
    /// Bytes, with an optional unit: `65536`, `64KiB`, `16MiB`.
    Size,
    /// `500ms`, `10s`, `2m`, or a plain number of seconds.
    Duration,
    /// A directory.
    Dir,
    /// A log level.
    Level,
    /// A file path.
    File,
    /// `normal` or `full`.
    Sync,
    /// One of the words listed (`a|b|c`).
    Choice(&'static str),
    /// Address blocks: `10.0.0.0/8,fd00::/8`.
    Cidrs,
    /// Any text.
    Text,
    /// A Redis URL.
    Url,
    /// No value: present means on.
    Switch,
}

impl Kind {
    /// The placeholder in `--help`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Kind::Address => "HOST:PORT",
            Kind::Count => "N",
            Kind::Size => "SIZE",
            Kind::Duration => "DUR",
            Kind::Dir => "DIR",
            Kind::Level => "LEVEL",
            Kind::File => "FILE",
            Kind::Sync => "normal|full",
            Kind::Choice(words) => words,
            Kind::Cidrs => "CIDR,...",
            Kind::Text => "TEXT",
            Kind::Url => "URL",
            Kind::Switch => "",
        }
    }
}

/// The error text for a bad value: a setter's own words, or the kind's.
fn what_is(kind: Kind, own: &str) -> String {
    if !own.is_empty() {
        return own.to_owned();
    }
    match kind {
        Kind::Address => "HOST:PORT".into(),
        Kind::Count => "a whole number".into(),
        Kind::Size => "a size (like 65536, 64KiB, 16MiB)".into(),
        Kind::Duration => "a duration (like 500ms, 10s, 2m)".into(),
        Kind::Dir => "a directory".into(),
        Kind::Level => "a log level (error, warn, info, debug, trace)".into(),
        Kind::File => "a file".into(),
        Kind::Sync => "normal or full".into(),
        Kind::Choice(words) => format!("one of {}", words.replace('|', ", ")),
        Kind::Cidrs => "address blocks (like 127.0.0.1,10.0.0.0/8)".into(),
        Kind::Text => "text".into(),
        Kind::Url => "a redis URL (like redis://127.0.0.1:6379/0)".into(),
        Kind::Switch => "a switch".into(),
    }
}

/// One command-line flag: the single source of its name, default and help.
pub struct Flag {
    /// The field name in kebab-case, without the dashes.
    pub name: &'static str,
    pub kind: Kind,
    /// The default as it is written on the command line (`-` for none).
    pub default: &'static str,
    pub help: &'static str,
    /// Parse the value onto the config; `Err("")` means "not a valid
    /// value of this kind", any other text says what is wrong.
    pub(super) set: fn(&mut Config, &str) -> Result<(), String>,
}

/// Every flag of [`Config`], in the order `--help` lists them: the
/// server's here, the limits against abuse in `flags_limits.rs`, the
/// chat's in `flags_chat.rs`, the store's and accounts' in `flags_store.rs`.
pub fn flags() -> impl Iterator<Item = &'static Flag> + Clone {
    CORE.iter()
        .chain(super::flags_tls::TLS.iter())
        .chain(super::flags_limits::LIMITS.iter())
        .chain(super::flags_chat::CHAT.iter())
        .chain(super::flags_store::STORE.iter())
        .chain(super::flags_store::AUTH.iter())
        .chain(super::flags_ops::OPS.iter())
}

/// The server's flags.
const CORE: &[Flag] = &[
    Flag {
        name: "config",
        kind: Kind::File,
        default: "-",
        help: "read settings from this TOML file: `flag-name = value` per line (flags and `SWITCHBOARD_<FLAG>` variables win over it); `switchboard config` shows the result",
        set: |c, v| {
            c.config = Some(PathBuf::from(v));
            Ok(())
        },
    },
    Flag {
        name: "listen",
        kind: Kind::Address,
        default: "0.0.0.0:8080",
        help: "address to listen on; port 0 picks a free one (logged as `listening on ADDR`)",
        set: |c, v| {
            c.listen = address(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-connections",
        kind: Kind::Count,
        default: "1024",
        help: "connections served at once, one worker thread each",
        set: |c, v| {
            c.max_connections = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "thread-stack",
        kind: Kind::Size,
        default: "128KiB",
        help: "stack of every server thread",
        set: |c, v| {
            c.thread_stack = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "handshake-timeout",
        kind: Kind::Duration,
        default: "10s",
        help: "time allowed for the HTTP request head; a fifth of it (at least 1 s) while more than 90% of the workers are taken",
        set: |c, v| {
            c.handshake_timeout = duration(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-header-bytes",
        kind: Kind::Size,
        default: "8KiB",
        help: "largest HTTP request head (431 beyond)",
        set: |c, v| {
            c.max_header_bytes = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-frame",
        kind: Kind::Size,
        default: "16MiB",
        help: "largest frame payload on any route",
        set: |c, v| {
            c.max_frame = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-message",
        kind: Kind::Size,
        default: "64KiB",
        help: "largest message on /chat",
        set: |c, v| {
            c.max_message = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "echo-max-message",
        kind: Kind::Size,
        default: "1MiB",
        help: "largest message on /echo",
        set: |c, v| {
            c.echo_max_message = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-queue",
        kind: Kind::Count,
        default: "4096",
        help: "frames queued for one reader before it is cut off (1008)",
        set: |c, v| {
            c.max_queue = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-queue-bytes",
        kind: Kind::Size,
        default: "4MiB",
        help: "bytes queued for one reader before it is cut off (1008)",
        set: |c, v| {
            c.max_queue_bytes = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "write-timeout",
        kind: Kind::Duration,
        default: "30s",
        help: "drop a connection whose socket takes no byte this long",
        set: |c, v| {
            c.write_timeout = duration(v)?;
            Ok(())
        },
    },
    Flag {
        name: "ping-interval",
        kind: Kind::Duration,
        default: "30s",
        help: "ping a connection that has been quiet this long",
        set: |c, v| {
            c.ping_interval = duration(v)?;
            Ok(())
        },
    },
    Flag {
        name: "idle-timeout",
        kind: Kind::Duration,
        default: "75s",
        help: "close (1001) a connection that sent nothing this long",
        set: |c, v| {
            c.idle_timeout = duration(v)?;
            Ok(())
        },
    },
    Flag {
        name: "close-timeout",
        kind: Kind::Duration,
        default: "2s",
        help: "wait this long for the peer's Close",
        set: |c, v| {
            c.close_timeout = duration(v)?;
            Ok(())
        },
    },
    Flag {
        name: "trace",
        kind: Kind::Switch,
        default: "off",
        help: "log an annotated picture of every connection: TCP events, the handshake, each frame both ways; costs nothing when off",
        set: |c, _| {
            c.trace = true;
            Ok(())
        },
    },
    Flag {
        name: "web-root",
        kind: Kind::Dir,
        default: "-",
        help: "serve the web client from DIR instead of the copy built into the binary",
        set: |c, v| {
            c.web_root = Some(PathBuf::from(v));
            Ok(())
        },
    },
    Flag {
        name: "log-level",
        kind: Kind::Level,
        default: "info",
        help: "`error`, `warn`, `info` (one line per connection), `debug` (handshakes, protocol errors) or `trace`",
        set: |c, v| {
            c.log_level = v.parse().map_err(|_| String::new())?;
            Ok(())
        },
    },
];

/// The flags part of `--help`: one line per flag, default in brackets.
pub fn help() -> String {
    flags()
        .map(|f| {
            let usage = format!("--{} {}", f.name, f.kind.placeholder());
            let default = match f.default {
                "-" => String::new(),
                d => format!(" [{d}]"),
            };
            format!("  {usage:<28}{}{default}\n", f.help.replace('`', ""))
        })
        .collect()
}

/// The README's configuration table, as Markdown.
pub fn markdown_table() -> String {
    let mut table = String::from("| flag | default | what |\n|---|---|---|\n");
    for f in flags() {
        let default = match f.default {
            "-" => "none".to_owned(),
            d => format!("`{d}`"),
        };
        table.push_str(&format!("| `--{}` | {default} | {} |\n", f.name, f.help));
    }
    table
}

/// `8080`, `:8080`, `127.0.0.1:8080`, `localhost:8080`, `[::1]:8080`.
pub(super) fn address(v: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = v.trim_start_matches(':').parse::<u16>() {
        return Ok(([0, 0, 0, 0], port).into());
    }
    v.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_default()
}

/// A whole number that fits the field: `--rate 4294967297` is an error,
/// not 1.
pub(super) fn count<T: TryFrom<u64>>(v: &str) -> Result<T, String> {
    let n: u64 = v.trim().parse().map_err(|_| String::new())?;
    T::try_from(n).map_err(|_| format!("a whole number that fits (at most {})", max_of::<T>()))
}

/// The largest value a `T` takes, for the error message.
fn max_of<T: TryFrom<u64>>() -> u64 {
    // Binary search for the largest u64 that converts.
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo) / 2 + 1;
        if T::try_from(mid).is_ok() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
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

/// `65536`, `64KiB`, `64k`, `16MiB`, `16m`, converted to the field's type.
pub(super) fn size<T: TryFrom<u64>>(v: &str) -> Result<T, String> {
    let (n, unit) = number_and_unit(v).ok_or_default()?;
    let scale: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(String::new()),
    };
    let bytes = n
        .checked_mul(scale)
        .ok_or_else(|| "a size that fits in 64 bits".to_owned())?;
    T::try_from(bytes).map_err(|_| format!("a size of at most {} bytes", max_of::<T>()))
}

/// `10s`, `500ms`, `2m`, or a plain number of seconds.
pub(super) fn duration(v: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(v).ok_or_default()?;
    match unit.as_str() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(String::new()),
    }
}

/// `None` as "not a valid value of this kind".
trait OkOrDefault<T> {
    fn ok_or_default(self) -> Result<T, String>;
}

impl<T> OkOrDefault<T> for Option<T> {
    fn ok_or_default(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

#[cfg(test)]
#[path = "flags_tests.rs"]
mod tests;
