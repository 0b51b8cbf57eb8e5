//! The web client's files: embedded in the binary, or read from one root
//! directory (`--web-root`) during development.
//!
//! Paths are resolved inside the root only: a request path with `..`, a
//! backslash or a NUL byte is refused, so no request can read a file
//! outside it.

use super::response::Response;
use std::path::PathBuf;

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
        "/auth.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../clients/web/auth.js"),
    ),
    (
        "/render.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../clients/web/render.js"),
    ),
    (
        "/conversations.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../clients/web/conversations.js"),
    ),
    (
        "/sidebar.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../clients/web/sidebar.js"),
    ),
    (
        "/notify.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../clients/web/notify.js"),
    ),
    (
        "/search.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../clients/web/search.js"),
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

/// Where the bytes of a static path come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built into the binary: its type and bytes.
    Embedded(&'static str, &'static [u8]),
    /// A file under the web root (`--web-root`), by its safe relative
    /// path, and its type. Reading it is I/O, which `server` does.
    File(PathBuf, &'static str),
}

/// Find a static path: under the web root when there is one (`from_dir`),
/// else among the embedded files. `None` is a 404.
pub fn find(path: &str, from_dir: bool) -> Option<Source> {
    if from_dir {
        let rel = safe_relative(path)?;
        let ctype = content_type(&rel.to_string_lossy());
        return Some(Source::File(rel, ctype));
    }
    EMBEDDED
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ctype, body)| Source::Embedded(ctype, body))
}

impl Source {
    /// The response for the embedded bytes, or for a file's bytes once
    /// they were read.
    pub fn response(ctype: &str, body: Vec<u8>) -> Response {
        page_headers(Response::new(200, ctype, body))
    }
}

/// What every page and file carries: no script, style or connection but
/// our own (the page has no inline script), no framing by other sites,
/// no type sniffing, no referrer.
pub const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Add the security headers of every static response.
pub fn page_headers(response: Response) -> Response {
    response
        .with_header("Content-Security-Policy", CSP)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("X-Frame-Options", "DENY")
        .with_header("Referrer-Policy", "no-referrer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_client_is_embedded() {
        let Some(Source::Embedded(ctype, page)) = find("/", false) else {
            panic!("the page is embedded");
        };
        assert_eq!(ctype, "text/html; charset=utf-8");
        assert!(String::from_utf8_lossy(page).contains("Switchboard"));
        for path in ["/app.js", "/switchboard.mjs", "/style.css"] {
            assert!(find(path, false).is_some(), "{path}");
        }
        assert!(matches!(
            find("/switchboard.mjs", false),
            Some(Source::Embedded("text/javascript; charset=utf-8", _))
        ));
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
    fn a_web_root_maps_paths_to_relative_files() {
        assert_eq!(
            find("/", true),
            Some(Source::File(
                "index.html".into(),
                "text/html; charset=utf-8"
            ))
        );
        assert_eq!(find("/../x", true), None);
    }
}
