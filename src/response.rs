//! The response writer a handler holds: status, headers, output mode, `write`, `flush`,
//! `is_connected`. It only collects and forwards; the framing decisions (Content-Length,
//! chunked, close-delimited, keep-alive) are made by [`crate::http::framer`] on the
//! connection side, where the rules of SPEC §4 live in one place.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::HandlerError;
use crate::http::channel::Channel;
use crate::http::cmd_queue::Cmd;
use crate::http::framer::Head;
pub use crate::http::framer::Mode;
use crate::http::outbuf::FileRange;
use crate::http::status;
use crate::http::syntax::{is_field_value, is_hop_by_hop, is_token};

/// Whether a field named `name` is the server's to write: framing (RFC 9112 §6), hop-by-hop
/// (RFC 9110 §7.6.1) and `Date` (RFC 9110 §6.6.1, the origin's clock).
fn is_server_owned(name: &str) -> bool {
    is_hop_by_hop(name.as_bytes()) || name.eq_ignore_ascii_case("date")
}

/// Whether a `Connection` value asks for the connection to close (RFC 9112 §9.6).
fn asks_close(value: &[u8]) -> bool {
    crate::http::syntax::split_list(value).any(|option| option.eq_ignore_ascii_case(b"close"))
}

/// Whether a client is still connected, readable from any thread.
#[derive(Debug, Clone)]
pub struct Connection(Arc<Channel>);

impl Connection {
    /// False once the client is gone.
    pub fn is_connected(&self) -> bool {
        self.0.is_connected()
    }
}

/// The response writer handed to a handler.
pub struct Response {
    channel: Arc<Channel>,
    /// The head being put together; handed to the connection whole, once.
    head: Head,
    head_sent: bool,
}

impl Response {
    /// A response writer on an exchange's channel, starting in `mode` (the route's).
    pub(crate) fn new(channel: Arc<Channel>, mode: Mode) -> Self {
        Response {
            channel,
            head: Head {
                status: status::OK,
                headers: Vec::new(),
                mode,
                close: false,
            },
            head_sent: false,
        }
    }

    /// Set the status code (200–999; others become 500: interim 1xx responses are the server's). Ignored once the head is sent.
    pub fn status(&mut self, code: u16) -> &mut Self {
        if !self.head_sent {
            self.head.status = if (200..1000).contains(&code) {
                code
            } else {
                status::INTERNAL_SERVER_ERROR
            };
        }
        self
    }

    /// The status code set so far.
    pub fn status_code(&self) -> u16 {
        self.head.status
    }

    /// Add a header field. Framing and hop-by-hop fields are the server's and are dropped,
    /// except that `Connection: close` closes the connection after this response;
    /// `Content-Length` becomes [`Response::sized`]. Returns false (and changes nothing) for
    /// a name that is not a token, a value with CR, LF, NUL or other control bytes, an
    /// invalid Content-Length, or once the head is sent.
    pub fn header(&mut self, name: &str, value: impl Into<Bytes>) -> bool {
        let value = value.into();
        if !self.accepts(name, &value) {
            return false;
        }
        self.add(name, value);
        true
    }

    /// Replace every field named `name` with one value. An invalid name or value (as for
    /// [`Response::header`]) changes nothing.
    pub fn set_header(&mut self, name: &str, value: impl Into<Bytes>) -> bool {
        let value = value.into();
        if !self.accepts(name, &value) {
            return false;
        }
        self.head
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.add(name, value);
        true
    }

    /// Add every field of a header block (`Name: value` lines ending in CRLF or LF; empty
    /// lines are skipped; OWS around values is not part of them), all or nothing: false,
    /// with nothing changed, if a line has no colon or any field would be refused by
    /// [`Response::header`].
    pub fn headers_from_block(&mut self, block: &[u8]) -> bool {
        if self.head_sent {
            return false;
        }
        match HeaderBlock::parse(block) {
            Some(fields) => {
                self.add_block(fields);
                true
            }
            None => false,
        }
    }

    /// Add the fields of a block [`HeaderBlock::parse`] accepted (before the head is sent;
    /// after, nothing changes).
    pub(crate) fn add_block(&mut self, block: HeaderBlock) {
        if self.head_sent {
            return;
        }
        for (name, value) in block.0 {
            self.add(&name, value);
        }
    }

    /// Whether `name: value` may be added now.
    fn accepts(&self, name: &str, value: &[u8]) -> bool {
        !self.head_sent && field_ok(name, value)
    }

    /// Adds an accepted field.
    fn add(&mut self, name: &str, value: Bytes) {
        if name.eq_ignore_ascii_case("content-length") {
            if let Some(n) = content_length(&value) {
                self.head.mode = Mode::Sized(n);
            }
        } else if name.eq_ignore_ascii_case("connection") {
            self.head.close |= asks_close(&value);
        } else if !is_server_owned(name) {
            self.head.headers.push((name.to_string(), value));
        }
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
            self.head.mode = mode;
        }
        self
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        self.head.mode
    }

    /// Whether the head has been handed to the connection.
    pub fn is_head_sent(&self) -> bool {
        self.head_sent
    }

    /// Whether the client is still there. After a disconnect, writes fail.
    pub fn is_connected(&self) -> bool {
        self.channel.is_connected()
    }

    /// A handle that answers [`Response::is_connected`] from another thread (a plugin's).
    pub fn connection(&self) -> Connection {
        Connection(self.channel.clone())
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

    /// Write a range of an open file as a piece of the body. On a plain TCP connection it
    /// goes from the file to the socket with sendfile(2), without passing through memory; the
    /// bytes sent are the file's when they go, so a file that shrinks by then closes the
    /// connection (the body is never completed short).
    pub(crate) async fn write_file(&mut self, range: FileRange) -> Result<(), HandlerError> {
        self.send_head().await?;
        if range.len == 0 {
            return Ok(());
        }
        self.send(Cmd::File(range)).await
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
            headers: std::mem::take(&mut self.head.headers),
            ..self.head
        };
        self.send(Cmd::Head(head)).await
    }

    /// Answer with a short plain-text body, `"{status} {text}\n"`, sized (refusals such as
    /// 404 and 403 that a handler makes itself).
    pub async fn plain(&mut self, status: u16, text: &str) -> Result<(), HandlerError> {
        let body = format!("{status} {text}\n");
        self.status(status);
        self.set_header("Content-Type", "text/plain; charset=utf-8");
        self.sized(body.len() as u64);
        self.write(body).await
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
        self.channel
            .cmds
            .send(cmd)
            .await
            .map_err(|_| HandlerError::Disconnected)
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        // The connection sees the end of the commands (a handler that never ended: 500).
        self.channel.cmds.close_producer();
    }
}

/// A Content-Length value: `1*DIGIT` (RFC 9110 §8.6).
fn content_length(value: &[u8]) -> Option<u64> {
    crate::http::syntax::parse_decimal(value)
}

/// A header block that passed the checks of [`Response::header`], field by field: what a
/// plugin's `send_headers` hands over, checked on the plugin's own thread, so that the call
/// need not wait for the response writer to say yes.
#[derive(Debug, Default)]
pub(crate) struct HeaderBlock(Vec<(String, Bytes)>);

impl HeaderBlock {
    /// The fields of `block` (`Name: value` lines ending in CRLF or LF; empty lines
    /// skipped; OWS around values not part of them), or `None` if a line has no colon or a
    /// field would be refused.
    pub(crate) fn parse(block: &[u8]) -> Option<HeaderBlock> {
        let mut fields = Vec::new();
        for line in block.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = line.split_at(colon);
            let value = crate::http::syntax::trim_ows(value.get(1..).unwrap_or_default());
            let name = std::str::from_utf8(name).ok()?;
            if !field_ok(name, value) {
                return None;
            }
            fields.push((name.to_string(), Bytes::copy_from_slice(value)));
        }
        Some(HeaderBlock(fields))
    }
}

/// Whether `name: value` is a field a response may carry (a token name, a valid value, a
/// Content-Length that is a number).
fn field_ok(name: &str, value: &[u8]) -> bool {
    if !is_token(name.as_bytes()) || !is_field_value(value) {
        return false;
    }
    !name.eq_ignore_ascii_case("content-length") || content_length(value).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response() -> (Response, Arc<Channel>) {
        let channel = Channel::new();
        (Response::new(channel.clone(), Mode::Auto), channel)
    }

    #[test]
    fn server_owned_and_invalid_fields_are_refused() {
        let (mut res, _rx) = response();
        assert!(res.header("X-Ok", "fine"));
        assert!(res.header("Keep-Alive", "timeout=5"));
        assert!(res.header("Date", "yesterday"));
        assert!(!res.header("Bad Name", "x"));
        assert!(!res.header("X-Split", "a\r\nInjected: 1"));
        assert!(!res.header("X-Nul", &b"a\0b"[..]));
        assert_eq!(res.head.headers.len(), 1);
    }

    #[test]
    fn connection_close_is_a_request_not_a_field() {
        let (mut res, _rx) = response();
        assert!(res.header("Connection", "keep-alive"));
        assert!(!res.head.close);
        assert!(res.header("Connection", "Upgrade, CLOSE"));
        assert!(res.head.close);
        assert!(res.head.headers.is_empty());
    }

    #[test]
    fn an_invalid_set_header_changes_nothing() {
        let (mut res, _rx) = response();
        assert!(res.header("X-A", "1"));
        assert!(res.header("x-a", "2"));
        assert!(!res.set_header("X-A", "bad\r\nvalue"));
        assert_eq!(
            res.head.headers.len(),
            2,
            "both fields survive a refused replacement"
        );
        assert!(!res.set_header("Content-Length", "nope"));
        assert_eq!(res.mode(), Mode::Auto);
        assert!(res.set_header("X-A", "3"));
        assert_eq!(
            res.head.headers,
            vec![("X-A".to_string(), Bytes::from_static(b"3"))]
        );
    }

    #[test]
    fn header_blocks_are_all_or_nothing() {
        let (mut res, _rx) = response();
        assert!(res.headers_from_block(b"Content-Type: text/plain\r\nX-A:  1 \nX-Empty:\r\n"));
        assert_eq!(res.head.headers.len(), 3);
        assert_eq!(
            res.head.headers[1],
            ("X-A".to_string(), Bytes::from_static(b"1"))
        );
        for bad in [
            &b"Bad Name: x\r\n"[..],
            b"X-A: a\rb\r\n",
            b"no colon\r\n",
            b"X: ok\nContent-Length: x\n",
        ] {
            assert!(!res.headers_from_block(bad), "{bad:?}");
            assert_eq!(res.head.headers.len(), 3, "nothing added for {bad:?}");
        }
        assert!(res.headers_from_block(b""));
        assert!(res.headers_from_block(b"Content-Length: 7\r\n"));
        assert_eq!(res.mode(), Mode::Sized(7));
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
