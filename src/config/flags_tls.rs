//! TLS's flags (part of the one table, see [`flags`](super::flags::flags)).

use super::flags::{address, Flag, Kind};

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
    Flag {
        name: "listen-plain",
        kind: Kind::Address,
        default: "-",
        help: "with TLS: a second listener without it, serving the same (for a local reverse proxy or a health checker; keep it on loopback)",
        set: |c, v| {
            c.listen_plain = Some(address(v)?);
            Ok(())
        },
    },
    Flag {
        name: "redirect-http",
        kind: Kind::Address,
        default: "-",
        help: "with TLS: a listener that answers every plain request with `308` to the same path over https",
        set: |c, v| {
            c.redirect_http = Some(address(v)?);
            Ok(())
        },
    },
];
