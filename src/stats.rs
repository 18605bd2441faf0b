//! Server-wide counters, read by the `status` handler and, with the series of
//! [`Metrics`], by the `metrics` handler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::http::framer::Framing;
use crate::metrics::{BadRequest, Metrics};

/// Counters shared by every connection. Relaxed atomics: they are statistics, not locks.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    open_connections: AtomicU64,
    accepted: AtomicU64,
    requests: AtomicU64,
    by_framing: [AtomicU64; 4],
    errors: AtomicU64,
    log_dropped: AtomicU64,
    helper_restarts: AtomicU64,
    /// What only the metrics handler reports.
    pub(crate) metrics: Metrics,
}

/// A consistent-enough copy of the counters.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Snapshot {
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Connections open now.
    pub open_connections: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Responses sent since start (every framing).
    pub requests_served: u64,
    /// Responses with Content-Length.
    pub responses_length: u64,
    /// Responses chunked.
    pub responses_chunked: u64,
    /// Responses delimited by close.
    pub responses_close: u64,
    /// Responses without a body (HEAD, 204, 304 and bodies that never started).
    pub responses_none: u64,
    /// Requests the server refused itself (bad or too slow heads and bodies, limits).
    pub bad_requests: u64,
    /// Access log lines dropped because the log target could not keep up.
    pub access_log_dropped: u64,
    /// CGI spawn helpers started again after they died.
    pub cgi_helper_restarts: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            open_connections: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            by_framing: Default::default(),
            errors: AtomicU64::new(0),
            log_dropped: AtomicU64::new(0),
            helper_restarts: AtomicU64::new(0),
            metrics: Metrics::default(),
        }
    }
}

impl Stats {
    /// A connection was accepted; the guard counts it open until dropped.
    pub(crate) fn open_connection(self: &std::sync::Arc<Self>) -> ConnectionGuard {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.clone())
    }

    /// A response finished (or was abandoned, `started` false when nothing went out).
    pub(crate) fn count_response(&self, framing: Framing, started: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let slot = match (started, framing) {
            (true, Framing::Length) => 0,
            (true, Framing::Chunked) => 1,
            (true, Framing::Close) => 2,
            _ => 3,
        };
        self.by_framing[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// The server refused a request (or a connection's PROXY header) itself.
    pub(crate) fn count_error(&self, kind: BadRequest) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.metrics.count_bad_request(kind);
    }

    /// An access log line was dropped.
    pub(crate) fn count_log_dropped(&self) {
        self.log_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// A spawn helper that died is being started again; the restarts so far, this one in.
    pub(crate) fn count_helper_restart(&self) -> u64 {
        self.helper_restarts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Read the counters.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            uptime_seconds: self.started.elapsed().as_secs(),
            open_connections: get(&self.open_connections),
            connections_accepted: get(&self.accepted),
            requests_served: get(&self.requests),
            responses_length: get(&self.by_framing[0]),
            responses_chunked: get(&self.by_framing[1]),
            responses_close: get(&self.by_framing[2]),
            responses_none: get(&self.by_framing[3]),
            bad_requests: get(&self.errors),
            access_log_dropped: get(&self.log_dropped),
            cgi_helper_restarts: get(&self.helper_restarts),
        }
    }
}

/// Keeps a connection counted as open.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(std::sync::Arc<Stats>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}
