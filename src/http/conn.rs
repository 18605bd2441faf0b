//! One client connection: read a head → start the [`Service`]'s call → drive the
//! [`Exchange`] until it ends → keep-alive or close. The call's future is polled inside this
//! task's select loop, next to the socket, the body decoder and the timers, so one place
//! sees everything that can happen during an exchange: output, body demand (`100
//! Continue`), a client that goes away, a stalled upload, a client that stops reading,
//! shutdown. Each `select!` arm hands its event to one method; the decisions are the
//! exchange's.

use std::future::Future;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, timeout, Instant, Sleep};
use tracing::{debug, info_span, Instrument};

use super::channel::{self, BodyMsg, Channel};
use super::decode::Decoder;
use super::exchange::{Exchange, Outcome, Start};
use super::framer::{Framer, OutputLimits, Sink};
use super::head::{self, BodyFraming, HeadError, Limits, RequestHead, Version};
use super::outbuf::{OutQueue, MAX_SLICES};
use super::service::{ConnInfo, Record, Requested, Service};
use super::status;
use super::transport::Transport;

/// Bytes of a file range read into memory at a time for a transport without sendfile (TLS).
const FILE_READ: usize = 64 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// A read buffer with less room than this is grown by [`READ_CHUNK`] before reading (bytes).
const MIN_READ_ROOM: usize = 4 * 1024;
/// Most request-body bytes read ahead of the handler (bytes).
const BODY_READ_AHEAD: usize = 64 * 1024;
/// Lingering close: how long, and how much, we read and discard after an error response so
/// the client sees the response instead of a reset.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;
/// Most bytes of a refused request line the log keeps.
const LOGGED_LINE_BYTES: usize = 1024;

/// The `[server]` settings a connection obeys.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Head size and count limits, and the body limit.
    pub(crate) limits: Limits,
    /// Requests served on one connection.
    pub(crate) max_requests: u64,
    /// Time for a whole request head.
    pub(crate) header_timeout: Duration,
    /// Longest silence while a request body is read.
    pub(crate) body_timeout: Duration,
    /// Idle time allowed between requests.
    pub(crate) keep_alive_timeout: Duration,
    /// Longest stall while writing.
    pub(crate) write_timeout: Duration,
    /// EOF from a client with a pending response is not a disconnect.
    pub(crate) half_close: bool,
}

/// What a connection is given: its settings, the application, and the shutdown signal.
pub(crate) struct Context<S> {
    /// The `[server]` settings, shared by the connections of one config (not a copy in
    /// each).
    pub(crate) settings: Arc<Settings>,
    /// The application.
    pub(crate) service: Arc<S>,
    /// Flips to true once, at shutdown.
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// Serve one connection until it closes. Errors are logged here and never escape. `first`
/// is what was read of it already (past a PROXY header).
///
/// Not an `async fn`: its arguments would then stay in the future beside the [`Conn`] made
/// of them, a second copy for as long as the connection is open.
pub(crate) fn serve<R, W, S>(
    r: R,
    w: W,
    first: Vec<u8>,
    info: ConnInfo,
    ctx: Context<S>,
    id: u64,
) -> impl Future<Output = ()> + Send
where
    R: AsyncRead + Unpin + Send,
    W: Transport,
    S: Service,
{
    let span = info_span!("conn", id, peer = %info.peer);
    let mut conn = Conn {
        r,
        w,
        info,
        rbuf: BytesMut::from(&first[..]),
        out: OutQueue::new(),
        read_eof: false,
        head_timer: Box::pin(sleep_until(Instant::now())),
        ctx,
    };
    // The methods borrow the connection: one taking it by value would copy it again.
    async move { conn.run().await }.instrument(span)
}

struct Conn<R, W, S> {
    r: R,
    w: W,
    info: ConnInfo,
    rbuf: BytesMut,
    out: OutQueue,
    read_eof: bool,
    /// The header_timeout / keep-alive deadline while a head is awaited. Kept for the whole
    /// connection and moved, not made anew per request: moving a registered timer to a later
    /// deadline does not touch the runtime's timer wheel.
    head_timer: Pin<Box<Sleep>>,
    ctx: Context<S>,
}

/// Why no head came.
enum NoHead {
    /// Close quietly: idle timeout, EOF, a reset, shutdown.
    Quiet,
    /// The head was refused or timed out: the answer is queued; close as this says.
    Refused(Outcome),
}

impl<R, W, S> Conn<R, W, S>
where
    R: AsyncRead + Unpin + Send,
    W: Transport,
    S: Service,
{
    async fn run(&mut self) {
        // header_timeout counts from accept, then from the end of each response; it is a
        // deadline for the whole head, never reset by a byte arriving.
        let mut head_deadline = Instant::now() + self.ctx.settings.header_timeout;
        let mut idle_deadline = head_deadline;
        let mut served = 0u64;
        let outcome = loop {
            let idle = self.rbuf.is_empty() && !self.read_eof;
            if idle && !self.wait_for_bytes(head_deadline, idle_deadline).await {
                break Outcome::Close;
            }
            served += 1;
            let keep_alive = served < self.ctx.settings.max_requests;
            // Boxed, the head and its exchange: a connection waiting between requests then
            // holds only a pointer-sized slot for them in its task (an idle connection's
            // memory), and a request still costs one allocation.
            match Box::pin(self.serve_one(head_deadline, keep_alive)).await {
                Outcome::KeepAlive => {
                    let settings = &self.ctx.settings;
                    let now = Instant::now();
                    head_deadline = now + settings.header_timeout;
                    idle_deadline = now + settings.keep_alive_timeout.min(settings.header_timeout);
                    self.out.shrink();
                    if self.rbuf.is_empty() {
                        // An idle keep-alive connection holds no buffer memory.
                        self.rbuf = BytesMut::new();
                    }
                }
                outcome => break outcome,
            }
        };
        self.finish(outcome).await;
    }

    /// Read a head and answer it; how the connection goes on.
    async fn serve_one(&mut self, deadline: Instant, keep_alive: bool) -> Outcome {
        match self.read_head(deadline).await {
            Ok(head) => {
                let keep_alive = keep_alive && !self.is_shutting_down();
                self.exchange(head, keep_alive).await
            }
            Err(NoHead::Quiet) => Outcome::Close,
            Err(NoHead::Refused(outcome)) => outcome,
        }
    }

    fn is_shutting_down(&self) -> bool {
        *self.ctx.shutdown.borrow()
    }

    // ---- the head -----------------------------------------------------------------------

    /// Wait, between requests (or for the first), for the first bytes of a head: false
    /// when the connection is to close quietly instead (idle timeout, EOF, a reset, the
    /// server gone). A small future, kept apart from the head's: it is what an idle
    /// connection's task holds.
    async fn wait_for_bytes(&mut self, deadline: Instant, idle_deadline: Instant) -> bool {
        // Draining (shutdown): an idle connection is not closed under its client, whose next
        // request may be on its way; it gets that one answer, with Connection: close, if it
        // comes within keep_alive_timeout (HAProxy's idle-close-on-response).
        let mut drain_end = None;
        loop {
            let shutting_down = self.is_shutting_down();
            if drain_end.is_none() && shutting_down {
                drain_end = Some(Instant::now() + self.ctx.settings.keep_alive_timeout);
            }
            let until = deadline.min(idle_deadline);
            let until = drain_end.map_or(until, |end| until.min(end));
            if self.head_timer.deadline() != until {
                self.head_timer.as_mut().reset(until);
            }
            tokio::select! {
                // In order, without the random start: nothing here needs fairness.
                biased;
                n = read_lean(&mut self.r, &mut self.rbuf) => return match n {
                    Ok(0) => {
                        self.read_eof = true;
                        false
                    }
                    Ok(_) => true,
                    Err(_) => false,
                },
                _ = self.head_timer.as_mut() => return false,
                // Wakes the wait to start the drain's deadline.
                changed = self.ctx.shutdown.changed(), if !shutting_down => {
                    if changed.is_err() {
                        // The server is gone without saying so: nothing left to serve for.
                        return false;
                    }
                }
            }
        }
    }

    /// Wait for a complete head, by `deadline`, once some of it is there.
    async fn read_head(&mut self, deadline: Instant) -> Result<RequestHead, NoHead> {
        let started = Instant::now();
        // head::parse rescans from the start; call it only when the bytes could hold a whole
        // head, break a limit, or have just completed the request line (which fails early),
        // so a client trickling bytes costs O(n), not O(n²).
        let mut scanned = 0;
        let mut line_checked = false;
        loop {
            if self.may_parse(&mut scanned, &mut line_checked) {
                match head::parse(&mut self.rbuf, &self.ctx.settings.limits) {
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) => {}
                    Err(e) => return Err(self.refuse_head(e, started)),
                }
            }
            if self.read_eof {
                return Err(NoHead::Quiet);
            }
            if self.head_timer.deadline() != deadline {
                self.head_timer.as_mut().reset(deadline);
            }
            tokio::select! {
                biased;
                n = read_lean(&mut self.r, &mut self.rbuf) => match n {
                    Ok(0) => self.read_eof = true,
                    Ok(_) => {}
                    Err(_) => return Err(NoHead::Quiet),
                },
                _ = self.head_timer.as_mut() => {
                    if self.rbuf.is_empty() {
                        return Err(NoHead::Quiet);
                    }
                    return Err(self.head_timed_out(started));
                }
            }
        }
    }

    /// Whether the bytes read so far are worth a parse.
    fn may_parse(&self, scanned: &mut usize, line_checked: &mut bool) -> bool {
        if !*line_checked && memchr::memchr(b'\n', &self.rbuf).is_some() {
            *line_checked = true;
            return true;
        }
        may_end_head(&self.rbuf, scanned)
            || self.rbuf.len() > self.ctx.settings.limits.max_head_bytes
    }

    fn refuse_head(&mut self, e: HeadError, started: Instant) -> NoHead {
        debug!(error = %e, status = e.status(), "closing: bad request head");
        self.answer_refused(e.status(), e.as_str(), started);
        NoHead::Refused(Outcome::Linger)
    }

    fn head_timed_out(&mut self, started: Instant) -> NoHead {
        debug!("closing: header_timeout");
        self.answer_refused(
            status::REQUEST_TIMEOUT,
            "request head not received in time",
            started,
        );
        NoHead::Refused(Outcome::Close)
    }

    /// Queue the server's own answer to a head it will not serve, and record it.
    fn answer_refused(&mut self, status: u16, detail: &str, started: Instant) {
        let now = Instant::now().into_std();
        let mut framer = Framer::new(Version::Http11, false, OutputLimits::NONE, now);
        let mut sink = Sink {
            out: &mut self.out,
            keep_alive: false,
        };
        framer.refuse(status, detail, &mut sink);
        let line_end = memchr::memchr(b'\n', &self.rbuf).unwrap_or(self.rbuf.len());
        let line = self
            .rbuf
            .get(..line_end.min(LOGGED_LINE_BYTES))
            .unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let service = &self.ctx.service;
        let times = service.wants_times();
        let record = Record {
            conn: &self.info,
            request: Requested::Refused(line),
            time: if service.wants_wall_time() {
                SystemTime::now()
            } else {
                SystemTime::UNIX_EPOCH
            },
            status: framer.status(),
            bytes: framer.body_bytes(),
            mode: framer.mode(),
            framing: framer.framing(),
            ttfb: None,
            total: if times {
                started.elapsed()
            } else {
                Duration::ZERO
            },
            keep_alive: false,
            completed: true,
            refused: true,
            outcome: None,
        };
        service.record(None, &record);
    }

    // ---- one exchange -------------------------------------------------------------------

    /// Run one request/response exchange.
    async fn exchange(&mut self, head: RequestHead, keep_alive: bool) -> Outcome {
        let started = Instant::now();
        let service = self.ctx.service.clone();
        // Clock reads are a measurable share of a small exchange: the log's own times are
        // taken only when someone reads them.
        let times = service.wants_times();
        let wall = if service.wants_wall_time() {
            SystemTime::now()
        } else {
            SystemTime::UNIX_EPOCH
        };
        let settings = &self.ctx.settings;
        let decoder = body_decoder(head.body, settings.limits.max_body_bytes);
        let (channel, body_tx, ends) = channel::open(head.body, !decoder.is_end());
        let version = head.version;
        let head_request = head.is_head();
        let expect_continue = head.expect_continue;
        let keep_alive = keep_alive && head.keep_alive && !self.is_shutting_down();
        let half_close = settings.half_close;
        let outcome = {
            let mut call = service.call(head, &self.info, ends);
            let mut ex = Exchange::new(Start {
                version,
                head_request,
                limits: S::limits(&call),
                decoder,
                body_tx,
                expect_continue,
                keep_alive,
                half_close,
                now: started.into_std(),
            });
            let outcome = {
                let fut = pin!(service.run(&mut call));
                self.drive(&mut ex, &channel, fut, times, started).await
            }; // The call's future ends here, before its response writer.
            if outcome == Outcome::Gone {
                channel.set_disconnected();
            }
            self.record(&ex, &service, &call, outcome, wall, started);
            outcome
        }; // The call and the exchange are dropped where they are, not moved to be dropped.
        channel.cmds.close_consumer();
        outcome
    }

    /// Tell the service how the exchange went.
    #[inline]
    fn record(
        &self,
        ex: &Exchange,
        service: &S,
        call: &S::Call,
        outcome: Outcome,
        wall: SystemTime,
        started: Instant,
    ) {
        let framer = ex.framer();
        // Durations are worked out only for a record that shows them.
        let times = service.wants_times();
        let since = |t: std::time::Instant| Instant::from_std(t).saturating_duration_since(started);
        let record = Record {
            conn: S::conn(call),
            request: Requested::Head(S::head(call)),
            time: wall,
            status: framer.status(),
            bytes: framer.body_bytes(),
            mode: framer.mode(),
            framing: framer.framing(),
            ttfb: ex.first_write().filter(|_| times).map(since),
            total: if times {
                started.elapsed()
            } else {
                Duration::ZERO
            },
            keep_alive: outcome == Outcome::KeepAlive,
            completed: outcome != Outcome::Gone,
            refused: ex.is_refused(),
            outcome: S::outcome(call),
        };
        service.record(Some(call), &record);
    }

    /// Drive the exchange until it ends.
    async fn drive<F: Future<Output = ()>>(
        &mut self,
        ex: &mut Exchange,
        channel: &Channel,
        mut fut: Pin<&mut F>,
        times: bool,
        started: Instant,
    ) -> Outcome {
        if ex.has_no_body_left() {
            self.fast_path(ex, channel, fut.as_mut(), times, started)
                .await;
        }
        loop {
            if let Some(outcome) = ex.outcome() {
                return outcome;
            }
            self.turn(ex, channel, fut.as_mut()).await;
        }
    }

    /// An answer that is complete after one poll of the handler (most in-process ones) is
    /// framed and written here, without a turn of the loop.
    async fn fast_path<F: Future<Output = ()>>(
        &mut self,
        ex: &mut Exchange,
        channel: &Channel,
        fut: Pin<&mut F>,
        times: bool,
        started: Instant,
    ) {
        if poll_once(fut).await.is_ready() {
            ex.on_handler_done();
        }
        // Microseconds after `started`: close enough for auto mode's flush timer.
        let now = started.into_std();
        self.take_cmds(ex, channel, now);
        if self.out.is_empty() {
            return;
        }
        let written = poll_once(pin!(write_out(&mut self.w, &mut self.out))).await;
        match written {
            Poll::Ready(Ok(n)) if n > 0 => {
                self.out.advance(n);
                let now = if times {
                    Instant::now().into_std()
                } else {
                    now
                };
                ex.on_written(&self.out, now);
            }
            Poll::Ready(_) => ex.on_write_failed("write failed"),
            Poll::Pending => {}
        }
    }

    /// One turn of the loop: wait for the next event and hand it to the exchange.
    async fn turn<F: Future<Output = ()>>(
        &mut self,
        ex: &mut Exchange,
        channel: &Channel,
        fut: Pin<&mut F>,
    ) {
        if self.is_shutting_down() {
            // Seen at the next event, which is soon enough: keep-alive only matters when
            // the head is framed and when the exchange ends, and both are events.
            ex.on_shutdown();
        }
        let settings = &self.ctx.settings;
        let body_done = ex.has_no_body_left();
        let read_cap = if body_done {
            // Pipelined requests are buffered up to one head's worth.
            settings.limits.max_head_bytes
        } else {
            BODY_READ_AHEAD
        };
        let can_read = !self.read_eof && self.rbuf.len() < read_cap;
        let body_tx = ex.body_sender();
        let flush_at = ex.flush_deadline().map(Instant::from_std);
        let write_by = ex
            .write_deadline(&self.out, settings.write_timeout)
            .map(Instant::from_std);
        let body_by = if self.read_eof {
            None
        } else {
            ex.body_deadline(settings.body_timeout)
                .map(Instant::from_std)
        };

        tokio::select! {
            biased;
            cmd = channel.cmds.recv(), if ex.wants_cmds(&self.out) => {
                let now = Instant::now().into_std();
                ex.on_cmd(cmd, &mut self.out, now);
                self.take_cmds(ex, channel, now);
            }
            n = write_out(&mut self.w, &mut self.out), if !self.out.is_empty() => {
                self.on_write(ex, n);
            }
            permit = reserve(body_tx.clone()), if body_tx.is_some() => {
                let now = Instant::now().into_std();
                if let Some(msg) = ex.decode_body(&mut self.rbuf, &mut self.out, now) {
                    permit.send(msg);
                }
            }
            _ = std::future::ready(()), if ex.wants_drain() => {
                ex.drain_body(&mut self.rbuf, Instant::now().into_std());
            }
            n = read_for(&mut self.r, &mut self.rbuf, body_done), if can_read => {
                self.on_read(ex, n);
            }
            _ = channel.body_wanted(), if ex.awaits_continue() => {
                ex.on_body_wanted(&mut self.out, Instant::now().into_std());
            }
            _ = fut, if ex.is_handler_running() => ex.on_handler_done(),
            _ = sleep_opt(flush_at), if flush_at.is_some() => {
                ex.on_flush_timer(&mut self.out, Instant::now().into_std());
            }
            _ = sleep_opt(write_by), if write_by.is_some() => {
                ex.on_write_failed("write_timeout");
            }
            _ = sleep_opt(body_by), if body_by.is_some() => {
                debug!("closing: body_timeout");
                ex.on_body_stalled(&mut self.out);
            }
        }
    }

    /// Frames everything else the handler has queued, in one go (a small response is a
    /// head, a piece and the end), until the response ends or the output is full.
    fn take_cmds(&mut self, ex: &mut Exchange, channel: &Channel, now: std::time::Instant) {
        while ex.wants_cmds(&self.out) {
            let Some(cmd) = channel.cmds.try_recv() else {
                break;
            };
            ex.on_cmd(Some(cmd), &mut self.out, now);
        }
    }

    fn on_write(&mut self, ex: &mut Exchange, n: std::io::Result<usize>) {
        match n {
            Ok(n) if n > 0 => {
                self.out.advance(n);
                ex.on_written(&self.out, Instant::now().into_std());
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                // A file being sent shrank: the body cannot be completed (SPEC §4).
                ex.on_write_failed("file shrank while being sent")
            }
            _ => ex.on_write_failed("write failed"),
        }
    }

    fn on_read(&mut self, ex: &mut Exchange, n: std::io::Result<usize>) {
        match n {
            Ok(0) => {
                self.read_eof = true;
                ex.on_eof(&self.out);
            }
            Ok(_) => ex.on_read(Instant::now().into_std()),
            Err(_) => ex.on_read_failed(),
        }
    }

    // ---- the end ------------------------------------------------------------------------

    /// Write what is queued (bounded by write_timeout), then close, lingering if asked.
    async fn finish(&mut self, outcome: Outcome) {
        if outcome == Outcome::Gone {
            return;
        }
        let write_timeout = self.ctx.settings.write_timeout;
        while !self.out.is_empty() {
            match timeout(write_timeout, write_out(&mut self.w, &mut self.out)).await {
                Ok(Ok(n)) if n > 0 => self.out.advance(n),
                _ => return,
            }
        }
        let _ = timeout(write_timeout, self.w.shutdown()).await;
        if outcome == Outcome::Linger && !self.read_eof {
            self.linger().await;
        }
    }

    /// RFC 9112 §9.6: keep reading a little so the client gets the response, not a RST.
    async fn linger(&mut self) {
        let deadline = Instant::now() + LINGER_TIME;
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            self.rbuf.clear();
            match tokio::time::timeout_at(deadline, read_lean(&mut self.r, &mut self.rbuf)).await {
                Ok(Ok(n)) if n > 0 => discarded += n,
                _ => break,
            }
        }
    }
}

/// The decoder for a request body framed as `framing`; a chunked one stops at `max` bytes
/// (a length body was checked against it with the head).
fn body_decoder(framing: BodyFraming, max: u64) -> Decoder {
    match framing {
        BodyFraming::None => Decoder::empty(),
        BodyFraming::Length(n) => Decoder::length(n),
        BodyFraming::Chunked => Decoder::chunked().with_limit(max),
    }
}

/// Polls `fut` once: its output, or `Pending` (with the task's waker registered by it).
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Whether `buf` holds a possible end of a head ("\n\r\n" or "\n\n", the latter so that a
/// bare-LF head is refused at once); `scanned` remembers how far earlier calls looked.
fn may_end_head(buf: &[u8], scanned: &mut usize) -> bool {
    let start = scanned.saturating_sub(2).min(buf.len());
    let tail = buf.get(start..).unwrap_or_default();
    let found = memchr::memchr_iter(b'\n', tail).any(|i| match buf.get(start + i + 1) {
        Some(b'\n') => true,
        Some(b'\r') => buf.get(start + i + 2) == Some(&b'\n'),
        _ => false,
    });
    *scanned = buf.len();
    found
}

/// Read during an exchange: a request body streams straight into the buffer; once the body
/// is in, reading only watches for a disconnect or a pipelined request, which must not cost
/// a buffer per streaming response.
async fn read_for<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    body_done: bool,
) -> std::io::Result<usize> {
    if body_done {
        read_lean(r, buf).await
    } else {
        read_some(r, buf).await
    }
}

/// Read straight into `buf`, growing it by [`READ_CHUNK`] when it is nearly full (never by
/// doubling a buffer that still has room).
async fn read_some<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < MIN_READ_ROOM {
        buf.reserve(READ_CHUNK);
    }
    r.read_buf(buf).await
}

/// Read into a stack buffer and keep only the bytes that came. A connection waiting for a
/// head — idle between keep-alive requests, or a client trickling one a byte at a time —
/// then holds no read buffer while it waits, only what it sent: 10,000 idle connections
/// would otherwise pin 10,000 × [`READ_CHUNK`] (the soak test, scenario e).
async fn read_lean<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        // Lives for one poll only, never across a wait.
        let mut stack = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut rb = ReadBuf::uninit(&mut stack);
        std::task::ready!(Pin::new(&mut *r).poll_read(cx, &mut rb))?;
        buf.extend_from_slice(rb.filled());
        Poll::Ready(Ok(rb.filled().len()))
    })
    .await
}

/// One vectored write of what is queued, or one sendfile of the file range at its front.
/// The slice array lives on the stack for one poll only: kept across the wait it would put
/// 1 KiB into every exchange's future, which is copied into its box once per request.
async fn write_out<W: Transport>(w: &mut W, out: &mut OutQueue) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        if let Some(range) = out.front_file() {
            if w.can_sendfile() {
                return w.poll_sendfile(cx, range);
            }
            // Read synchronously, like the static handler's own reads: a page-cached file
            // answers in microseconds (docs/config.md, static_dir).
            out.fill_front(FILE_READ)?;
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = out.slices(&mut slices);
        Pin::new(&mut *w).poll_write_vectored(cx, slices.get(..n).unwrap_or_default())
    })
    .await
}

/// Room for one body piece in the handler's queue; pending for ever when there is no
/// reader to forward to.
async fn reserve(tx: Option<mpsc::Sender<BodyMsg>>) -> mpsc::OwnedPermit<BodyMsg> {
    match tx {
        Some(tx) => match tx.reserve_owned().await {
            Ok(permit) => permit,
            // The handler dropped its body reader: nothing to forward to, ever.
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::AccessLog;
    use crate::app::App;
    use crate::config::Config;
    use crate::stats::Stats;
    use tokio::io::AsyncWriteExt;

    /// The application side: `/echo`, and `/ticker` buffered whole (it reads no body). The
    /// shutdown sender is leaked so that it outlives every connection of the test.
    fn test_context() -> Context<App> {
        let text = "[[route]]\nprefix = \"/echo\"\nhandler = \"echo\"\n\
                    [[route]]\nprefix = \"/ticker\"\nhandler = \"ticker\"\n\
                    output = \"buffer\"\nbuffer_limit = \"1MiB\"\n";
        let config = Config::from_str_at(text, std::path::Path::new("/nonexistent/config.toml"))
            .expect("config");
        let stats = Arc::new(Stats::default());
        let built = crate::routes::build(&config, Vec::new(), &stats, None).expect("router");
        let (shutdown, watching) = watch::channel(false);
        std::mem::forget(shutdown);
        Context {
            settings: Arc::new(Settings {
                limits: Limits::default(),
                max_requests: 100,
                header_timeout: Duration::from_secs(5),
                body_timeout: Duration::from_secs(5),
                keep_alive_timeout: Duration::from_secs(5),
                write_timeout: Duration::from_secs(5),
                half_close: false,
            }),
            service: Arc::new(App::new(
                built.router,
                AccessLog::off(),
                stats,
                Default::default(),
            )),
            shutdown: watching,
        }
    }

    /// Start serving one connection over an in-memory pipe of `capacity` bytes each way.
    fn connect(capacity: usize) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
        connect_with(capacity, test_context())
    }

    /// [`connect`] with a context of the test's.
    fn connect_with(
        capacity: usize,
        ctx: Context<App>,
    ) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(capacity);
        let (r, w) = tokio::io::split(server);
        let addr = "127.0.0.1:1".parse().expect("address");
        let info = ConnInfo {
            peer: addr,
            local: addr,
            tls: false,
        };
        (client, tokio::spawn(serve(r, w, Vec::new(), info, ctx, 1)))
    }

    /// Serve one connection: write `input`, return everything the server writes until it
    /// closes. `input` must end the connection (`Connection: close`).
    async fn serve_bytes(input: &[u8]) -> String {
        let (client, task) = connect(64 * 1024);
        let (mut cr, mut cw) = tokio::io::split(client);
        cw.write_all(input).await.expect("write");
        let mut out = Vec::new();
        cr.read_to_end(&mut out).await.expect("read");
        task.await.expect("connection task");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn expect_continue_with_the_whole_body_already_sent_keeps_alive() {
        // The client did not wait for 100 Continue: the body is complete when the handler
        // ends, so nothing is in doubt and the pipelined request is answered.
        let out = serve_bytes(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello\
              GET /echo?next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{out}");
        assert!(out.contains("body-length: 5\n"), "{out}");
        assert!(out.contains("target: /echo?next\n"), "{out}");
    }

    #[tokio::test]
    async fn a_fast_answer_the_client_takes_slowly_is_finished_by_the_loop() {
        // The echo answer is complete after one poll of its handler, but a 16-byte pipe takes
        // only the first piece of it: the select loop writes the rest, and the connection is
        // still kept for the pipelined request.
        let (client, task) = connect(16);
        let (mut cr, mut cw) = tokio::io::split(client);
        cw.write_all(
            b"GET /echo?first HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /echo?second HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /echo?third HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("write");
        let mut out = Vec::new();
        cr.read_to_end(&mut out).await.expect("read");
        task.await.expect("connection task");
        let out = String::from_utf8_lossy(&out);
        assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{out}");
        for target in ["first", "second", "third"] {
            assert!(out.contains(&format!("target: /echo?{target}\n")), "{out}");
        }
    }

    #[test]
    fn a_bad_body_after_the_response_ended_does_not_spin() {
        // The handler answered without reading; its response waits for a client that does
        // not read. Bad chunked framing arriving now must not turn the connection task into
        // a busy loop until write_timeout. On a current-thread runtime such a loop never
        // yields, so the client below would never finish: the watchdog reports it.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let out = rt.block_on(async {
                let (client, task) = connect(512);
                let (mut cr, mut cw) = tokio::io::split(client);
                cw.write_all(
                    b"POST /ticker?count=300&interval_ms=0 HTTP/1.1\r\nHost: t\r\n\
                               Transfer-Encoding: chunked\r\n\r\n",
                )
                .await
                .expect("write head");
                // The first byte of a buffered response means the handler has ended.
                let mut first = [0u8; 1];
                cr.read_exact(&mut first).await.expect("response starts");
                cw.write_all(b"zz\r\n").await.expect("write bad chunk");
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut rest = Vec::new();
                cr.read_to_end(&mut rest).await.expect("read");
                task.await.expect("connection task");
                rest
            });
            let _ = done_tx.send(out);
        });
        let rest = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the connection task never yielded: it spins");
        let text = String::from_utf8_lossy(&rest);
        assert!(
            text.ends_with("tick 300\n"),
            "the response is complete: {text}"
        );
    }

    #[tokio::test]
    async fn shutdown_gives_a_connection_waiting_for_its_first_head_keep_alive_timeout() {
        // header_timeout (60 s) is longer than keep_alive_timeout (0.2 s): without the
        // drain's deadline, the server would hold the silent connection past the 30 s below.
        let (shutdown, watching) = watch::channel(false);
        let mut ctx = test_context();
        ctx.shutdown = watching;
        let mut settings = (*ctx.settings).clone();
        settings.header_timeout = Duration::from_secs(60);
        settings.keep_alive_timeout = Duration::from_millis(200);
        ctx.settings = Arc::new(settings);
        let (mut client, task) = connect_with(1024, ctx);
        tokio::task::yield_now().await;
        shutdown.send_replace(true);
        let mut out = Vec::new();
        let closed = timeout(Duration::from_secs(30), client.read_to_end(&mut out)).await;
        assert!(closed.is_ok(), "still open 30 s after shutdown");
        assert!(out.is_empty(), "closed quietly: {out:?}");
        task.await.expect("connection task");
    }

    #[tokio::test]
    async fn a_waiting_connection_holds_no_read_buffer() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let mut buf = BytesMut::new();
        let waited =
            tokio::time::timeout(Duration::from_millis(20), read_lean(&mut server, &mut buf));
        assert!(waited.await.is_err(), "nothing was sent");
        assert_eq!(buf.capacity(), 0, "an idle wait allocates nothing");

        client.write_all(b"G").await.unwrap();
        assert_eq!(read_lean(&mut server, &mut buf).await.unwrap(), 1);
        assert_eq!(&buf[..], b"G");
        assert!(
            buf.capacity() < 64,
            "a trickled byte costs bytes, not {READ_CHUNK}"
        );

        let big = vec![b'x'; 3 * READ_CHUNK];
        client.write_all(&big).await.unwrap();
        let mut got = 0;
        while got < big.len() {
            got += read_lean(&mut server, &mut buf).await.unwrap();
        }
        assert_eq!(buf.len(), 1 + big.len());
        drop(client);
        assert_eq!(read_lean(&mut server, &mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_body_read_does_not_double_a_buffer_with_room() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        buf.extend_from_slice(b"partial");
        let capacity = buf.capacity();
        client.write_all(b"more").await.unwrap();
        read_some(&mut server, &mut buf).await.unwrap();
        assert_eq!(&buf[..], b"partialmore");
        assert_eq!(buf.capacity(), capacity);
    }

    #[test]
    fn head_end_is_found_across_reads() {
        let whole = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for split in 0..whole.len() {
            let mut scanned = 0;
            let first = may_end_head(&whole[..split], &mut scanned);
            let second = may_end_head(whole, &mut scanned);
            assert!(!first, "split {split}");
            assert!(second, "split {split}");
        }
        let mut scanned = 0;
        assert!(may_end_head(b"GET / HTTP/1.1\nHost: x\n\n", &mut scanned));
        let mut scanned = 0;
        assert!(!may_end_head(
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            &mut scanned
        ));
    }
}
