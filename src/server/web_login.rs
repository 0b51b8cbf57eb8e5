//! `POST /login` and `POST /logout`: the browser sign-in that sets an
//! HttpOnly, `SameSite=Lax` session cookie (script on the page never sees
//! the token). Only a page of this server may use them (`Origin` must be
//! its own; see `http::cookie`), and a `/chat` handshake honours the
//! cookie under the same rule, so another site's page cannot borrow it.
//!
//! ```text
//!  POST /login  name=alice&password=...  ─► 200 {"name":..} + Set-Cookie  (401, 429, 403)
//!  POST /logout                          ─► 200 + an expired cookie; the session is revoked
//! ```

use std::io;
use std::time::Instant;

use crate::auth::session;
use crate::http::cookie::{self, SESSION};
use crate::http::{Request, Response};

use super::gate::{Gate, Refused};
use super::socket::{is_timeout, read_more};
use super::transport::Transport;
use crate::chat::messages::ErrorCode;
use crate::config::Config;

/// The largest form body read.
const MAX_BODY: usize = 4096;

/// Is this one of the sign-in routes?
pub fn is_route(request: &Request) -> bool {
    matches!(request.path(), "/login" | "/logout")
}

/// Answer `POST /login` or `POST /logout`; `rest` is what followed the head.
pub fn answer(
    transport: &Transport,
    request: &Request,
    rest: Vec<u8>,
    gate: Option<&Gate>,
    address: &str,
    config: &Config,
) -> io::Result<Response> {
    let json = |status, value: serde_json::Value| {
        Response::new(status, "application/json", value.to_string())
    };
    let Some(gate) = gate else {
        return Ok(Response::text(
            404,
            "this server has no accounts (--auth none)",
        ));
    };
    if request.method != "POST" {
        return Ok(Response::text(405, "method not allowed").with_header("Allow", "POST"));
    }
    if let Some(ban) = gate.address_ban(address) {
        return Ok(Response::text(403, &format!("banned: {}", ban.reason)));
    }
    if !cookie::same_origin(request) {
        return Ok(Response::text(
            403,
            "only a page of this server may sign in here",
        ));
    }
    if request.path() == "/logout" {
        if let Some(token) = request
            .header("Cookie")
            .and_then(|c| cookie::get(c, SESSION))
        {
            let _ = gate.accounts.revoke_session(&session::stored_form(token));
        }
        return Ok(
            json(200, serde_json::json!({})).with_header("Set-Cookie", cookie::cleared_cookie())
        );
    }
    let body = match read_body(transport, request, rest, config)? {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let field = |key| cookie::form_field(&body, key).unwrap_or_default();
    let signed = gate.login(&field("name"), &field("password"), address);
    let refusal = |r: Refused| {
        let status = match r.code {
            ErrorCode::Throttled => 429,
            ErrorCode::Banned => 403,
            ErrorCode::Unavailable => 503,
            _ => 401,
        };
        let mut response = json(
            status,
            serde_json::json!({"code": r.code.as_str(), "message": r.message}),
        );
        if let Some(ms) = r.retry_after_ms {
            response = response.with_header("Retry-After", ms.div_ceil(1000).to_string());
        }
        response
    };
    let signed = match signed {
        Ok(signed) => signed,
        Err(r) => return Ok(refusal(r)),
    };
    let (token, _, expires) = match gate.new_session(&signed.name) {
        Ok(session) => session,
        Err(r) => return Ok(refusal(r)),
    };
    let max_age = config.session_days * 86_400;
    let roles = crate::chat::identity::Standing::Account(signed.rank).roles();
    Ok(json(
        200,
        serde_json::json!({"name": signed.name, "roles": roles, "expires_ms": expires}),
    )
    .with_header("Set-Cookie", cookie::session_cookie(&token, max_age)))
}

/// The request body (`Content-Length` bytes, at most MAX_BODY, within the
/// handshake deadline); `Err` is the answer to a bad one.
fn read_body(
    transport: &Transport,
    request: &Request,
    mut body: Vec<u8>,
    config: &Config,
) -> io::Result<Result<String, Response>> {
    let Some(length) = request
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<usize>().ok())
    else {
        return Ok(Err(Response::text(411, "a Content-Length is needed")));
    };
    if length > MAX_BODY {
        return Ok(Err(Response::text(413, "the form is too large")));
    }
    let deadline = Instant::now() + config.handshake_timeout;
    while body.len() < length {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Err(Response::text(
                408,
                "the form was not received in time",
            )));
        }
        transport.set_read_timeout(Some(left))?;
        let want = length - body.len();
        match read_more(transport, &mut body, want) {
            Ok(0) => return Ok(Err(Response::text(400, "the form ended early"))),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    body.truncate(length);
    Ok(String::from_utf8(body).map_err(|_| Response::text(400, "the form is not UTF-8")))
}
