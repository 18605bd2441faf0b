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
use crate::metrics::RouteMetrics;

/// One route, ready to serve.
pub(crate) struct RouteEntry {
    /// The prefix as configured.
    pub prefix: Arc<str>,
    /// What answers.
    pub handler: Arc<dyn Handler>,
    /// Output settings for responses on this route.
    pub output: OutputConfig,
    /// Its series in the metrics, resolved once here rather than looked up per request.
    pub metrics: Arc<RouteMetrics>,
    /// The paths below the prefix it answers (`/` before them ignored); empty: all of them.
    /// A path it does not own goes on to the shorter prefixes, and to the 404 of no route,
    /// counted as unrouted (the landing page at `/` owns only itself and `index.html`).
    pub only: &'static [&'static str],
}

/// The result of routing one path.
pub(crate) struct RouteMatch {
    /// The route that answers (a 404 or redirect route when none matched).
    pub entry: Arc<RouteEntry>,
    /// The normalized path that was matched.
    pub path: String,
}

/// All routes, longest prefix first.
pub(crate) struct Router {
    routes: Vec<Arc<RouteEntry>>,
    not_found: Arc<RouteEntry>,
}

impl Router {
    /// A router over `routes`; `default_output` is used for the 404 answers, which count
    /// in `unrouted`.
    pub(crate) fn new(
        mut routes: Vec<RouteEntry>,
        default_output: OutputConfig,
        unrouted: Arc<RouteMetrics>,
    ) -> Router {
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Router {
            routes: routes.into_iter().map(Arc::new).collect(),
            not_found: Arc::new(RouteEntry {
                prefix: Arc::from("/"),
                handler: Arc::new(NotFound),
                output: default_output,
                metrics: unrouted,
                only: &[],
            }),
        }
    }

    /// Find the route for a raw request path.
    pub(crate) fn route(&self, raw_path: &str) -> RouteMatch {
        let path = crate::http::path::normalize(raw_path);
        for entry in &self.routes {
            if matches_prefix(&path, &entry.prefix) && owns(entry, &path) {
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
                        metrics: entry.metrics.clone(),
                        only: &[],
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
pub(crate) struct Dispatcher(OnceLock<Weak<Router>>);

impl Dispatcher {
    /// Point at the finished router.
    pub(crate) fn set(&self, router: &Arc<Router>) {
        let _ = self.0.set(Arc::downgrade(router));
    }

    /// Route a path; None before [`Dispatcher::set`] or after the router is gone.
    pub(crate) fn route(&self, raw_path: &str) -> Option<RouteMatch> {
        let router = self.0.get()?.upgrade()?;
        Some(router.route(raw_path))
    }
}

/// Whether `entry` answers `path`, which matches its prefix.
fn owns(entry: &RouteEntry, path: &str) -> bool {
    if entry.only.is_empty() {
        return true;
    }
    let below = path.get(entry.prefix.len()..).unwrap_or("");
    entry.only.contains(&below.trim_start_matches('/'))
}

fn matches_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
impl RouteEntry {
    /// A copy with another prefix (and the same handler).
    fn clone_for_test(&self, prefix: &str) -> RouteEntry {
        RouteEntry {
            prefix: Arc::from(prefix),
            handler: self.handler.clone(),
            output: self.output,
            metrics: self.metrics.clone(),
            only: self.only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputMode;
    use std::time::Duration;

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
                    metrics: Arc::new(RouteMetrics::new(p)),
                    only: &[],
                })
                .collect(),
            output,
            Arc::new(RouteMetrics::new(crate::metrics::UNROUTED)),
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
    fn a_route_that_owns_only_some_paths_lets_the_others_fall_through() {
        // "/(page)" stands for a landing page at "/": it owns "/" and "/index.html" only.
        let mut r = router(&["/cgi-bin/"]);
        r.routes.push(Arc::new(RouteEntry {
            only: &["", "index.html"],
            ..(*r.not_found).clone_for_test("/")
        }));
        assert_eq!(&*r.route("/").entry.prefix, "/");
        assert!(!Arc::ptr_eq(&r.route("/").entry, &r.not_found));
        assert!(!Arc::ptr_eq(&r.route("/index.html").entry, &r.not_found));
        assert!(!Arc::ptr_eq(&r.route("//index.html").entry, &r.not_found));
        for other in ["/x", "/index.htm", "/a/index.html", "/favicon.ico"] {
            assert!(Arc::ptr_eq(&r.route(other).entry, &r.not_found), "{other}");
        }
        assert_eq!(&*r.route("/cgi-bin/x").entry.prefix, "/cgi-bin/");
    }

    #[test]
    fn no_match_is_not_found() {
        let r = router(&["/status"]);
        let m = r.route("/nothing");
        assert_eq!(m.path, "/nothing");
        assert_eq!(&*m.entry.prefix, "/");
    }
}
