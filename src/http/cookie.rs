//! Cookies and origins for the browser sign-in path (RFC 6265 §4.2,
//! RFC 6454 §7): `POST /login` sets an HttpOnly, `SameSite=Lax` session
//! cookie, and a WebSocket handshake may carry it. A browser sends cookies
//! with a cross-site WebSocket handshake too, so the cookie is honoured
//! only when the handshake's `Origin` is the server's own (the same host
//! and port the browser asked for): another site's page gets a guest.

use super::request::{percent_decode, Request};

/// The session cookie's name.
pub const SESSION: &str = "switchboard_session";

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`).
pub fn get<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Is the request from a page of this server? True when its `Origin`
/// names the same host (and port) as its `Host`; false without either.
pub fn same_origin(request: &Request) -> bool {
    let (Some(origin), Some(host)) = (request.header("Origin"), request.header("Host")) else {
        return false;
    };
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    authority.eq_ignore_ascii_case(host.trim())
}

/// The `Set-Cookie` value of a new session, valid `max_age_s` seconds.
pub fn session_cookie(token: &str, max_age_s: u64) -> String {
    format!("{SESSION}={token}; Max-Age={max_age_s}; Path=/; HttpOnly; SameSite=Lax")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie() -> String {
    format!("{SESSION}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax")
}

/// One field of an `application/x-www-form-urlencoded` body.
pub fn form_field(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let plus = |s: &str| s.replace('+', " ");
        (percent_decode(&plus(k)).as_deref() == Some(key)).then(|| percent_decode(&plus(v)))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            target: "/chat".into(),
            minor: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn only_a_page_of_this_server_is_same_origin() {
        let host = ("Host", "chat.example:8080");
        assert!(same_origin(&request(&[
            host,
            ("Origin", "http://chat.example:8080")
        ])));
        assert!(same_origin(&request(&[
            host,
            ("Origin", "https://CHAT.example:8080")
        ])));
        assert!(!same_origin(&request(&[
            host,
            ("Origin", "https://evil.example")
        ])));
        assert!(!same_origin(&request(&[
            host,
            ("Origin", "http://chat.example:8081")
        ])));
        assert!(
            !same_origin(&request(&[host])),
            "no Origin: not a browser page"
        );
        assert!(!same_origin(&request(&[host, ("Origin", "null")])));
    }

    #[test]
    fn cookies_and_form_fields_are_found_by_name() {
        assert_eq!(get("a=1; switchboard_session=xyz", SESSION), Some("xyz"));
        assert_eq!(get("xswitchboard_session=1", SESSION), None);
        assert_eq!(
            form_field("name=al%20ice&password=a+b", "password").as_deref(),
            Some("a b")
        );
        assert_eq!(form_field("name=alice", "password"), None);
        assert!(session_cookie("t", 60).contains("HttpOnly; SameSite=Lax"));
    }
}
