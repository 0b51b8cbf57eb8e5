//! `GET /healthz`: a probe for supervisors and load balancers.
//!
//! It answers `200 ok` whenever the accept loop and a worker are alive to
//! answer it, which is exactly what a liveness probe wants to know; and
//! `503 degraded: ...` while the server runs but cannot do all of its job
//! (history that cannot be written to its file), so a load balancer or a
//! person can tell.

use super::response::Response;

/// The health check response: `None` is healthy, `Some(why)` degraded.
pub fn response(degraded: Option<&str>) -> Response {
    match degraded {
        None => Response::text(200, "ok"),
        Some(why) => Response::text(503, &format!("degraded: {why}")),
    }
    .with_header("Cache-Control", "no-store")
}
