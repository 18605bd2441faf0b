//! What the `metrics` handler reports (docs/metrics.md), kept where it happens. Every series
//! is a relaxed atomic in a table sized when its owner is built, and a label is an index
//! into a fixed list of values, so recording a request hashes, locks and allocates nothing;
//! the Prometheus text is only made at scrape time (`handlers/metrics.rs`). Counters that
//! `/status` shows as well (connections, framing, drops, helper restarts) stay in
//! [`Stats`](crate::stats::Stats), which owns one [`Metrics`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::http::framer::{Framing, Mode};

/// What a route that no `[[route]]` matched (a 404, a head refused before routing) is
/// labelled with: no configured prefix can look like it, as prefixes start with `/`.
pub(crate) const UNROUTED: &str = "(none)";

/// Upper bounds of the response-time buckets, in nanoseconds: 100 µs to 60 s, finer below
/// 10 ms where an in-process or quick CGI answer falls.
pub(crate) const RESPONSE_BUCKETS: &[u64] = &[
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// Upper bounds of the CGI spawn-time buckets, in nanoseconds: the response buckets from
/// 100 µs to 1 s (a vfork and exec takes about a millisecond; a helper's round trip a little
/// more).
pub(crate) const SPAWN_BUCKETS: &[u64] = RESPONSE_BUCKETS.split_at(13).0;

/// Upper bounds of the `max_children` queue-wait buckets, in nanoseconds: a free slot is
/// taken in well under 10 µs; a wait is bounded by `queue_timeout` (5 s by default).
pub(crate) const QUEUE_BUCKETS: &[u64] = &[
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
];

/// A histogram of durations with fixed buckets. Counts are kept per bucket (not
/// cumulative), so an observation is two atomic adds; the sum is in nanoseconds, as a float
/// would need a compare-and-swap loop.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// Upper bounds, in nanoseconds, ascending.
    bounds: &'static [u64],
    /// One per bound, and the last for what is above them all (`+Inf`).
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

/// A histogram read out: what the encoder wants.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramSnapshot {
    /// Sum of the observations, in seconds.
    pub(crate) sum: f64,
    /// Observations.
    pub(crate) count: u64,
    /// (upper bound in seconds, observations in this bucket alone), `+Inf` last.
    pub(crate) buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// An empty histogram over `bounds` (nanoseconds, ascending).
    pub(crate) fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Count one duration.
    #[inline]
    pub(crate) fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Linear from the smallest bound: most observations are small, so this stops early.
        let slot = self
            .bounds
            .iter()
            .position(|&b| nanos <= b)
            .unwrap_or(self.bounds.len());
        if let Some(count) = self.counts.get(slot) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts now (each read on its own: a scrape during traffic may see an
    /// observation's bucket without its sum, which Prometheus tolerates).
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.counts.len());
        let mut count = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            count = count.wrapping_add(n);
            let bound = self.bounds.get(i).map_or(f64::INFINITY, |&b| seconds(b));
            buckets.push((bound, n));
        }
        HistogramSnapshot {
            sum: seconds(self.sum_nanos.load(Ordering::Relaxed)),
            count,
            buckets,
        }
    }
}

/// Nanoseconds as seconds; exact for the bucket bounds above (a correctly rounded division).
fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// `status_class` label values: a status's hundreds, `other` for 600–999 (a handler may
/// set one), `none` when nothing was sent (the client left before the head).
pub(crate) const STATUS_CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other", "none"];
/// `mode` label values: the output mode in force ([`Mode::as_str`]), `none` without a head.
pub(crate) const MODES: [&str; 6] = ["buffer", "stream", "auto", "sized", "close", "none"];
/// `framing` label values ([`Framing::as_str`]).
pub(crate) const FRAMINGS: [&str; 4] = ["length", "chunked", "close", "none"];
const SERIES: usize = STATUS_CLASSES.len() * MODES.len() * FRAMINGS.len();

fn class_index(status: u16) -> usize {
    match status {
        0 => 6,
        100..=599 => usize::from(status / 100 - 1),
        _ => 5,
    }
}

fn mode_index(mode: Option<Mode>) -> usize {
    match mode {
        Some(Mode::Buffer) => 0,
        Some(Mode::Stream) => 1,
        Some(Mode::Auto) => 2,
        Some(Mode::Sized(_)) => 3,
        Some(Mode::Close) => 4,
        None => 5,
    }
}

fn framing_index(framing: Framing) -> usize {
    match framing {
        Framing::Length => 0,
        Framing::Chunked => 1,
        Framing::Close => 2,
        Framing::None => 3,
    }
}

/// One route's requests, first-byte and total times. A route holds its own (resolved when
/// the route is built), so a request finds its series without a lookup.
#[derive(Debug)]
pub(crate) struct RouteMetrics {
    label: Arc<str>,
    /// By status class × mode × framing.
    requests: [AtomicU64; SERIES],
    first_byte: Histogram,
    total: Histogram,
}

/// One nonzero `cgigate_requests_total` series: its labels and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestCount {
    /// `status_class`.
    pub(crate) status_class: &'static str,
    /// `mode`.
    pub(crate) mode: &'static str,
    /// `framing`.
    pub(crate) framing: &'static str,
    /// Requests.
    pub(crate) count: u64,
}

impl RouteMetrics {
    /// Empty series for the route labelled `label`.
    pub(crate) fn new(label: &str) -> RouteMetrics {
        RouteMetrics {
            label: Arc::from(label),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            first_byte: Histogram::new(RESPONSE_BUCKETS),
            total: Histogram::new(RESPONSE_BUCKETS),
        }
    }

    /// The `route` label: the configured prefix, or [`UNROUTED`].
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Count one exchange: `status` 0 when nothing was sent, `first_byte` when something
    /// was.
    #[inline]
    pub(crate) fn record(
        &self,
        status: u16,
        mode: Option<Mode>,
        framing: Framing,
        first_byte: Option<Duration>,
        total: Duration,
    ) {
        let i = (class_index(status) * MODES.len() + mode_index(mode)) * FRAMINGS.len()
            + framing_index(framing);
        if let Some(n) = self.requests.get(i) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(d) = first_byte {
            self.first_byte.observe(d);
        }
        self.total.observe(total);
    }

    /// The request series with a nonzero count.
    pub(crate) fn requests(&self) -> Vec<RequestCount> {
        let mut out = Vec::new();
        for (i, n) in self.requests.iter().enumerate() {
            let count = n.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let framing = FRAMINGS[i % FRAMINGS.len()];
            let mode = MODES[i / FRAMINGS.len() % MODES.len()];
            let status_class = STATUS_CLASSES[i / (FRAMINGS.len() * MODES.len())];
            out.push(RequestCount {
                status_class,
                mode,
                framing,
                count,
            });
        }
        out
    }

    /// Time to the first byte of the response.
    pub(crate) fn first_byte(&self) -> &Histogram {
        &self.first_byte
    }

    /// Time to the end of the exchange.
    pub(crate) fn total(&self) -> &Histogram {
        &self.total
    }
}

/// Why a script was stopped before it ended by itself (`reason` label). A malformed header
/// block is not among them: the script has mostly ended already when that is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Silent for `idle_timeout`.
    Idle,
    /// Ran past `timeout`.
    Timeout,
    /// Its connection ended under it: the client went away, stopped reading
    /// (`write_timeout`) or broke its request body.
    Disconnect,
    /// Still running when the server stopped.
    Shutdown,
    /// The kernel stopped it at one of its route's `limits` (CPU time, file size).
    Limit,
}

impl StopReason {
    /// Every reason, in label order.
    pub(crate) const ALL: [StopReason; 5] = [
        StopReason::Idle,
        StopReason::Timeout,
        StopReason::Disconnect,
        StopReason::Shutdown,
        StopReason::Limit,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StopReason::Idle => "idle",
            StopReason::Timeout => "timeout",
            StopReason::Disconnect => "disconnect",
            StopReason::Shutdown => "shutdown",
            StopReason::Limit => "limit",
        }
    }
}

/// The CGI host's series, shared by every CGI route and the registry of running scripts.
#[derive(Debug)]
pub(crate) struct CgiMetrics {
    /// From asking for a script to its process running (a fork and exec, or the helper's
    /// round trip).
    pub(crate) spawn: Histogram,
    /// Waits for a `max_children` slot that ended with one.
    pub(crate) queue_wait: Histogram,
    running: AtomicU64,
    stopped: [AtomicU64; StopReason::ALL.len()],
    no_slot: AtomicU64,
    client_limit: AtomicU64,
}

impl Default for CgiMetrics {
    fn default() -> Self {
        CgiMetrics {
            spawn: Histogram::new(SPAWN_BUCKETS),
            queue_wait: Histogram::new(QUEUE_BUCKETS),
            running: AtomicU64::new(0),
            stopped: Default::default(),
            no_slot: AtomicU64::new(0),
            client_limit: AtomicU64::new(0),
        }
    }
}

impl CgiMetrics {
    /// Scripts running now, as the registry of process groups counts them.
    pub(crate) fn set_running(&self, n: usize) {
        self.running
            .store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Scripts running now.
    pub(crate) fn running(&self) -> u64 {
        self.running.load(Ordering::Relaxed)
    }

    /// A script was stopped.
    pub(crate) fn count_stop(&self, reason: StopReason) {
        self.stopped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Scripts stopped for `reason`.
    pub(crate) fn stopped(&self, reason: StopReason) -> u64 {
        self.stopped[reason as usize].load(Ordering::Relaxed)
    }

    /// A request waited `queue_timeout` for a `max_children` slot and got 503.
    pub(crate) fn count_no_slot(&self) {
        self.no_slot.fetch_add(1, Ordering::Relaxed);
    }

    /// 503s for want of a `max_children` slot.
    pub(crate) fn no_slot(&self) -> u64 {
        self.no_slot.load(Ordering::Relaxed)
    }

    /// A client at `max_children_per_client` got 503.
    pub(crate) fn count_client_limit(&self) {
        self.client_limit.fetch_add(1, Ordering::Relaxed);
    }

    /// 503s for clients at `max_children_per_client`.
    pub(crate) fn client_limit(&self) -> u64 {
        self.client_limit.load(Ordering::Relaxed)
    }
}

/// How a TLS handshake ended (`result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// A full handshake.
    Full,
    /// A session resumed (TLS 1.2 session ID or ticket, TLS 1.3 ticket).
    Resumed,
    /// A handshake that failed: a TLS error, `handshake_timeout`, or bytes that are not TLS.
    Failed,
}

impl Handshake {
    /// Every result, in label order.
    pub(crate) const ALL: [Handshake; 3] = [Handshake::Full, Handshake::Resumed, Handshake::Failed];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Handshake::Full => "full",
            Handshake::Resumed => "resumed",
            Handshake::Failed => "failed",
        }
    }
}

/// What the server refused itself (`kind` label), after the status it answered with: the
/// engine maps each parse, limit and timeout error to one status, in one place, so the
/// status names the kind without the engine knowing about metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadRequest {
    /// 400: malformed framing, syntax, request line, Host, chunking.
    Malformed,
    /// 408: the head (`header_timeout`) or the body (`body_timeout`) came too slowly.
    Timeout,
    /// 413: a body over `max_body_bytes`.
    BodyTooLarge,
    /// 414: a request line over `max_head_bytes`.
    UriTooLong,
    /// 431: a head over `max_head_bytes` or `max_headers`.
    HeadTooLarge,
    /// 417: an Expect other than `100-continue`.
    Expectation,
    /// 501: a transfer coding other than chunked.
    NotImplemented,
    /// 505: an HTTP version other than 1.0 and 1.1.
    Version,
    /// A PROXY header refused (missing, malformed, untrusted): the connection was closed.
    Proxy,
    /// Any other status (none today).
    Other,
}

impl BadRequest {
    /// Every kind, in label order.
    pub(crate) const ALL: [BadRequest; 10] = [
        BadRequest::Malformed,
        BadRequest::Timeout,
        BadRequest::BodyTooLarge,
        BadRequest::UriTooLong,
        BadRequest::HeadTooLarge,
        BadRequest::Expectation,
        BadRequest::NotImplemented,
        BadRequest::Version,
        BadRequest::Proxy,
        BadRequest::Other,
    ];

    /// The kind of a refusal answered with `status`.
    pub(crate) fn of_status(status: u16) -> BadRequest {
        match status {
            400 => BadRequest::Malformed,
            408 => BadRequest::Timeout,
            413 => BadRequest::BodyTooLarge,
            414 => BadRequest::UriTooLong,
            431 => BadRequest::HeadTooLarge,
            417 => BadRequest::Expectation,
            501 => BadRequest::NotImplemented,
            505 => BadRequest::Version,
            _ => BadRequest::Other,
        }
    }

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BadRequest::Malformed => "malformed",
            BadRequest::Timeout => "timeout",
            BadRequest::BodyTooLarge => "body_too_large",
            BadRequest::UriTooLong => "uri_too_long",
            BadRequest::HeadTooLarge => "head_too_large",
            BadRequest::Expectation => "expectation",
            BadRequest::NotImplemented => "not_implemented",
            BadRequest::Version => "version",
            BadRequest::Proxy => "proxy",
            BadRequest::Other => "other",
        }
    }
}

/// Every series the metrics handler reads beyond [`Stats`](crate::stats::Stats)' counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Whether requests are counted by route and timed: set once a `metrics` route exists,
    /// since timing needs clock reads a server without one would pay for nothing.
    requests_on: AtomicBool,
    /// Every route's series, in the order routes were built.
    routes: Mutex<Vec<Arc<RouteMetrics>>>,
    unrouted: Arc<RouteMetrics>,
    /// The CGI host's.
    pub(crate) cgi: Arc<CgiMetrics>,
    handshakes: [AtomicU64; Handshake::ALL.len()],
    bad_requests: [AtomicU64; BadRequest::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        let unrouted = Arc::new(RouteMetrics::new(UNROUTED));
        Metrics {
            requests_on: AtomicBool::new(false),
            routes: Mutex::new(vec![unrouted.clone()]),
            unrouted,
            cgi: Arc::default(),
            handshakes: Default::default(),
            bad_requests: Default::default(),
        }
    }
}

impl Metrics {
    /// Count and time requests by route from now on (a `metrics` route was built).
    pub(crate) fn enable_requests(&self) {
        self.requests_on.store(true, Ordering::Relaxed);
    }

    /// Whether requests are counted by route and timed.
    #[inline]
    pub(crate) fn is_counting_requests(&self) -> bool {
        self.requests_on.load(Ordering::Relaxed)
    }

    /// The series of the route with prefix `prefix`, made on first use. A route built
    /// again with the same prefix (a config reloaded) gets the same series, so its counters
    /// keep counting up, as Prometheus needs them to.
    pub(crate) fn route(&self, prefix: &str) -> Arc<RouteMetrics> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = routes.iter().find(|r| r.label() == prefix) {
            return found.clone();
        }
        let made = Arc::new(RouteMetrics::new(prefix));
        routes.push(made.clone());
        made
    }

    /// The series of requests no route matched, and of heads refused before routing.
    pub(crate) fn unrouted(&self) -> &Arc<RouteMetrics> {
        &self.unrouted
    }

    /// Every route's series, [`UNROUTED`] first.
    pub(crate) fn routes(&self) -> Vec<Arc<RouteMetrics>> {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A TLS handshake ended.
    pub(crate) fn count_handshake(&self, result: Handshake) {
        self.handshakes[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// TLS handshakes that ended with `result`.
    pub(crate) fn handshakes(&self, result: Handshake) -> u64 {
        self.handshakes[result as usize].load(Ordering::Relaxed)
    }

    /// The server refused a request (or a connection's PROXY header) itself.
    pub(crate) fn count_bad_request(&self, kind: BadRequest) {
        self.bad_requests[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals of `kind`.
    pub(crate) fn bad_requests(&self, kind: BadRequest) -> u64 {
        self.bad_requests[kind as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_puts_each_duration_in_the_first_bucket_that_holds_it() {
        let h = Histogram::new(&[1_000, 1_000_000]);
        h.observe(Duration::from_nanos(1_000));
        h.observe(Duration::from_nanos(1_001));
        h.observe(Duration::from_secs(2));
        h.observe(Duration::MAX);
        let snap = h.snapshot();
        assert_eq!(snap.count, 4);
        assert_eq!(
            snap.buckets,
            vec![(0.000_001, 1), (0.001, 1), (f64::INFINITY, 2)]
        );
        // The sum wraps rather than panics; below that it is exact to the nanosecond.
        let small = Histogram::new(RESPONSE_BUCKETS);
        small.observe(Duration::from_micros(250));
        small.observe(Duration::from_millis(3));
        assert_eq!(small.snapshot().sum, 0.003_25);
    }

    #[test]
    fn bucket_bounds_read_as_the_decimal_seconds_they_are() {
        let snap = Histogram::new(RESPONSE_BUCKETS).snapshot();
        let bounds: Vec<f64> = snap.buckets.iter().map(|b| b.0).collect();
        assert_eq!(
            bounds,
            [
                0.0001,
                0.00025,
                0.0005,
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1.0,
                2.5,
                5.0,
                10.0,
                30.0,
                60.0,
                f64::INFINITY
            ]
        );
        for bounds in [RESPONSE_BUCKETS, SPAWN_BUCKETS, QUEUE_BUCKETS] {
            assert!(bounds.windows(2).all(|w| w[0] < w[1]), "ascending");
        }
    }

    #[test]
    fn every_label_combination_has_its_own_series() {
        let r = RouteMetrics::new("/x");
        let statuses = [0, 100, 200, 302, 404, 503, 700];
        let modes = [
            None,
            Some(Mode::Buffer),
            Some(Mode::Stream),
            Some(Mode::Auto),
            Some(Mode::Sized(3)),
            Some(Mode::Close),
        ];
        let framings = [
            Framing::Length,
            Framing::Chunked,
            Framing::Close,
            Framing::None,
        ];
        for s in statuses {
            for m in modes {
                for f in framings {
                    r.record(s, m, f, None, Duration::ZERO);
                }
            }
        }
        let all = r.requests();
        assert_eq!(all.len(), SERIES);
        assert!(all.iter().all(|c| c.count == 1));
        let mut labels: Vec<_> = all
            .iter()
            .map(|c| (c.status_class, c.mode, c.framing))
            .collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), SERIES, "no two combinations share a series");
        assert_eq!(r.total().snapshot().count, SERIES as u64);
        assert_eq!(r.first_byte().snapshot().count, 0);
    }

    #[test]
    fn a_request_is_counted_under_its_labels() {
        let r = RouteMetrics::new("/hello");
        r.record(
            200,
            Some(Mode::Auto),
            Framing::Length,
            Some(Duration::from_micros(40)),
            Duration::from_micros(60),
        );
        r.record(0, None, Framing::None, None, Duration::from_millis(2));
        assert_eq!(
            r.requests(),
            vec![
                RequestCount {
                    status_class: "2xx",
                    mode: "auto",
                    framing: "length",
                    count: 1
                },
                RequestCount {
                    status_class: "none",
                    mode: "none",
                    framing: "none",
                    count: 1
                },
            ]
        );
        assert_eq!(r.first_byte().snapshot().count, 1);
        assert_eq!(r.first_byte().snapshot().buckets[0], (0.0001, 1));
        assert_eq!(r.total().snapshot().count, 2);
    }

    #[test]
    fn a_route_built_again_keeps_its_series() {
        let m = Metrics::default();
        let a = m.route("/a");
        a.record(200, None, Framing::None, None, Duration::ZERO);
        let again = m.route("/a");
        assert!(Arc::ptr_eq(&a, &again));
        let labels: Vec<String> = m.routes().iter().map(|r| r.label().to_string()).collect();
        assert_eq!(labels, [UNROUTED, "/a"]);
    }

    #[test]
    fn refusals_are_named_by_their_status() {
        let cases = [
            (400, "malformed"),
            (408, "timeout"),
            (413, "body_too_large"),
            (414, "uri_too_long"),
            (431, "head_too_large"),
            (417, "expectation"),
            (501, "not_implemented"),
            (505, "version"),
            (500, "other"),
        ];
        for (status, kind) in cases {
            assert_eq!(BadRequest::of_status(status).as_str(), kind, "{status}");
        }
        for (i, kind) in BadRequest::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "ALL is in discriminant order");
        }
        for (i, r) in StopReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        for (i, h) in Handshake::ALL.iter().enumerate() {
            assert_eq!(*h as usize, i);
        }
    }
}
