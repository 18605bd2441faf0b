//! Prefix routing: the longest matching `[[route]] prefix` wins (SPEC §2). The router only
//! knows [`Handler`]s; what kind of handler a route has was decided when it was built.
//!
//! Matching is done on the path with dot-segments removed and percent-encoded unreserved
//! characters decoded (RFC 3986 §6.2.2), so `/cgi-bin/../x` and `/%63gi-bin/x` cannot reach a
//! route by a back door. A prefix matches at a segment boundary: `/status` matches `/status`
//! and `/status/x`, not `/statusx`.

use std::sync::{Arc, OnceLock, Weak};

use crate::config::OutputConfig;
use crate::handler::Handler;
use crate::handlers::{NotFound, RedirectToPrefix};

/// One route, ready to serve.
pub struct RouteEntry {
    /// The prefix as configured.
    pub prefix: Arc<str>,
    /// What answers.
    pub handler: Arc<dyn Handler>,
    /// Output settings for responses on this route.
    pub output: OutputConfig,
}

/// The result of routing one path.
pub struct RouteMatch {
    /// The route that answers (a 404 or redirect route when none matched).
    pub entry: Arc<RouteEntry>,
    /// The normalized path that was matched.
    pub path: String,
}

/// All routes, longest prefix first.
pub struct Router {
    routes: Vec<Arc<RouteEntry>>,
    not_found: Arc<RouteEntry>,
}

impl Router {
    /// A router over `routes`; `default_output` is used for the 404 and redirect answers.
    pub fn new(mut routes: Vec<RouteEntry>, default_output: OutputConfig) -> Router {
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Router {
            routes: routes.into_iter().map(Arc::new).collect(),
            not_found: Arc::new(RouteEntry {
                prefix: Arc::from("/"),
                handler: Arc::new(NotFound),
                output: default_output,
            }),
        }
    }

    /// Find the route for a raw request path.
    pub fn route(&self, raw_path: &str) -> RouteMatch {
        let path = normalize_path(raw_path);
        for entry in &self.routes {
            if matches_prefix(&path, &entry.prefix) {
                return RouteMatch {
                    entry: entry.clone(),
                    path,
                };
            }
            // "/cgi-bin" for a "/cgi-bin/" route: send the client to the folder.
            if entry.prefix.len() > 1
                && entry.prefix.ends_with('/')
                && path == entry.prefix[..entry.prefix.len() - 1]
            {
                return RouteMatch {
                    entry: Arc::new(RouteEntry {
                        prefix: entry.prefix.clone(),
                        handler: Arc::new(RedirectToPrefix),
                        output: entry.output,
                    }),
                    path,
                };
            }
        }
        RouteMatch {
            entry: self.not_found.clone(),
            path,
        }
    }
}

/// Lets a handler route a path through the router it belongs to (a CGI's local redirect).
/// Handlers are built before the router, so it is set once the router exists.
#[derive(Default)]
pub struct Dispatcher(OnceLock<Weak<Router>>);

impl Dispatcher {
    /// Point at the finished router.
    pub fn set(&self, router: &Arc<Router>) {
        let _ = self.0.set(Arc::downgrade(router));
    }

    /// Route a path; None before [`Dispatcher::set`] or after the router is gone.
    pub fn route(&self, raw_path: &str) -> Option<RouteMatch> {
        let router = self.0.get()?.upgrade()?;
        Some(router.route(raw_path))
    }
}

fn matches_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Decode percent-encoded unreserved characters (RFC 3986 §6.2.2.2) and remove dot-segments
/// (§5.2.4). Everything else stays encoded; the query is not part of the input.
pub fn normalize_path(raw: &str) -> String {
    if is_normal(raw) {
        // Nothing to decode or remove: the common case, one copy.
        return raw.to_string();
    }
    let decoded = decode_unreserved(raw);
    remove_dot_segments(&decoded)
}

/// Whether normalizing `raw` would return it unchanged: it starts with "/" and has no
/// percent sign and no "." or ".." segment.
fn is_normal(raw: &str) -> bool {
    raw.starts_with('/') && !raw.contains('%') && !raw.split('/').any(|s| s == "." || s == "..")
}

fn decode_unreserved(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| char::from(c).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let c = char::from((h * 16 + l) as u8);
                if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                    out.push(c);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(char::from(b[i]));
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4, on segments. The result always starts with "/".
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputMode;
    use std::time::Duration;

    #[test]
    fn dot_segments_are_removed() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a//b", "/a//b"),
            ("/cgi-bin/%2e%2e/x", "/x"),
            ("/%63gi-bin/x", "/cgi-bin/x"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a%2", "/a%2"),
            ("/%", "/%"),
        ] {
            crate::fuzz_seeds::save("path_mapping", raw.as_bytes());
            assert_eq!(normalize_path(raw), want, "{raw}");
        }
    }

    #[test]
    fn the_shortcut_agrees_with_the_full_normalization() {
        for raw in [
            "/",
            "/a",
            "/a/b/",
            "/a//b",
            "//",
            "/a.b/c..d/.e/..f",
            "/...",
            "/a/.",
            "/a/..",
            "/./",
            "/../",
            "",
            "a/b",
            "/%2e",
            "/~x/-y_z",
        ] {
            let full = remove_dot_segments(&decode_unreserved(raw));
            assert_eq!(normalize_path(raw), full, "{raw:?}");
            if is_normal(raw) {
                assert_eq!(full, raw, "{raw:?} is said to be normal");
            }
        }
    }

    fn router(prefixes: &[&str]) -> Router {
        let output = OutputConfig {
            mode: OutputMode::Auto,
            buffer_limit: 1024,
            flush_after: Duration::from_millis(50),
        };
        Router::new(
            prefixes
                .iter()
                .map(|p| RouteEntry {
                    prefix: Arc::from(*p),
                    handler: Arc::new(NotFound),
                    output,
                })
                .collect(),
            output,
        )
    }

    #[test]
    fn longest_prefix_at_a_segment_boundary() {
        let r = router(&["/", "/cgi-bin/", "/status", "/cgi-bin/deep/"]);
        assert_eq!(&*r.route("/cgi-bin/x").entry.prefix, "/cgi-bin/");
        assert_eq!(&*r.route("/cgi-bin/deep/x").entry.prefix, "/cgi-bin/deep/");
        assert_eq!(&*r.route("/status").entry.prefix, "/status");
        assert_eq!(&*r.route("/status/x").entry.prefix, "/status");
        assert_eq!(&*r.route("/statusx").entry.prefix, "/");
        assert_eq!(&*r.route("/cgi-bin/../status").entry.prefix, "/status");
    }

    #[test]
    fn no_match_is_not_found() {
        let r = router(&["/status"]);
        let m = r.route("/nothing");
        assert_eq!(m.path, "/nothing");
        assert_eq!(&*m.entry.prefix, "/");
    }
}
