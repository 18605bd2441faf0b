//! `cgigate probe` (SPEC §1): a small HTTP/1.1 client that measures how responses arrive —
//! framing, time to the head, to the first body byte and to the end, and how many separate
//! socket reads delivered the body — so buffered and streamed output can be compared side by
//! side. Plain `http://` only.
//!
//! [`target`] parses URLs, `response` and `chunked` read responses without I/O, `measure`
//! turns reads into a [`Measurement`], `report` prints it; this file owns the sockets, the
//! connections kept between requests, and the clock.

mod chunked;
mod error;
mod measure;
mod report;
mod response;
mod svg;
pub mod target;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) use error::ProbeError;
pub(crate) use measure::Measurement;
pub use target::Target;

use measure::Reading;
use report::Report;

/// Time allowed for one request, connecting included, unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes asked of the socket per read (64 KiB).
const READ_BYTES: usize = 64 * 1024;

/// What to probe and how to report it.
#[derive(Clone, Debug)]
pub struct Options {
    /// The URLs, in order; those sharing host and port share a connection.
    pub targets: Vec<Target>,
    /// Requests per URL.
    pub repeat: u32,
    /// Print when each piece of each body arrived.
    pub timeline: bool,
    /// One JSON object per request instead of a table.
    pub json: bool,
    /// Longest time for one request, connecting included.
    pub timeout: Duration,
    /// Also draw every request's arrivals into this SVG file.
    pub svg: Option<std::path::PathBuf>,
}

/// Probes every target `repeat` times, printing as it goes; true when every request got a
/// complete response. Each failure is one line on stderr.
pub async fn run(options: &Options) -> bool {
    let urls: Vec<&str> = options.targets.iter().map(|t| t.url.as_str()).collect();
    let mut report = Report::new(
        std::io::stdout(),
        &urls,
        options.repeat,
        options.json,
        options.timeline,
    );
    let mut idle: HashMap<(String, u16), Conn> = HashMap::new();
    let mut all_answered = true;
    let mut drawn: Vec<(&str, u32, Result<Measurement, String>)> = Vec::new();
    for target in &options.targets {
        for n in 1..=options.repeat {
            let conn = idle.remove(&target.key());
            // A broken stdout (`probe … | head`) is not a failed request.
            let _ = match probe_once(conn, target, options.timeout).await {
                Ok((m, conn)) => {
                    if let Some(conn) = conn {
                        idle.insert(target.key(), conn);
                    }
                    let printed = report.measurement(&target.url, n, &m);
                    drawn.push((&target.url, n, Ok(m)));
                    printed
                }
                Err(e) => {
                    all_answered = false;
                    let which = if options.repeat > 1 {
                        format!(" #{n}")
                    } else {
                        String::new()
                    };
                    eprintln!("cgigate: probe {}{which}: {e}", target.url);
                    drawn.push((&target.url, n, Err(e.to_string())));
                    report.failure(&target.url, n, &e.to_string())
                }
            };
        }
    }
    if let Some(path) = &options.svg {
        let lanes: Vec<svg::Lane<'_>> = drawn
            .iter()
            .map(|(url, request, result)| svg::Lane {
                url,
                request: *request,
                result: result.as_ref().map_err(Clone::clone),
            })
            .collect();
        if let Err(e) = std::fs::write(path, svg::render(&lanes)) {
            eprintln!("cgigate: probe --svg {}: {e}", path.display());
            return false;
        }
    }
    all_answered
}

/// An open connection and the bytes read on it but not yet used.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Whether the server has not closed (or written on) the idle connection.
    fn is_idle_and_open(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// How far one request got, for the timeout message.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    stage: Stage,
    received: u64,
    body_bytes: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stage {
    #[default]
    Connecting,
    Sending,
    Head,
    Body,
}

impl Progress {
    fn describe(self) -> String {
        match self.stage {
            Stage::Connecting => "connecting".to_string(),
            Stage::Sending => "sending the request".to_string(),
            Stage::Head if self.received == 0 => "waiting for the response".to_string(),
            Stage::Head => format!(
                "inside the response head ({} bytes received)",
                self.received
            ),
            Stage::Body => format!("inside the body ({} body bytes received)", self.body_bytes),
        }
    }
}

/// One request within `timeout`: the measurement and the connection if it can be reused.
async fn probe_once(
    conn: Option<Conn>,
    target: &Target,
    timeout: Duration,
) -> Result<(Measurement, Option<Conn>), ProbeError> {
    let mut progress = Progress::default();
    match tokio::time::timeout(timeout, exchange(conn, target, &mut progress)).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout {
            timeout,
            stage: progress.describe(),
        }),
    }
}

/// One request on `conn` if it is still open, else on a new connection. A kept connection the
/// server closed before answering is replaced once, as browsers do (RFC 9112 §9.3.1).
async fn exchange(
    conn: Option<Conn>,
    target: &Target,
    progress: &mut Progress,
) -> Result<(Measurement, Option<Conn>), ProbeError> {
    if let Some(mut conn) = conn.filter(Conn::is_idle_and_open) {
        match request(&mut conn, target, None, progress).await {
            Ok(m) => return Ok(keep(m, conn)),
            Err(ProbeError::Closed | ProbeError::Io(_)) if progress.received == 0 => {}
            Err(e) => return Err(e),
        }
    }
    *progress = Progress::default();
    let (mut conn, connect) = connect(target).await?;
    let m = request(&mut conn, target, Some(connect), progress).await?;
    Ok(keep(m, conn))
}

fn keep(m: Measurement, conn: Conn) -> (Measurement, Option<Conn>) {
    let conn = m.keep_alive.then_some(conn);
    (m, conn)
}

async fn connect(target: &Target) -> Result<(Conn, Duration), ProbeError> {
    let start = Instant::now();
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|source| ProbeError::Connect {
            address: target.address(),
            source,
        })?;
    stream.set_nodelay(true)?;
    let conn = Conn {
        stream,
        buf: Vec::new(),
    };
    Ok((conn, start.elapsed()))
}

/// Sends the request and reads the response, timing each read from the moment of sending.
async fn request(
    conn: &mut Conn,
    target: &Target,
    connect: Option<Duration>,
    progress: &mut Progress,
) -> Result<Measurement, ProbeError> {
    progress.stage = Stage::Sending;
    let sent = Instant::now();
    conn.stream.write_all(&target.request()).await?;
    progress.stage = Stage::Head;
    let mut reading = Reading::new();
    let mut fresh = 0;
    loop {
        if reading.feed(&mut conn.buf, fresh, sent.elapsed())? {
            return reading.finish(sent.elapsed(), connect);
        }
        if reading.has_head() {
            progress.stage = Stage::Body;
            progress.body_bytes = reading.body_bytes();
        }
        conn.buf.reserve(READ_BYTES);
        fresh = conn.stream.read_buf(&mut conn.buf).await?;
        progress.received += fresh as u64;
        if fresh == 0 {
            let mut m = reading.at_eof(sent.elapsed())?;
            m.connect = connect;
            return Ok(m);
        }
    }
}
