//! How `cgigate probe` prints what it measured: an aligned table (one row per request, each
//! printed as soon as it is done) or one JSON object per line, and with `--timeline` the
//! arrivals of each body.

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use super::measure::{Measurement, Piece};
use super::response::Framing;

/// Width of the framing column: fits `length` and a seven-digit length.
const FRAMING_WIDTH: usize = 14;

/// Prints measurements to `out`.
#[derive(Debug)]
pub(super) struct Report<W> {
    out: W,
    json: bool,
    timeline: bool,
    url_width: usize,
    request_width: usize,
    printed_header: bool,
}

impl<W: Write> Report<W> {
    /// A report for `urls`, each requested up to `repeat` times.
    pub(super) fn new(out: W, urls: &[&str], repeat: u32, json: bool, timeline: bool) -> Report<W> {
        Report {
            out,
            json,
            timeline,
            url_width: urls.iter().map(|u| u.len()).max().unwrap_or(0).max(3),
            request_width: repeat.to_string().len().max(3),
            printed_header: false,
        }
    }

    /// The result of request number `request` to `url`.
    pub(super) fn measurement(
        &mut self,
        url: &str,
        request: u32,
        m: &Measurement,
    ) -> io::Result<()> {
        if self.json {
            let record = Record::new(url, request, m, self.timeline);
            serde_json::to_writer(&mut self.out, &record)?;
            return writeln!(self.out);
        }
        self.header()?;
        let (w, rw) = (self.url_width, self.request_width);
        writeln!(
            self.out,
            "{url:<w$}  {request:>rw$}  {:>6}  {:<FRAMING_WIDTH$}  {:>9}  {:>9}  {:>9}  {:>9}  {:>8}  {}",
            m.status,
            framing(m.framing),
            m.body_bytes,
            millis(m.head),
            m.first_byte().map_or_else(|| "-".to_string(), millis),
            millis(m.total),
            m.pieces.len(),
            connection(m),
        )?;
        if self.timeline {
            for piece in &m.pieces {
                writeln!(
                    self.out,
                    "{:w$}  {:>9}  {:>9} bytes",
                    "",
                    millis(piece.at),
                    piece.bytes
                )?;
            }
        }
        Ok(())
    }

    /// A request that got no complete response (the error line itself goes to stderr).
    pub(super) fn failure(&mut self, url: &str, request: u32, error: &str) -> io::Result<()> {
        if !self.json {
            return Ok(());
        }
        let record = Failure {
            url,
            request,
            error,
        };
        serde_json::to_writer(&mut self.out, &record)?;
        writeln!(self.out)
    }

    fn header(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.printed_header, true) {
            return Ok(());
        }
        let (w, rw) = (self.url_width, self.request_width);
        writeln!(
            self.out,
            "{:<w$}  {:>rw$}  status  {:<FRAMING_WIDTH$}  {:>9}  {:>9}  {:>9}  {:>9}  arrivals  conn",
            "url", "req", "framing", "bytes", "head", "first", "total",
        )
    }
}

/// One request as a JSON object.
#[derive(Debug, Serialize)]
struct Record<'a> {
    url: &'a str,
    request: u32,
    status: u16,
    framing: &'static str,
    content_length: Option<u64>,
    body_bytes: u64,
    connect_ms: Option<f64>,
    head_ms: f64,
    first_byte_ms: Option<f64>,
    total_ms: f64,
    arrivals: usize,
    connection: &'static str,
    keep_alive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<Vec<Arrival>>,
}

/// A request without a complete response, as a JSON object.
#[derive(Debug, Serialize)]
struct Failure<'a> {
    url: &'a str,
    request: u32,
    error: &'a str,
}

/// One arrival in a JSON timeline.
#[derive(Debug, Serialize)]
struct Arrival {
    ms: f64,
    bytes: usize,
}

impl<'a> Record<'a> {
    fn new(url: &'a str, request: u32, m: &Measurement, timeline: bool) -> Record<'a> {
        let arrival = |p: &Piece| Arrival {
            ms: ms(p.at),
            bytes: p.bytes,
        };
        Record {
            url,
            request,
            status: m.status,
            framing: m.framing.name(),
            content_length: match m.framing {
                Framing::Length(n) => Some(n),
                _ => None,
            },
            body_bytes: m.body_bytes,
            connect_ms: m.connect.map(ms),
            head_ms: ms(m.head),
            first_byte_ms: m.first_byte().map(ms),
            total_ms: ms(m.total),
            arrivals: m.pieces.len(),
            connection: connection(m),
            keep_alive: m.keep_alive,
            timeline: timeline.then(|| m.pieces.iter().map(arrival).collect()),
        }
    }
}

/// Milliseconds with microsecond precision, for JSON.
fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// Milliseconds with one decimal, for the table.
fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

/// `length N`, `chunked`, `close` or `none`.
fn framing(f: Framing) -> String {
    match f {
        Framing::Length(n) => format!("length {n}"),
        other => other.name().to_string(),
    }
}

fn connection(m: &Measurement) -> &'static str {
    if m.is_reused() {
        "reused"
    } else {
        "new"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(connect: Option<Duration>) -> Measurement {
        let ms = Duration::from_millis;
        Measurement {
            status: 200,
            framing: Framing::Chunked,
            body_bytes: 14,
            connect,
            head: ms(1),
            total: ms(151),
            pieces: vec![
                Piece {
                    at: ms(2),
                    bytes: 7,
                },
                Piece {
                    at: ms(150),
                    bytes: 7,
                },
            ],
            keep_alive: true,
        }
    }

    #[test]
    fn the_table_is_aligned_under_one_header() {
        let mut out = Vec::new();
        let urls = ["http://h/a", "http://h/bb"];
        let mut report = Report::new(&mut out, &urls, 2, false, true);
        report
            .measurement(urls[0], 1, &sample(Some(Duration::ZERO)))
            .unwrap();
        report.measurement(urls[1], 2, &sample(None)).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 2 * 3, "{text}");
        assert!(
            lines[0].starts_with("url          req  status  framing"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("http://h/a     1     200  chunked "),
            "{text}"
        );
        assert!(lines[1].ends_with("  2  new"), "{text}");
        assert!(lines[2].ends_with("  2.0ms          7 bytes"), "{text}");
        assert!(lines[4].ends_with("  2  reused"), "{text}");
        let column = |line: &str, word: &str| line.find(word);
        assert_eq!(
            column(lines[0], "total"),
            column(lines[1], "151.0ms").map(|c| c + 2)
        );
    }

    #[test]
    fn json_has_one_object_per_request() {
        let mut out = Vec::new();
        let mut report = Report::new(&mut out, &["u"], 1, true, true);
        report.measurement("u", 1, &sample(None)).unwrap();
        report
            .failure("u", 2, "connection closed before a response")
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(v["framing"], "chunked");
        assert_eq!(v["content_length"], serde_json::Value::Null);
        assert_eq!(
            (v["arrivals"].as_u64(), v["total_ms"].as_f64()),
            (Some(2), Some(151.0))
        );
        assert_eq!(v["connection"], "reused");
        assert_eq!(v["timeline"][1]["ms"].as_f64(), Some(150.0));
        let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(v["error"], "connection closed before a response");
    }
}
