//! `GET /healthz`: a liveness probe for supervisors and load balancers.
//!
//! It answers `200 ok` whenever the accept loop and a worker are alive to
//! answer it, which is exactly what a probe wants to know.

use super::response::Response;

/// The health check response.
pub fn response() -> Response {
    Response::text(200, "ok").with_header("Cache-Control", "no-store")
}
