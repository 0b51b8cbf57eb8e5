//! The web client's files: embedded in the binary, or read from one root
//! directory (`--web-root`) during development.
//!
//! Paths are resolved inside the root only: a request path with `..`, a
//! backslash or a NUL byte is refused, so no request can read a file
//! outside it.

use super::response::Response;
use std::path::{Path, PathBuf};

/// The files compiled into the binary: (URL path, content type, bytes).
/// They are the browser client of `clients/web/`.
const EMBEDDED: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../../clients/web/index.html"),
    ),
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../clients/web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../clients/web/app.js"),
    ),
    (
        "/switchboard.mjs",
        "text/javascript; charset=utf-8",
        include_bytes!("../../clients/web/switchboard.mjs"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../clients/web/style.css"),
    ),
];

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

/// Is this URL path one of the embedded files?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_client_is_embedded() {
        let page = serve("/", None).unwrap();
        assert!(String::from_utf8_lossy(&page.body).contains("Switchboard"));
        for path in ["/app.js", "/switchboard.mjs", "/style.css"] {
            assert!(serve(path, None).is_some(), "{path}");
        }
        assert_eq!(
            serve("/switchboard.mjs", None).unwrap().headers[0].1,
            "text/javascript; charset=utf-8"
        );
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        for path in [
            "/../Cargo.toml",
            "/a/../../etc/passwd",
            "/./x",
            "/a\\b",
            "/a//b",
        ] {
            assert_eq!(safe_relative(path), None, "{path}");
        }
        // Leading slashes are dropped, so a path can never become absolute.
        assert_eq!(
            safe_relative("//etc/passwd"),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(safe_relative("/"), Some(PathBuf::from("index.html")));
        assert_eq!(safe_relative("/app.js"), Some(PathBuf::from("app.js")));
    }

    #[test]
    fn a_web_root_overrides_the_embedded_files() {
        let dir = std::env::temp_dir().join(format!("switchboard-web-root-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "dev page").unwrap();
        assert_eq!(serve("/", Some(&dir)).unwrap().body, b"dev page");
        assert!(serve("/missing.js", Some(&dir)).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
