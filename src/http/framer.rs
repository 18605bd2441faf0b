//! The response framing state machine (sans-IO), SPEC §4: turns a producer's head, writes,
//! flushes and end into bytes with the right framing — Content-Length, chunked, or
//! close-delimited. Every response goes through it: a handler's, and the ones the server
//! makes itself (400, 408, 413, 500, 503 …, see [`Framer::refuse`]).
//!
//! Keep-alive is not the framer's: the connection owns it and says, each time a head may be
//! framed, what the `Connection` field must say ([`Sink::keep_alive`]); the framer only
//! reports whether its framing lets the connection be reused ([`Framer::is_reusable`]).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::date;
use super::encode::{ChunkHeader, CRLF, LAST_CHUNK};
use super::head::Version;
use super::outbuf::{OutQueue, Piece};
use super::status;

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

impl Mode {
    /// The name the access log uses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Buffer => "buffer",
            Mode::Stream => "stream",
            Mode::Auto => "auto",
            Mode::Sized(_) => "sized",
            Mode::Close => "close",
        }
    }
}

/// Status line and header fields of a response, before the framing fields are added.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// Status code.
    pub(crate) status: u16,
    /// Header fields in order, already validated (token names, no CR/LF/NUL in values).
    pub(crate) headers: Vec<(String, Bytes)>,
    /// The output mode in force when the head was sent.
    pub(crate) mode: Mode,
    /// The producer asked for the connection to close after this response
    /// (`Connection: close`).
    pub(crate) close: bool,
}

/// How the body of a response is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
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
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) struct OutputLimits {
    /// Most body bytes held in buffer/auto mode before switching to streaming.
    pub(crate) buffer_limit: usize,
    /// Silence after which auto mode flushes what it holds.
    pub(crate) flush_after: Duration,
}

impl OutputLimits {
    /// For answers the server makes before any route is known: they are sized anyway.
    pub(crate) const NONE: OutputLimits = OutputLimits {
        buffer_limit: 0,
        flush_after: Duration::ZERO,
    };
}

/// Where framed bytes go, and what the connection allows if a head is framed now.
pub(crate) struct Sink<'a> {
    /// The output queue.
    pub(crate) out: &'a mut OutQueue,
    /// Whether the connection may be kept after this response, as the connection sees it.
    pub(crate) keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No head from the producer yet.
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
pub(crate) struct Framer {
    version: Version,
    head_request: bool,
    limits: OutputLimits,
    state: State,
    head: Option<Head>,
    held: Vec<Piece>,
    held_len: usize,
    last_activity: Instant,
    framing: Framing,
    /// Body bytes still allowed under a Content-Length.
    remaining: u64,
    status: u16,
    body_bytes: u64,
}

impl Framer {
    /// A framer for the response to a `version` request (`head_request`: to a HEAD).
    pub(crate) fn new(
        version: Version,
        head_request: bool,
        limits: OutputLimits,
        now: Instant,
    ) -> Self {
        Framer {
            version,
            head_request,
            limits,
            state: State::Waiting,
            head: None,
            held: Vec::new(),
            held_len: 0,
            last_activity: now,
            framing: Framing::None,
            remaining: 0,
            status: 0,
            body_bytes: 0,
        }
    }

    /// The producer sent its head.
    pub(crate) fn head(&mut self, head: Head, sink: &mut Sink<'_>, now: Instant) {
        if self.state != State::Waiting {
            return;
        }
        self.last_activity = now;
        let mode = head.mode;
        self.head = Some(head);
        self.state = State::Holding;
        match mode {
            Mode::Sized(n) => self.start(Framing::Length, n, sink),
            Mode::Stream => self.start_streaming(sink),
            Mode::Close => self.start(Framing::Close, 0, sink),
            Mode::Buffer | Mode::Auto => {}
        }
    }

    /// A piece of body from the producer: bytes, or a range of a file (held, counted and
    /// framed the same way; only the connection's writer tells them apart).
    pub(crate) fn data(&mut self, data: impl Into<Piece>, sink: &mut Sink<'_>, now: Instant) {
        let data = data.into();
        self.last_activity = now;
        match self.state {
            State::Holding => {
                self.held_len = self
                    .held_len
                    .saturating_add(usize::try_from(data.len()).unwrap_or(usize::MAX));
                if !self.head_request {
                    self.held.push(data);
                }
                if self.held_len > self.limits.buffer_limit {
                    self.start_streaming(sink);
                }
            }
            State::Sending => self.send(data, sink.out),
            State::Waiting | State::Done | State::Failed => {}
        }
    }

    /// The producer asked for what it wrote to be delivered now.
    pub(crate) fn flush(&mut self, sink: &mut Sink<'_>) {
        if self.state == State::Holding && self.mode() == Some(Mode::Auto) {
            self.start_streaming(sink);
        }
    }

    /// When auto mode must flush if nothing else happens (SPEC §4: silent for `flush_after`).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        (self.state == State::Holding && self.mode() == Some(Mode::Auto))
            .then(|| self.last_activity + self.limits.flush_after)
    }

    /// The auto-mode deadline passed.
    pub(crate) fn timer(&mut self, sink: &mut Sink<'_>, now: Instant) {
        if self.deadline().is_some_and(|d| now >= d) {
            self.start_streaming(sink);
        }
    }

    /// The producer finished.
    pub(crate) fn end(&mut self, sink: &mut Sink<'_>) {
        match self.state {
            State::Holding => {
                self.start(Framing::Length, self.held_len as u64, sink);
                self.send_held(sink.out);
                self.finish(sink.out);
            }
            State::Sending => self.finish(sink.out),
            State::Waiting | State::Done | State::Failed => {}
        }
    }

    /// The producer failed: a `status` answer if nothing went out yet, else the body stays
    /// incomplete (SPEC §3: never completed as if whole).
    pub(crate) fn abort(&mut self, status: u16, sink: &mut Sink<'_>) {
        self.refuse(status, "", sink);
    }

    /// Answer with a short plain-text `status` response of the server's own instead of
    /// whatever the producer started, if nothing of that went out yet; `detail` is a static
    /// description that is safe to show (never script or client data). Once the head is out,
    /// the body is left incomplete instead.
    pub(crate) fn refuse(&mut self, status: u16, detail: &str, sink: &mut Sink<'_>) {
        match self.state {
            State::Waiting | State::Holding => {
                self.held.clear();
                self.held_len = 0;
                let body = Bytes::from(plain_body(status, detail));
                self.state = State::Waiting;
                self.head(server_head(status, body.len()), sink, self.last_activity);
                self.data(body, sink, self.last_activity);
                self.end(sink);
            }
            State::Sending => self.state = State::Failed,
            State::Done | State::Failed => {}
        }
    }

    /// `100 Continue` (RFC 9110 §15.2.1), unless the final response has started: an interim
    /// response precedes the final one, never follows it.
    pub(crate) fn interim_continue(&mut self, out: &mut OutQueue) {
        if !self.is_head_emitted() {
            out.push_slice(CONTINUE);
        }
    }

    /// Whether the connection may be reused as far as this response goes: it completed, and
    /// its end is not the connection's end.
    pub(crate) fn is_reusable(&self) -> bool {
        self.state == State::Done && self.framing != Framing::Close
    }

    /// Whether the response completed (whatever keep-alive says).
    pub(crate) fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the client has been given the whole body, though the producer may not have
    /// ended: a declared length fully sent, or a body that has no bytes by definition.
    /// Anything the producer writes from here on is dropped.
    pub(crate) fn is_body_complete(&self) -> bool {
        match self.state {
            State::Done => true,
            State::Sending => match self.framing {
                Framing::Length => self.remaining == 0 || self.head_request,
                Framing::None => true,
                Framing::Chunked | Framing::Close => self.head_request,
            },
            State::Waiting | State::Holding | State::Failed => false,
        }
    }

    /// Whether any byte of the response head was produced.
    pub(crate) fn is_head_emitted(&self) -> bool {
        matches!(self.state, State::Sending | State::Done | State::Failed)
    }

    /// Whether the response is complete (or failed) and nothing more will be framed.
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Failed)
    }

    /// Status sent (0 before the head).
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// Framing used.
    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// Body bytes framed so far (without chunk framing).
    pub(crate) fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// The output mode the producer ended up with.
    pub(crate) fn mode(&self) -> Option<Mode> {
        self.head.as_ref().map(|h| h.mode)
    }

    fn start_streaming(&mut self, sink: &mut Sink<'_>) {
        // RFC 9112 §7.1: chunked needs an HTTP/1.1 recipient; 1.0 gets close-delimited.
        let framing = match self.version {
            Version::Http11 => Framing::Chunked,
            Version::Http10 => Framing::Close,
        };
        self.start(framing, 0, sink);
        self.send_held(sink.out);
    }

    fn send_held(&mut self, out: &mut OutQueue) {
        for piece in std::mem::take(&mut self.held) {
            self.send(piece, out);
        }
    }

    fn start(&mut self, framing: Framing, len: u64, sink: &mut Sink<'_>) {
        let Some(head) = self.head.as_ref() else {
            return;
        };
        let framing = if status::has_no_content(head.status) {
            Framing::None
        } else {
            framing
        };
        self.framing = framing;
        self.remaining = len;
        self.status = head.status;
        self.state = State::Sending;
        let keep_alive = sink.keep_alive && framing != Framing::Close && !head.close;
        write_head(sink.out, head, framing, len, self.version, keep_alive);
    }

    fn send(&mut self, mut data: Piece, out: &mut OutQueue) {
        // An empty chunk would end the body (RFC 9112 §7.1); HEAD answers carry none.
        if self.head_request || data.is_empty() {
            return;
        }
        match self.framing {
            Framing::Length => {
                // SPEC §4: surplus beyond a declared length is dropped, never sent.
                data.truncate(self.remaining);
                self.remaining -= data.len();
                if data.is_empty() {
                    return;
                }
            }
            Framing::Chunked => {
                let len = usize::try_from(data.len()).unwrap_or(usize::MAX);
                out.push_slice(ChunkHeader::new(len).as_bytes());
            }
            Framing::Close => {}
            Framing::None => return,
        }
        self.body_bytes += data.len();
        let chunked = self.framing == Framing::Chunked;
        out.push_piece(data);
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

/// `100 Continue` (RFC 9110 §15.2.1).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The head of an answer the server makes itself: plain text, sized; 503 says when to retry
/// (RFC 9110 §10.2.3).
fn server_head(status: u16, len: usize) -> Head {
    let mut headers = vec![(
        "Content-Type".to_string(),
        Bytes::from_static(b"text/plain; charset=utf-8"),
    )];
    if status == status::SERVICE_UNAVAILABLE {
        headers.push(("Retry-After".to_string(), Bytes::from_static(b"1")));
    }
    Head {
        status,
        headers,
        mode: Mode::Sized(len as u64),
        close: false,
    }
}

/// "404 Not Found\n", or with a detail "400 Bad Request: bad chunk size\n".
fn plain_body(status: u16, detail: &str) -> String {
    let reason = status::reason(status);
    if detail.is_empty() {
        format!("{status} {reason}\n")
    } else {
        format!("{status} {reason}: {detail}\n")
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
    out.push_slice(status::reason(status).as_bytes());
    out.push_slice(b"\r\nDate: ");
    date::with_now(|d| out.push_slice(d));
    out.push_slice(CRLF);
}

fn itoa(n: u64) -> String {
    n.to_string()
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
            close: false,
        }
    }

    /// A sink over `out` for a connection that allows keep-alive.
    fn sink(out: &mut OutQueue) -> Sink<'_> {
        Sink {
            out,
            keep_alive: true,
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
        let now = Instant::now();
        let mut f = Framer::new(version, head_req, LIMITS, now);
        let mut out = OutQueue::new();
        f.head(head(200, mode), &mut sink(&mut out), now);
        for p in pieces {
            f.data(
                Bytes::copy_from_slice(p.as_bytes()),
                &mut sink(&mut out),
                now,
            );
        }
        f.end(&mut sink(&mut out));
        (text(&mut out), f)
    }

    #[test]
    fn buffered_fits_gets_content_length() {
        let (s, f) = run(Version::Http11, false, Mode::Buffer, &["hello", "!"]);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nDate: D\r\nX-A: 1\r\nContent-Length: 6\r\n\r\nhello!"
        );
        assert!(f.is_reusable());
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
        assert!(f.is_reusable());
    }

    #[test]
    fn buffered_overflow_on_http10_is_close_delimited() {
        let (s, f) = run(Version::Http10, false, Mode::Buffer, &["0123456789", "abc"]);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nDate: D\r\nX-A: 1\r\n\r\n0123456789abc"
        );
        assert!(!f.is_reusable());
        assert_eq!(f.framing(), Framing::Close);
    }

    #[test]
    fn http10_keep_alive_is_announced() {
        let (s, f) = run(Version::Http10, false, Mode::Buffer, &["hi"]);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nDate: D\r\nX-A: 1\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
        );
        assert!(f.is_reusable());
    }

    #[test]
    fn stream_sends_each_piece_as_a_chunk() {
        let now = Instant::now();
        let mut f = Framer::new(Version::Http11, false, LIMITS, now);
        let mut out = OutQueue::new();
        f.head(head(200, Mode::Stream), &mut sink(&mut out), now);
        assert!(text(&mut out).ends_with("Transfer-Encoding: chunked\r\n\r\n"));
        f.data(Bytes::from_static(b"one"), &mut sink(&mut out), now);
        assert_eq!(text(&mut out), "3\r\none\r\n");
        f.data(Bytes::from_static(b""), &mut sink(&mut out), now);
        assert_eq!(text(&mut out), "");
        f.end(&mut sink(&mut out));
        assert_eq!(text(&mut out), "0\r\n\r\n");
    }

    #[test]
    fn auto_holds_then_flushes_after_silence() {
        let t0 = Instant::now();
        let mut f = Framer::new(Version::Http11, false, LIMITS, t0);
        let mut out = OutQueue::new();
        f.head(head(200, Mode::Auto), &mut sink(&mut out), t0);
        f.data(Bytes::from_static(b"tick"), &mut sink(&mut out), t0);
        assert!(out.is_empty());
        assert_eq!(f.deadline(), Some(t0 + LIMITS.flush_after));
        f.timer(&mut sink(&mut out), t0 + Duration::from_millis(10));
        assert!(out.is_empty(), "not yet due");
        f.timer(&mut sink(&mut out), t0 + LIMITS.flush_after);
        assert!(text(&mut out).ends_with("chunked\r\n\r\n4\r\ntick\r\n"));
        assert_eq!(f.deadline(), None);
        f.end(&mut sink(&mut out));
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
        assert!(f.is_reusable());
        let (s, f) = run(Version::Http11, false, Mode::Sized(5), &["ab"]);
        assert!(s.ends_with("Content-Length: 5\r\n\r\nab"));
        assert!(!f.is_reusable(), "a short body must end the connection");
    }

    #[test]
    fn head_request_gets_framing_headers_without_body() {
        let (s, f) = run(Version::Http11, true, Mode::Buffer, &["hello"]);
        assert!(s.ends_with("Content-Length: 5\r\n\r\n"));
        assert!(f.is_reusable());
        let (s, f) = run(Version::Http11, true, Mode::Stream, &["hello"]);
        assert!(s.ends_with("Transfer-Encoding: chunked\r\n\r\n"));
        assert!(f.is_reusable());
    }

    #[test]
    fn no_body_statuses_carry_no_framing() {
        for status in [204, 304] {
            let now = Instant::now();
            let mut f = Framer::new(Version::Http11, false, LIMITS, now);
            let mut out = OutQueue::new();
            f.head(head(status, Mode::Stream), &mut sink(&mut out), now);
            f.data(Bytes::from_static(b"ignored"), &mut sink(&mut out), now);
            f.end(&mut sink(&mut out));
            let s = text(&mut out);
            assert!(
                !s.contains("Content-Length") && !s.contains("Transfer-Encoding"),
                "{s}"
            );
            assert!(s.ends_with("X-A: 1\r\n\r\n"), "{s}");
            assert!(f.is_reusable());
        }
    }

    #[test]
    fn abort_before_head_is_500_and_after_head_fails() {
        let mut f = Framer::new(Version::Http11, false, LIMITS, Instant::now());
        let mut out = OutQueue::new();
        f.head(head(200, Mode::Buffer), &mut sink(&mut out), Instant::now());
        f.abort(500, &mut sink(&mut out));
        let s = text(&mut out);
        assert!(
            s.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{s}"
        );
        assert!(f.is_reusable());

        let mut f = Framer::new(Version::Http11, false, LIMITS, Instant::now());
        f.head(head(200, Mode::Stream), &mut sink(&mut out), Instant::now());
        f.data(
            Bytes::from_static(b"part"),
            &mut sink(&mut out),
            Instant::now(),
        );
        f.abort(500, &mut sink(&mut out));
        let s = text(&mut out);
        assert!(
            !s.ends_with("0\r\n\r\n"),
            "never completed as if whole: {s}"
        );
        assert!(!f.is_reusable());
    }

    #[test]
    fn the_connection_field_follows_the_sink_and_the_producer() {
        let now = Instant::now();
        let mut f = Framer::new(Version::Http11, false, LIMITS, now);
        let mut out = OutQueue::new();
        let mut closing = Sink {
            out: &mut out,
            keep_alive: false,
        };
        f.head(head(200, Mode::Buffer), &mut closing, now);
        f.end(&mut closing);
        assert!(text(&mut out).contains("Connection: close\r\n"));
        assert!(f.is_reusable(), "the framing itself does not force a close");

        let mut f = Framer::new(Version::Http11, false, LIMITS, now);
        let mut asked = head(200, Mode::Buffer);
        asked.close = true;
        f.head(asked, &mut sink(&mut out), now);
        f.end(&mut sink(&mut out));
        assert!(text(&mut out).contains("Connection: close\r\n"));
    }

    #[test]
    fn refusals_are_sized_plain_text() {
        let now = Instant::now();
        let mut f = Framer::new(Version::Http11, false, OutputLimits::NONE, now);
        let mut out = OutQueue::new();
        let mut closing = Sink {
            out: &mut out,
            keep_alive: false,
        };
        f.refuse(400, "bad chunk size", &mut closing);
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 400 Bad Request\r\nDate: D\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 32\r\nConnection: close\r\n\r\n400 Bad Request: bad chunk size\n"
        );
        assert_eq!(f.status(), 400);
        assert_eq!(f.framing(), Framing::Length);

        let mut f = Framer::new(Version::Http11, true, LIMITS, now);
        f.head(head(200, Mode::Buffer), &mut sink(&mut out), now);
        f.data(Bytes::from_static(b"held"), &mut sink(&mut out), now);
        f.refuse(503, "", &mut sink(&mut out));
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 503 Service Unavailable\r\nDate: D\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Retry-After: 1\r\nContent-Length: 24\r\n\r\n",
            "HEAD: the length GET would get, no body, nothing held"
        );
    }

    #[test]
    fn a_declared_length_sent_whole_is_complete_before_the_end() {
        let now = Instant::now();
        let mut f = Framer::new(Version::Http11, false, LIMITS, now);
        let mut out = OutQueue::new();
        f.head(head(200, Mode::Sized(4)), &mut sink(&mut out), now);
        assert!(!f.is_body_complete());
        f.data(Bytes::from_static(b"ab"), &mut sink(&mut out), now);
        assert!(!f.is_body_complete());
        f.data(Bytes::from_static(b"cdef"), &mut sink(&mut out), now);
        assert!(f.is_body_complete() && !f.is_complete());
        assert!(
            text(&mut out).ends_with("\r\n\r\nabcd"),
            "the surplus is dropped"
        );

        let mut f = Framer::new(Version::Http11, false, LIMITS, now);
        f.head(head(200, Mode::Stream), &mut sink(&mut out), now);
        f.data(Bytes::from_static(b"ab"), &mut sink(&mut out), now);
        assert!(
            !f.is_body_complete(),
            "a chunked body is complete only at its end"
        );
        f.end(&mut sink(&mut out));
        assert!(f.is_body_complete());
    }

    #[test]
    fn continue_goes_out_only_before_the_final_head() {
        let now = Instant::now();
        let mut f = Framer::new(Version::Http11, false, LIMITS, now);
        let mut out = OutQueue::new();
        f.interim_continue(&mut out);
        assert_eq!(text(&mut out), "HTTP/1.1 100 Continue\r\n\r\n");
        f.head(head(200, Mode::Stream), &mut sink(&mut out), now);
        let _ = text(&mut out);
        f.interim_continue(&mut out);
        assert_eq!(text(&mut out), "");
    }

    /// A range of a file holding `content`, and everything queued read out as a transport
    /// without sendfile reads it.
    fn file_piece(content: &[u8]) -> (tempfile::TempDir, Piece) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let file = std::sync::Arc::new(std::fs::File::open(path).unwrap());
        let len = content.len() as u64;
        let range = crate::http::outbuf::FileRange {
            file,
            offset: 0,
            len,
        };
        (dir, Piece::File(range))
    }

    fn read_all(out: &mut OutQueue) -> String {
        let mut all = String::new();
        while !out.is_empty() {
            out.fill_front(1 << 20).unwrap();
            all.push_str(&text(out));
        }
        all
    }

    #[test]
    fn a_file_range_is_framed_like_bytes() {
        let now = Instant::now();
        let (_d, piece) = file_piece(b"0123456789");
        let mut out = OutQueue::new();
        let mut f = Framer::new(Version::Http11, false, LIMITS, now);
        f.head(head(200, Mode::Sized(4)), &mut sink(&mut out), now);
        f.data(piece.clone(), &mut sink(&mut out), now);
        f.end(&mut sink(&mut out));
        assert!(
            read_all(&mut out).ends_with("Content-Length: 4\r\n\r\n0123"),
            "a range beyond the declared length is cut to it"
        );
        assert!(f.is_reusable());
        assert_eq!(f.body_bytes(), 4);

        let mut f = Framer::new(Version::Http11, false, LIMITS, now);
        f.head(head(200, Mode::Stream), &mut sink(&mut out), now);
        f.data(piece.clone(), &mut sink(&mut out), now);
        f.end(&mut sink(&mut out));
        assert!(read_all(&mut out).ends_with("\r\n\r\na\r\n0123456789\r\n0\r\n\r\n"));

        let mut f = Framer::new(Version::Http11, true, LIMITS, now);
        f.head(head(200, Mode::Sized(10)), &mut sink(&mut out), now);
        f.data(piece, &mut sink(&mut out), now);
        f.end(&mut sink(&mut out));
        assert!(
            read_all(&mut out).ends_with("Content-Length: 10\r\n\r\n"),
            "HEAD: no body"
        );
    }
}
