//! The limits that stand between one address or one client and everyone
//! else (part of the one table, see [`flags`](super::flags::flags)):
//! connections per address, their rate, deadlines for things begun, and
//! the server's memory budget. README "Limits and abuse" says what a
//! client sees at each.

use super::flags::{count, duration, size, Flag, Kind};

/// The limits against abuse.
pub(super) const LIMITS: &[Flag] = &[
    Flag {
        name: "max-per-ip",
        kind: Kind::Count,
        default: "0",
        help: "connections one address (IPv6: one /64) may have open at once; one more gets `429` (0: a quarter of `--max-connections`)",
        set: |c, v| {
            c.max_per_ip = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "connect-rate",
        kind: Kind::Count,
        default: "20",
        help: "new connections per second one address may open, in bursts of up to ten seconds' worth; faster gets `429` with `Retry-After` (0: no limit)",
        set: |c, v| {
            c.connect_rate = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "frame-timeout",
        kind: Kind::Duration,
        default: "30s",
        help: "a frame (or fragmented message) that has begun must be complete within this long, else Close 1008 `frame timeout` (a trickled frame cannot keep a worker)",
        set: |c, v| {
            c.frame_timeout = duration(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-buffered",
        kind: Kind::Size,
        default: "64MiB",
        help: "bytes held for peers in all (partial messages received, queues not yet written, echoes and history replies included); past it the largest holder is closed: 1009 for a partial message, 1008 `slow consumer` for an unread queue",
        set: |c, v| {
            c.max_buffered = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "trusted-proxy",
        kind: Kind::Cidrs,
        default: "-",
        help: "CIDR blocks (comma-separated, or the flag repeated) of reverse proxies whose `X-Forwarded-For` / `X-Real-IP` name the client: its address is then the one used for logs, per-address limits and bans; from anyone else those headers are ignored",
        set: |c, v| {
            for block in v.split(',').filter(|b| !b.trim().is_empty()) {
                let cidr = super::Cidr::parse(block.trim());
                c.trusted_proxies.push(cidr.map_err(|_| String::new())?);
            }
            Ok(())
        },
    },
];
