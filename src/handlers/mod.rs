//! Built-in handlers: `status`, `metrics`, `echo`, `ticker`, `hello`, `welcome`, static
//! files, and the small answers the router needs (404, redirect to a folder).

mod echo;
mod hello;
mod metrics;
mod read_only;
mod static_dir;
mod status;
mod ticker;
mod welcome;

pub(crate) use echo::Echo;
pub(crate) use hello::Hello;
pub(crate) use metrics::MetricsPage;
pub(crate) use static_dir::StaticDir;
pub(crate) use status::Status;
pub(crate) use ticker::Ticker;
pub(crate) use welcome::{Listing, Welcome, WELCOME_PATHS};

use std::sync::Arc;

use crate::handler::{BoxFuture, Handler, HandlerError, Request};
use crate::http::status as code;
use crate::response::Response;
use crate::stats::Stats;

/// Makes a built-in handler; it may read the server's counters and the list of routes.
type Make = fn(&Arc<Stats>, &[Listing]) -> Arc<dyn Handler>;

/// The built-in handlers a `handler = "…"` route may name: SPEC §2's `status` and `echo`,
/// SPEC §8's `metrics` (Prometheus), `ticker` (the producer the shipped config uses to
/// compare output modes), `hello` (the benchmarks' counterpart of nginx's `return 200`) and
/// `welcome` (the landing page). The one list both the config check and the route building
/// read.
pub(crate) const BUILTINS: &[(&str, Make)] = &[
    ("status", |stats, _| Arc::new(Status::new(stats.clone()))),
    ("metrics", |stats, _| {
        Arc::new(MetricsPage::new(stats.clone()))
    }),
    ("echo", |_, _| Arc::new(Echo)),
    ("ticker", |_, _| Arc::new(Ticker)),
    ("hello", |_, _| Arc::new(Hello)),
    ("welcome", |_, routes| Arc::new(Welcome::new(routes))),
];

/// The built-in handler called `name`, if there is one; `routes` is what the config serves.
pub(crate) fn builtin(
    name: &str,
    stats: &Arc<Stats>,
    routes: &[Listing],
) -> Option<Arc<dyn Handler>> {
    BUILTINS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, make)| make(stats, routes))
}

/// 404 for paths no route matches.
pub(crate) struct NotFound;

impl Handler for NotFound {
    fn call<'a>(
        &'a self,
        _req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(res.plain(code::NOT_FOUND, "Not Found"))
    }
}

/// 301 from `/folder` to `/folder/` for routes whose prefix is a folder.
pub(crate) struct RedirectToPrefix;

impl Handler for RedirectToPrefix {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let mut location = req.prefix.to_string();
            let query = req.head.query();
            if !query.is_empty() {
                location.push('?');
                location.push_str(query);
            }
            res.set_header("Location", location);
            res.plain(code::MOVED_PERMANENTLY, "Moved Permanently")
                .await
        })
    }
}
