//! The `Handler` trait — the one interface for everything that answers a request
//! (CGI, built-ins, static files, native plugins) — and the request a handler sees.
//!
//! A handler gets the parsed head, facts about the connection, and the body as an
//! incremental reader; it answers through a [`Response`]. Handlers are infallible at the
//! boundary (as in axum): an `Err` before the head went out becomes a 500, an `Err` after it
//! closes the connection, so nothing half-written ever looks complete on the wire.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use crate::http::cmd_queue::CmdQueue;
use crate::http::decode::BodyError;
use crate::http::head::{BodyFraming, RequestHead};
pub use crate::response::Response;

/// What SERVER_SOFTWARE says.
pub const SERVER_SOFTWARE: &str = concat!("cgigate/", env!("CARGO_PKG_VERSION"));

/// What answers a request, as far as the CGI environment is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Mount<'a> {
    /// SCRIPT_NAME: the URL path of what answers.
    pub script_name: &'a str,
    /// SCRIPT_FILENAME: the program's file ("" for in-process handlers).
    pub script_filename: &'a str,
    /// PATH_INFO, decoded ("" for none).
    pub path_info: &'a str,
    /// DOCUMENT_ROOT ("" for none).
    pub document_root: &'a str,
    /// CONTENT_LENGTH, when the body's length is known to the reader.
    pub content_length: Option<u64>,
    /// Whether Authorization is exported.
    pub pass_auth: bool,
}

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

/// Why a handler could not finish. Mapped to a response in one place (the connection).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The client is gone; nothing more can be sent.
    #[error("client disconnected")]
    Disconnected,
    /// The request body was malformed, too large or stalled.
    #[error("request body: {0}")]
    Body(#[from] BodyError),
    /// An I/O error inside the handler (a file, a pipe).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Answer with this status if nothing was sent yet (502 for bad script output, 504 for
    /// a timeout…); otherwise close the connection.
    #[error("status {0}")]
    Status(u16),
    /// Anything else, with a message for the log (never sent to the client).
    #[error("{0}")]
    Other(String),
}

impl HandlerError {
    /// The status a client gets for this error when nothing was sent yet.
    pub fn status(&self) -> u16 {
        match self {
            HandlerError::Status(s) => *s,
            HandlerError::Body(e) => e.status(),
            HandlerError::Disconnected | HandlerError::Io(_) | HandlerError::Other(_) => 500,
        }
    }
}

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address the client connected to.
    pub local: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
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

    /// The server variables of SPEC §5.2 — the set a CGI script gets — for a handler mounted
    /// at its prefix: SCRIPT_NAME is the prefix, PATH_INFO the decoded rest of the path.
    /// Sorted by name, each once. Values are bytes (header values may hold obs-text).
    pub fn server_vars(&self) -> Vec<(String, Vec<u8>)> {
        let below = self.path_below_prefix();
        let decoded =
            crate::cgi::script::percent_decode_path(below).unwrap_or_else(|| below.to_string());
        let path_info = if decoded.is_empty() || decoded.starts_with('/') {
            decoded
        } else {
            format!("/{decoded}")
        };
        let mount = Mount {
            script_name: self.prefix.trim_end_matches('/'),
            script_filename: "",
            path_info: &path_info,
            document_root: "",
            content_length: self
                .body
                .is_present()
                .then(|| self.body.content_length())
                .flatten(),
            pass_auth: false,
        };
        self.cgi_env(&mount, Vec::new(), &[])
    }

    /// The CGI environment (RFC 3875 §4.1, SPEC §5.2) of this request for what `mount`
    /// says answers it; `inherited` first, `extra` last (it overrides).
    pub fn cgi_env(
        &self,
        mount: &Mount<'_>,
        inherited: Vec<(String, Vec<u8>)>,
        extra: &[(String, String)],
    ) -> Vec<(String, Vec<u8>)> {
        let h = &self.head;
        let headers: Vec<(&[u8], &[u8])> = h
            .headers
            .iter()
            .map(|f| (&f.name[..], &f.value[..]))
            .collect();
        let request = crate::cgi::env::EnvRequest {
            method: h.method_str(),
            target: h.target_str(),
            query: h.query(),
            protocol: h.version.as_str(),
            headers: &headers,
            host: h.host(),
            peer: self.conn.peer,
            local: self.conn.local,
            tls: self.conn.tls,
            script_name: mount.script_name,
            script_filename: mount.script_filename,
            path_info: mount.path_info,
            document_root: mount.document_root,
            content_length: mount.content_length,
            has_body: self.body.is_present(),
            pass_auth: mount.pass_auth,
            server_software: SERVER_SOFTWARE,
        };
        crate::cgi::env::build(&request, inherited, extra)
    }
}

/// State shared between one exchange's handler side and its connection loop.
#[derive(Debug, Default)]
pub(crate) struct ExchangeShared {
    connected: AtomicBool,
    /// Wakes the connection loop the first time the handler asks for the body (100-continue).
    pub(crate) body_wanted_notify: Notify,
    /// The response, from the handler's writer to the connection loop.
    pub(crate) cmds: CmdQueue,
}

impl ExchangeShared {
    pub(crate) fn new() -> Arc<ExchangeShared> {
        let shared = ExchangeShared::default();
        shared.connected.store(true, Ordering::Relaxed);
        Arc::new(shared)
    }
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
    pub(crate) fn set_disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }
}

/// A message from the connection to the body reader: a piece of data or the failure.
pub(crate) type BodyMsg = Result<Bytes, BodyError>;

/// The request body as an incremental reader. Chunked bodies arrive de-chunked; the first
/// read of a request that sent `Expect: 100-continue` makes the server send `100 Continue`.
pub struct Body {
    rx: Option<mpsc::Receiver<BodyMsg>>,
    shared: Arc<ExchangeShared>,
    framing: BodyFraming,
    asked: bool,
}

impl Body {
    pub(crate) fn new(
        rx: Option<mpsc::Receiver<BodyMsg>>,
        shared: Arc<ExchangeShared>,
        framing: BodyFraming,
    ) -> Body {
        Body {
            rx,
            shared,
            framing,
            asked: false,
        }
    }

    /// A body that is already complete and empty (tests, internal redirects).
    pub fn empty() -> Body {
        Body::new(None, ExchangeShared::new(), BodyFraming::None)
    }

    /// Next piece of the body; `Ok(None)` at its end.
    pub async fn read(&mut self) -> Result<Option<Bytes>, BodyError> {
        if !self.asked {
            self.asked = true;
            self.shared.body_wanted_notify.notify_one();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{parse, Limits};

    fn request(raw: &[u8], prefix: &str) -> Request {
        let mut buf = bytes::BytesMut::from(raw);
        let head = parse(&mut buf, &Limits::default()).unwrap().unwrap();
        let path = head.path().to_string();
        Request {
            head,
            conn: ConnInfo {
                peer: "127.0.0.1:5000".parse().unwrap(),
                local: "127.0.0.1:8080".parse().unwrap(),
                tls: false,
            },
            prefix: Arc::from(prefix),
            path,
            body: Body::empty(),
            redirects: 0,
        }
    }

    #[test]
    fn server_vars_are_the_cgi_set_for_the_mount_point() {
        let req = request(
            b"GET /ext/hello/a%20b?x=1 HTTP/1.1\r\nHost: h:8080\r\nX-Ok: 1\r\nProxy: p\r\n\r\n",
            "/ext/hello/",
        );
        let vars: std::collections::BTreeMap<_, _> = req
            .server_vars()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(vars["SCRIPT_NAME"], "/ext/hello");
        assert_eq!(vars["PATH_INFO"], "/a b");
        assert_eq!(vars["QUERY_STRING"], "x=1");
        assert_eq!(vars["SERVER_NAME"], "h");
        assert_eq!(vars["SERVER_PORT"], "8080");
        assert_eq!(vars["REMOTE_ADDR"], "127.0.0.1");
        assert_eq!(vars["HTTP_X_OK"], "1");
        assert!(!vars.contains_key("HTTP_PROXY"));
        assert!(!vars.contains_key("CONTENT_LENGTH"));
    }
}
