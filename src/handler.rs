//! The `Handler` trait — the one interface for everything that answers a request
//! (CGI, built-ins, static files, native plugins) — and the request a handler sees.
//!
//! A handler gets the parsed head, facts about the connection, and the body as an
//! incremental reader; it answers through a [`Response`]. Handlers are infallible at the
//! boundary (as in axum): an `Err` before the head went out becomes a response with the
//! error's status ([`HandlerError::status`]), an `Err` after it closes the connection, so
//! nothing half-written ever looks complete on the wire.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::http::channel::{BodyMsg, Channel, HandlerEnds};
use crate::http::decode::BodyError;
use crate::http::head::{BodyFraming, RequestHead};
use crate::response::Response;

pub use crate::error::{GatewayError, HandlerError};
pub use crate::http::service::ConnInfo;

/// What SERVER_SOFTWARE says.
pub const SERVER_SOFTWARE: &str = concat!("cgigate/", env!("CARGO_PKG_VERSION"));

/// A boxed, `Send` future: what [`Handler::call`] returns (the trait stays object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything that answers a request implements this; the router only knows handlers.
pub trait Handler: Send + Sync + 'static {
    /// Answer one request. Dropping the returned future (the client went away, shutdown timed
    /// out) must release everything the handler holds: cancellation is the stop signal.
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// One request, as a handler sees it.
pub struct Request {
    /// The validated request head.
    pub head: RequestHead,
    /// The connection it came on.
    pub conn: ConnInfo,
    /// The prefix of the route that matched (what CGI calls the mount point).
    pub prefix: Arc<str>,
    /// The request path with dot-segments removed (RFC 3986 §5.2.4), still percent-encoded;
    /// the router matched on this.
    pub path: String,
    /// The request body, read incrementally.
    pub body: Body,
    /// Internal redirects followed to get here (a CGI's `Location: /local`).
    pub redirects: u8,
}

impl Request {
    /// The raw path below the route prefix ("" when the path is the prefix itself).
    pub fn path_below_prefix(&self) -> &str {
        self.path.strip_prefix(&*self.prefix).unwrap_or("")
    }
}

/// The request body as an incremental reader. Chunked bodies arrive de-chunked; the first
/// read of a request that sent `Expect: 100-continue` makes the server send `100 Continue`.
pub struct Body {
    rx: Option<mpsc::Receiver<BodyMsg>>,
    channel: Arc<Channel>,
    framing: BodyFraming,
    asked: bool,
}

impl Body {
    /// The body reader of an exchange, and the channel its response writer uses.
    pub(crate) fn open(ends: HandlerEnds) -> (Body, Arc<Channel>) {
        let body = Body::new(ends.body, ends.channel.clone(), ends.framing);
        (body, ends.channel)
    }

    fn new(
        rx: Option<mpsc::Receiver<BodyMsg>>,
        channel: Arc<Channel>,
        framing: BodyFraming,
    ) -> Body {
        Body {
            rx,
            channel,
            framing,
            asked: false,
        }
    }

    /// A body that is already complete and empty (tests, internal redirects).
    pub fn empty() -> Body {
        Body::new(None, Channel::new(), BodyFraming::None)
    }

    /// Next piece of the body; `Ok(None)` at its end.
    pub async fn read(&mut self) -> Result<Option<Bytes>, BodyError> {
        if !self.asked {
            self.asked = true;
            self.channel.want_body();
        }
        let Some(rx) = self.rx.as_mut() else {
            return Ok(None);
        };
        match rx.recv().await {
            Some(Ok(data)) => Ok(Some(data)),
            Some(Err(e)) => {
                self.rx = None;
                Err(e)
            }
            None => {
                self.rx = None;
                Ok(None)
            }
        }
    }

    /// Read the whole body into memory, failing with `TooLarge` beyond `limit` bytes.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, BodyError> {
        let mut all = Vec::new();
        while let Some(piece) = self.read().await? {
            if all.len() + piece.len() > limit {
                return Err(BodyError::TooLarge);
            }
            all.extend_from_slice(&piece);
        }
        Ok(all)
    }

    /// The declared length, for a Content-Length body.
    pub fn content_length(&self) -> Option<u64> {
        match self.framing {
            BodyFraming::Length(n) => Some(n),
            BodyFraming::None => Some(0),
            BodyFraming::Chunked => None,
        }
    }

    /// Whether the request has a body at all (a length > 0 or chunked).
    pub fn is_present(&self) -> bool {
        !matches!(self.framing, BodyFraming::None | BodyFraming::Length(0))
    }

    /// Whether the body arrives chunked.
    pub fn is_chunked(&self) -> bool {
        self.framing == BodyFraming::Chunked
    }
}
