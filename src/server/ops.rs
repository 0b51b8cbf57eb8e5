//! The operator's routes: `/metrics` (Prometheus), `/status` (a live page)
//! and `/status.json` (what the page draws). They tell how busy the
//! server is, so they are not for everyone:
//!
//! - on `--metrics-listen`'s own listener, anyone who can reach it may
//!   read them (bind it to loopback or a private network); that listener
//!   serves nothing else but `/healthz`;
//! - on the main listener, only clients in `--metrics-allow` (default
//!   loopback; the address is the real client's, after `--trusted-proxy`:
//!   a request from a trusted proxy that names no client is refused) and,
//!   for the status page, a signed-in admin (the page's session cookie);
//!   anyone else gets the same 404 as for a path that does not exist,
//!   whatever the method.

use std::net::SocketAddr;

use crate::chat::identity::Rank;
use crate::http::{cookie, Request, Response};

use super::listener::Door;
use super::shared::Shared;
use super::{metrics, status};

/// An operator's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Status,
    StatusJson,
}

impl Route {
    pub fn of(path: &str) -> Option<Route> {
        match path {
            "/metrics" => Some(Route::Metrics),
            "/status" => Some(Route::Status),
            "/status.json" => Some(Route::StatusJson),
            _ => None,
        }
    }
}

/// The answer to an operator's route, or `None` for a 404 (not allowed
/// here, or not an operator's route on the metrics listener).
pub fn answer(
    route: Route,
    request: &Request,
    (client, tcp_peer): (SocketAddr, SocketAddr),
    door: Door,
    shared: &Shared,
) -> Option<Response> {
    let proxied = super::forwarded::is_trusted(&shared.config.trusted_proxies, tcp_peer.ip());
    // A request a trusted proxy forwarded without naming its client
    // would pass for the proxy itself (loopback, usually): never allowed.
    let anonymous = proxied && client.ip() == tcp_peer.ip();
    let allowed = door == Door::Metrics
        || (!anonymous
            && shared
                .config
                .metrics_allow
                .iter()
                .any(|block| block.contains(client.ip())))
        || (route != Route::Metrics && is_admin(request, shared));
    if !allowed {
        return None;
    }
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return Some(Response::text(405, "method not allowed").with_header("Allow", "GET, HEAD"));
    }
    let no_store = |r: Response| r.with_header("Cache-Control", "no-store");
    Some(match route {
        Route::Metrics => no_store(Response::new(
            200,
            metrics::CONTENT_TYPE,
            metrics::render(shared),
        )),
        Route::Status => no_store(Response::new(200, "text/html; charset=utf-8", status::PAGE)),
        Route::StatusJson => no_store(Response::new(200, "application/json", status::json(shared))),
    })
}

/// Does the request carry the session cookie of an admin (from a page of
/// this server)?
fn is_admin(request: &Request, shared: &Shared) -> bool {
    let Some(gate) = shared.gate.as_deref() else {
        return false;
    };
    request
        .header("Cookie")
        .and_then(|c| cookie::get(c, cookie::SESSION))
        .and_then(|token| gate.check_token(token).ok())
        .is_some_and(|signed| signed.rank == Rank::Admin)
}
