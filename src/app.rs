//! The application a connection serves ([`Service`]): route the head to its handler, build
//! the handler's [`Request`] and [`Response`] on the exchange's channel, run the handler
//! with its panics and errors contained, and record each exchange in the access log and the
//! counters. This is where the HTTP engine below meets the handlers above.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use tracing::{info_span, warn, Instrument};

use crate::access_log::AccessLog;
use crate::config::{Config, ForwardedHeaders, Trusted};
use crate::handler::{Body, ConnInfo, Handler, Request};
use crate::http::channel::HandlerEnds;
use crate::http::framer::OutputLimits;
use crate::http::head::RequestHead;
use crate::http::service::{Record, Service};
use crate::http::status;
use crate::metrics::BadRequest;
use crate::proxy::forwarded;
use crate::response::Response;
use crate::router::{RouteEntry, Router};
use crate::stats::Stats;

/// The routes, the access log and the counters.
pub(crate) struct App {
    /// Replaced whole by a reload: each request reads it once, when it starts, and keeps
    /// the route it got, so a request in flight finishes with the routes it started with.
    current: ArcSwap<Routes>,
    /// Whether the access log is on: `current.access.is_on()`, asked twice per request and
    /// kept here so that each costs a load, not an `ArcSwap` read (about 35 instructions).
    logging: AtomicBool,
    stats: Arc<Stats>,
}

/// What a reload replaces.
struct Routes {
    router: Arc<Router>,
    access: AccessLog,
    forwarding: Forwarding,
}

/// Which forwarding headers are believed, and from whom (`[server] forwarded`,
/// `trusted_proxies`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Forwarding {
    pub(crate) headers: ForwardedHeaders,
    pub(crate) trusted: Trusted,
}

impl Forwarding {
    /// What `config`'s `[server]` says.
    pub(crate) fn of(config: &Config) -> Forwarding {
        Forwarding {
            headers: config.server.forwarded,
            trusted: config.server.trusted_proxies.clone(),
        }
    }

    /// The connection as `head` says a trusted proxy forwarded it: its client, and whether
    /// the client's connection was TLS. Unchanged without a trusted proxy or a header.
    fn apply(&self, conn: &ConnInfo, head: &RequestHead) -> ConnInfo {
        if self.headers == ForwardedHeaders::Off || !self.trusted.contains(conn.peer.ip()) {
            return *conn;
        }
        let fields = |name: &'static str| head.headers_named(name).map(|v| v.as_ref());
        let said = match self.headers {
            ForwardedHeaders::XForwardedFor => forwarded::x_forwarded(
                fields("x-forwarded-for"),
                fields("x-forwarded-proto"),
                &self.trusted,
            ),
            _ => forwarded::forwarded(fields("forwarded"), &self.trusted),
        };
        let mut conn = *conn;
        if let Some(client) = said.client {
            conn.peer = client;
        }
        if let Some(https) = said.https {
            conn.tls = https;
        }
        conn
    }
}

impl App {
    /// An application serving `router`.
    pub(crate) fn new(
        router: Arc<Router>,
        access: AccessLog,
        stats: Arc<Stats>,
        forwarding: Forwarding,
    ) -> App {
        App {
            logging: AtomicBool::new(access.is_on()),
            current: ArcSwap::from_pointee(Routes {
                router,
                access,
                forwarding,
            }),
            stats,
        }
    }

    /// Serve new requests with `router`, `access` and `forwarding` (a reload).
    pub(crate) fn replace(&self, router: Arc<Router>, access: AccessLog, forwarding: Forwarding) {
        self.logging.store(access.is_on(), Ordering::Relaxed);
        self.current.store(Arc::new(Routes {
            router,
            access,
            forwarding,
        }));
    }

    /// Log to `access` from now on (at exit: [`AccessLog::off`] lets the writers finish).
    pub(crate) fn replace_log(&self, access: AccessLog) {
        let current = self.current.load();
        self.replace(current.router.clone(), access, current.forwarding.clone());
    }

    /// The access log new lines go to.
    pub(crate) fn access_log(&self) -> AccessLog {
        self.current.load().access.clone()
    }
}

/// One request being answered.
pub(crate) struct Call {
    req: Request,
    res: Response,
    route: Arc<RouteEntry>,
    /// The handler's error, if it failed.
    outcome: Option<&'static str>,
}

impl Service for App {
    type Call = Call;

    fn call(&self, head: RequestHead, conn: &ConnInfo, ends: HandlerEnds) -> Call {
        let current = self.current.load();
        let matched = current.router.route(head.path());
        let route = matched.entry;
        let (body, channel) = Body::open(ends);
        let req = Request {
            conn: current.forwarding.apply(conn, &head),
            head,
            prefix: route.prefix.clone(),
            path: matched.path,
            body,
            redirects: 0,
        };
        let res = Response::new(channel, route.output.mode.mode());
        Call {
            req,
            res,
            route,
            outcome: None,
        }
    }

    fn limits(call: &Call) -> OutputLimits {
        OutputLimits {
            buffer_limit: call.route.output.buffer_limit,
            flush_after: call.route.output.flush_after,
        }
    }

    fn run<'a>(&'a self, call: &'a mut Call) -> impl Future<Output = ()> + Send + 'a {
        let Call {
            req,
            res,
            route,
            outcome,
        } = call;
        let span = info_span!(
            "request",
            method = req.head.method_str(),
            path = req.head.path(),
        );
        run_handler(&*route.handler, req, res, outcome).instrument(span)
    }

    fn head(call: &Call) -> &RequestHead {
        &call.req.head
    }

    fn conn(call: &Call) -> &ConnInfo {
        &call.req.conn
    }

    fn outcome(call: &Call) -> Option<&'static str> {
        call.outcome
    }

    #[inline]
    fn wants_times(&self) -> bool {
        self.logging.load(Ordering::Relaxed) || self.stats.metrics.is_counting_requests()
    }

    #[inline]
    fn wants_wall_time(&self) -> bool {
        self.logging.load(Ordering::Relaxed)
    }

    #[inline]
    fn record(&self, call: Option<&Call>, record: &Record<'_>) {
        self.stats
            .count_response(record.framing, record.status != 0);
        let metrics = &self.stats.metrics;
        if metrics.is_counting_requests() {
            let route = call.map_or(metrics.unrouted(), |c| &c.route.metrics);
            route.record(
                record.status,
                record.mode,
                record.framing,
                record.ttfb,
                record.total,
            );
        }
        if record.refused {
            self.stats.count_error(BadRequest::of_status(record.status));
        }
        if !self.current.load().access.log(record) {
            self.stats.count_log_dropped();
        }
    }
}

/// Run the handler and end its response. A panic is contained here and treated like an
/// error: the error's status, or a closed connection if the head already went out. Each
/// error is logged here, once, and named in `outcome` for the access log.
async fn run_handler(
    handler: &dyn Handler,
    req: &mut Request,
    res: &mut Response,
    outcome: &mut Option<&'static str>,
) {
    let result = CatchUnwind(handler.call(req, res)).await;
    match result {
        Ok(Ok(())) => {
            let _ = res.end().await;
        }
        Ok(Err(e)) => {
            e.log();
            *outcome = Some(e.code());
            res.abort(e.status()).await;
        }
        Err(()) => {
            warn!("handler panicked");
            *outcome = Some("panic");
            res.abort(status::INTERNAL_SERVER_ERROR).await;
        }
    }
}

/// Polls a future inside `catch_unwind`.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}
