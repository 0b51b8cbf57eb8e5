//! One client, from accept to close: the HTTP phase (RFC 7230 request
//! head, RFC 6455 §4.2 opening handshake), then the WebSocket part
//! (`websocket.rs`) if it is an upgrade.
//!
//! ```text
//! worker thread
//!   read request head (deadline: handshake_timeout, size: max_header_bytes)
//!   ├─ plain GET /healthz, /, static file ─► response, close
//!   ├─ bad request ─────────────────────────► 400/404/405/426/431, close
//!   └─ valid upgrade on /chat or /echo ─────► 101 ─► websocket::serve
//! ```
//!
//! The connection's socket lives in one `Arc<Transport>`, registered with
//! [`Shared`] so that shutdown can close or cut it: one descriptor per
//! connection, whatever shares it.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use crate::chat::messages::ErrorCode;
use crate::http::cookie;
use crate::http::request::{escaped, redacted_target};
use crate::http::{request, Request, Response};
use crate::protocol::handshake;

use super::files;
use super::forwarded;
use super::gate::{self, SignedIn};
use super::handlers::Route;
use super::listener::{self, Admitted, Door};
use super::narrate;
use super::routes::{plain_route, Plain};
use super::shared::Shared;
use super::socket::{is_timeout, linger_close, read_more, READ_CHUNK};
use super::tls::TlsConn;
use super::transport::Transport;
use super::web_login;
use super::websocket;

/// Serve one accepted connection on the current (worker) thread.
pub fn serve(stream: TcpStream, peer: SocketAddr, id: u64, door: Door, shared: &Arc<Shared>) {
    let tls = shared.tls.as_ref().filter(|_| door == Door::Main);
    let transport = match tls {
        None => Transport::Plain(stream),
        Some(tls) => match TlsConn::new(stream, tls.config()) {
            Ok(conn) => Transport::Tls(Box::new(conn)),
            Err(e) => {
                log::warn!("conn={id} peer={peer} no TLS session: {e}");
                return;
            }
        },
    };
    let transport = Arc::new(transport);
    transport.set_nodelay();
    shared.register(id, &transport);
    // Unregistered however this function ends (a panic too), so the table
    // never keeps a descriptor alive.
    let _registered = Registered { shared, id };
    if shared.config.trace {
        narrate::accepted(id, peer);
    }
    if let Err(e) = serve_http(&transport, peer, id, door, shared) {
        log::debug!("conn={id} peer={peer} i/o error: {e}");
    }
}

/// The client's address: `peer`, or, when `peer` is a trusted proxy, the
/// one its `X-Forwarded-For` / `X-Real-IP` names, admitted against that
/// address's limits (429 if it is over them). The proxy's port is kept,
/// so log lines still tell its connections apart.
fn behind_proxy(
    peer: SocketAddr,
    id: u64,
    request: &Request,
    shared: &Arc<Shared>,
) -> Result<(SocketAddr, Option<Admitted>), Response> {
    let trusted = &shared.config.trusted_proxies;
    if !forwarded::is_trusted(trusted, peer.ip()) {
        return Ok((peer, None));
    }
    let client = forwarded::client_address(peer.ip(), request.header_pairs(), trusted);
    match listener::admit(shared, client) {
        Ok(admitted) => {
            log::debug!("conn={id} client={client} via proxy {peer}");
            Ok((SocketAddr::new(client, peer.port()), Some(admitted)))
        }
        Err((verdict, retry_after_s)) => {
            shared.stats.count(&shared.stats.rejected_per_ip);
            log::warn!("conn={id} client={client} via proxy {peer} refused (429): {verdict:?}");
            Err(super::refuse::per_ip(retry_after_s))
        }
    }
}

/// A connection's entry in the live-connection table, removed on drop.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}

/// Read the request head and answer it.
fn serve_http(
    transport: &Arc<Transport>,
    peer: SocketAddr,
    id: u64,
    door: Door,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let config = &shared.config;
    // Every write of the HTTP phase (an answer, a streamed file, the 101)
    // gives up on a client that does not read.
    transport.set_write_timeout(Some(config.write_timeout))?;
    let reply = |request: Option<&Request>, response: Response| {
        respond(transport, peer, id, config.trace, request, response)
    };
    let (request, rest) = match read_head(
        transport,
        config.max_header_bytes,
        shared.handshake_timeout(),
    )? {
        Head::Request(request, rest) => (request, rest),
        Head::Closed => return Ok(()),
        Head::TimedOut => {
            shared.stats.count(&shared.stats.rejected_handshake);
            return reply(
                None,
                Response::text(408, "request head not received in time"),
            );
        }
        Head::Bad(e) => {
            shared.stats.count(&shared.stats.rejected_handshake);
            return reply(None, Response::text(e.status(), &e.to_string()));
        }
    };
    if config.trace {
        narrate::request(id, &request);
    }
    if door == Door::Redirect {
        let to = super::doors::redirect(
            request.header("Host"),
            &request.target,
            config.listen.port(),
        );
        let response = match to {
            Some(to) => Response::text(308, "use https").with_header("Location", to),
            None => Response::text(400, "a Host header is needed to redirect to https"),
        };
        return reply(Some(&request), response);
    }
    // Behind a trusted proxy the client is the one the head names: it is
    // counted, logged, limited and banned by that address from here on.
    let tcp_peer = peer;
    let (peer, _admitted) = match behind_proxy(peer, id, &request, shared) {
        Ok(client) => client,
        Err(response) => return reply(Some(&request), response),
    };
    let reply = |request: Option<&Request>, response: Response| {
        respond(transport, peer, id, config.trace, request, response)
    };
    // The operator's routes, where this client may see them (`ops.rs`);
    // the metrics listener serves nothing else but `/healthz`.
    let op = super::ops::Route::of(request.path());
    if op.is_some() || (door == Door::Metrics && request.path() != "/healthz") {
        let who = (peer, tcp_peer);
        let answer = op.and_then(|op| super::ops::answer(op, &request, who, door, shared));
        return reply(
            Some(&request),
            answer.unwrap_or_else(|| Response::text(404, "not found")),
        );
    }
    if web_login::is_route(&request) {
        let address = gate::address_key(peer.ip());
        let gate = shared.gate.as_deref();
        let response = web_login::answer(transport, &request, rest, gate, &address, config)?;
        return reply(Some(&request), response);
    }
    let Some(route) = Route::of(request.path()) else {
        return match plain_route(request.path(), &request, shared) {
            Plain::Response(response) => reply(Some(&request), response),
            Plain::File(file, len, response) => {
                let head_only = request.method == "HEAD";
                log::info!(
                    "conn={id} peer={peer} {} {} -> 200 ({len} bytes)",
                    escaped(&request.method),
                    escaped(&redacted_target(&request.target))
                );
                files::send(transport, file, len, &response.head_for(len), head_only)?;
                linger_close(transport);
                Ok(())
            }
        };
    };
    let upgrade = match handshake::check(&request.method, request.minor, request.header_pairs()) {
        Ok(upgrade) => upgrade,
        Err(e) => {
            log::debug!("conn={id} peer={peer} handshake refused: {e}");
            shared.stats.count(&shared.stats.rejected_handshake);
            return reply(Some(&request), refusal(&e));
        }
    };
    log::debug!(
        "conn={id} handshake ok: key={} accept={}",
        upgrade.key,
        upgrade.accept
    );
    let origin = request.header("Origin");
    if !shared.origins().allows(origin, request.header("Host")) {
        shared.stats.count(&shared.stats.refused_origins);
        log::info!(
            "conn={id} peer={peer} origin {} refused (see --allowed-origins)",
            escaped(origin.unwrap_or(""))
        );
        return reply(
            Some(&request),
            Response::text(403, "this page's origin may not open a WebSocket here"),
        );
    }
    let address: Arc<str> = Arc::from(gate::address_key(peer.ip()));
    let (signed, protocol) = match route {
        Route::Chat => match admit(&request, &address, shared) {
            Ok(admitted) => admitted,
            Err(response) => {
                shared.stats.count(&shared.stats.rejected_auth);
                return reply(Some(&request), response);
            }
        },
        Route::Echo => (None, None),
    };
    let response = handshake::response_with(&upgrade.accept, protocol);
    if config.trace {
        narrate::upgrade(id, &upgrade.key, &upgrade.accept, &response);
    }
    transport.write_all(response.as_bytes())?;
    shared.stats.count(&shared.stats.upgrades);
    let name = request.query_param("name");
    // Logged here, before `websocket`'s frame is on the stack: the deepest
    // call an idle worker ever makes sets how much of its stack stays
    // resident, and formatting a log line is deep (one page per idle
    // connection, measured).
    log::info!("conn={id} peer={peer} route={} open", route.path());
    let opening = websocket::Opening {
        route,
        name: name.as_deref(),
        signed,
        address,
    };
    websocket::serve(transport, peer, id, opening, rest, shared)
}

/// The subprotocol our clients offer (with `bearer.TOKEN` beside it).
const SUBPROTOCOL: &str = "switchboard.v1";

/// The chat's admission in the HTTP phase (before the 101): a banned
/// address gets 403; a token in `Sec-WebSocket-Protocol: switchboard.v1,
/// bearer.TOKEN`, the session cookie (from a page of this server only) or
/// (with `--allow-query-token`) `?token=` must be good (401 if not, 403 if
/// its account is banned). The subprotocol to answer,
/// and who the token signs in.
fn admit(
    request: &Request,
    address: &str,
    shared: &Shared,
) -> Result<(Option<SignedIn>, Option<&'static str>), Response> {
    let offered: Vec<&str> = request
        .header("Sec-WebSocket-Protocol")
        .map(|v| v.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let protocol = offered.contains(&SUBPROTOCOL).then_some(SUBPROTOCOL);
    let Some(gate) = shared.gate.as_deref() else {
        return Ok((None, protocol));
    };
    if let Some(ban) = gate.address_ban(address) {
        return Err(Response::text(403, &format!("banned: {}", ban.reason)));
    }
    let bearer = offered.iter().find_map(|p| p.strip_prefix("bearer."));
    let query = request.query_param("token");
    if query.is_some() && !gate.allow_query_token {
        return Err(Response::text(
            400,
            "tokens in the URL are not accepted here (the server needs --allow-query-token)",
        ));
    }
    // The cookie of `POST /login`, only from a page of this server.
    let cookie = request
        .header("Cookie")
        .and_then(|c| cookie::get(c, cookie::SESSION))
        .filter(|_| cookie::same_origin(request));
    let from_cookie = bearer.is_none() && query.is_none() && cookie.is_some();
    let Some(token) = bearer.or(cookie).map(str::to_owned).or(query) else {
        return Ok((None, protocol));
    };
    match gate.check_token(&token) {
        Ok(signed) => Ok((Some(signed), protocol)),
        Err(refused) if refused.code == ErrorCode::Banned => {
            Err(Response::text(403, &refused.message))
        }
        // A stale cookie (logged out elsewhere, expired) cannot be cleared
        // by script (HttpOnly): the page gets a guest, not a lock-out.
        Err(_) if from_cookie => Ok((None, protocol)),
        Err(refused) => Err(Response::text(401, &refused.message)),
    }
}

/// The answer to a refused handshake, with the headers §4.2.2 and
/// RFC 7231 ask for.
fn refusal(e: &handshake::Error) -> Response {
    let response = Response::text(e.status(), &e.to_string());
    match e {
        handshake::Error::MethodNotGet => response.with_header("Allow", "GET"),
        handshake::Error::NotWebSocket | handshake::Error::UnsupportedVersion => response
            .with_header("Upgrade", "websocket")
            .with_header("Sec-WebSocket-Version", handshake::VERSION),
        _ => response,
    }
}

/// Answer a plain HTTP request, log it, and close gently.
fn respond(
    transport: &Transport,
    peer: SocketAddr,
    id: u64,
    trace: bool,
    request: Option<&Request>,
    response: Response,
) -> io::Result<()> {
    let head_only = request.is_some_and(|r| r.method == "HEAD");
    let (method, target) = request.map_or(("-", "-"), |r| (r.method.as_str(), r.target.as_str()));
    log::info!(
        "conn={id} peer={peer} {} {} -> {}",
        escaped(method),
        escaped(&redacted_target(target)),
        response.status
    );
    if trace {
        narrate::response(id, &response.to_bytes(true));
    }
    transport.write_all(&response.to_bytes(head_only))?;
    linger_close(transport);
    Ok(())
}

enum Head {
    Request(Request, Vec<u8>),
    Closed,
    TimedOut,
    Bad(request::ParseError),
}

/// Read until the request head is complete, within the deadline and the
/// size limit. Bytes after the head (a client may send its first frames
/// right behind it) are returned too.
fn read_head(transport: &Transport, max: usize, timeout: std::time::Duration) -> io::Result<Head> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        match request::parse(&buf, max) {
            Ok(Some((request, len))) => {
                // What follows the head stays: it is the start of the frames.
                buf.drain(..len);
                return Ok(Head::Request(request, buf));
            }
            Ok(None) => {}
            Err(e) => return Ok(Head::Bad(e)),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Head::TimedOut);
        }
        transport.set_read_timeout(Some(left))?;
        // Never read past the limit (plus one byte, to see it was passed).
        let want = READ_CHUNK.min(max + 1 - buf.len().min(max));
        match read_more(transport, &mut buf, want) {
            // A 0-byte read means the peer closed its side.
            Ok(0) => return Ok(Head::Closed),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Ok(Head::TimedOut),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
