//! The opening handshake, server side (RFC 6455 §4.2).
//!
//! ```text
//! client                                         server
//!   GET /chat HTTP/1.1
//!   Host: example.com
//!   Upgrade: websocket
//!   Connection: Upgrade
//!   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
//!   Sec-WebSocket-Version: 13          ───────►
//!                                               HTTP/1.1 101 Switching Protocols
//!                                               Upgrade: websocket
//!                                               Connection: Upgrade
//!                                      ◄─────── Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
//! ```
//!
//! The accept value proves the server read the key: it is
//! `base64(SHA-1(key + GUID))` (§4.2.2, step 5.4), where the GUID is a fixed
//! string that no other protocol uses. After the 101 both sides speak
//! frames.
//!
//! This module takes the request's method, HTTP version and `(name, value)`
//! header pairs, so it needs no HTTP parser of its own.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::fmt;

/// The GUID of §1.3, appended to the client's key.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this server speaks (§4.1, §11.6).
pub const VERSION: &str = "13";

/// `base64(SHA-1(key + GUID))`: the `Sec-WebSocket-Accept` value.
///
/// ```
/// use switchboard::protocol::handshake::accept_key;
/// // The example of RFC 6455 §1.3.
/// assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.digest().bytes())
}

/// Why an upgrade request was refused. Each maps to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// §4.1: "The method of the request MUST be GET". 405.
    MethodNotGet,
    /// §4.1: "the HTTP version MUST be at least 1.1". 400.
    HttpVersionTooOld,
    /// §4.1: the request "MUST contain a |Host| header field". 400.
    MissingHost,
    /// No `Upgrade: websocket`: this is not a WebSocket request. 426.
    NotWebSocket,
    /// `Upgrade: websocket` without the `Upgrade` token in `Connection`. 400.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` missing or not 13. 426 with our version.
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` missing, or not base64 of exactly 16 bytes. 400.
    BadKey,
}

impl Error {
    /// The HTTP status code that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            Error::MethodNotGet => 405,
            Error::NotWebSocket | Error::UnsupportedVersion => 426,
            _ => 400,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::MethodNotGet => "the method of a websocket upgrade must be GET",
            Error::HttpVersionTooOld => "a websocket upgrade needs HTTP/1.1 or later",
            Error::MissingHost => "the request has no Host header",
            Error::NotWebSocket => "this route speaks websocket: send Upgrade: websocket",
            Error::MissingConnectionUpgrade => "Connection header must contain the Upgrade token",
            Error::UnsupportedVersion => "Sec-WebSocket-Version must be 13",
            Error::BadKey => "Sec-WebSocket-Key must be base64 of exactly 16 bytes",
        })
    }
}

impl std::error::Error for Error {}

/// A checked upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The client's `Sec-WebSocket-Key`, as sent.
    pub key: String,
    /// The `Sec-WebSocket-Accept` value computed from it.
    pub accept: String,
}

/// Does a comma-separated header value list contain `token`
/// (case-insensitively)? `Connection: keep-alive, Upgrade` contains
/// `upgrade`.
pub fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Check an upgrade request (§4.2.1) and compute its accept key.
///
/// `http_minor` is the minor version of `HTTP/1.x`; `headers` are the
/// request's header fields, names in any case. A header that appears more
/// than once counts as one comma-separated list (RFC 9110 §5.3).
pub fn check<'a>(
    method: &str,
    http_minor: u8,
    headers: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<Upgrade, Error> {
    let values = |name: &str| {
        headers
            .clone()
            .into_iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
    };
    let contains = |name: &str, token: &str| values(name).iter().any(|v| has_token(v, token));

    if method != "GET" {
        return Err(Error::MethodNotGet);
    }
    if http_minor < 1 {
        return Err(Error::HttpVersionTooOld);
    }
    if values("host").is_empty() {
        return Err(Error::MissingHost);
    }
    if !contains("upgrade", "websocket") {
        return Err(Error::NotWebSocket);
    }
    if !contains("connection", "upgrade") {
        return Err(Error::MissingConnectionUpgrade);
    }
    // §4.4: a version the server does not speak gets 426 and the versions
    // it does speak.
    if !contains("sec-websocket-version", VERSION) {
        return Err(Error::UnsupportedVersion);
    }
    let keys = values("sec-websocket-key");
    let [key] = keys.as_slice() else {
        return Err(Error::BadKey);
    };
    let key = key.trim();
    // §4.2.1: "a base64-encoded value that, when decoded, is 16 bytes in length".
    match BASE64.decode(key) {
        Ok(bytes) if bytes.len() == 16 => {}
        _ => return Err(Error::BadKey),
    }
    Ok(Upgrade {
        key: key.to_owned(),
        accept: accept_key(key),
    })
}

/// The 101 response that completes the handshake (§4.2.2).
pub fn response(accept: &str) -> String {
    response_with(accept, None)
}

/// The 101, naming the subprotocol chosen from the client's offer
/// (§4.2.2 item 5.4: only one it offered).
pub fn response_with(accept: &str, protocol: Option<&str>) -> String {
    let protocol =
        protocol.map_or_else(String::new, |p| format!("Sec-WebSocket-Protocol: {p}\r\n"));
    format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\
         {protocol}\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn browser_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Origin", "http://example.com"),
            ("Sec-WebSocket-Version", "13"),
        ]
    }

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        browser_headers()
            .into_iter()
            .filter(|(n, _)| *n != name)
            .collect()
    }

    fn with(name: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut h = without(name);
        h.push((name, value));
        h
    }

    /// RFC 6455 §1.3: the sample nonce and its accept value.
    #[test]
    fn rfc_1_3_accept_key() {
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn accepts_a_browser_upgrade() {
        let up = check("GET", 1, browser_headers()).unwrap();
        assert_eq!(up.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let response = response(&up.accept);
        assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(response.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[test]
    fn header_names_and_tokens_are_case_insensitive() {
        let h = vec![
            ("HOST", "x"),
            ("upgrade", "WebSocket"),
            ("CONNECTION", "UPGRADE"),
            ("sec-websocket-key", KEY),
            ("SEC-WEBSOCKET-VERSION", "13"),
        ];
        assert!(check("GET", 1, h).is_ok());
    }

    #[test]
    fn rejects_methods_other_than_get() {
        assert_eq!(
            check("POST", 1, browser_headers()),
            Err(Error::MethodNotGet)
        );
        assert_eq!(Error::MethodNotGet.status(), 405);
    }

    #[test]
    fn rejects_http_1_0() {
        assert_eq!(
            check("GET", 0, browser_headers()),
            Err(Error::HttpVersionTooOld)
        );
    }

    #[test]
    fn requires_host() {
        assert_eq!(check("GET", 1, without("Host")), Err(Error::MissingHost));
    }

    #[test]
    fn requires_upgrade_websocket() {
        assert_eq!(
            check("GET", 1, without("Upgrade")),
            Err(Error::NotWebSocket)
        );
        assert_eq!(
            check("GET", 1, with("Upgrade", "h2c")),
            Err(Error::NotWebSocket)
        );
        assert_eq!(Error::NotWebSocket.status(), 426);
    }

    #[test]
    fn requires_the_upgrade_token_in_connection() {
        let e = check("GET", 1, with("Connection", "keep-alive")).unwrap_err();
        assert_eq!(
            (e.clone(), e.status()),
            (Error::MissingConnectionUpgrade, 400)
        );
    }

    #[test]
    fn other_versions_get_426() {
        for v in ["8", "12", "14", ""] {
            let h = with("Sec-WebSocket-Version", v);
            assert_eq!(check("GET", 1, h), Err(Error::UnsupportedVersion));
        }
        assert_eq!(
            check("GET", 1, without("Sec-WebSocket-Version")),
            Err(Error::UnsupportedVersion)
        );
        assert_eq!(Error::UnsupportedVersion.status(), 426);
    }

    #[test]
    fn key_must_decode_to_16_bytes() {
        for key in [
            "",
            "not base64!",
            "dGhlIHNhbXBsZSBub25jZQ",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(
                check("GET", 1, with("Sec-WebSocket-Key", key)),
                Err(Error::BadKey),
                "key {key:?}"
            );
        }
        assert_eq!(
            check("GET", 1, without("Sec-WebSocket-Key")),
            Err(Error::BadKey)
        );
    }
}
