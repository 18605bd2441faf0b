//! What a connection needs from the application above it, and no more: start answering a
//! request head, run that answer, and hear how each exchange ended. The connection is
//! generic over a [`Service`], so this layer names nothing above it (no router, handler,
//! access log or counters), as hyper's `proto::h1` knows only its `Dispatch`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::channel::HandlerEnds;
use super::framer::{Framing, Mode, OutputLimits};
use super::head::RequestHead;

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address: the socket's peer, or the client a trusted balancer named in a
    /// PROXY header or (for one request) a forwarding header.
    pub peer: SocketAddr,
    /// The local address the client connected to (the balancer's, with a PROXY header).
    pub local: SocketAddr,
    /// Whether the client's connection is TLS (as a trusted proxy says, with
    /// `X-Forwarded-Proto` or `proto=`).
    pub tls: bool,
}

/// The request an exchange answered, as far as the log is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Requested<'a> {
    /// A parsed head.
    Head(&'a RequestHead),
    /// A head the server refused: the bytes of its request line as received (maybe cut
    /// short or empty).
    Refused(&'a [u8]),
}

/// How one exchange went: what the access log and the counters are told.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    /// The connection.
    pub(crate) conn: &'a ConnInfo,
    /// The request.
    pub(crate) request: Requested<'a>,
    /// When the request head was complete (the epoch when the service wants no wall time).
    pub(crate) time: SystemTime,
    /// Status sent; 0 when nothing was sent.
    pub(crate) status: u16,
    /// Body bytes sent (without framing).
    pub(crate) bytes: u64,
    /// Output mode in force, if a head was produced.
    pub(crate) mode: Option<Mode>,
    /// Framing used.
    pub(crate) framing: Framing,
    /// Time from the complete head to the first byte written.
    pub(crate) ttfb: Option<Duration>,
    /// Time from the complete head to the end of the exchange.
    pub(crate) total: Duration,
    /// Whether the connection stays open.
    pub(crate) keep_alive: bool,
    /// False when the client went away before the response was complete.
    pub(crate) completed: bool,
    /// The server answered the request itself because it was bad (a malformed, oversized
    /// or too slow head or body), not the handler.
    pub(crate) refused: bool,
    /// What went wrong in the answer, when something did (`bad_output`, `cpu_limit` …).
    pub(crate) outcome: Option<&'static str>,
}

/// The application a connection serves.
pub(crate) trait Service: Send + Sync + 'static {
    /// One request being answered: whatever the application keeps for it (its request and
    /// response objects). It owns the request head.
    type Call: Send;

    /// Start answering `head`, arrived on `conn`. The answer reads its body and writes its
    /// response through `ends`.
    fn call(&self, head: RequestHead, conn: &ConnInfo, ends: HandlerEnds) -> Self::Call;

    /// The output settings of what answers a call.
    fn limits(call: &Self::Call) -> OutputLimits;

    /// Run the call to its end. Dropping the future (the client went away, shutdown timed
    /// out) must release everything it holds: cancellation is the stop signal.
    fn run<'a>(&'a self, call: &'a mut Self::Call) -> impl Future<Output = ()> + Send + 'a;

    /// The request head of a call.
    fn head(call: &Self::Call) -> &RequestHead;

    /// The connection as the call saw it (its client as forwarding headers named it).
    fn conn(call: &Self::Call) -> &ConnInfo;

    /// What went wrong in a call's answer, if anything did.
    fn outcome(call: &Self::Call) -> Option<&'static str>;

    /// Whether [`Record`]s need elapsed times, `ttfb` and `total` (reading clocks is a
    /// measurable share of a small exchange, so the connection skips it when nobody looks).
    fn wants_times(&self) -> bool;

    /// Whether [`Record`]s need the wall-clock `time` (a log line's date; a histogram of
    /// durations does without it).
    fn wants_wall_time(&self) -> bool {
        self.wants_times()
    }

    /// An exchange ended: `call` is the call that answered it, `None` for a head the
    /// server refused before any call. Must not wait.
    fn record(&self, call: Option<&Self::Call>, record: &Record<'_>);
}
