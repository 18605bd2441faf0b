//! The response writer a handler holds: status, headers, output mode, `write`, `flush`,
//! `is_connected`. It only collects and forwards; the framing decisions (Content-Length,
//! chunked, close-delimited, keep-alive) are made by [`crate::http::framer`] on the
//! connection side, where the rules of SPEC §4 live in one place.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::OutputMode;
use crate::handler::{ExchangeShared, HandlerError};

/// How a response body is to be framed, as the producer asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Hold the body; Content-Length if it fits in `buffer_limit` (SPEC §4 buffer).
    Buffer,
    /// Send every write at once as a chunk (SPEC §4 stream).
    Stream,
    /// Buffer, but stream once the producer is silent for `flush_after` (SPEC §4 auto).
    Auto,
    /// The producer declared the length up front.
    Sized(u64),
    /// Delimited by closing the connection, whatever the client's version (NPH scripts).
    Close,
}

impl From<OutputMode> for Mode {
    fn from(m: OutputMode) -> Mode {
        match m {
            OutputMode::Buffer => Mode::Buffer,
            OutputMode::Stream => Mode::Stream,
            OutputMode::Auto => Mode::Auto,
        }
    }
}

/// Status line and header fields of a response, before framing headers are added.
#[derive(Debug, Clone)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Header fields in order, already validated (token names, no CR/LF/NUL in values).
    pub headers: Vec<(String, Bytes)>,
    /// The output mode in force when the head was sent.
    pub mode: Mode,
}

/// What the handler side tells the connection.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// The head (sent lazily with the first write, flush or the end).
    Head(Head),
    /// A piece of body.
    Data(Bytes),
    /// Deliver what is held now (stream and auto modes).
    Flush,
    /// The handler finished; the body is complete.
    End,
    /// The handler failed: this status if nothing was sent, else close without completing
    /// the body.
    Abort(u16),
}

/// Header fields the server owns: a handler may not set them (RFC 9112 §6, §9.6; RFC 9110 §7.6.1).
const SERVER_OWNED: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "te",
    "trailer",
    "date",
];

/// Whether a client is still connected, readable from any thread.
#[derive(Debug, Clone)]
pub struct Connection(Arc<ExchangeShared>);

impl Connection {
    /// False once the client is gone.
    pub fn is_connected(&self) -> bool {
        self.0.is_connected()
    }
}

/// The response writer handed to a handler.
pub struct Response {
    shared: Arc<ExchangeShared>,
    status: u16,
    headers: Vec<(String, Bytes)>,
    mode: Mode,
    head_sent: bool,
}

impl Response {
    pub(crate) fn new(shared: Arc<ExchangeShared>, mode: Mode) -> Self {
        Response {
            shared,
            status: 200,
            headers: Vec::new(),
            mode,
            head_sent: false,
        }
    }

    /// Set the status code (200–999; others become 500: interim 1xx responses are the server's). Ignored once the head is sent.
    pub fn status(&mut self, code: u16) -> &mut Self {
        if !self.head_sent {
            self.status = if (200..1000).contains(&code) {
                code
            } else {
                500
            };
        }
        self
    }

    /// The status code set so far.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// Add a header field. Framing and hop-by-hop fields are the server's and are dropped;
    /// `Content-Length` becomes [`Response::sized`]. Returns false (and adds nothing) for a
    /// name that is not a token or a value with CR, LF, NUL or other control bytes.
    pub fn header(&mut self, name: &str, value: impl Into<Bytes>) -> bool {
        let value = value.into();
        if self.head_sent || !is_token(name) || !is_field_value(&value) {
            return false;
        }
        if name.eq_ignore_ascii_case("content-length") {
            return match std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.parse().ok())
            {
                Some(n) => {
                    self.mode = Mode::Sized(n);
                    true
                }
                None => false,
            };
        }
        if !SERVER_OWNED
            .iter()
            .any(|owned| name.eq_ignore_ascii_case(owned))
        {
            self.headers.push((name.to_string(), value));
        }
        true
    }

    /// Replace every field named `name` with one value.
    pub fn set_header(&mut self, name: &str, value: impl Into<Bytes>) -> bool {
        if !self.head_sent {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
        self.header(name, value)
    }

    /// Hold the whole body and send it with Content-Length if it fits (SPEC §4).
    pub fn buffered(&mut self) -> &mut Self {
        self.set_mode(Mode::Buffer)
    }

    /// Send each write at once, chunked (SPEC §4).
    pub fn streaming(&mut self) -> &mut Self {
        self.set_mode(Mode::Stream)
    }

    /// Declare the body length up front; surplus is dropped, a shortfall closes the connection.
    pub fn sized(&mut self, len: u64) -> &mut Self {
        self.set_mode(Mode::Sized(len))
    }

    /// Choose the mode; ignored once the head is sent.
    pub fn set_mode(&mut self, mode: Mode) -> &mut Self {
        if !self.head_sent {
            self.mode = mode;
        }
        self
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the head has been handed to the connection.
    pub fn is_head_sent(&self) -> bool {
        self.head_sent
    }

    /// Whether the client is still there. After a disconnect, writes fail.
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }

    /// A handle that answers [`Response::is_connected`] from another thread (a plugin's).
    pub fn connection(&self) -> Connection {
        Connection(self.shared.clone())
    }

    /// Write a piece of the body; waits while the client is slow (back-pressure).
    pub async fn write(&mut self, data: impl Into<Bytes>) -> Result<(), HandlerError> {
        let data = data.into();
        self.send_head().await?;
        if data.is_empty() {
            return Ok(());
        }
        self.send(Cmd::Data(data)).await
    }

    /// Deliver everything written so far now (stream and auto; a no-op in buffer mode).
    pub async fn flush(&mut self) -> Result<(), HandlerError> {
        self.send_head().await?;
        self.send(Cmd::Flush).await
    }

    /// Send the head now if it has not gone yet (the body follows later, or never).
    pub async fn send_head(&mut self) -> Result<(), HandlerError> {
        if self.head_sent {
            return Ok(());
        }
        self.head_sent = true;
        let head = Head {
            status: self.status,
            headers: std::mem::take(&mut self.headers),
            mode: self.mode,
        };
        self.send(Cmd::Head(head)).await
    }

    /// Called by the connection when the handler returned `Ok`.
    pub(crate) async fn end(&mut self) -> Result<(), HandlerError> {
        self.send_head().await?;
        self.send(Cmd::End).await
    }

    /// Called by the connection when the handler failed.
    pub(crate) async fn abort(&mut self, status: u16) {
        let _ = self.send(Cmd::Abort(status)).await;
    }

    async fn send(&mut self, cmd: Cmd) -> Result<(), HandlerError> {
        self.shared
            .cmds
            .send(cmd)
            .await
            .map_err(|_| HandlerError::Disconnected)
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        // The connection sees the end of the commands (a handler that never ended: 500).
        self.shared.cmds.close_producer();
    }
}

/// RFC 9110 §5.6.2 token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// RFC 9110 §5.6.2 tchar.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 §5.5: field-value is VCHAR, SP, HTAB and obs-text; never CR, LF or NUL.
pub(crate) fn is_field_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || b >= 0x20 && b != 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response() -> (Response, Arc<ExchangeShared>) {
        let shared = ExchangeShared::new();
        (Response::new(shared.clone(), Mode::Auto), shared)
    }

    #[test]
    fn server_owned_and_invalid_fields_are_refused() {
        let (mut res, _rx) = response();
        assert!(res.header("X-Ok", "fine"));
        assert!(res.header("Connection", "close"));
        assert!(!res.header("Bad Name", "x"));
        assert!(!res.header("X-Split", "a\r\nInjected: 1"));
        assert!(!res.header("X-Nul", &b"a\0b"[..]));
        assert_eq!(res.headers.len(), 1);
    }

    #[test]
    fn content_length_becomes_sized() {
        let (mut res, _rx) = response();
        assert!(res.header("Content-Length", "42"));
        assert_eq!(res.mode(), Mode::Sized(42));
        assert!(!res.header("Content-Length", "-1"));
    }

    #[tokio::test]
    async fn head_goes_once_before_data() {
        let (mut res, rx) = response();
        let rx = &rx.cmds;
        res.status(201).header("X-A", "1");
        res.write("hello").await.unwrap();
        res.write("again").await.unwrap();
        match rx.recv().await {
            Some(Cmd::Head(h)) => assert_eq!(h.status, 201),
            other => panic!("expected head, got {other:?}"),
        }
        assert!(matches!(rx.recv().await, Some(Cmd::Data(_))));
        assert!(matches!(rx.recv().await, Some(Cmd::Data(_))));
        res.status(404);
        assert_eq!(res.status_code(), 201);
    }

    #[tokio::test]
    async fn write_after_connection_gone_fails() {
        let (mut res, rx) = response();
        rx.cmds.close_consumer();
        assert!(matches!(
            res.write("x").await,
            Err(HandlerError::Disconnected)
        ));
    }
}
