//! Which web pages may open a WebSocket here (RFC 6455 §10.2, §4.2.1
//! item 8). A browser sends `Origin` with every handshake and lets any
//! page connect anywhere, so without this check any site a visitor opens
//! could chat as that visitor (cross-site WebSocket hijacking).
//!
//! ```text
//!  no Origin header            ─► accepted (not a browser: CLIs, bots)
//!  Origin = this server        ─► accepted (our own page: same host and port as Host)
//!  Origin in --allowed-origins ─► accepted (exact, or https://*.example.com)
//!  anything else, "null" too   ─► 403 before the upgrade
//! ```

/// The origins allowed besides our own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allowed: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    scheme: String,
    /// Lowercase host and optional `:port`; a leading `*.` matches any
    /// subdomain (not the bare domain).
    authority: String,
}

impl Policy {
    /// Parse `--allowed-origins`: a comma-separated list of
    /// `scheme://host[:port]`, where the host may start with `*.`.
    pub fn parse(list: &str) -> Result<Policy, String> {
        let mut allowed = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (scheme, authority) = item
                .split_once("://")
                .ok_or_else(|| format!("{item:?} is not scheme://host[:port]"))?;
            let valid = |c: char| c.is_ascii_alphanumeric() || ".-:*[]".contains(c);
            if !matches!(scheme, "http" | "https")
                || authority.is_empty()
                || !authority.chars().all(valid)
                || authority[1..].contains('*')
            {
                return Err(format!(
                    "{item:?} is not http(s)://host[:port] (a * only as *.domain)"
                ));
            }
            allowed.push(Pattern {
                scheme: scheme.to_owned(),
                authority: authority.to_ascii_lowercase(),
            });
        }
        Ok(Policy { allowed })
    }

    /// May a handshake with this `Origin` (if any), sent to this `Host`,
    /// open a WebSocket?
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin.map(str::trim) else {
            return true;
        };
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false; // "null" (a sandboxed page, a file) and garbage
        };
        let authority = authority.to_ascii_lowercase();
        if host.is_some_and(|h| h.trim().eq_ignore_ascii_case(&authority)) {
            return true;
        }
        self.allowed.iter().any(|p| {
            p.scheme == scheme
                && match p.authority.strip_prefix("*.") {
                    Some(domain) => authority
                        .strip_suffix(domain)
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                    None => p.authority == authority,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_page_and_non_browsers_are_allowed_by_default() {
        let p = Policy::default();
        assert!(
            p.allows(None, Some("chat.example:8080")),
            "no Origin: a CLI"
        );
        assert!(p.allows(Some("http://chat.example:8080"), Some("chat.example:8080")));
        assert!(p.allows(Some("https://CHAT.example"), Some("chat.example")));
        assert!(!p.allows(Some("https://evil.example"), Some("chat.example")));
        assert!(!p.allows(Some("null"), Some("chat.example")));
        assert!(!p.allows(Some("http://chat.example:8081"), Some("chat.example:8080")));
    }

    #[test]
    fn listed_origins_and_wildcards() {
        let p = Policy::parse("https://app.example.com, https://*.corp.example").unwrap();
        let host = Some("chat.example");
        assert!(p.allows(Some("https://app.example.com"), host));
        assert!(
            !p.allows(Some("http://app.example.com"), host),
            "scheme counts"
        );
        assert!(p.allows(Some("https://a.corp.example"), host));
        assert!(p.allows(Some("https://a.b.corp.example"), host));
        assert!(
            !p.allows(Some("https://corp.example"), host),
            "not the bare domain"
        );
        assert!(!p.allows(Some("https://evilcorp.example"), host));
        assert!(Policy::parse("ftp://x").is_err());
        assert!(Policy::parse("https://a*.b").is_err());
        assert!(Policy::parse("example.com").is_err());
    }
}
