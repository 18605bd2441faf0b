//! The response framing state machine (sans-IO), SPEC §4: turns the handler's head, writes,
//! flushes and end into bytes with the right framing — Content-Length, chunked, or
//! close-delimited — and decides keep-alive, which can only ever be downgraded.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::http::encode::{self, ChunkHeader, CRLF, LAST_CHUNK};
use crate::http::head::Version;
use crate::http::outbuf::OutQueue;
use crate::response::{Head, Mode};

/// How the body of a response is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Content-Length.
    Length,
    /// Transfer-Encoding: chunked.
    Chunked,
    /// Delimited by closing the connection (HTTP/1.0 clients, unknown length).
    Close,
    /// No body by definition (HEAD answers carry the framing header GET would get but no body).
    None,
}

impl Framing {
    /// Name used in the access log and the status handler.
    pub fn as_str(self) -> &'static str {
        match self {
            Framing::Length => "length",
            Framing::Chunked => "chunked",
            Framing::Close => "close",
            Framing::None => "none",
        }
    }
}

/// Per-route output settings (SPEC §2 `[output]`).
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    /// Most body bytes held in buffer/auto mode before switching to streaming.
    pub buffer_limit: usize,
    /// Silence after which auto mode flushes what it holds.
    pub flush_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No head from the handler yet.
    Waiting,
    /// Head and body are held (buffer, auto).
    Holding,
    /// The head is out; body pieces go out as they come.
    Sending,
    /// The body is complete.
    Done,
    /// The body cannot be completed: the connection must close.
    Failed,
}

/// Frames one response.
#[derive(Debug)]
pub struct Framer {
    version: Version,
    head_request: bool,
    keep_alive: bool,
    limits: OutputLimits,
    state: State,
    head: Option<Head>,
    held: Vec<Bytes>,
    held_len: usize,
    last_activity: Instant,
    framing: Framing,
    /// Body bytes still allowed under a Content-Length.
    remaining: u64,
    status: u16,
    body_bytes: u64,
}

impl Framer {
    /// A framer for a response to a `version` request; `keep_alive` is what the client and
    /// the server allow so far (it can only go down from here).
    pub fn new(
        version: Version,
        head_request: bool,
        keep_alive: bool,
        limits: OutputLimits,
    ) -> Self {
        Framer {
            version,
            head_request,
            keep_alive,
            limits,
            state: State::Waiting,
            head: None,
            held: Vec::new(),
            held_len: 0,
            last_activity: Instant::now(),
            framing: Framing::None,
            remaining: 0,
            status: 0,
            body_bytes: 0,
        }
    }

    /// The handler sent its head.
    pub fn head(&mut self, head: Head, out: &mut OutQueue, now: Instant) {
        if self.state != State::Waiting {
            return;
        }
        self.last_activity = now;
        let mode = head.mode;
        self.head = Some(head);
        self.state = State::Holding;
        match mode {
            Mode::Sized(n) => self.start(Framing::Length, n, out),
            Mode::Stream => self.start_streaming(out),
            Mode::Close => self.start(Framing::Close, 0, out),
            Mode::Buffer | Mode::Auto => {}
        }
    }

    /// A piece of body from the handler.
    pub fn data(&mut self, data: Bytes, out: &mut OutQueue, now: Instant) {
        self.last_activity = now;
        match self.state {
            State::Holding => {
                self.held_len += data.len();
                if !self.head_request {
                    self.held.push(data);
                }
                if self.held_len > self.limits.buffer_limit {
                    self.start_streaming(out);
                }
            }
            State::Sending => self.send(data, out),
            State::Waiting | State::Done | State::Failed => {}
        }
    }

    /// The handler asked for what it wrote to be delivered now.
    pub fn flush(&mut self, out: &mut OutQueue) {
        if self.state == State::Holding && self.mode() == Some(Mode::Auto) {
            self.start_streaming(out);
        }
    }

    /// When auto mode must flush if nothing else happens (SPEC §4: silent for `flush_after`).
    pub fn deadline(&self) -> Option<Instant> {
        (self.state == State::Holding && self.mode() == Some(Mode::Auto))
            .then(|| self.last_activity + self.limits.flush_after)
    }

    /// The auto-mode deadline passed.
    pub fn timer(&mut self, out: &mut OutQueue, now: Instant) {
        if self.deadline().is_some_and(|d| now >= d) {
            self.start_streaming(out);
        }
    }

    /// The handler finished.
    pub fn end(&mut self, out: &mut OutQueue) {
        match self.state {
            State::Holding => {
                self.start(Framing::Length, self.held_len as u64, out);
                self.send_held(out);
                self.finish(out);
            }
            State::Sending => self.finish(out),
            State::Waiting | State::Done | State::Failed => {}
        }
    }

    /// The handler failed: `status` if nothing went out yet, else the body stays incomplete.
    pub fn abort(&mut self, status: u16, out: &mut OutQueue) {
        match self.state {
            State::Waiting | State::Holding => {
                self.held.clear();
                self.head = None;
                self.status = status;
                self.framing = Framing::Length;
                error_response(out, status, "", self.head_request, self.keep_alive);
                self.state = State::Done;
            }
            State::Sending => self.state = State::Failed,
            State::Done | State::Failed => {}
        }
    }

    /// Never keep this connection open after the response (shutdown, unread body…).
    pub fn downgrade_keep_alive(&mut self) {
        self.keep_alive = false;
    }

    /// Whether the connection may serve another request once this response is written.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive && self.state == State::Done
    }

    /// Whether the response completed (whatever keep-alive says).
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Whether any byte of the response head was produced.
    pub fn is_head_emitted(&self) -> bool {
        matches!(self.state, State::Sending | State::Done | State::Failed)
    }

    /// Whether the response is complete (or failed) and nothing more will be framed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Failed)
    }

    /// Status sent (0 before the head).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Framing used.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Body bytes framed so far (without chunk framing).
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// The output mode the handler ended up with.
    pub fn mode(&self) -> Option<Mode> {
        self.head.as_ref().map(|h| h.mode)
    }

    fn start_streaming(&mut self, out: &mut OutQueue) {
        // RFC 9112 §7.1: chunked needs an HTTP/1.1 recipient; 1.0 gets close-delimited.
        let framing = match self.version {
            Version::Http11 => Framing::Chunked,
            Version::Http10 => Framing::Close,
        };
        self.start(framing, 0, out);
        self.send_held(out);
    }

    fn send_held(&mut self, out: &mut OutQueue) {
        for piece in std::mem::take(&mut self.held) {
            self.send(piece, out);
        }
    }

    fn start(&mut self, framing: Framing, len: u64, out: &mut OutQueue) {
        let Some(head) = self.head.as_ref() else {
            return;
        };
        let status = head.status;
        // RFC 9110 §6.4.1: 1xx, 204 and 304 never have content.
        let framing = if status == 204 || status == 304 || status < 200 {
            Framing::None
        } else {
            framing
        };
        self.keep_alive &= framing != Framing::Close;
        self.framing = framing;
        self.remaining = len;
        self.status = status;
        self.state = State::Sending;
        write_head(out, head, framing, len, self.version, self.keep_alive);
    }

    fn send(&mut self, mut data: Bytes, out: &mut OutQueue) {
        // An empty chunk would end the body (RFC 9112 §7.1); HEAD answers carry none.
        if self.head_request || data.is_empty() {
            return;
        }
        match self.framing {
            Framing::Length => {
                // SPEC §4: surplus beyond a declared length is dropped, never sent.
                let allowed = data
                    .len()
                    .min(self.remaining.min(usize::MAX as u64) as usize);
                data.truncate(allowed);
                self.remaining -= allowed as u64;
                if data.is_empty() {
                    return;
                }
            }
            Framing::Chunked => out.push_slice(ChunkHeader::new(data.len()).as_bytes()),
            Framing::Close => {}
            Framing::None => return,
        }
        self.body_bytes += data.len() as u64;
        let chunked = self.framing == Framing::Chunked;
        out.push(data);
        if chunked {
            out.push_slice(CRLF);
        }
    }

    fn finish(&mut self, out: &mut OutQueue) {
        self.state = match self.framing {
            // SPEC §4: a shortfall is never padded; the connection ends instead.
            Framing::Length if self.remaining > 0 && !self.head_request => State::Failed,
            Framing::Chunked if !self.head_request => {
                out.push_slice(LAST_CHUNK);
                State::Done
            }
            _ => State::Done,
        };
        self.held = Vec::new();
    }
}

fn write_head(
    out: &mut OutQueue,
    head: &Head,
    framing: Framing,
    len: u64,
    version: Version,
    keep_alive: bool,
) {
    status_line(out, head.status);
    for (name, value) in &head.headers {
        out.push_slice(name.as_bytes());
        out.push_slice(b": ");
        out.push_slice(value);
        out.push_slice(CRLF);
    }
    match framing {
        Framing::Length => {
            out.push_slice(b"Content-Length: ");
            out.push_slice(itoa(len).as_bytes());
            out.push_slice(CRLF);
        }
        Framing::Chunked => out.push_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::Close | Framing::None => {}
    }
    connection_header(out, version, keep_alive);
    out.push_slice(CRLF);
}

/// RFC 9112 §9.3: 1.1 says when it closes; 1.0 says when it stays open.
fn connection_header(out: &mut OutQueue, version: Version, keep_alive: bool) {
    match (version, keep_alive) {
        (Version::Http11, false) => out.push_slice(b"Connection: close\r\n"),
        (Version::Http10, true) => out.push_slice(b"Connection: keep-alive\r\n"),
        _ => {}
    }
}

fn status_line(out: &mut OutQueue, status: u16) {
    out.push_slice(b"HTTP/1.1 ");
    out.push_slice(itoa(u64::from(status)).as_bytes());
    out.push_slice(b" ");
    out.push_slice(encode::reason(status).as_bytes());
    out.push_slice(b"\r\nDate: ");
    with_date(|d| out.push_slice(d));
    out.push_slice(CRLF);
}

/// A complete short response generated by the server itself (errors, 100-less refusals).
/// `detail` is a static description that is safe to show (never script or client data).
pub fn error_response(
    out: &mut OutQueue,
    status: u16,
    detail: &str,
    head_request: bool,
    keep_alive: bool,
) {
    let body = if detail.is_empty() {
        format!("{} {}\n", status, encode::reason(status))
    } else {
        format!("{} {}: {}\n", status, encode::reason(status), detail)
    };
    status_line(out, status);
    out.push_slice(b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    out.push_slice(itoa(body.len() as u64).as_bytes());
    out.push_slice(CRLF);
    if status == 503 {
        out.push_slice(b"Retry-After: 1\r\n");
    }
    out.push_slice(if keep_alive {
        b""
    } else {
        b"Connection: close\r\n"
    });
    out.push_slice(CRLF);
    if !head_request {
        out.push_slice(body.as_bytes());
    }
}

/// `100 Continue` (RFC 9110 §15.2.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

fn itoa(n: u64) -> String {
    n.to_string()
}

thread_local! {
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// The current IMF-fixdate, formatted at most once a second per thread.
fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, encode::http_date(now));
        }
        f(cached.1.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: OutputLimits = OutputLimits {
        buffer_limit: 10,
        flush_after: Duration::from_millis(50),
    };

    fn head(status: u16, mode: Mode) -> Head {
        Head {
            status,
            headers: vec![("X-A".into(), Bytes::from_static(b"1"))],
            mode,
        }
    }

    fn text(out: &mut OutQueue) -> String {
        let mut slices = [std::io::IoSlice::new(&[]); crate::http::outbuf::MAX_SLICES];
        let n = out.slices(&mut slices);
        let bytes: Vec<u8> = slices[..n].iter().flat_map(|s| s.to_vec()).collect();
        out.advance(bytes.len());
        // Replace the date so the expectations are exact.
        let s = String::from_utf8(bytes).unwrap();
        match (s.find("Date: "), s.find(" GMT\r\n")) {
            (Some(a), Some(b)) => format!("{}Date: D{}", &s[..a], &s[b + 4..]),
            _ => s,
        }
    }

    fn run(version: Version, head_req: bool, mode: Mode, pieces: &[&str]) -> (String, Framer) {
        let mut f = Framer::new(version, head_req, true, LIMITS);
        let mut out = OutQueue::new();
        let now = Instant::now();
        f.head(head(200, mode), &mut out, now);
        for p in pieces {
            f.data(Bytes::copy_from_slice(p.as_bytes()), &mut out, now);
        }
        f.end(&mut out);
        (text(&mut out), f)
    }

    #[test]
    fn buffered_fits_gets_content_length() {
        let (s, f) = run(Version::Http11, false, Mode::Buffer, &["hello", "!"]);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nDate: D\r\nX-A: 1\r\nContent-Length: 6\r\n\r\nhello!"
        );
        assert!(f.keep_alive());
        assert_eq!(f.framing(), Framing::Length);
    }

    #[test]
    fn buffered_overflow_continues_chunked() {
        let (s, f) = run(
            Version::Http11,
            false,
            Mode::Buffer,
            &["0123456789", "abc", "d"],
        );
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nDate: D\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n\
             a\r\n0123456789\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n"
        );
        assert!(f.keep_alive());
    }

    #[test]
    fn buffered_overflow_on_http10_is_close_delimited() {
        let (s, f) = run(Version::Http10, false, Mode::Buffer, &["0123456789", "abc"]);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nDate: D\r\nX-A: 1\r\n\r\n0123456789abc"
        );
        assert!(!f.keep_alive());
        assert_eq!(f.framing(), Framing::Close);
    }

    #[test]
    fn http10_keep_alive_is_announced() {
        let (s, f) = run(Version::Http10, false, Mode::Buffer, &["hi"]);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nDate: D\r\nX-A: 1\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
        );
        assert!(f.keep_alive());
    }

    #[test]
    fn stream_sends_each_piece_as_a_chunk() {
        let mut f = Framer::new(Version::Http11, false, true, LIMITS);
        let mut out = OutQueue::new();
        let now = Instant::now();
        f.head(head(200, Mode::Stream), &mut out, now);
        assert!(text(&mut out).ends_with("Transfer-Encoding: chunked\r\n\r\n"));
        f.data(Bytes::from_static(b"one"), &mut out, now);
        assert_eq!(text(&mut out), "3\r\none\r\n");
        f.data(Bytes::from_static(b""), &mut out, now);
        assert_eq!(text(&mut out), "");
        f.end(&mut out);
        assert_eq!(text(&mut out), "0\r\n\r\n");
    }

    #[test]
    fn auto_holds_then_flushes_after_silence() {
        let mut f = Framer::new(Version::Http11, false, true, LIMITS);
        let mut out = OutQueue::new();
        let t0 = Instant::now();
        f.head(head(200, Mode::Auto), &mut out, t0);
        f.data(Bytes::from_static(b"tick"), &mut out, t0);
        assert!(out.is_empty());
        assert_eq!(f.deadline(), Some(t0 + LIMITS.flush_after));
        f.timer(&mut out, t0 + Duration::from_millis(10));
        assert!(out.is_empty(), "not yet due");
        f.timer(&mut out, t0 + LIMITS.flush_after);
        assert!(text(&mut out).ends_with("chunked\r\n\r\n4\r\ntick\r\n"));
        assert_eq!(f.deadline(), None);
        f.end(&mut out);
        assert_eq!(text(&mut out), "0\r\n\r\n");
    }

    #[test]
    fn auto_quick_response_gets_length() {
        let (s, _) = run(Version::Http11, false, Mode::Auto, &["quick"]);
        assert!(s.ends_with("Content-Length: 5\r\n\r\nquick"));
    }

    #[test]
    fn sized_drops_surplus_and_fails_on_shortfall() {
        let (s, f) = run(Version::Http11, false, Mode::Sized(3), &["ab", "cd"]);
        assert!(s.ends_with("Content-Length: 3\r\n\r\nabc"));
        assert!(f.keep_alive());
        let (s, f) = run(Version::Http11, false, Mode::Sized(5), &["ab"]);
        assert!(s.ends_with("Content-Length: 5\r\n\r\nab"));
        assert!(!f.keep_alive(), "a short body must end the connection");
    }

    #[test]
    fn head_request_gets_framing_headers_without_body() {
        let (s, f) = run(Version::Http11, true, Mode::Buffer, &["hello"]);
        assert!(s.ends_with("Content-Length: 5\r\n\r\n"));
        assert!(f.keep_alive());
        let (s, f) = run(Version::Http11, true, Mode::Stream, &["hello"]);
        assert!(s.ends_with("Transfer-Encoding: chunked\r\n\r\n"));
        assert!(f.keep_alive());
    }

    #[test]
    fn no_body_statuses_carry_no_framing() {
        for status in [204, 304] {
            let mut f = Framer::new(Version::Http11, false, true, LIMITS);
            let mut out = OutQueue::new();
            let now = Instant::now();
            f.head(head(status, Mode::Stream), &mut out, now);
            f.data(Bytes::from_static(b"ignored"), &mut out, now);
            f.end(&mut out);
            let s = text(&mut out);
            assert!(
                !s.contains("Content-Length") && !s.contains("Transfer-Encoding"),
                "{s}"
            );
            assert!(s.ends_with("X-A: 1\r\n\r\n"), "{s}");
            assert!(f.keep_alive());
        }
    }

    #[test]
    fn abort_before_head_is_500_and_after_head_fails() {
        let mut f = Framer::new(Version::Http11, false, true, LIMITS);
        let mut out = OutQueue::new();
        f.head(head(200, Mode::Buffer), &mut out, Instant::now());
        f.abort(500, &mut out);
        let s = text(&mut out);
        assert!(
            s.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{s}"
        );
        assert!(f.keep_alive());

        let mut f = Framer::new(Version::Http11, false, true, LIMITS);
        f.head(head(200, Mode::Stream), &mut out, Instant::now());
        f.data(Bytes::from_static(b"part"), &mut out, Instant::now());
        f.abort(500, &mut out);
        let s = text(&mut out);
        assert!(
            !s.ends_with("0\r\n\r\n"),
            "never completed as if whole: {s}"
        );
        assert!(!f.keep_alive());
    }

    #[test]
    fn keep_alive_only_goes_down() {
        let mut f = Framer::new(Version::Http11, false, false, LIMITS);
        let mut out = OutQueue::new();
        f.head(head(200, Mode::Buffer), &mut out, Instant::now());
        f.end(&mut out);
        assert!(text(&mut out).contains("Connection: close\r\n"));
        assert!(!f.keep_alive());
    }
}
