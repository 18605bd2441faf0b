//! [`Request`]: one request as a plugin sees it — server variables, the body, the response —
//! over the function table of [`RequestAbi`]; and [`Mode`], the response's output mode.

use std::ffi::CString;
use std::io;

use crate::abi::{self, RequestAbi};
use crate::Error;

/// The first buffer `var` offers the server (bytes, with the NUL); most values fit.
const FIRST_VAR_CAPACITY: usize = 256;
/// Calls `var` makes before giving up on a value that keeps growing.
const VAR_ATTEMPTS: usize = 4;
/// The piece `read_body_to_end` reads at a time (bytes).
const BODY_CHUNK: usize = 16 * 1024;

/// How the server frames the response body (SPEC §4); set before the head is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Hold the body; Content-Length if it fits in the route's `buffer_limit`.
    Buffer,
    /// Every write goes out at once, as a chunk.
    Stream,
    /// Buffer, and stream once the plugin is silent for the route's `flush_after`.
    Auto,
    /// The body is exactly this many bytes (Content-Length).
    Sized(u64),
}

impl Mode {
    /// The `(mode, len)` arguments of `set_mode`.
    fn to_abi(self) -> (u32, u64) {
        match self {
            Mode::Buffer => (abi::MODE_BUFFER, 0),
            Mode::Stream => (abi::MODE_STREAM, 0),
            Mode::Auto => (abi::MODE_AUTO, 0),
            Mode::Sized(len) => (abi::MODE_SIZED, len),
        }
    }
}

/// The request being answered, handed to [`Plugin::handle`](crate::Plugin::handle).
///
/// It is valid only during that call and on its thread, so it is neither `Send` nor `Sync`.
/// Writing to it through [`std::io::Write`] (`write!(req, …)`) writes the response body.
pub struct Request<'a> {
    /// Invariant: a request object the server handed to `handle` (checked by
    /// `export::request_from_ptr`), valid and ours alone for `'a`.
    abi: &'a mut RequestAbi,
}

impl<'a> Request<'a> {
    /// Wraps a request object. Crate-private: the invariant on `abi` is what makes every
    /// call below sound, and safe code could otherwise build a table of arbitrary functions.
    pub(crate) fn new(abi: &'a mut RequestAbi) -> Request<'a> {
        Request { abi }
    }

    /// The value of a server variable (`REQUEST_METHOD`, `QUERY_STRING`, `HTTP_HOST`, …, and
    /// `ALL_HTTP`), or `None` if it is not set.
    pub fn var(&self, name: &str) -> Option<Vec<u8>> {
        let name = CString::new(name).ok()?;
        let mut buf = vec![0u8; FIRST_VAR_CAPACITY];
        for _ in 0..VAR_ATTEMPTS {
            let mut len = buf.len();
            // SAFETY: the Request invariant; `name` is NUL-terminated, `buf` holds `len`
            // writable bytes, and `len` is a live usize — all outliving the call.
            let status = unsafe {
                (self.abi.get_var)(
                    self.abi.server,
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            match status {
                // The value and its NUL fit.
                abi::OK if len < buf.len() => {
                    buf.truncate(len);
                    return Some(buf);
                }
                // `len` is the length without the NUL.
                abi::E_TOO_SMALL if len >= buf.len() => buf.resize(len.checked_add(1)?, 0),
                _ => return None,
            }
        }
        None
    }

    /// [`var`](Self::var) as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn var_str(&self, name: &str) -> Option<String> {
        let value = self.var(name)?;
        Some(match String::from_utf8(value) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads the next bytes of the (de-chunked) request body into `buf`; `Ok(0)` at its end
    /// (or for an empty `buf`). Blocks until data arrives.
    pub fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: the Request invariant; `buf` holds `buf.len()` writable bytes.
        let n =
            unsafe { (self.abi.read_body)(self.abi.server, buf.as_mut_ptr().cast(), buf.len()) };
        match usize::try_from(n) {
            Ok(n) if n <= buf.len() => Ok(n),
            Ok(_) => Err(Error::Invalid),
            Err(_) => Err(Error::from(i32::try_from(n).unwrap_or(abi::ERROR))),
        }
    }

    /// Reads the whole request body; [`Error::TooSmall`] if it is longer than `limit` bytes.
    /// Memory grows with the body, never with a length the client announced.
    pub fn read_body_to_end(&mut self, limit: usize) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        let mut chunk = vec![0u8; BODY_CHUNK];
        loop {
            // One byte past the limit tells "exactly `limit`" from "longer".
            let want = chunk.len().min(limit.saturating_add(1) - body.len());
            let n = self.read_body(&mut chunk[..want])?;
            if n == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..n]);
            if body.len() > limit {
                return Err(Error::TooSmall);
            }
        }
    }

    /// Sets the status and header fields and sends the head. [`Error::Invalid`] — before
    /// anything reaches the server — for a status outside 200–999, a name that is not an
    /// RFC 9110 token or a value with CR, LF or another control byte; [`Error::State`] if
    /// the head was already sent (by this or by a first `write`).
    pub fn send_headers(&mut self, status: u16, headers: &[(&str, &str)]) -> Result<(), Error> {
        let block = header_block(status, headers)?;
        // SAFETY: the Request invariant; `block` holds `block.len()` readable bytes.
        let status = unsafe {
            (self.abi.send_headers)(
                self.abi.server,
                u32::from(status),
                block.as_ptr().cast(),
                block.len(),
            )
        };
        Error::check(status)
    }

    /// Writes all of `data` to the response body, sending a `200` head first if none was
    /// sent. Blocks while the client is slow; [`Error::Disconnected`] once it is gone.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        // SAFETY: the Request invariant; `data` holds `data.len()` readable bytes.
        let status = unsafe { (self.abi.write)(self.abi.server, data.as_ptr().cast(), data.len()) };
        Error::check(status)
    }

    /// Delivers what was written now (in the stream and auto modes).
    pub fn flush(&mut self) -> Result<(), Error> {
        // SAFETY: the Request invariant.
        Error::check(unsafe { (self.abi.flush)(self.abi.server) })
    }

    /// Chooses the output mode; only before the head is sent ([`Error::State`] after).
    pub fn set_mode(&mut self, mode: Mode) -> Result<(), Error> {
        let (mode, len) = mode.to_abi();
        // SAFETY: the Request invariant.
        Error::check(unsafe { (self.abi.set_mode)(self.abi.server, mode, len) })
    }

    /// Whether the client is still there; a long-running response should stop once not.
    pub fn is_connected(&self) -> bool {
        // SAFETY: the Request invariant.
        unsafe { (self.abi.is_connected)(self.abi.server) != 0 }
    }
}

impl io::Write for Request<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Request::write(self, data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(Request::flush(self)?)
    }
}

impl io::Read for Request<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_body(buf)?)
    }
}

/// The `Name: value\r\n` lines of `send_headers`, validated (RFC 9110 §15, §5.1, §5.5).
fn header_block(status: u16, headers: &[(&str, &str)]) -> Result<Vec<u8>, Error> {
    if !(200..=999).contains(&status) {
        return Err(Error::Invalid);
    }
    let mut block = Vec::new();
    for (name, value) in headers {
        if !is_token(name) || !is_field_value(value) {
            return Err(Error::Invalid);
        }
        block.extend_from_slice(name.as_bytes());
        block.extend_from_slice(b": ");
        block.extend_from_slice(value.as_bytes());
        block.extend_from_slice(b"\r\n");
    }
    Ok(block)
}

/// RFC 9110 §5.6.2: a field name is a non-empty run of tchar.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 §5.5: a field value has no CR, LF, NUL or other control byte except HTAB.
fn is_field_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::fake_server::FakeServer;

    /// Runs `f` on a Request over `fake`.
    fn with_request<R>(fake: &mut FakeServer, f: impl FnOnce(&mut Request<'_>) -> R) -> R {
        let mut abi = fake.abi();
        f(&mut Request::new(&mut abi))
    }

    #[test]
    fn var_returns_a_short_value_in_one_call() {
        let mut fake = FakeServer::default().var("REQUEST_METHOD", b"GET");
        let value = with_request(&mut fake, |req| req.var("REQUEST_METHOD"));
        assert_eq!(value.as_deref(), Some(&b"GET"[..]));
        assert_eq!(fake.get_var_capacities, [FIRST_VAR_CAPACITY]);
    }

    #[test]
    fn var_retries_with_the_size_the_server_asks_for() {
        let long = vec![b'x'; 1000];
        let mut fake = FakeServer::default().var("HTTP_COOKIE", &long);
        let value = with_request(&mut fake, |req| req.var("HTTP_COOKIE"));
        assert_eq!(value, Some(long));
        assert_eq!(fake.get_var_capacities, [FIRST_VAR_CAPACITY, 1001]);
    }

    #[test]
    fn var_fits_exactly_one_byte_under_the_first_guess() {
        // The value plus its NUL fill the first buffer: no retry.
        let value = vec![b'y'; FIRST_VAR_CAPACITY - 1];
        let mut fake = FakeServer::default().var("A", &value);
        assert_eq!(with_request(&mut fake, |req| req.var("A")), Some(value));
        assert_eq!(fake.get_var_capacities.len(), 1);
    }

    #[test]
    fn var_is_none_when_not_set_or_the_name_has_a_nul() {
        let mut fake = FakeServer::default();
        assert_eq!(with_request(&mut fake, |req| req.var("PATH_INFO")), None);
        assert_eq!(with_request(&mut fake, |req| req.var("A\0B")), None);
        assert_eq!(fake.get_var_capacities.len(), 1);
    }

    #[test]
    fn var_str_replaces_invalid_utf8() {
        let mut fake = FakeServer::default().var("QUERY_STRING", b"a=\xff");
        let value = with_request(&mut fake, |req| req.var_str("QUERY_STRING"));
        assert_eq!(value.as_deref(), Some("a=\u{fffd}"));
    }

    #[test]
    fn read_body_hands_out_the_servers_pieces_then_zero() {
        let mut fake = FakeServer::default().body(b"0123456789", 4);
        let pieces = with_request(&mut fake, |req| {
            let mut buf = [0u8; 8];
            let mut pieces = Vec::new();
            loop {
                let n = req.read_body(&mut buf).unwrap();
                pieces.push(buf[..n].to_vec());
                if n == 0 {
                    return pieces;
                }
            }
        });
        assert_eq!(pieces, [&b"0123"[..], b"4567", b"89", b""]);
    }

    #[test]
    fn read_body_to_end_stops_at_the_limit() {
        let mut fake = FakeServer::default().body(b"0123456789", 3);
        let body = with_request(&mut fake, |req| req.read_body_to_end(10));
        assert_eq!(body.as_deref(), Ok(&b"0123456789"[..]));

        let mut fake = FakeServer::default().body(b"0123456789abcdefghij", 3);
        let body = with_request(&mut fake, |req| req.read_body_to_end(9));
        assert_eq!(body, Err(Error::TooSmall));
        // It read one byte past the limit, no more.
        assert_eq!(fake.body_read, 10);

        let mut fake = FakeServer::default();
        assert_eq!(
            with_request(&mut fake, |req| req.read_body_to_end(0)),
            Ok(Vec::new())
        );
    }

    #[test]
    fn request_is_an_io_reader() {
        let mut fake = FakeServer::default().body(b"hello", 2);
        let mut text = String::new();
        with_request(&mut fake, |req| req.read_to_string(&mut text)).unwrap();
        assert_eq!(text, "hello");
    }

    #[test]
    fn send_headers_formats_one_line_per_field() {
        let mut fake = FakeServer::default();
        let sent = with_request(&mut fake, |req| {
            req.send_headers(201, &[("Content-Type", "text/plain"), ("X-Tab", "a\tb")])
        });
        assert_eq!(sent, Ok(()));
        let (status, block) = fake.head.unwrap();
        assert_eq!(status, 201);
        assert_eq!(block, b"Content-Type: text/plain\r\nX-Tab: a\tb\r\n");
    }

    #[test]
    fn send_headers_with_no_fields_sends_an_empty_block() {
        let mut fake = FakeServer::default();
        assert_eq!(
            with_request(&mut fake, |req| req.send_headers(204, &[])),
            Ok(())
        );
        assert_eq!(fake.head, Some((204, Vec::new())));
    }

    #[test]
    fn send_headers_refuses_injection_before_calling_the_server() {
        let bad: [(u16, (&str, &str)); 8] = [
            (200, ("X-A", "1\r\nSet-Cookie: x=1")),
            (200, ("X-A", "1\n")),
            (200, ("X-A", "1\r")),
            (200, ("X-A", "nul\0")),
            (200, ("X-A\r\nX-B", "1")),
            (200, ("X-A: 1\r\nX-B", "1")),
            (200, ("", "1")),
            (99, ("X-A", "1")),
        ];
        for (status, field) in bad {
            let mut fake = FakeServer::default();
            let sent = with_request(&mut fake, |req| req.send_headers(status, &[field]));
            assert_eq!(sent, Err(Error::Invalid), "{field:?}");
            assert_eq!(fake.calls, 0, "{field:?}");
        }
    }

    #[test]
    fn send_headers_twice_is_a_state_error() {
        let mut fake = FakeServer::default();
        let second = with_request(&mut fake, |req| {
            req.send_headers(200, &[]).unwrap();
            req.send_headers(200, &[])
        });
        assert_eq!(second, Err(Error::State));
    }

    #[test]
    fn write_and_flush_reach_the_server() {
        let mut fake = FakeServer::default();
        with_request(&mut fake, |req| {
            req.write(b"one ").unwrap();
            req.flush().unwrap();
            write!(req, "two {}", 2).unwrap();
            Write::flush(req).unwrap();
        });
        assert_eq!(fake.output, b"one two 2");
        assert_eq!(fake.flushes, 2);
        assert_eq!(fake.head, Some((200, Vec::new())));
    }

    #[test]
    fn a_gone_client_is_disconnected() {
        let mut fake = FakeServer {
            connected: false,
            ..FakeServer::default()
        };
        let (connected, written, io) = with_request(&mut fake, |req| {
            (req.is_connected(), req.write(b"x"), write!(req, "y"))
        });
        assert!(!connected);
        assert_eq!(written, Err(Error::Disconnected));
        assert_eq!(io.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn set_mode_passes_each_mode() {
        for (mode, expected) in [
            (Mode::Buffer, (abi::MODE_BUFFER, 0)),
            (Mode::Stream, (abi::MODE_STREAM, 0)),
            (Mode::Auto, (abi::MODE_AUTO, 0)),
            (Mode::Sized(11), (abi::MODE_SIZED, 11)),
        ] {
            let mut fake = FakeServer::default();
            assert_eq!(with_request(&mut fake, |req| req.set_mode(mode)), Ok(()));
            assert_eq!(fake.mode, Some(expected));
        }
    }

    #[test]
    fn set_mode_after_the_head_is_a_state_error() {
        let mut fake = FakeServer::default();
        let late = with_request(&mut fake, |req| {
            req.write(b"x").unwrap();
            req.set_mode(Mode::Stream)
        });
        assert_eq!(late, Err(Error::State));
        assert_eq!(fake.mode, None);
    }
}
