//! One request/response exchange as a state machine (sans-IO, no `.await`), after hyper's
//! `proto/h1/conn.rs`: the read side is a [`Reading`], the write side a [`Writing`], and
//! keep-alive a [`KeepAlive`] that can only be lowered. The connection loop
//! ([`super::conn`]) turns each event it sees into one method call here (`on_*`) and asks
//! [`Exchange::outcome`] after each whether the exchange is over.
//!
//! The exchange is over when the handler is done and both sides have settled: the
//! connection is kept only if the request was read to its end ([`Reading::KeepAlive`]),
//! the response written whole ([`Writing::KeepAlive`]) and keep-alive is still on.
//! An event can also end it at once ([`Outcome::Gone`] when the client left before its
//! response was complete, [`Outcome::Linger`] after refusing a broken body).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::mpsc;
use tracing::debug;

use super::channel::BodyMsg;
use super::cmd_queue::Cmd;
use super::decode::{Decoder, Step};
use super::framer::{Framer, OutputLimits, Sink};
use super::head::Version;
use super::outbuf::{OutQueue, Piece};
use super::status;

/// Output bytes queued for a slow client before the handler waits (bytes).
pub(crate) const OUT_HIGH_WATER: usize = 256 * 1024;
/// An unread request body up to this size is read and discarded to keep the connection (bytes).
pub(crate) const DRAIN_LIMIT: u64 = 256 * 1024;

/// The read side: the request body, between the head and the next request.
#[derive(Debug)]
pub(crate) enum Reading {
    /// `Expect: 100-continue`, and the handler has not asked for the body yet. Bytes the
    /// client sends anyway are decoded and passed on.
    Continue(Decoder, mpsc::Sender<BodyMsg>),
    /// The body is decoded and passed to the handler's reader.
    Body(Decoder, mpsc::Sender<BodyMsg>),
    /// The response has ended and nobody reads the body: what is left is read and thrown
    /// away, up to [`DRAIN_LIMIT`] bytes before keep-alive is given up.
    Draining(Decoder, u64),
    /// The request was read to its end: this side allows another request.
    KeepAlive,
    /// The end of the request is unknown, or the client closed its side: no other request.
    Closed,
}

/// The write side: the response, from the handler's first command to the last byte written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writing {
    /// The handler's response is being framed (held, or sent as it comes).
    Response,
    /// Framed to its end (complete or failed); queued bytes are still going out.
    Flushing,
    /// Written whole: this side allows another request.
    KeepAlive,
    /// Written as far as it goes but not reusable (close-delimited, failed, cut short).
    Closed,
}

/// How an exchange leaves its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Read the next request.
    KeepAlive,
    /// Write what is queued, then close.
    Close,
    /// Write the error response, then close lingering (RFC 9112 §9.6).
    Linger,
    /// The client is gone; drop everything.
    Gone,
}

/// Whether the connection may serve another request. It starts as what the client, the
/// request count and shutdown allow, and can only go down (`ka &= …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeepAlive(bool);

impl KeepAlive {
    /// Whether it is still on.
    pub(crate) fn is_on(self) -> bool {
        self.0
    }
}

impl std::ops::BitAndAssign<bool> for KeepAlive {
    fn bitand_assign(&mut self, allowed: bool) {
        self.0 &= allowed;
    }
}

/// What an exchange starts from.
#[derive(Debug)]
pub(crate) struct Start {
    /// The request's version.
    pub(crate) version: Version,
    /// Whether the request is a HEAD.
    pub(crate) head_request: bool,
    /// Output settings of what answers.
    pub(crate) limits: OutputLimits,
    /// The request body's decoder.
    pub(crate) decoder: Decoder,
    /// Where body pieces go; `None` when there is no body.
    pub(crate) body_tx: Option<mpsc::Sender<BodyMsg>>,
    /// The client waits for `100 Continue` before it sends the body.
    pub(crate) expect_continue: bool,
    /// What the client, the request count and shutdown allow.
    pub(crate) keep_alive: bool,
    /// `[server] half_close`: EOF from a client with a pending response is not a disconnect.
    pub(crate) half_close: bool,
    /// When the head was complete.
    pub(crate) now: Instant,
}

/// One exchange's state.
#[derive(Debug)]
pub(crate) struct Exchange {
    reading: Reading,
    writing: Writing,
    ka: KeepAlive,
    framer: Framer,
    handler_done: bool,
    /// The handler's response has ended (end, abort, or its writer is gone).
    answered: bool,
    /// The decoder needs more bytes than the read buffer holds.
    starved: bool,
    /// An end an event decided (the client left, the body failed): it stands.
    stop: Option<Outcome>,
    /// The server answered with a refusal of its own (a broken or stalled body).
    refused: bool,
    half_close: bool,
    body_progress: Instant,
    write_progress: Instant,
    first_write: Option<Instant>,
}

impl Exchange {
    /// An exchange for a request whose head just arrived.
    pub(crate) fn new(start: Start) -> Exchange {
        let reading = match start.body_tx {
            Some(tx) if !start.decoder.is_end() => {
                if start.expect_continue {
                    Reading::Continue(start.decoder, tx)
                } else {
                    Reading::Body(start.decoder, tx)
                }
            }
            _ => Reading::KeepAlive,
        };
        Exchange {
            reading,
            writing: Writing::Response,
            ka: KeepAlive(start.keep_alive),
            framer: Framer::new(start.version, start.head_request, start.limits, start.now),
            handler_done: false,
            answered: false,
            starved: false,
            stop: None,
            refused: false,
            half_close: start.half_close,
            body_progress: start.now,
            write_progress: start.now,
            first_write: None,
        }
    }

    // ---- events -------------------------------------------------------------------------

    /// A command from the handler (`None`: its response writer is gone without an end).
    pub(crate) fn on_cmd(&mut self, cmd: Option<Cmd>, out: &mut OutQueue, now: Instant) {
        let answers = !matches!(cmd, Some(Cmd::Data(_) | Cmd::File(_) | Cmd::Flush));
        if answers && matches!(self.reading, Reading::Continue(..)) {
            // RFC 9110 §10.1.1: answered without a 100 while the body is incomplete, the
            // client may or may not send the rest now; the connection cannot be reused.
            // Decided before the head is framed, so that it says `Connection: close`.
            self.lower("answered before 100-continue", false);
        }
        if out.is_empty() {
            self.write_progress = now;
        }
        let mut sink = Sink {
            out,
            keep_alive: self.ka.is_on(),
        };
        match cmd {
            Some(Cmd::Head(head)) => {
                if head.close {
                    self.ka &= false;
                    sink.keep_alive = false;
                }
                self.framer.head(head, &mut sink, now);
            }
            Some(Cmd::Data(data)) => self.framer.data(data, &mut sink, now),
            Some(Cmd::File(range)) => self.framer.data(Piece::File(range), &mut sink, now),
            Some(Cmd::Flush) => self.framer.flush(&mut sink),
            Some(Cmd::End) => {
                self.framer.end(&mut sink);
                self.on_answered();
            }
            Some(Cmd::Abort(status)) => {
                self.framer.abort(status, &mut sink);
                self.on_answered();
            }
            None => {
                self.framer.abort(status::INTERNAL_SERVER_ERROR, &mut sink);
                self.on_answered();
            }
        }
        self.settle_writing(out);
    }

    /// `n` bytes of the output went to the client.
    pub(crate) fn on_written(&mut self, out: &OutQueue, now: Instant) {
        self.write_progress = now;
        self.first_write.get_or_insert(now);
        self.settle_writing(out);
    }

    /// Writing to the client failed, or it took nothing for `write_timeout`.
    pub(crate) fn on_write_failed(&mut self, why: &'static str) {
        debug!(why, "closing: the client takes no more");
        self.stop = Some(Outcome::Gone);
    }

    /// Bytes arrived from the client.
    pub(crate) fn on_read(&mut self, now: Instant) {
        self.starved = false;
        self.body_progress = now;
    }

    /// The client closed its sending side (EOF). SPEC §5.6: while the response is pending
    /// that is a disconnect; once every byte of it was written it is not, and the handler
    /// runs to its own end (a script's background work after its answer).
    pub(crate) fn on_eof(&mut self, out: &OutQueue) {
        let body_read = matches!(self.reading, Reading::KeepAlive);
        if self.framer.is_body_complete() && out.is_empty() {
            debug!("client closed its side after the whole response");
            self.reading = Reading::Closed;
            self.ka &= false;
        } else if body_read && self.half_close {
            self.reading = Reading::Closed;
            self.ka &= false;
        } else {
            debug!("client closed its side");
            self.stop = Some(Outcome::Gone);
        }
    }

    /// Reading from the client failed (a reset).
    pub(crate) fn on_read_failed(&mut self) {
        self.stop = Some(Outcome::Gone);
    }

    /// The handler asked for the body for the first time.
    pub(crate) fn on_body_wanted(&mut self, out: &mut OutQueue, now: Instant) {
        if let Reading::Continue(..) = self.reading {
            if let Reading::Continue(decoder, tx) =
                std::mem::replace(&mut self.reading, Reading::Closed)
            {
                self.reading = Reading::Body(decoder, tx);
            }
            self.body_progress = now;
            self.framer.interim_continue(out);
        }
    }

    /// Decode what the buffer holds for the handler's reader. Returns the message to pass
    /// on, if any; a failure also answers (or ends) the exchange.
    pub(crate) fn decode_body(
        &mut self,
        buf: &mut BytesMut,
        out: &mut OutQueue,
        now: Instant,
    ) -> Option<BodyMsg> {
        let decoder = match &mut self.reading {
            Reading::Continue(decoder, _) | Reading::Body(decoder, _) => decoder,
            _ => return None,
        };
        match decoder.decode(buf) {
            Ok(Step::Data(data)) => {
                self.body_progress = now;
                if decoder.is_end() {
                    // A length body ends with its last byte: the reader sees the end now.
                    self.reading = Reading::KeepAlive;
                }
                Some(Ok(data))
            }
            Ok(Step::NeedMore) => {
                self.starved = true;
                None
            }
            Ok(Step::End) => {
                self.reading = Reading::KeepAlive;
                None
            }
            Err(e) => {
                self.on_body_failed(e.status(), e.as_str(), out);
                Some(Err(e))
            }
        }
    }

    /// Read and discard what the buffer holds of a body nobody reads.
    pub(crate) fn drain_body(&mut self, buf: &mut BytesMut, now: Instant) {
        let Reading::Draining(decoder, drained) = &mut self.reading else {
            return;
        };
        match decoder.decode(buf) {
            Ok(Step::Data(data)) => {
                self.body_progress = now;
                *drained += data.len() as u64;
                if *drained > DRAIN_LIMIT {
                    self.lower("unread body over the drain limit", true);
                }
            }
            Ok(Step::NeedMore) => self.starved = true,
            Ok(Step::End) => self.reading = Reading::KeepAlive,
            // The response is already answered; the connection closes after it.
            Err(_) => self.reading = Reading::Closed,
        }
    }

    /// The request body is broken or stalled: answer with `status` if nothing went out yet,
    /// then close — the end of the request is in doubt (SPEC §3).
    pub(crate) fn on_body_failed(&mut self, status: u16, detail: &str, out: &mut OutQueue) {
        debug!(status, detail, "closing: request body failed");
        self.reading = Reading::Closed;
        self.ka &= false;
        if self.framer.is_head_emitted() {
            // A complete response is still delivered; an unfinished one is cut.
            self.stop = Some(if self.framer.is_complete() {
                Outcome::Close
            } else {
                Outcome::Gone
            });
            return;
        }
        out.clear();
        let mut sink = Sink {
            out,
            keep_alive: false,
        };
        self.framer.refuse(status, detail, &mut sink);
        self.answered = true;
        self.refused = true;
        self.settle_writing(out);
        self.stop = Some(if status == status::REQUEST_TIMEOUT {
            Outcome::Close
        } else {
            Outcome::Linger
        });
    }

    /// The request body stalled for `body_timeout`.
    pub(crate) fn on_body_stalled(&mut self, out: &mut OutQueue) {
        self.on_body_failed(
            status::REQUEST_TIMEOUT,
            "request body not received in time",
            out,
        );
    }

    /// The handler's future completed.
    pub(crate) fn on_handler_done(&mut self) {
        self.handler_done = true;
    }

    /// Auto mode's flush deadline passed.
    pub(crate) fn on_flush_timer(&mut self, out: &mut OutQueue, now: Instant) {
        let mut sink = Sink {
            out,
            keep_alive: self.ka.is_on(),
        };
        self.framer.timer(&mut sink, now);
        self.settle_writing(out);
    }

    /// The server is shutting down: no other request on this connection.
    pub(crate) fn on_shutdown(&mut self) {
        self.lower("shutting down", true);
    }

    // ---- what the loop waits for -------------------------------------------------------

    /// Whether the handler's next command can be taken (the client keeps up).
    pub(crate) fn wants_cmds(&self, out: &OutQueue) -> bool {
        !self.answered && out.len() < OUT_HIGH_WATER
    }

    /// The sender to reserve room in before decoding for the handler; `None` when there
    /// is nothing to decode for it now.
    pub(crate) fn body_sender(&self) -> Option<mpsc::Sender<BodyMsg>> {
        match &self.reading {
            Reading::Continue(_, tx) | Reading::Body(_, tx) if !self.starved => Some(tx.clone()),
            _ => None,
        }
    }

    /// Whether buffered bytes of an unread body can be discarded now.
    pub(crate) fn wants_drain(&self) -> bool {
        matches!(self.reading, Reading::Draining(..)) && !self.starved
    }

    /// Whether `100 Continue` waits for the handler's first read.
    pub(crate) fn awaits_continue(&self) -> bool {
        matches!(self.reading, Reading::Continue(..))
    }

    /// Whether the handler's future is still to be polled.
    pub(crate) fn is_handler_running(&self) -> bool {
        !self.handler_done
    }

    /// Whether the request body has been read to its end.
    #[cfg(test)]
    pub(crate) fn is_body_read(&self) -> bool {
        matches!(self.reading, Reading::KeepAlive)
    }

    /// Whether nothing is left to read for this request (the rest is the next one's).
    pub(crate) fn has_no_body_left(&self) -> bool {
        matches!(self.reading, Reading::KeepAlive | Reading::Closed)
    }

    /// When auto mode flushes, if it holds output.
    pub(crate) fn flush_deadline(&self) -> Option<Instant> {
        self.framer.deadline()
    }

    /// When the client has stalled the output too long, if output is queued.
    pub(crate) fn write_deadline(&self, out: &OutQueue, timeout: Duration) -> Option<Instant> {
        (!out.is_empty()).then(|| self.write_progress + timeout)
    }

    /// When a body the client owes us has stalled too long, if we are waiting for it (not
    /// before `100 Continue` went out: the client waits for us then).
    pub(crate) fn body_deadline(&self, timeout: Duration) -> Option<Instant> {
        let waiting = matches!(self.reading, Reading::Body(..) | Reading::Draining(..));
        (waiting && self.starved).then(|| self.body_progress + timeout)
    }

    // ---- the end ------------------------------------------------------------------------

    /// How the exchange ends, once it does.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        if let Some(stop) = self.stop {
            return Some(stop);
        }
        if !self.handler_done {
            return None;
        }
        match (&self.reading, self.writing) {
            (_, Writing::Response | Writing::Flushing) => None,
            (Reading::KeepAlive, Writing::KeepAlive) if self.ka.is_on() => Some(Outcome::KeepAlive),
            (Reading::KeepAlive | Reading::Closed, _) => Some(Outcome::Close),
            // Still draining an unread body, worth it only for a connection to keep.
            (_, writing) if !self.ka.is_on() || writing == Writing::Closed => Some(Outcome::Close),
            _ => None,
        }
    }

    /// The framer, for the log: status, bytes, mode, framing.
    pub(crate) fn framer(&self) -> &Framer {
        &self.framer
    }

    /// Whether the server refused the request itself (its body) instead of the handler
    /// answering it.
    pub(crate) fn is_refused(&self) -> bool {
        self.refused
    }

    /// When the first byte went out.
    pub(crate) fn first_write(&self) -> Option<Instant> {
        self.first_write
    }

    /// The read side, for tests and diagnostics.
    #[cfg(test)]
    pub(crate) fn reading(&self) -> &Reading {
        &self.reading
    }

    /// The write side, for tests and diagnostics.
    #[cfg(test)]
    pub(crate) fn writing(&self) -> Writing {
        self.writing
    }

    // ---- internals ----------------------------------------------------------------------

    fn lower(&mut self, why: &'static str, log: bool) {
        if log && self.ka.is_on() {
            debug!(why, "keep-alive off");
        }
        self.ka &= false;
    }

    /// The response has ended: nobody reads the body any more.
    fn on_answered(&mut self) {
        self.answered = true;
        let reading = std::mem::replace(&mut self.reading, Reading::Closed);
        self.reading = match reading {
            Reading::Continue(decoder, _) | Reading::Body(decoder, _) if decoder.is_end() => {
                Reading::KeepAlive
            }
            Reading::Continue(decoder, _) | Reading::Body(decoder, _) => {
                Reading::Draining(decoder, 0)
            }
            other => other,
        };
    }

    /// Moves the write side on as far as the framer and the queue allow.
    fn settle_writing(&mut self, out: &OutQueue) {
        if self.writing == Writing::Response && self.framer.is_finished() {
            self.writing = Writing::Flushing;
        }
        if self.writing == Writing::Flushing && out.is_empty() {
            self.ka &= self.framer.is_reusable();
            self.writing = if self.framer.is_reusable() {
                Writing::KeepAlive
            } else {
                Writing::Closed
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::framer::{Head, Mode};
    use bytes::Bytes;

    const LIMITS: OutputLimits = OutputLimits {
        buffer_limit: 1024,
        flush_after: Duration::from_millis(50),
    };

    fn start(decoder: Decoder, expect_continue: bool) -> (Exchange, mpsc::Receiver<BodyMsg>) {
        let (tx, rx) = mpsc::channel(4);
        let ex = Exchange::new(Start {
            version: Version::Http11,
            head_request: false,
            limits: LIMITS,
            body_tx: (!decoder.is_end()).then_some(tx),
            decoder,
            expect_continue,
            keep_alive: true,
            half_close: false,
            now: Instant::now(),
        });
        (ex, rx)
    }

    fn head(mode: Mode) -> Cmd {
        Cmd::Head(Head {
            status: 200,
            headers: Vec::new(),
            mode,
            close: false,
        })
    }

    /// Feed a whole small response and write it out.
    fn answer(ex: &mut Exchange, out: &mut OutQueue, mode: Mode) {
        let now = Instant::now();
        ex.on_cmd(Some(head(mode)), out, now);
        ex.on_cmd(Some(Cmd::Data(Bytes::from_static(b"hi"))), out, now);
        ex.on_cmd(Some(Cmd::End), out, now);
    }

    /// A head declaring `declared` bytes and `sent` of them, all written to the client.
    fn sized_and_written(declared: u64, sent: &'static [u8]) -> (Exchange, OutQueue) {
        let (mut ex, _rx) = start(Decoder::empty(), false);
        let mut out = OutQueue::new();
        ex.on_cmd(Some(head(Mode::Sized(declared))), &mut out, Instant::now());
        ex.on_cmd(
            Some(Cmd::Data(Bytes::from_static(sent))),
            &mut out,
            Instant::now(),
        );
        write_all(&mut ex, &mut out);
        (ex, out)
    }

    fn write_all(ex: &mut Exchange, out: &mut OutQueue) {
        let len = out.len();
        out.advance(len);
        ex.on_written(out, Instant::now());
    }

    #[test]
    fn a_whole_exchange_keeps_the_connection() {
        let (mut ex, _rx) = start(Decoder::empty(), false);
        let mut out = OutQueue::new();
        assert!(matches!(ex.reading(), Reading::KeepAlive));
        answer(&mut ex, &mut out, Mode::Buffer);
        assert_eq!(ex.writing(), Writing::Flushing);
        assert_eq!(ex.outcome(), None, "the handler is still running");
        ex.on_handler_done();
        assert_eq!(ex.outcome(), None, "the response is still queued");
        write_all(&mut ex, &mut out);
        assert_eq!(ex.writing(), Writing::KeepAlive);
        assert_eq!(ex.outcome(), Some(Outcome::KeepAlive));
    }

    #[test]
    fn keep_alive_only_goes_down() {
        let mut ka = KeepAlive(true);
        ka &= true;
        assert!(ka.is_on());
        ka &= false;
        ka &= true;
        assert!(!ka.is_on());

        let (mut ex, _rx) = start(Decoder::empty(), false);
        let mut out = OutQueue::new();
        ex.on_shutdown();
        answer(&mut ex, &mut out, Mode::Buffer);
        ex.on_handler_done();
        write_all(&mut ex, &mut out);
        assert_eq!(ex.outcome(), Some(Outcome::Close));
    }

    #[test]
    fn a_close_delimited_response_closes() {
        let (mut ex, _rx) = start(Decoder::empty(), false);
        let mut out = OutQueue::new();
        answer(&mut ex, &mut out, Mode::Close);
        ex.on_handler_done();
        write_all(&mut ex, &mut out);
        assert_eq!(ex.writing(), Writing::Closed);
        assert_eq!(ex.outcome(), Some(Outcome::Close));
    }

    #[test]
    fn eof_before_the_whole_response_is_a_disconnect() {
        let (mut ex, out) = sized_and_written(4, b"ab");
        ex.on_eof(&out);
        assert_eq!(ex.outcome(), Some(Outcome::Gone));
    }

    #[test]
    fn eof_after_the_whole_response_lets_the_handler_finish() {
        let (mut ex, mut out) = sized_and_written(2, b"ab");
        ex.on_eof(&out);
        assert_eq!(ex.outcome(), None, "the handler runs on");
        ex.on_cmd(
            Some(Cmd::Data(Bytes::from_static(b"late"))),
            &mut out,
            Instant::now(),
        );
        assert!(out.is_empty(), "surplus is dropped");
        ex.on_cmd(Some(Cmd::End), &mut out, Instant::now());
        ex.on_handler_done();
        assert_eq!(ex.outcome(), Some(Outcome::Close));
        assert!(ex.framer().is_complete());
    }

    #[test]
    fn eof_with_output_still_queued_is_a_disconnect() {
        let (mut ex, _rx) = start(Decoder::empty(), false);
        let mut out = OutQueue::new();
        ex.on_cmd(Some(head(Mode::Sized(2))), &mut out, Instant::now());
        ex.on_cmd(
            Some(Cmd::Data(Bytes::from_static(b"ab"))),
            &mut out,
            Instant::now(),
        );
        ex.on_eof(&out);
        assert_eq!(ex.outcome(), Some(Outcome::Gone));
    }

    #[test]
    fn answering_before_100_continue_closes_and_drains() {
        let (mut ex, _rx) = start(Decoder::length(10), true);
        let mut out = OutQueue::new();
        assert!(ex.awaits_continue());
        answer(&mut ex, &mut out, Mode::Buffer);
        let text = out_text(&mut out);
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(matches!(ex.reading(), Reading::Draining(..)));
        ex.on_handler_done();
        ex.on_written(&out, Instant::now());
        assert_eq!(ex.outcome(), Some(Outcome::Close));
    }

    #[test]
    fn the_first_read_sends_100_continue_once() {
        let (mut ex, _rx) = start(Decoder::length(3), true);
        let mut out = OutQueue::new();
        ex.on_body_wanted(&mut out, Instant::now());
        ex.on_body_wanted(&mut out, Instant::now());
        assert_eq!(out_text(&mut out), "HTTP/1.1 100 Continue\r\n\r\n");
        assert!(matches!(ex.reading(), Reading::Body(..)));
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(ex.body_sender().is_some());
        let msg = ex.decode_body(&mut buf, &mut out, Instant::now());
        assert_eq!(msg.unwrap().unwrap(), Bytes::from_static(b"abc"));
        assert!(ex.is_body_read());
    }

    #[test]
    fn a_broken_body_before_the_head_is_refused_and_lingers() {
        let (mut ex, _rx) = start(Decoder::chunked(), false);
        let mut out = OutQueue::new();
        let mut buf = BytesMut::from(&b"zz\r\n"[..]);
        let msg = ex.decode_body(&mut buf, &mut out, Instant::now());
        assert!(matches!(msg, Some(Err(_))));
        assert_eq!(ex.outcome(), Some(Outcome::Linger));
        assert_eq!(ex.framer().status(), 400);
        let text = out_text(&mut out);
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
    }

    #[test]
    fn a_stalled_body_is_408_and_closes() {
        let (mut ex, _rx) = start(Decoder::length(5), false);
        let mut out = OutQueue::new();
        let mut buf = BytesMut::new();
        assert!(ex.decode_body(&mut buf, &mut out, Instant::now()).is_none());
        assert!(ex.body_deadline(Duration::from_secs(1)).is_some());
        ex.on_body_stalled(&mut out);
        assert_eq!(ex.outcome(), Some(Outcome::Close));
        assert_eq!(ex.framer().status(), 408);
    }

    #[test]
    fn a_broken_body_after_a_streamed_head_cuts_the_response() {
        let (mut ex, _rx) = start(Decoder::chunked(), false);
        let mut out = OutQueue::new();
        ex.on_cmd(Some(head(Mode::Stream)), &mut out, Instant::now());
        let mut buf = BytesMut::from(&b"zz\r\n"[..]);
        let _ = ex.decode_body(&mut buf, &mut out, Instant::now());
        assert_eq!(ex.outcome(), Some(Outcome::Gone));
    }

    #[test]
    fn draining_beyond_the_limit_gives_up_keep_alive() {
        let (mut ex, _rx) = start(Decoder::length(DRAIN_LIMIT + 10), false);
        let mut out = OutQueue::new();
        answer(&mut ex, &mut out, Mode::Buffer);
        ex.on_handler_done();
        write_all(&mut ex, &mut out);
        assert_eq!(ex.outcome(), None, "the unread body is drained first");
        let mut buf = BytesMut::from(&vec![b'x'; DRAIN_LIMIT as usize + 1][..]);
        ex.drain_body(&mut buf, Instant::now());
        assert_eq!(ex.outcome(), Some(Outcome::Close));
    }

    #[test]
    fn a_drained_body_keeps_the_connection() {
        let (mut ex, _rx) = start(Decoder::length(3), false);
        let mut out = OutQueue::new();
        answer(&mut ex, &mut out, Mode::Buffer);
        ex.on_handler_done();
        write_all(&mut ex, &mut out);
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(ex.wants_drain());
        ex.drain_body(&mut buf, Instant::now());
        ex.drain_body(&mut buf, Instant::now());
        assert_eq!(ex.outcome(), Some(Outcome::KeepAlive));
    }

    #[test]
    fn a_producer_gone_without_an_end_is_500() {
        let (mut ex, _rx) = start(Decoder::empty(), false);
        let mut out = OutQueue::new();
        ex.on_cmd(None, &mut out, Instant::now());
        assert_eq!(ex.framer().status(), 500);
        assert!(!ex.wants_cmds(&out));
    }

    #[test]
    fn a_write_failure_is_gone() {
        let (mut ex, _rx) = start(Decoder::empty(), false);
        ex.on_write_failed("test");
        assert_eq!(ex.outcome(), Some(Outcome::Gone));
    }

    fn out_text(out: &mut OutQueue) -> String {
        let mut slices = [std::io::IoSlice::new(&[]); crate::http::outbuf::MAX_SLICES];
        let n = out.slices(&mut slices);
        let bytes: Vec<u8> = slices[..n].iter().flat_map(|s| s.to_vec()).collect();
        out.advance(bytes.len());
        String::from_utf8(bytes).unwrap()
    }
}
