//! One client connection: read a head → route → run the handler → frame and write its
//! response → keep-alive or close. The handler future is polled inside this task's select
//! loop, next to the socket, the body decoder and the timers, so one place sees everything
//! that can happen during an exchange: output, body demand (`100 Continue`), a client that
//! goes away, a stalled upload, a client that stops reading, shutdown.

use std::future::Future;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, timeout, Instant, Sleep};
use tracing::{debug, info_span, warn, Instrument};

use crate::access_log::Entry;
use crate::handler::{Body, BodyMsg, ConnInfo, ExchangeShared, Handler, Request};
use crate::http::decode::{Decoder, Step};
use crate::http::framer::{self, Framer, OutputLimits};
use crate::http::head::{self, BodyFraming, Limits, RequestHead};
use crate::http::outbuf::{OutQueue, MAX_SLICES};
use crate::response::{Cmd, Response};
use crate::server::Shared;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// A read buffer with less room than this is grown by [`READ_CHUNK`] before reading (bytes).
const MIN_READ_ROOM: usize = 4 * 1024;
/// Most request-body bytes read ahead of the handler (bytes).
const BODY_READ_AHEAD: usize = 64 * 1024;
/// Body pieces queued for the handler before reading pauses.
const BODY_QUEUE: usize = 4;
/// Output bytes queued for a slow client before the handler waits (bytes).
const OUT_HIGH_WATER: usize = 256 * 1024;
/// An unread request body up to this size is read and discarded to keep the connection (bytes).
const DRAIN_LIMIT: u64 = 256 * 1024;
/// Lingering close: how long, and how much, we read and discard after an error response so
/// the client sees the response instead of a reset.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;

/// Serve one connection until it closes. Errors are logged here and never escape.
pub async fn serve<R, W>(r: R, w: W, info: ConnInfo, shared: Arc<Shared>, id: u64)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let shutdown = shared.shutdown.subscribe();
    let span = info_span!("conn", id, peer = %info.peer);
    let conn = Conn {
        r,
        w,
        info,
        rbuf: BytesMut::new(),
        out: OutQueue::new(),
        read_eof: false,
        head_timer: Box::pin(sleep_until(Instant::now())),
        shutdown,
        shared,
    };
    conn.run().instrument(span).await;
}

struct Conn<R, W> {
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
    shutdown: watch::Receiver<bool>,
    shared: Arc<Shared>,
}

/// How an exchange left the connection.
enum Outcome {
    KeepAlive,
    /// Write what is queued, then close.
    Close,
    /// Write the error response, then close lingering (RFC 9112 §9.6).
    Linger,
    /// The client is gone; drop everything.
    Gone,
}

impl<R, W> Conn<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    async fn run(mut self) {
        let cfg = &self.shared.config.server;
        // header_timeout counts from accept, then from the end of each response; it is a
        // deadline for the whole head, never reset by a byte arriving.
        let mut head_deadline = Instant::now() + cfg.header_timeout;
        let mut idle_deadline = head_deadline;
        let mut served = 0u64;
        loop {
            let head = match self.read_head(head_deadline, idle_deadline).await {
                Ok(Some(head)) => head,
                Ok(None) => break,
                Err(outcome) => return self.finish(outcome).await,
            };
            served += 1;
            let cfg = &self.shared.config.server;
            let keep_alive = served < cfg.max_requests_per_connection && !self.is_shutting_down();
            // Boxed: an idle connection's task then holds only a pointer-sized slot for it.
            match Box::pin(self.exchange(head, keep_alive)).await {
                Outcome::KeepAlive => {
                    let cfg = &self.shared.config.server;
                    let now = Instant::now();
                    head_deadline = now + cfg.header_timeout;
                    idle_deadline = now + cfg.keep_alive_timeout.min(cfg.header_timeout);
                    self.out.shrink();
                    if self.rbuf.is_empty() {
                        // An idle keep-alive connection holds no buffer memory.
                        self.rbuf = BytesMut::new();
                    }
                }
                outcome => return self.finish(outcome).await,
            }
        }
        self.finish(Outcome::Close).await;
    }

    fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn limits(&self) -> Limits {
        let cfg = &self.shared.config.server;
        Limits {
            max_head_bytes: cfg.max_head_bytes,
            max_headers: cfg.max_headers,
            max_body_bytes: cfg.max_body_bytes,
        }
    }

    /// Wait for a complete head. `Ok(None)`: close quietly (idle timeout, EOF, shutdown).
    async fn read_head(
        &mut self,
        deadline: Instant,
        idle_deadline: Instant,
    ) -> Result<Option<RequestHead>, Outcome> {
        let limits = self.limits();
        // head::parse rescans from the start; call it only when the bytes could hold a whole
        // head (or break a limit), so a client trickling bytes costs O(n), not O(n²).
        let mut scanned = 0;
        loop {
            if may_end_head(&self.rbuf, &mut scanned) || self.rbuf.len() > limits.max_head_bytes {
                match head::parse(&mut self.rbuf, &limits) {
                    Ok(Some(head)) => return Ok(Some(head)),
                    Ok(None) => {}
                    Err(e) => {
                        debug!(error = %e, status = e.status(), "closing: bad request head");
                        self.shared.stats.count_error();
                        framer::error_response(&mut self.out, e.status(), e.as_str(), false, false);
                        return Err(Outcome::Linger);
                    }
                }
            }
            if self.read_eof {
                return Ok(None);
            }
            let idle = self.rbuf.is_empty();
            let until = if idle {
                deadline.min(idle_deadline)
            } else {
                deadline
            };
            let shutting_down = self.is_shutting_down();
            if self.head_timer.deadline() != until {
                self.head_timer.as_mut().reset(until);
            }
            tokio::select! {
                n = read_lean(&mut self.r, &mut self.rbuf) => match n {
                    Ok(0) => self.read_eof = true,
                    Ok(_) => {}
                    Err(_) => return Ok(None),
                },
                _ = self.head_timer.as_mut() => {
                    if idle {
                        return Ok(None);
                    }
                    debug!("closing: header_timeout");
                    framer::error_response(&mut self.out, 408, "request head not received in time", false, false);
                    return Err(Outcome::Close);
                }
                _ = self.shutdown.changed(), if idle && !shutting_down => {}
            }
            if idle && self.is_shutting_down() {
                return Ok(None);
            }
        }
    }

    /// Run one request/response exchange.
    async fn exchange(&mut self, head: RequestHead, keep_alive: bool) -> Outcome {
        let started = Instant::now();
        // Clock reads are a measurable share of a small exchange: the log's own times are
        // taken only when there is a log.
        let logging = self.shared.access.is_on();
        let wall = if logging {
            SystemTime::now()
        } else {
            SystemTime::UNIX_EPOCH
        };
        let route = self.shared.router.route(head.path());
        let path = route.path;
        let entry = route.entry;
        let server = &self.shared.config.server;

        let mut decoder = match head.body {
            BodyFraming::None => Decoder::empty(),
            BodyFraming::Length(n) => Decoder::length(n),
            BodyFraming::Chunked => Decoder::chunked().with_limit(server.max_body_bytes),
        };
        let xs = ExchangeShared::new();
        let (mut body_tx, body_rx) = if decoder.is_end() {
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel::<BodyMsg>(BODY_QUEUE);
            (Some(tx), Some(rx))
        };
        let limits = OutputLimits {
            buffer_limit: entry.output.buffer_limit,
            flush_after: entry.output.flush_after,
        };
        let mut framer = Framer::new(
            head.version,
            head.is_head(),
            keep_alive && head.keep_alive,
            limits,
        );
        let expects_continue = head.expect_continue && !decoder.is_end();
        let body_framing = head.body;
        let mut req = Request {
            head,
            conn: self.info,
            prefix: entry.prefix.clone(),
            path,
            body: Body::new(body_rx, xs.clone(), body_framing),
            redirects: 0,
        };
        let mut res = Response::new(xs.clone(), entry.output.mode.into());
        let span = info_span!(
            "request",
            method = req.head.method_str(),
            path = req.head.path()
        );

        let half_close = server.half_close;
        let body_timeout = server.body_timeout;
        let write_timeout = server.write_timeout;
        let pipeline_cap = server.max_head_bytes;
        let mut st = ExchangeState {
            continue_sent: false,
            handler_done: false,
            ended: false,
            decode_blocked: self.rbuf.is_empty(),
            drained: 0,
            body_progress: started,
            write_progress: started,
            first_write: None,
            outcome: None,
            shutdown_seen: self.is_shutting_down(),
        };
        if st.shutdown_seen {
            framer.downgrade_keep_alive();
        }

        let outcome = {
            let mut fut =
                std::pin::pin!(run_handler(&*entry.handler, &mut req, &mut res).instrument(span));
            if decoder.is_end() {
                // Fast path: an answer that is complete after one poll of the handler (most
                // in-process ones) is framed and written here, without a turn of the loop.
                if poll_once(fut.as_mut()).await.is_ready() {
                    st.handler_done = true;
                }
                // Microseconds after `started`: close enough for auto mode's flush timer.
                let now = started;
                drain_cmds(
                    &xs,
                    &mut framer,
                    &mut self.out,
                    &mut st,
                    now.into_std(),
                    false,
                );
                if !self.out.is_empty() {
                    st.write_progress = now;
                    let written =
                        poll_once(std::pin::pin!(write_out(&mut self.w, &mut self.out))).await;
                    match written {
                        Poll::Ready(Ok(n)) if n > 0 => {
                            self.out.advance(n);
                            st.first_write = logging.then(Instant::now);
                        }
                        Poll::Ready(_) => {
                            debug!("client gone while writing");
                            st.outcome = Some(Outcome::Gone);
                        }
                        Poll::Pending => {}
                    }
                }
                settle(&mut st, &framer, true, self.read_eof, self.out.is_empty());
            }
            while st.outcome.is_none() {
                if !st.shutdown_seen && self.is_shutting_down() {
                    // Seen at the next event, which is soon enough: keep-alive only matters when
                    // the head is framed and when the exchange ends, and both are events.
                    st.shutdown_seen = true;
                    framer.downgrade_keep_alive();
                }
                let body_done = decoder.is_end();
                let waiting_for_client = !body_done
                    && !self.read_eof
                    && st.decode_blocked
                    && (!expects_continue || st.continue_sent)
                    && (body_tx.is_some() || st.ended);
                let read_cap = if body_done {
                    pipeline_cap
                } else {
                    BODY_READ_AHEAD
                };
                let can_read = !self.read_eof && self.rbuf.len() < read_cap;
                let can_decode = !body_done && !st.decode_blocked;
                let out_was_empty = self.out.is_empty();
                let auto_deadline = framer.deadline().map(Instant::from_std);

                tokio::select! {
                    biased;
                    cmd = xs.cmds.recv(), if !st.ended && self.out.len() < OUT_HIGH_WATER => {
                        if out_was_empty {
                            st.write_progress = Instant::now();
                        }
                        let now = Instant::now().into_std();
                        let in_doubt = expects_continue && !st.continue_sent && !decoder.is_end();
                        apply_cmd(cmd, &mut framer, &mut self.out, &mut st, now, in_doubt);
                        drain_cmds(&xs, &mut framer, &mut self.out, &mut st, now, in_doubt);
                        if st.ended {
                            // Nobody reads the body any more; what is left is drained or the
                            // connection closes.
                            body_tx = None;
                        }
                    }
                    n = write_out(&mut self.w, &mut self.out), if !self.out.is_empty() => match n {
                        Ok(n) if n > 0 => {
                            self.out.advance(n);
                            st.write_progress = Instant::now();
                            st.first_write.get_or_insert(st.write_progress);
                        }
                        _ => {
                            debug!("client gone while writing");
                            st.outcome = Some(Outcome::Gone);
                        }
                    },
                    permit = reserve(body_tx.clone()), if can_decode && body_tx.is_some() => {
                        match decoder.decode(&mut self.rbuf) {
                            Ok(Step::Data(d)) => {
                                st.body_progress = Instant::now();
                                let _ = permit.send(Ok(d));
                                if decoder.is_end() {
                                    // A length body ends with its last byte: tell the reader now.
                                    body_tx = None;
                                }
                            }
                            Ok(Step::NeedMore) => st.decode_blocked = true,
                            Ok(Step::End) => {
                                drop(permit);
                                body_tx = None;
                            }
                            Err(e) => {
                                let _ = permit.send(Err(e));
                                st.outcome = Some(self.body_failed(&mut framer, e.status(), e.as_str()));
                            }
                        }
                    }
                    _ = std::future::ready(()), if can_decode && body_tx.is_none() && st.ended => {
                        match decoder.decode(&mut self.rbuf) {
                            Ok(Step::Data(d)) => {
                                st.body_progress = Instant::now();
                                st.drained += d.len() as u64;
                                if st.drained > DRAIN_LIMIT {
                                    framer.downgrade_keep_alive();
                                }
                            }
                            Ok(Step::NeedMore) => st.decode_blocked = true,
                            Ok(Step::End) => {}
                            Err(_) => {
                                // The failed decoder fails again at once: stop draining, or this
                                // branch stays ready and the loop spins while the response waits
                                // for a slow reader. The connection closes after the response.
                                st.decode_blocked = true;
                                framer.downgrade_keep_alive();
                            }
                        }
                    }
                    n = read_for(&mut self.r, &mut self.rbuf, body_done), if can_read => match n {
                        Ok(0) => {
                            self.read_eof = true;
                            if !decoder.is_end() || !half_close {
                                // SPEC §5.6: EOF while the response is pending is a disconnect.
                                debug!("client closed its side");
                                st.outcome = Some(Outcome::Gone);
                            } else {
                                framer.downgrade_keep_alive();
                            }
                        }
                        Ok(_) => {
                            st.decode_blocked = false;
                            st.body_progress = Instant::now();
                        }
                        Err(_) => st.outcome = Some(Outcome::Gone),
                    },
                    _ = xs.body_wanted_notify.notified(), if expects_continue && !st.continue_sent => {
                        st.continue_sent = true;
                        st.body_progress = Instant::now();
                        if !framer.is_head_emitted() {
                            // RFC 9110 §15.2.1: the interim response precedes the final one.
                            self.out.push_slice(framer::CONTINUE);
                        }
                    }
                    _ = &mut fut, if !st.handler_done => st.handler_done = true,
                    _ = sleep_opt(auto_deadline), if auto_deadline.is_some() => {
                        framer.timer(&mut self.out, Instant::now().into_std());
                    }
                    _ = sleep_until(st.write_progress + write_timeout), if !self.out.is_empty() => {
                        debug!("closing: write_timeout");
                        st.outcome = Some(Outcome::Gone);
                    }
                    _ = sleep_until(st.body_progress + body_timeout), if waiting_for_client => {
                        debug!("closing: body_timeout");
                        st.outcome = Some(self.body_failed(&mut framer, 408, "request body not received in time"));
                    }
                }

                settle(
                    &mut st,
                    &framer,
                    decoder.is_end(),
                    self.read_eof,
                    self.out.is_empty(),
                );
            }
            let outcome = st.outcome.take().unwrap_or(Outcome::Close);
            if matches!(outcome, Outcome::Gone) {
                xs.set_disconnected();
            }
            outcome
        }; // The handler future ends here, before its response writer.
        drop(res);
        xs.cmds.close_consumer();
        let keep = matches!(outcome, Outcome::KeepAlive);
        self.shared
            .stats
            .count_response(framer.framing(), framer.status() != 0);
        if !logging {
            return outcome;
        }
        self.shared
            .access
            .log(Entry {
                peer: self.info.peer,
                time: wall,
                head: &req.head,
                status: framer.status(),
                bytes: framer.body_bytes(),
                mode: framer.mode(),
                framing: framer.framing(),
                ttfb: st.first_write.map(|t| t - started),
                total: started.elapsed(),
                keep_alive: keep,
                completed: !matches!(outcome, Outcome::Gone),
            })
            .await;
        outcome
    }

    /// The request body is broken or stalled: answer with `status` if nothing went out yet,
    /// then close — the end of the request is in doubt (SPEC §3).
    fn body_failed(&mut self, framer: &mut Framer, status: u16, detail: &str) -> Outcome {
        if framer.is_head_emitted() {
            // A complete response is still delivered; an unfinished one is cut.
            return if framer.is_complete() {
                Outcome::Close
            } else {
                Outcome::Gone
            };
        }
        self.out.clear();
        framer.downgrade_keep_alive();
        framer::error_response(&mut self.out, status, detail, false, false);
        if status == 408 {
            Outcome::Close
        } else {
            Outcome::Linger
        }
    }

    /// Write what is queued (bounded by write_timeout), then close, lingering if asked.
    async fn finish(mut self, outcome: Outcome) {
        if matches!(outcome, Outcome::Gone) {
            return;
        }
        let write_timeout = self.shared.config.server.write_timeout;
        while !self.out.is_empty() {
            match timeout(write_timeout, write_out(&mut self.w, &mut self.out)).await {
                Ok(Ok(n)) if n > 0 => self.out.advance(n),
                _ => return,
            }
        }
        let _ = timeout(write_timeout, self.w.shutdown()).await;
        if matches!(outcome, Outcome::Linger) && !self.read_eof {
            // RFC 9112 §9.6: keep reading a little so the client gets the response, not a RST.
            let deadline = Instant::now() + LINGER_TIME;
            let mut discarded = 0;
            while discarded < LINGER_BYTES {
                self.rbuf.clear();
                match tokio::time::timeout_at(deadline, read_lean(&mut self.r, &mut self.rbuf))
                    .await
                {
                    Ok(Ok(n)) if n > 0 => discarded += n,
                    _ => break,
                }
            }
        }
    }
}

struct ExchangeState {
    continue_sent: bool,
    handler_done: bool,
    ended: bool,
    decode_blocked: bool,
    drained: u64,
    body_progress: Instant,
    write_progress: Instant,
    first_write: Option<Instant>,
    outcome: Option<Outcome>,
    shutdown_seen: bool,
}

/// Run the handler and report its end to the connection. A panic is contained here and
/// treated like an error: a 500, or a closed connection if the head already went out.
async fn run_handler(handler: &dyn Handler, req: &mut Request, res: &mut Response) {
    let result = CatchUnwind(handler.call(req, res)).await;
    match result {
        Ok(Ok(())) => {
            let _ = res.end().await;
        }
        Ok(Err(e)) => {
            debug!(error = %e, "handler failed");
            res.abort(e.status()).await;
        }
        Err(()) => {
            warn!("handler panicked");
            res.abort(500).await;
        }
    }
}

/// Frames one command from the handler. `in_doubt`: a request body is still incomplete and
/// no `100 Continue` went out.
fn apply_cmd(
    cmd: Option<Cmd>,
    framer: &mut Framer,
    out: &mut OutQueue,
    st: &mut ExchangeState,
    now: std::time::Instant,
    in_doubt: bool,
) {
    let answers = !matches!(cmd, Some(Cmd::Data(_) | Cmd::Flush));
    if answers && in_doubt {
        // RFC 9110 §10.1.1: answered without a 100 while the body is incomplete, the client
        // may or may not send the rest now; the connection cannot be reused. Decided before
        // the head is framed so that it says `Connection: close`. A body that already arrived
        // whole (the client did not wait) leaves no doubt.
        framer.downgrade_keep_alive();
    }
    match cmd {
        Some(Cmd::Head(h)) => framer.head(h, out, now),
        Some(Cmd::Data(d)) => framer.data(d, out, now),
        Some(Cmd::Flush) => framer.flush(out),
        Some(Cmd::End) => {
            framer.end(out);
            st.ended = true;
        }
        Some(Cmd::Abort(status)) => {
            framer.abort(status, out);
            st.ended = true;
        }
        // The response writer is gone without an end.
        None => {
            framer.abort(500, out);
            st.ended = true;
        }
    }
}

/// Frames everything else the handler has queued, in one go (a small response is a head, a
/// piece and the end), until the response ends or the output reaches its high-water mark.
fn drain_cmds(
    xs: &ExchangeShared,
    framer: &mut Framer,
    out: &mut OutQueue,
    st: &mut ExchangeState,
    now: std::time::Instant,
    in_doubt: bool,
) {
    while !st.ended && out.len() < OUT_HIGH_WATER {
        let Some(cmd) = xs.cmds.try_recv() else {
            break;
        };
        apply_cmd(Some(cmd), framer, out, st, now, in_doubt);
    }
}

/// Decides how the exchange ends once the handler is done, its response complete and written.
fn settle(
    st: &mut ExchangeState,
    framer: &Framer,
    body_done: bool,
    read_eof: bool,
    out_empty: bool,
) {
    if st.outcome.is_some() || !st.ended || !st.handler_done || !out_empty {
        return;
    }
    let body_settled = body_done || !framer.keep_alive();
    if body_settled || read_eof {
        st.outcome = Some(if framer.keep_alive() && body_done && !read_eof {
            Outcome::KeepAlive
        } else {
            Outcome::Close
        });
    }
}

/// Polls `fut` once: its output, or `Pending` (with the task's waker registered by it).
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Polls a future inside `catch_unwind`.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
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

/// One vectored write of what is queued. The slice array lives on the stack for one poll
/// only: kept across the wait it would put 1 KiB into every exchange's future, which is
/// copied into its box once per request.
async fn write_out<W: AsyncWrite + Unpin>(w: &mut W, out: &mut OutQueue) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = out.slices(&mut slices);
        Pin::new(&mut *w).poll_write_vectored(cx, slices.get(..n).unwrap_or_default())
    })
    .await
}

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
    use crate::config::Config;
    use crate::server::build_router;
    use crate::stats::Stats;
    use tokio::io::AsyncWriteExt;

    /// A connection's shared state: `/echo`, and `/ticker` buffered whole (it reads no body).
    fn test_shared() -> Arc<Shared> {
        let text = "[[route]]\nprefix = \"/echo\"\nhandler = \"echo\"\n\
                    [[route]]\nprefix = \"/ticker\"\nhandler = \"ticker\"\n\
                    output = \"buffer\"\nbuffer_limit = \"1MiB\"\n";
        let config = Config::from_str_at(text, std::path::Path::new("/nonexistent/config.toml"))
            .expect("config");
        let stats = Arc::new(Stats::default());
        let built = build_router(&config, &stats).expect("router");
        let (shutdown, _) = watch::channel(false);
        Arc::new(Shared {
            config,
            router: built.router,
            cgi: built.cgi,
            stats,
            access: AccessLog::off(),
            shutdown,
        })
    }

    /// Start serving one connection over an in-memory pipe of `capacity` bytes each way.
    fn connect(capacity: usize) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(capacity);
        let (r, w) = tokio::io::split(server);
        let addr = "127.0.0.1:1".parse().expect("address");
        let info = ConnInfo {
            peer: addr,
            local: addr,
            tls: false,
        };
        (client, tokio::spawn(serve(r, w, info, test_shared(), 1)))
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
