//! The access log (`[log] access`, `format`): one line per request, written by a task of its
//! own so a slow disk never sits in a connection's path. Besides the usual combined fields,
//! each line says how the response went out: output mode, framing, body bytes, time to
//! first byte, total time, and whether the connection stayed open (SPEC §4).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::config::{AccessLog as Target, LogFormat};
use crate::http::framer::Framing;
use crate::http::head::RequestHead;
use crate::response::Mode;

/// Lines queued for the writer task before requests wait for it.
const QUEUE: usize = 4096;

/// What is logged about one request.
pub struct Entry<'a> {
    /// Client address.
    pub peer: SocketAddr,
    /// When the request head was complete.
    pub time: SystemTime,
    /// The request.
    pub head: &'a RequestHead,
    /// Status sent; 0 when nothing was sent.
    pub status: u16,
    /// Body bytes sent (without framing).
    pub bytes: u64,
    /// Output mode in force, if the handler produced a head.
    pub mode: Option<Mode>,
    /// Framing used.
    pub framing: Framing,
    /// Time from the complete head to the first byte written.
    pub ttfb: Option<Duration>,
    /// Time from the complete head to the end of the response.
    pub total: Duration,
    /// Whether the connection stays open.
    pub keep_alive: bool,
    /// False when the client went away before the response was complete.
    pub completed: bool,
}

/// Where access log lines go.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: Option<mpsc::Sender<String>>,
    format: LogFormat,
}

impl AccessLog {
    /// Logging switched off.
    pub fn off() -> AccessLog {
        AccessLog {
            tx: None,
            format: LogFormat::Combined,
        }
    }

    /// Open the target and start the writer task (must run inside the runtime).
    pub async fn start(
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
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_lines(rx, sink));
        Ok((
            AccessLog {
                tx: Some(tx),
                format,
            },
            Some(task),
        ))
    }

    /// Whether lines are written at all (when not, the caller can skip the clock reads).
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Record one request.
    pub async fn log(&self, entry: Entry<'_>) {
        let Some(tx) = &self.tx else {
            return;
        };
        let line = match self.format {
            LogFormat::Combined => combined(&entry),
            LogFormat::Json => json(&entry),
        };
        let _ = tx.send(line).await;
    }
}

async fn write_lines(mut rx: mpsc::Receiver<String>, mut sink: Box<dyn AsyncWrite + Unpin + Send>) {
    let mut buf = String::new();
    while let Some(line) = rx.recv().await {
        buf.push_str(&line);
        while let Ok(more) = rx.try_recv() {
            buf.push_str(&more);
        }
        if sink.write_all(buf.as_bytes()).await.is_err() || sink.flush().await.is_err() {
            // The log target is gone (closed pipe, full disk): keep serving, stop logging.
            tracing::warn!("access log write failed; access logging stops");
            return;
        }
        buf.clear();
    }
}

fn mode_str(mode: Option<Mode>) -> &'static str {
    match mode {
        Some(Mode::Buffer) => "buffer",
        Some(Mode::Stream) => "stream",
        Some(Mode::Auto) => "auto",
        Some(Mode::Sized(_)) => "sized",
        Some(Mode::Close) => "close",
        None => "-",
    }
}

/// The status to log: nginx's 499 when the client left before anything was sent.
fn logged_status(e: &Entry<'_>) -> u16 {
    if e.status == 0 && !e.completed {
        499
    } else {
        e.status
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Apache/nginx "combined", followed by key=value fields for the output behaviour.
fn combined(e: &Entry<'_>) -> String {
    let h = e.head;
    let header = |name: &str| {
        h.header(name)
            .map(|v| escape(v))
            .unwrap_or_else(|| "-".to_string())
    };
    let mut line = String::with_capacity(256);
    let _ = write!(
        line,
        "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" mode={} framing={} ttfb_ms={} total_ms={:.3} keepalive={}",
        e.peer.ip(),
        clf_time(e.time),
        escape(h.method_str().as_bytes()),
        escape(h.target_str().as_bytes()),
        h.version.as_str(),
        logged_status(e),
        e.bytes,
        header("referer"),
        header("user-agent"),
        mode_str(e.mode),
        e.framing.as_str(),
        e.ttfb.map_or_else(|| "-".to_string(), |t| format!("{:.3}", ms(t))),
        ms(e.total),
        u8::from(e.keep_alive),
    );
    if !e.completed {
        line.push_str(" aborted=1");
    }
    line.push('\n');
    line
}

fn json(e: &Entry<'_>) -> String {
    let h = e.head;
    let text = |v: Option<&bytes::Bytes>| v.map(|v| String::from_utf8_lossy(v).into_owned());
    let value = serde_json::json!({
        "time": rfc3339(e.time),
        "remote": e.peer.to_string(),
        "method": h.method_str(),
        "target": h.target_str(),
        "version": h.version.as_str(),
        "status": logged_status(e),
        "bytes": e.bytes,
        "referer": text(h.header("referer")),
        "user_agent": text(h.header("user-agent")),
        "mode": mode_str(e.mode),
        "framing": e.framing.as_str(),
        "ttfb_ms": e.ttfb.map(ms),
        "total_ms": ms(e.total),
        "keep_alive": e.keep_alive,
        "completed": e.completed,
    });
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

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn clf_time(t: SystemTime) -> String {
    let c = crate::http::encode::Civil::from_system_time(t);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        c.day,
        MONTHS[usize::from(c.month.clamp(1, 12)) - 1],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

fn rfc3339(t: SystemTime) -> String {
    let c = crate::http::encode::Civil::from_system_time(t);
    let millis = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, millis
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_apache() {
        assert_eq!(escape(b"a\"b\\c\x01\xff"), "a\\\"b\\\\c\\x01\\xff");
    }

    #[test]
    fn clf_and_rfc3339_times() {
        let t = UNIX_EPOCH + Duration::from_millis(784_111_777_250);
        assert_eq!(clf_time(t), "06/Nov/1994:08:49:37 +0000");
        assert_eq!(rfc3339(t), "1994-11-06T08:49:37.250Z");
    }
}
