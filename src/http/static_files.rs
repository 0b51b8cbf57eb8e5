//! The web client's files: embedded in the binary, or read from one root
//! directory (`--web-root`) during development.
//!
//! Paths are resolved inside the root only: a request path with `..`, a
//! backslash or a NUL byte is refused, so no request can read a file
//! outside it.

use super::response::Response;
use std::path::{Path, PathBuf};

/// The files compiled into the binary: (URL path, content type, bytes).
const EMBEDDED: &[(&str, &str, &[u8])] = &[(
    "/",
    "text/html; charset=utf-8",
    b"<!doctype html><meta charset=utf-8><title>Switchboard</title>\n<h1>Switchboard</h1>\n<p>WebSocket endpoints: <code>/chat</code> and <code>/echo</code>.</p>\n",
)];

/// The content type for a file name's extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Is this URL path one of the embedded files (or served from the root)?
pub fn is_static_path(path: &str) -> bool {
    EMBEDDED.iter().any(|(p, _, _)| *p == path)
}

/// A safe relative file path for a URL path, or `None`.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let ok = rel
        .split('/')
        .all(|seg| !seg.is_empty() && seg != ".." && seg != ".")
        && !rel.contains(['\\', '\0']);
    ok.then(|| PathBuf::from(rel))
}

/// Serve a static file: from `root` when given, else from the binary.
pub fn serve(path: &str, root: Option<&Path>) -> Option<Response> {
    if let Some(root) = root {
        let rel = safe_relative(path)?;
        let body = std::fs::read(root.join(&rel)).ok()?;
        return Some(Response::new(
            200,
            content_type(&rel.to_string_lossy()),
            body,
        ));
    }
    EMBEDDED
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ctype, body)| Response::new(200, ctype, body.to_vec()))
}
