//! The HTTP/1.1 request head (RFC 9112 §2-5): request line and header fields.
//!
//! ```text
//! GET /chat?name=alice HTTP/1.1\r\n      request line: method SP target SP version
//! Host: localhost:8080\r\n               header field: name ":" OWS value OWS
//! Upgrade: websocket\r\n
//! \r\n                                   an empty line ends the head
//! ```
//!
//! The parser is given everything read so far and answers `Ok(None)` until
//! the empty line has arrived, so the caller can keep reading. The head is
//! limited in size; the limit is checked before the end is found, so a peer
//! that never sends the empty line cannot make us buffer without end.

use std::fmt;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ... as sent (methods are case-sensitive).
    pub method: String,
    /// The request target, path and query: `/chat?name=alice`.
    pub target: String,
    /// The minor version of `HTTP/1.x`.
    pub minor: u8,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers as `(name, value)` string pairs.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The path part of the target: `/chat`.
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("")
    }

    /// The query string without the `?`, if any: `name=alice`.
    pub fn query(&self) -> Option<&str> {
        let rest = self.target.split('#').next()?;
        rest.split_once('?').map(|(_, q)| q)
    }

    /// The decoded value of one query parameter.
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k).as_deref() == Some(key)).then(|| percent_decode(v))?
        })
    }
}

/// Why a request head was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The head is longer than the limit: 431.
    TooLarge { max: usize },
    /// The bytes are not an HTTP/1.x request head: 400.
    Malformed(&'static str),
    /// `HTTP/2.0` and others: 505.
    UnsupportedVersion,
}

impl ParseError {
    /// The HTTP status that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::TooLarge { .. } => 431,
            ParseError::Malformed(_) => 400,
            ParseError::UnsupportedVersion => 505,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooLarge { max } => write!(f, "request head larger than {max} bytes"),
            ParseError::Malformed(why) => write!(f, "malformed request: {why}"),
            ParseError::UnsupportedVersion => {
                write!(f, "only HTTP/1.0 and HTTP/1.1 are spoken here")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Find the end of the head: the index just past the empty line.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = &buf[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// Parse a request head from the start of `buf`.
///
/// Returns `Ok(Some((request, head_len)))` once the whole head is there,
/// `Ok(None)` while it is still arriving (a strict prefix of a valid head is
/// never an error), and an error when it is too large or malformed.
pub fn parse(buf: &[u8], max_head: usize) -> Result<Option<(Request, usize)>, ParseError> {
    let Some(end) = head_end(buf) else {
        if buf.len() >= max_head {
            return Err(ParseError::TooLarge { max: max_head });
        }
        // Fail early on obvious garbage rather than wait for a timeout.
        if let Some(first) = buf.split(|&b| b == b'\n').next() {
            if buf.contains(&b'\n') || first.len() > 16 {
                check_request_line_prefix(first)?;
            }
        }
        return Ok(None);
    };
    if end > max_head {
        return Err(ParseError::TooLarge { max: max_head });
    }
    let head =
        std::str::from_utf8(&buf[..end]).map_err(|_| ParseError::Malformed("head is not utf-8"))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));

    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(ParseError::Malformed("bad method"));
    }
    if !target.starts_with('/') && target != "*" {
        return Err(ParseError::Malformed("target must start with /"));
    }
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        v if v.starts_with("HTTP/") => return Err(ParseError::UnsupportedVersion),
        _ => return Err(ParseError::Malformed("bad HTTP version")),
    };

    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        // RFC 9112 §5.2: obsolete line folding is rejected.
        if line.starts_with([' ', '\t']) {
            return Err(ParseError::Malformed("folded header line"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError::Malformed("header line without ':'"));
        };
        // RFC 9112 §5.1: no whitespace between the name and the colon.
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::Malformed("bad header name"));
        }
        headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    let request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        minor,
        headers,
    };
    Ok(Some((request, end)))
}

/// Reject a first line that can never start a request (TLS, binary junk).
fn check_request_line_prefix(line: &[u8]) -> Result<(), ParseError> {
    let method_len = line.iter().take_while(|&&b| is_token_byte(b)).count();
    if method_len == 0 || (method_len < line.len() && line[method_len] != b' ') {
        return Err(ParseError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    }
    Ok(())
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Decode `%XX` escapes and `+` (as space, the form encoding) in a query
/// component. `None` when the result is not UTF-8 or an escape is broken.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Text from a peer as a log line may hold it: control characters
/// (CR, LF, ESC, ...) are written as `\xNN`, so a peer cannot forge log
/// lines or drive a terminal.
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{:02x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// The request target as logs and `--trace` show it: a `token=` query
/// value is replaced by `[redacted]` (tokens must not end up in logs).
pub fn redacted_target(target: &str) -> std::borrow::Cow<'_, str> {
    let Some((path, query)) = target.split_once('?') else {
        return target.into();
    };
    // The key as the server reads it (percent-decoded: `%74oken` too).
    let is_token =
        |p: &&str| percent_decode(p.split('=').next().unwrap_or("")).as_deref() == Some("token");
    if !query.split('&').any(|p| is_token(&p)) {
        return target.into();
    }
    let query: Vec<&str> = query
        .split('&')
        .map(|p| if is_token(&p) { "token=[redacted]" } else { p })
        .collect();
    format!("{path}?{}", query.join("&")).into()
}

/// A header value as `--trace` shows it: a `bearer.` subprotocol's token
/// and any cookie are replaced by `[redacted]`.
pub fn redacted_header<'a>(name: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    if name.eq_ignore_ascii_case("cookie") || name.eq_ignore_ascii_case("authorization") {
        return "[redacted]".into();
    }
    if !name.eq_ignore_ascii_case("sec-websocket-protocol") || !value.contains("bearer.") {
        return value.into();
    }
    let parts: Vec<&str> = value
        .split(',')
        .map(|p| {
            if p.trim().starts_with("bearer.") {
                " bearer.[redacted]"
            } else {
                p
            }
        })
        .collect();
    parts.join(",").trim().to_owned().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /chat?name=al%20ice HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n";

    #[test]
    fn parses_a_request_head() {
        let (req, len) = parse(UPGRADE, 8192).unwrap().unwrap();
        assert_eq!(len, UPGRADE.len());
        assert_eq!(
            (req.method.as_str(), req.path(), req.minor),
            ("GET", "/chat", 1)
        );
        assert_eq!(req.header("connection"), Some("keep-alive, Upgrade"));
        assert_eq!(req.query_param("name").as_deref(), Some("al ice"));
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        for cut in 0..UPGRADE.len() {
            assert_eq!(
                parse(&UPGRADE[..cut], 8192),
                Ok(None),
                "prefix of {cut} bytes"
            );
        }
    }

    #[test]
    fn bytes_after_the_head_are_left_alone() {
        let mut wire = UPGRADE.to_vec();
        wire.extend([0x81, 0x80, 1, 2, 3, 4]);
        let (_, len) = parse(&wire, 8192).unwrap().unwrap();
        assert_eq!(&wire[len..], &[0x81, 0x80, 1, 2, 3, 4]);
    }

    #[test]
    fn a_head_over_the_limit_is_refused_even_unfinished() {
        let mut wire = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        wire.extend(vec![b'a'; 300]);
        assert_eq!(parse(&wire, 256), Err(ParseError::TooLarge { max: 256 }));
        assert_eq!(ParseError::TooLarge { max: 256 }.status(), 431);
    }

    #[test]
    fn malformed_heads_are_400() {
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls hello\r\n",
        ] {
            let e = parse(bad, 8192).unwrap_err();
            assert_eq!(e.status(), 400, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn http_2_is_505() {
        assert_eq!(
            parse(b"GET / HTTP/2.0\r\n\r\n", 8192),
            Err(ParseError::UnsupportedVersion)
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn control_characters_are_escaped_for_logs() {
        assert_eq!(
            escaped("/a\r\nFAKE: line\x1b[31m"),
            "/a\\x0d\\x0aFAKE: line\\x1b[31m"
        );
        assert_eq!(escaped("/plain"), "/plain");
    }

    #[test]
    fn tokens_are_redacted_for_logs() {
        assert_eq!(
            redacted_target("/chat?name=a&token=s3cret"),
            "/chat?name=a&token=[redacted]"
        );
        assert_eq!(redacted_target("/chat?name=a"), "/chat?name=a");
        assert_eq!(
            redacted_target("/chat?%74oken=s3cret"),
            "/chat?token=[redacted]"
        );
        assert_eq!(
            redacted_header("Sec-WebSocket-Protocol", "switchboard.v1, bearer.s3cret"),
            "switchboard.v1, bearer.[redacted]"
        );
        assert_eq!(redacted_header("Cookie", "sb=s3cret"), "[redacted]");
        assert_eq!(redacted_header("Host", "x"), "x");
    }
}
