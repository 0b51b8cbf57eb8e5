//! The plain HTTP routes (not WebSocket endpoints): `/healthz`, and the
//! web client's files, embedded or from `--web-root`. The operator's
//! routes are `ops.rs`; sign-in is `web_login.rs`.

use crate::http::static_files::{self, Source};
use crate::http::{self, Request, Response};

use super::files;
use super::shared::Shared;

/// A plain route's answer: a response, or a file to stream.
pub(super) enum Plain {
    Response(Response),
    File(std::fs::File, u64, Response),
}

/// The routes that are not WebSocket endpoints.
pub(super) fn plain_route(path: &str, request: &Request, shared: &Shared) -> Plain {
    let get_or_head = matches!(request.method.as_str(), "GET" | "HEAD");
    let not_allowed =
        || Response::text(405, "method not allowed").with_header("Allow", "GET, HEAD");
    if path == "/healthz" {
        return Plain::Response(if get_or_head {
            http::health::response(shared.degraded())
        } else {
            not_allowed()
        });
    }
    let root = shared.config.web_root.as_deref();
    let found = match (static_files::find(path, root.is_some()), root) {
        (Some(Source::Embedded(ctype, body)), _) => {
            Some(Plain::Response(Source::response(ctype, body.to_vec())))
        }
        // The web root (development): a regular file inside it, streamed.
        (Some(Source::File(rel, ctype)), Some(root)) => files::open(root, &rel)
            .map(|(file, len)| Plain::File(file, len, Source::response(ctype, Vec::new()))),
        _ => None,
    };
    match found {
        Some(_) if !get_or_head => Plain::Response(not_allowed()),
        Some(answer) => answer,
        None => Plain::Response(Response::text(404, "not found")),
    }
}
