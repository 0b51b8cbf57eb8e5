//! TLS's flags (part of the one table, see [`flags`](super::flags::flags)).

use super::flags::{Flag, Kind};

/// TLS's flags.
pub(super) const TLS: &[Flag] = &[
    Flag {
        name: "tls-cert",
        kind: Kind::File,
        default: "-",
        help: "PEM certificate chain (the server's first): with --tls-key, the listener speaks TLS 1.2/1.3 for everything (https://, wss://); re-read on SIGHUP",
        set: |c, v| {
            c.tls_cert = Some(v.into());
            Ok(())
        },
    },
    Flag {
        name: "tls-key",
        kind: Kind::File,
        default: "-",
        help: "PEM private key of --tls-cert; re-read on SIGHUP (a bad new pair is refused and the old one kept)",
        set: |c, v| {
            c.tls_key = Some(v.into());
            Ok(())
        },
    },
];
