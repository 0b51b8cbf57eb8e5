//! The flags for running a server (part of the one table, see
//! [`flags`](super::flags::flags)): where `/metrics` and `/status` are
//! served and to whom, and how clients are told of a restart. README
//! "Operations" says what each endpoint shows.

use super::flags::{address, duration, Flag, Kind};

pub(super) const OPS: &[Flag] = &[
    Flag {
        name: "metrics-listen",
        kind: Kind::Address,
        default: "-",
        help: "a separate plain-HTTP listener for `/metrics`, `/status` and `/healthz` only (e.g. 127.0.0.1:9100); anyone who reaches it may read them",
        set: |c, v| {
            c.metrics_listen = Some(address(v)?);
            Ok(())
        },
    },
    Flag {
        name: "metrics-allow",
        kind: Kind::Cidrs,
        default: "127.0.0.0/8,::1",
        help: "who may read `/metrics` and `/status` on the main listener (the client's address, after `--trusted-proxy`); others get 404",
        set: |c, v| {
            c.metrics_allow.clear();
            for block in v.split(',').filter(|b| !b.trim().is_empty()) {
                let cidr = super::Cidr::parse(block.trim());
                c.metrics_allow.push(cidr.map_err(|_| String::new())?);
            }
            Ok(())
        },
    },
    Flag {
        name: "restart-spread",
        kind: Kind::Duration,
        default: "10s",
        help: "on shutdown every chat client is told `restarting` with its own random `retry_after_ms` up to this (at most 5m), so they do not all come back in the same second",
        set: |c, v| {
            c.restart_spread = duration(v)?;
            Ok(())
        },
    },
];
