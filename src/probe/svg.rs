//! `cgigate probe --svg FILE`: the arrival timeline of every request as one SVG picture, to
//! paste into a bug report or a doc. One lane per request on a shared time axis (ms since
//! that request was sent): a line from the send to the end, a tick per arrival (taller for
//! more bytes), the head and the end marked and labelled, and the framing and connection
//! beside the lane. Plain SVG 1.1, no script, no external font or stylesheet.

use std::fmt::Write;
use std::time::Duration;

use super::measure::Measurement;
use super::response::Framing;

/// Width of the label column, the plot, and the margin right of it (px).
const LABEL: f64 = 330.0;
const PLOT: f64 = 560.0;
const RIGHT: f64 = 110.0;
/// Height of one lane and of the axis band on top (px).
const LANE: f64 = 44.0;
const TOP: f64 = 46.0;

/// What one request gave: its URL and number, and its measurement or why there is none.
pub(super) struct Lane<'a> {
    pub(super) url: &'a str,
    pub(super) request: u32,
    pub(super) result: Result<&'a Measurement, String>,
}

/// The picture of `lanes`.
pub(super) fn render(lanes: &[Lane<'_>]) -> String {
    let longest = lanes
        .iter()
        .filter_map(|l| l.result.as_ref().ok())
        .map(|m| m.total)
        .max()
        .unwrap_or(Duration::ZERO);
    let axis = Axis::for_longest(longest);
    let height = TOP + LANE * lanes.len() as f64 + 12.0;
    let width = LABEL + PLOT + RIGHT;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">
<title>cgigate probe: when each response's bytes arrived</title>
<rect width="100%" height="100%" fill="#ffffff"/>
"##
    );
    axis.draw(&mut svg, height);
    for (i, lane) in lanes.iter().enumerate() {
        draw_lane(&mut svg, lane, TOP + LANE * i as f64, &axis);
    }
    svg.push_str("</svg>\n");
    svg
}

/// The time axis: its end in ms and the spacing of its ticks.
struct Axis {
    end_ms: f64,
    step_ms: f64,
}

impl Axis {
    /// An axis a little longer than `longest`, with 4 to 10 round ticks.
    fn for_longest(longest: Duration) -> Axis {
        let longest = (longest.as_secs_f64() * 1000.0).max(1.0);
        let mut step = 10f64.powf(longest.log10().floor());
        while longest / step < 4.0 {
            step /= 2.0;
        }
        while longest / step > 10.0 {
            step *= 2.0;
        }
        Axis {
            end_ms: (longest / step).ceil() * step,
            step_ms: step,
        }
    }

    /// The x of `ms` on the plot.
    fn x(&self, ms: f64) -> f64 {
        LABEL + PLOT * (ms / self.end_ms).clamp(0.0, 1.0)
    }

    fn draw(&self, svg: &mut String, height: f64) {
        let _ = writeln!(
            svg,
            r##"<text x="{LABEL}" y="16" fill="#333">ms since each request was sent</text>"##
        );
        let mut t = 0.0;
        while t <= self.end_ms + self.step_ms / 1000.0 {
            let x = self.x(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{:.1}" stroke="#e3e3e3"/><text x="{x:.1}" y="{}" fill="#666" text-anchor="middle">{}</text>"##,
                TOP - 8.0,
                height - 8.0,
                TOP - 14.0,
                trim(t)
            );
            t += self.step_ms;
        }
    }
}

/// A number of ms without a needless fraction.
fn trim(ms: f64) -> String {
    if (ms - ms.round()).abs() < 1e-9 {
        format!("{}", ms.round())
    } else {
        format!("{ms:.1}")
    }
}

/// One request's lane, its top at `y`.
fn draw_lane(svg: &mut String, lane: &Lane<'_>, y: f64, axis: &Axis) {
    let mid = y + LANE / 2.0;
    let _ = writeln!(
        svg,
        r#"<g class="lane" data-url="{}" data-request="{}">"#,
        escape(lane.url),
        lane.request
    );
    let _ = writeln!(
        svg,
        r##"<text x="8" y="{:.1}" fill="#111">{} #{}</text>"##,
        mid - 4.0,
        escape(&shorten(lane.url, 40)),
        lane.request
    );
    match &lane.result {
        Err(why) => {
            let _ = writeln!(
                svg,
                r##"<text x="8" y="{:.1}" fill="#b00020">no response: {}</text>"##,
                mid + 12.0,
                escape(&shorten(why, 70))
            );
        }
        Ok(m) => draw_measurement(svg, m, mid, axis),
    }
    svg.push_str("</g>\n");
}

/// The line, the arrivals, the head and the end of one measurement on the lane at `mid`.
fn draw_measurement(svg: &mut String, m: &Measurement, mid: f64, axis: &Axis) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let conn = if m.is_reused() { "reused" } else { "new" };
    let _ = writeln!(
        svg,
        r##"<text x="8" y="{:.1}" fill="#555">{} {} · {} bytes · {conn}</text>"##,
        mid + 12.0,
        m.status,
        framing(m.framing),
        m.body_bytes
    );
    let (x0, x_end) = (axis.x(0.0), axis.x(ms(m.total)));
    let _ = writeln!(
        svg,
        r##"<line x1="{x0:.1}" y1="{mid:.1}" x2="{x_end:.1}" y2="{mid:.1}" stroke="#9aa5b1" stroke-width="2"/>"##
    );
    let biggest = m.pieces.iter().map(|p| p.bytes).max().unwrap_or(1).max(1) as f64;
    for piece in &m.pieces {
        let x = axis.x(ms(piece.at));
        // Taller for more bytes, never too small to see.
        let half = 4.0 + 10.0 * (piece.bytes as f64 / biggest).sqrt();
        let _ = writeln!(
            svg,
            r##"<rect class="arrival" x="{:.1}" y="{:.1}" width="3" height="{:.1}" fill="#1565c0"><title>{} ms: {} bytes</title></rect>"##,
            x - 1.5,
            mid - half,
            2.0 * half,
            trim_ms(ms(piece.at)),
            piece.bytes
        );
    }
    let head = axis.x(ms(m.head));
    let _ = writeln!(
        svg,
        r##"<path class="head" d="M{head:.1},{:.1} l-5,-8 h10 z" fill="#2e7d32"/><text x="{head:.1}" y="{:.1}" fill="#2e7d32" text-anchor="middle" font-size="10">head {}</text>"##,
        mid - 14.0,
        mid - 23.0,
        trim_ms(ms(m.head))
    );
    let _ = writeln!(
        svg,
        r##"<line class="end" x1="{x_end:.1}" y1="{:.1}" x2="{x_end:.1}" y2="{:.1}" stroke="#c62828" stroke-width="2"/><text x="{:.1}" y="{:.1}" fill="#c62828" font-size="10">end {}</text>"##,
        mid - 9.0,
        mid + 9.0,
        x_end + 5.0,
        mid + 4.0,
        trim_ms(ms(m.total))
    );
}

/// `12.3 ms`.
fn trim_ms(ms: f64) -> String {
    format!("{ms:.1} ms")
}

fn framing(f: Framing) -> String {
    match f {
        Framing::Length(n) => format!("length {n}"),
        other => other.name().to_string(),
    }
}

/// At most `max` characters, the middle cut out.
fn shorten(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let keep = (max - 1) / 2;
    let head: String = chars[..keep].iter().collect();
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("{head}…{tail}")
}

/// Text safe in XML content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::measure::Piece;
    use super::*;

    fn measurement(framing: Framing, pieces: &[(u64, usize)], total: u64) -> Measurement {
        Measurement {
            status: 200,
            framing,
            body_bytes: pieces.iter().map(|p| p.1 as u64).sum(),
            connect: Some(Duration::from_micros(150)),
            head: Duration::from_millis(pieces.first().map_or(total, |p| p.0)),
            total: Duration::from_millis(total),
            pieces: pieces
                .iter()
                .map(|&(at, bytes)| Piece {
                    at: Duration::from_millis(at),
                    bytes,
                })
                .collect(),
            keep_alive: true,
        }
    }

    #[test]
    fn one_lane_per_request_with_a_mark_per_arrival_in_well_formed_svg() {
        let buffered = measurement(Framing::Length(35), &[(814, 35)], 814);
        let streamed = measurement(
            Framing::Chunked,
            &[(5, 7), (206, 7), (411, 7), (615, 7)],
            815,
        );
        let lanes = [
            Lane {
                url: "http://127.0.0.1:8080/buffered/ticker?a=1&b=<2>",
                request: 1,
                result: Ok(&buffered),
            },
            Lane {
                url: "http://127.0.0.1:8080/streamed/ticker",
                request: 1,
                result: Ok(&streamed),
            },
            Lane {
                url: "http://127.0.0.1:1/",
                request: 2,
                result: Err("cannot connect: \"refused\" & \u{1}".to_string()),
            },
        ];
        let svg = render(&lanes);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let lane_nodes: Vec<_> = root
            .children()
            .filter(|n| n.attribute("class") == Some("lane"))
            .collect();
        assert_eq!(lane_nodes.len(), 3);
        let marks = |i: usize| {
            lane_nodes[i]
                .descendants()
                .filter(|n| n.attribute("class") == Some("arrival"))
                .count()
        };
        assert_eq!((marks(0), marks(1), marks(2)), (1, 4, 0));
        assert_eq!(
            lane_nodes[0].attribute("data-url"),
            Some("http://127.0.0.1:8080/buffered/ticker?a=1&b=<2>")
        );
        let text: String = lane_nodes[1]
            .descendants()
            .filter_map(|n| n.text())
            .collect();
        assert!(text.contains("head 5.0 ms"), "{text}");
        assert!(text.contains("end 815.0 ms"), "{text}");
        assert!(text.contains("chunked"), "{text}");
    }

    #[test]
    fn the_axis_has_round_ticks_and_covers_the_longest_request() {
        for (ms, end, step) in [
            (815, 900.0, 100.0),
            (3, 3.0, 0.5),
            (0, 1.0, 0.25),
            (12_345, 12_500.0, 2_500.0),
        ] {
            let axis = Axis::for_longest(Duration::from_millis(ms));
            assert_eq!((axis.end_ms, axis.step_ms), (end, step), "{ms} ms");
            assert!(axis.end_ms >= ms as f64);
        }
    }

    #[test]
    fn long_text_is_shortened_in_the_middle() {
        assert_eq!(shorten("abcdefghij", 5), "ab…ij");
        assert_eq!(shorten("abc", 5), "abc");
    }
}
