//! The access log (`[log] access`, `format`): one line per request, written by a task of its
//! own so a slow disk never sits in a connection's path: a line that finds the queue full is
//! dropped and counted, never waited for, and the writer says how many it lost. Besides the
//! usual combined fields, each line says how the response went out: output mode, framing,
//! body bytes, time to first byte, total time, and whether the connection stayed open
//! (SPEC §4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::config::{AccessLog as Target, LogFormat};
use crate::http::date;
use crate::http::service::{Record, Requested};

/// Lines queued for the writer task; beyond this, lines are dropped (and counted).
const QUEUE: usize = 4096;

/// Where access log lines go.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    tx: Option<mpsc::Sender<String>>,
    format: LogFormat,
    /// Lines dropped since the writer last reported.
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Logging switched off.
    pub(crate) fn off() -> AccessLog {
        AccessLog {
            tx: None,
            format: LogFormat::Combined,
            dropped: Arc::default(),
        }
    }

    /// Open the target and start the writer task (must run inside the runtime).
    pub(crate) async fn start(
        target: &Target,
        format: LogFormat,
    ) -> std::io::Result<(AccessLog, Option<tokio::task::JoinHandle<()>>)> {
        let sink: Box<dyn AsyncWrite + Unpin + Send> = match target {
            Target::Off => return Ok((AccessLog::off(), None)),
            Target::Stdout => Box::new(tokio::io::stdout()),
            Target::Stderr => Box::new(tokio::io::stderr()),
            Target::File(path) => Box::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await?,
            ),
        };
        Ok(AccessLog::with_sink(sink, format, QUEUE))
    }

    /// A log writing to `sink` through a queue of `queue` lines.
    fn with_sink(
        sink: Box<dyn AsyncWrite + Unpin + Send>,
        format: LogFormat,
        queue: usize,
    ) -> (AccessLog, Option<tokio::task::JoinHandle<()>>) {
        let (tx, rx) = mpsc::channel(queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write_lines(rx, sink, dropped.clone()));
        let log = AccessLog {
            tx: Some(tx),
            format,
            dropped,
        };
        (log, Some(task))
    }

    /// Whether lines are written at all (when not, the caller can skip the clock reads).
    pub(crate) fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Record one exchange, without waiting. False if the line was dropped: the writer is
    /// behind by a whole queue (or gone).
    #[inline]
    pub(crate) fn log(&self, record: &Record<'_>) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        let line = match self.format {
            LogFormat::Combined => combined(record),
            LogFormat::Json => json(record),
        };
        if tx.try_send(line).is_ok() {
            return true;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }
}

async fn write_lines(
    mut rx: mpsc::Receiver<String>,
    mut sink: Box<dyn AsyncWrite + Unpin + Send>,
    dropped: Arc<AtomicU64>,
) {
    let mut buf = String::new();
    while let Some(line) = rx.recv().await {
        buf.push_str(&line);
        while let Ok(more) = rx.try_recv() {
            buf.push_str(&more);
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(
                lost,
                "access log lines dropped: the log target is slower than the traffic"
            );
        }
        if sink.write_all(buf.as_bytes()).await.is_err() || sink.flush().await.is_err() {
            // The log target is gone (closed pipe, full disk): keep serving, stop logging.
            tracing::warn!("access log write failed; access logging stops");
            return;
        }
        buf.clear();
    }
}

/// The status to log: nginx's 499 when the client left before anything was sent.
fn logged_status(e: &Record<'_>) -> u16 {
    if e.status == 0 && !e.completed {
        499
    } else {
        e.status
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The request line as logged: `METHOD target VERSION`, or what a refused one sent.
fn request_line(request: Requested<'_>) -> String {
    match request {
        Requested::Head(h) => format!(
            "{} {} {}",
            escape(h.method_str().as_bytes()),
            escape(h.target_str().as_bytes()),
            h.version.as_str()
        ),
        Requested::Refused(line) => escape(line),
    }
}

/// A request header's value, if the request was parsed and has it.
fn header<'r>(request: Requested<'r>, name: &str) -> Option<&'r [u8]> {
    match request {
        Requested::Head(h) => h.header(name).map(|v| &v[..]),
        Requested::Refused(_) => None,
    }
}

fn mode_str(e: &Record<'_>) -> &'static str {
    e.mode.map_or("-", |m| m.as_str())
}

/// Apache/nginx "combined", followed by key=value fields for the output behaviour.
fn combined(e: &Record<'_>) -> String {
    let field = |name: &str| header(e.request, name).map_or_else(|| "-".to_string(), escape);
    let mut line = String::with_capacity(256);
    let _ = write!(
        line,
        "{} - - [{}] \"{}\" {} {} \"{}\" \"{}\" mode={} framing={} ttfb_ms={} total_ms={:.3} keepalive={}",
        e.conn.peer.ip(),
        date::common_log(e.time),
        request_line(e.request),
        logged_status(e),
        e.bytes,
        field("referer"),
        field("user-agent"),
        mode_str(e),
        e.framing.as_str(),
        e.ttfb.map_or_else(|| "-".to_string(), |t| format!("{:.3}", ms(t))),
        ms(e.total),
        u8::from(e.keep_alive),
    );
    if !e.completed {
        line.push_str(" aborted=1");
    }
    if let Some(outcome) = e.outcome {
        line.push_str(" outcome=");
        line.push_str(outcome);
    }
    line.push('\n');
    line
}

fn json(e: &Record<'_>) -> String {
    let text = |v: Option<&[u8]>| v.map(|v| String::from_utf8_lossy(v).into_owned());
    let (method, target, version) = match e.request {
        Requested::Head(h) => (
            Some(h.method_str()),
            Some(h.target_str()),
            Some(h.version.as_str()),
        ),
        Requested::Refused(_) => (None, None, None),
    };
    let mut value = serde_json::json!({
        "time": date::rfc3339(e.time),
        "remote": e.conn.peer.to_string(),
        "method": method,
        "target": target,
        "version": version,
        "status": logged_status(e),
        "bytes": e.bytes,
        "referer": text(header(e.request, "referer")),
        "user_agent": text(header(e.request, "user-agent")),
        "mode": mode_str(e),
        "framing": e.framing.as_str(),
        "ttfb_ms": e.ttfb.map(ms),
        "total_ms": ms(e.total),
        "keep_alive": e.keep_alive,
        "completed": e.completed,
        "outcome": e.outcome,
    });
    if let (Requested::Refused(line), Some(object)) = (e.request, value.as_object_mut()) {
        object.insert(
            "request_line".to_string(),
            String::from_utf8_lossy(line).into_owned().into(),
        );
    }
    let mut line = value.to_string();
    line.push('\n');
    line
}

/// Apache's escaping for logged request data: `"` and `\` escaped, non-printables as \xHH.
fn escape(v: &[u8]) -> String {
    let mut s = String::with_capacity(v.len());
    for &b in v {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::service::ConnInfo;

    #[test]
    fn escapes_like_apache() {
        assert_eq!(escape(b"a\"b\\c\x01\xff"), "a\\\"b\\\\c\\x01\\xff");
    }

    const CONN: ConnInfo = ConnInfo {
        peer: std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::LOCALHOST,
            1,
        )),
        local: std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::LOCALHOST,
            2,
        )),
        tls: false,
    };

    /// The record of a refused request whose line was `line`, at the epoch.
    fn refused(line: &[u8]) -> Record<'_> {
        Record {
            conn: &CONN,
            request: Requested::Refused(line),
            time: std::time::UNIX_EPOCH,
            status: 400,
            bytes: 22,
            mode: Some(crate::http::framer::Mode::Sized(22)),
            framing: crate::http::framer::Framing::Length,
            ttfb: None,
            total: Duration::ZERO,
            keep_alive: false,
            completed: true,
            refused: true,
            outcome: None,
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_lines_and_never_waits() {
        // A sink that never takes a byte: the writer task holds the first line, the queue
        // holds two more, and every later line is dropped at once.
        let (stuck, _other_end) = tokio::io::duplex(1);
        let (log, task) = AccessLog::with_sink(Box::new(stuck), LogFormat::Combined, 2);
        let record = refused(b"XYZ");
        let mut dropped = 0;
        for _ in 0..100 {
            if !log.log(&record) {
                dropped += 1;
            }
            tokio::task::yield_now().await;
        }
        assert!(dropped >= 96, "{dropped} of 100 dropped");
        assert_eq!(log.dropped.load(Ordering::Relaxed), dropped);
        if let Some(task) = task {
            task.abort();
        }
    }

    #[test]
    fn a_refused_request_logs_what_it_sent() {
        let record = refused(b"XYZ \"q\"");
        let line = combined(&record);
        assert!(
            line.starts_with("127.0.0.1 - - [01/Jan/1970:00:00:00 +0000] \"XYZ \\\"q\\\"\" 400 22 \"-\" \"-\" mode=sized"),
            "{line}"
        );
        let json: serde_json::Value = serde_json::from_str(&json(&record)).unwrap();
        assert_eq!(json["request_line"], "XYZ \"q\"");
        assert_eq!(json["status"], 400);
        assert!(json["method"].is_null());
    }
}
