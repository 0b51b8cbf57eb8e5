//! The store's and the accounts' flags (part of the one table, see
//! [`flags`](super::flags::flags)).

use super::flags::{count, Flag, Kind};
use super::AuthMode;
use std::path::PathBuf;

/// The history database's flags.
pub(super) const STORE: &[Flag] = &[
    Flag {
        name: "db",
        kind: Kind::File,
        default: "switchboard.db",
        help: "the history database (SQLite, created with mode 0600); `:memory:` keeps history in memory only, lost on restart",
        set: |c, v| {
            c.db = PathBuf::from(v);
            Ok(())
        },
    },
    Flag {
        name: "db-reset",
        kind: Kind::Switch,
        default: "off",
        help: "a --db file that is not a usable database is moved aside (named in the log) and a new history starts, instead of refusing to start",
        set: |c, _| {
            c.db_reset = true;
            Ok(())
        },
    },
    Flag {
        name: "durable-acks",
        kind: Kind::Switch,
        default: "off",
        help: "hold each `ack` of a broadcast or topic message until it is committed to the file (it then survives a crash of the process)",
        set: |c, _| {
            c.durable_acks = true;
            Ok(())
        },
    },
    Flag {
        name: "sync",
        kind: Kind::Sync,
        default: "normal",
        help: "`normal`: a commit survives a crash of the process; `full`: each commit is synced to the disk and survives a power loss too",
        set: |c, v| {
            c.sync = match v {
                "normal" => super::SyncMode::Normal,
                "full" => super::SyncMode::Full,
                _ => return Err(String::new()),
            };
            Ok(())
        },
    },
    Flag {
        name: "retain-messages",
        kind: Kind::Count,
        default: "100000",
        help: "messages kept per history stream in the file; older ones are deleted in small batches (0: no limit); with `--redis`, messages kept in Redis's stream, all streams together",
        set: |c, v| {
            c.retain_messages = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "retain-days",
        kind: Kind::Count,
        default: "0",
        help: "days a message is kept in the file (0: no limit)",
        set: |c, v| {
            c.retain_days = count(v)?;
            Ok(())
        },
    },
];

/// Accounts, sign-in and tokens (issue 13; see `docs/PROTOCOL.md`, Accounts).
pub(super) const AUTH: &[Flag] = &[
    Flag {
        name: "auth",
        kind: Kind::Choice("none|optional|required"),
        default: "optional",
        help: "`none`: guests only; `optional`: guests, and accounts own their names; `required`: nothing of the chat before signing in",
        set: |c, v| {
            c.auth = match v {
                "none" => AuthMode::None,
                "optional" => AuthMode::Optional,
                "required" => AuthMode::Required,
                _ => return Err(String::new()),
            };
            Ok(())
        },
    },
    Flag {
        name: "registration",
        kind: Kind::Choice("open|closed"),
        default: "open",
        help: "`open`: anyone may `register`; `closed`: only `switchboard user add` and admins create accounts",
        set: |c, v| {
            c.registration_open = match v {
                "open" => true,
                "closed" => false,
                _ => return Err(String::new()),
            };
            Ok(())
        },
    },
    Flag {
        name: "auth-timeout",
        kind: Kind::Duration,
        default: "10s",
        help: "with `--auth required`, a connection that has not signed in by then is closed (4001)",
        set: |c, v| {
            c.auth_timeout = super::flags::duration(v)?;
            Ok(())
        },
    },
    Flag {
        name: "session-days",
        kind: Kind::Count,
        default: "30",
        help: "days a session token from `login` or `register` stays valid",
        set: |c, v| {
            c.session_days = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "jwt-secret-file",
        kind: Kind::File,
        default: "-",
        help: "accept HS256 JWTs from an application backend, signed with the keys in this file (one `KID SECRET` or `SECRET` per line)",
        set: |c, v| {
            c.jwt_secret_file = Some(v.into());
            Ok(())
        },
    },
    Flag {
        name: "redis",
        kind: Kind::Url,
        default: "-",
        help: "cluster mode: several servers behind a load balancer share one order, names, presence and history through this Redis (`redis://HOST:PORT/DB` or `redis+unix:///PATH?db=N`; see docs/SCALING.md)",
        set: |c, v| {
            // Its own words after "--redis: "URL" is not ...".
            let address = crate::cluster::Address::parse(v).map_err(|e| {
                let why = e.split_once(": ").map_or(e.as_str(), |(_, why)| why);
                format!("a usable redis URL: {why}")
            })?;
            c.redis = Some(address);
            Ok(())
        },
    },
    Flag {
        name: "jwt-audience",
        kind: Kind::Text,
        default: "-",
        help: "JWTs must name this `aud`",
        set: |c, v| {
            c.jwt_audience = Some(v.to_owned());
            Ok(())
        },
    },
    Flag {
        name: "allowed-origins",
        kind: Kind::Text,
        default: "-",
        help: "web pages of other origins that may open a WebSocket, comma-separated `scheme://host[:port]` (`https://*.example.com` for subdomains); our own page and clients that send no `Origin` always may, any other origin gets 403",
        set: |c, v| {
            c.allowed_origins = crate::http::origin::Policy::parse(v)?;
            Ok(())
        },
    },
    Flag {
        name: "allow-query-token",
        kind: Kind::Switch,
        default: "off",
        help: "accept a token in the URL (`/chat?token=...`); it is redacted in the log and `--trace`",
        set: |c, _| {
            c.allow_query_token = true;
            Ok(())
        },
    },
];
