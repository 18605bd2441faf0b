//! A script's output: stdout is its response (header block, then body, handed to the
//! response writer as it comes, so the route's output mode applies), stderr goes to the log
//! line by line, capped per request, and is always read so a noisy script never stalls.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::timeout;
use tracing::warn;

use super::header::{self, HeadError, Kind, ScriptHead};
use crate::handler::HandlerError;
use crate::response::{Mode, Response};

/// Bytes read from a script's stdout at a time: from the first size, doubled after each read
/// that filled its room, up to the last. Most scripts write a few hundred bytes; a 64 KiB
/// buffer for each of them was a large allocation of jemalloc's (extent bookkeeping) per
/// request, about 5 % of the server's CPU per CGI request (perf, docs/PERFORMANCE.md).
const FIRST_READ: usize = 4 * 1024;
const MAX_READ: usize = 64 * 1024;
/// Most stderr bytes logged per request; the rest is read and counted.
pub(crate) const STDERR_LOG_LIMIT: usize = 64 * 1024;
/// Longest stderr line logged; longer lines are cut.
const STDERR_LINE_LIMIT: usize = 4 * 1024;

/// How the script's output ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The body is complete (stdout reached EOF).
    Done,
    /// A local redirect (RFC 3875 §6.2.2): the server answers for this path instead.
    Redirect(String),
}

/// Why the output could not be used.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The header block is malformed (502).
    BadHead(HeadError),
    /// No header block within `idle_timeout` (504).
    IdleBeforeHead,
    /// Silent for `idle_timeout` after the head (the response cannot finish).
    Idle,
    /// Reading the pipe failed.
    Io(std::io::Error),
    /// The client is gone.
    Client(HandlerError),
}

/// Read the script's stdout to its end, applying the header block to `res` and passing the
/// body through.
pub(crate) async fn pump_stdout<R: AsyncRead + Unpin>(
    mut stdout: R,
    res: &mut Response,
    nph: bool,
    max_head: usize,
    idle: Duration,
) -> Result<Ended, Failure> {
    let mut size = ReadSize::default();
    let mut buf = BytesMut::with_capacity(FIRST_READ);
    let (head, consumed) = loop {
        let n = read(&mut stdout, &mut buf, &mut size, idle)
            .await
            .map_err(|f| match f {
                Failure::Idle => Failure::IdleBeforeHead,
                other => other,
            })?;
        let parsed = if nph {
            header::parse_nph(&buf, max_head)
        } else {
            header::parse(&buf, max_head)
        };
        match parsed {
            Ok(Some(done)) => break done,
            Ok(None) if n == 0 => {
                let e = if nph {
                    header::at_eof_nph(&buf)
                } else {
                    header::at_eof(&buf)
                };
                return Err(Failure::BadHead(e));
            }
            Ok(None) => {}
            Err(e) => return Err(Failure::BadHead(e)),
        }
    };
    if let Kind::LocalRedirect(location) = &head.kind {
        return Ok(Ended::Redirect(location.clone()));
    }
    apply_head(&head, res, nph);
    let _ = buf.split_to(consumed);
    loop {
        if !buf.is_empty() {
            res.write(buf.split().freeze())
                .await
                .map_err(Failure::Client)?;
        }
        if read(&mut stdout, &mut buf, &mut size, idle).await? == 0 {
            return Ok(Ended::Done);
        }
    }
}

/// How much room the next read of stdout gets.
#[derive(Debug)]
struct ReadSize(usize);

impl Default for ReadSize {
    fn default() -> ReadSize {
        ReadSize(FIRST_READ)
    }
}

impl ReadSize {
    /// A read of `n` bytes into room for `room`: a full one doubles the next.
    fn record(&mut self, n: usize, room: usize) {
        if n >= room {
            self.0 = (self.0 * 2).min(MAX_READ);
        }
    }
}

async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    size: &mut ReadSize,
    idle: Duration,
) -> Result<usize, Failure> {
    buf.reserve(size.0);
    let room = buf.capacity() - buf.len();
    match timeout(idle, r.read_buf(buf)).await {
        Ok(Ok(n)) => {
            size.record(n, room);
            Ok(n)
        }
        Ok(Err(e)) => Err(Failure::Io(e)),
        Err(_) => Err(Failure::Idle),
    }
}

fn apply_head(head: &ScriptHead, res: &mut Response, nph: bool) {
    res.status(head.status);
    for (name, value) in &head.headers {
        // The parser validated names and values; framing fields are the server's.
        res.header(name, value.clone());
    }
    if nph {
        // SPEC §5.5: an NPH response passes through and the connection closes after it.
        res.set_mode(Mode::Close);
    }
}

/// Log a script's stderr, line by line, at most [`STDERR_LOG_LIMIT`] bytes; read it to EOF.
/// With `copy`, what it read is also kept there, up to [`super::capture::KEPT_BYTES`] (for
/// `capture_failures`).
pub(crate) async fn log_stderr<R: AsyncRead + Unpin>(
    mut stderr: R,
    script: &str,
    mut copy: Option<&mut Vec<u8>>,
) {
    // Small: most scripts write nothing here, and a long stderr is read in more turns.
    let mut chunk = vec![0u8; 1024];
    let mut line: Vec<u8> = Vec::new();
    let mut logged = 0usize;
    let mut dropped = 0u64;
    let emit = |line: &mut Vec<u8>, logged: &mut usize, dropped: &mut u64| {
        if *logged < STDERR_LOG_LIMIT {
            *logged += line.len();
            let text = String::from_utf8_lossy(line);
            warn!(script, line = %text.trim_end_matches('\r'), "script stderr");
        } else {
            *dropped += line.len() as u64;
        }
        line.clear();
    };
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(copy) = copy.as_deref_mut() {
            let room = super::capture::KEPT_BYTES.saturating_sub(copy.len());
            copy.extend_from_slice(&chunk[..n.min(room)]);
        }
        for &b in &chunk[..n] {
            if b == b'\n' {
                emit(&mut line, &mut logged, &mut dropped);
            } else if line.len() < STDERR_LINE_LIMIT {
                line.push(b);
            } else {
                dropped += 1;
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line, &mut logged, &mut dropped);
    }
    if dropped > 0 {
        warn!(
            script,
            dropped, "script stderr over the log limit; the rest was dropped"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_size_doubles_after_full_reads_up_to_its_cap() {
        let mut size = ReadSize::default();
        assert_eq!(size.0, FIRST_READ);
        size.record(100, FIRST_READ);
        assert_eq!(size.0, FIRST_READ, "a short read keeps it");
        let mut seen = vec![size.0];
        for _ in 0..10 {
            size.record(size.0, size.0);
            seen.push(size.0);
        }
        assert_eq!(&seen[..6], &[4096, 8192, 16384, 32768, 65536, 65536]);
        assert!(seen.iter().all(|&s| s <= MAX_READ));
        size.record(10, MAX_READ);
        assert_eq!(size.0, MAX_READ, "it does not shrink back");
    }

    #[tokio::test]
    async fn reads_grow_with_a_script_that_fills_them() {
        // A reader that always has more than the room offered.
        let data = vec![b'x'; 200 * 1024];
        let mut r: &[u8] = &data;
        let mut size = ReadSize::default();
        let mut buf = BytesMut::new();
        let idle = Duration::from_secs(5);
        let mut reads = Vec::new();
        loop {
            let n = read(&mut r, &mut buf, &mut size, idle).await.unwrap();
            if n == 0 {
                break;
            }
            reads.push(n);
            buf.clear();
        }
        assert_eq!(reads.iter().sum::<usize>(), data.len());
        assert!(reads[0] <= 2 * FIRST_READ, "{reads:?}");
        assert!(reads.iter().any(|&n| n >= MAX_READ / 2), "{reads:?}");
    }
}
