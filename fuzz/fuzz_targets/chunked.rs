//! `http::decode::Decoder::chunked()`: the answer does not depend on how the input arrives,
//! and agrees with a simple whole-input reference decoder written from RFC 9112 §7.1.
//!
//! Input layout (so the fuzzer picks the splits):
//! - byte 0: bits 0–1 the number of split offsets (0–3); bit 2 a decoded-size limit follows;
//!   bit 3 also feed the body one byte at a time.
//! - with bit 2: one byte, the limit in bytes (0–255).
//! - the split offsets, two bytes each (little-endian), each taken modulo `body.len() + 1`.
//! - the rest is the body. A seed is a body behind a 0 byte.
#![no_main]

use bytes::BytesMut;
use cgigate::parsers::decode::{BodyError, Decoder, Step, MAX_CHUNK_LINE_BYTES, MAX_TRAILER_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((options, body)) = Options::read(input) else {
        return;
    };
    let decoder = match options.limit {
        Some(max) => Decoder::chunked().with_limit(max),
        None => Decoder::chunked(),
    };
    let whole = run(decoder.clone(), &[body]);
    let mut pieces = Vec::new();
    let mut from = 0;
    for &at in &options.splits {
        pieces.push(&body[from..at]);
        from = at;
    }
    pieces.push(&body[from..]);
    assert_eq!(
        run(decoder.clone(), &pieces),
        whole,
        "split at {:?}",
        options.splits
    );
    if options.byte_by_byte {
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(run(decoder, &bytes), whole, "byte by byte");
    }
    reference::check(body, options.limit.unwrap_or(u64::MAX), &whole);
});

struct Options {
    limit: Option<u64>,
    /// Sorted offsets into the body.
    splits: Vec<usize>,
    byte_by_byte: bool,
}

impl Options {
    fn read(input: &[u8]) -> Option<(Options, &[u8])> {
        let (&flags, mut rest) = input.split_first()?;
        let limit = if flags & 4 != 0 {
            let (&max, after) = rest.split_first()?;
            rest = after;
            Some(u64::from(max))
        } else {
            None
        };
        let count = usize::from(flags & 3);
        let (offsets, body) = rest.split_at_checked(2 * count)?;
        let mut splits: Vec<usize> = offsets
            .chunks(2)
            .map(|o| usize::from(u16::from_le_bytes([o[0], o[1]])) % (body.len() + 1))
            .collect();
        splits.sort_unstable();
        let byte_by_byte = flags & 8 != 0;
        Some((
            Options {
                limit,
                splits,
                byte_by_byte,
            },
            body,
        ))
    }
}

/// How a run over some input ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The body ended; the bytes left in the buffer after it.
    End(Vec<u8>),
    /// All input consumed without reaching the end.
    NeedMore,
    Err(BodyError),
}

/// Everything a run tells: the data, how it ended, and what the decoder says about itself.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    data: Vec<u8>,
    outcome: Outcome,
    decoded_bytes: u64,
    is_end: bool,
    eof: Result<(), BodyError>,
}

/// Feeds `pieces` one after the other, calling `decode` until it stops making progress.
/// After the end, the pieces left are appended untouched: they belong to the next request.
fn run(mut dec: Decoder, pieces: &[&[u8]]) -> Run {
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut outcome = Outcome::NeedMore;
    for (i, piece) in pieces.iter().enumerate() {
        buf.extend_from_slice(piece);
        match drain(&mut dec, &mut buf, &mut data) {
            None => continue,
            Some(Outcome::End(_)) => {
                for later in &pieces[i + 1..] {
                    buf.extend_from_slice(later);
                }
                let rest = buf.to_vec();
                assert_eq!(dec.decode(&mut buf), Ok(Step::End), "End is repeated");
                assert_eq!(&buf[..], &rest[..], "End leaves the buffer alone");
                outcome = Outcome::End(rest);
            }
            Some(err) => outcome = err,
        }
        break;
    }
    assert_eq!(dec.decoded_bytes(), data.len() as u64);
    assert!(dec.is_chunked() && dec.remaining().is_none());
    Run {
        data,
        outcome,
        decoded_bytes: dec.decoded_bytes(),
        is_end: dec.is_end(),
        eof: dec.check_eof(),
    }
}

/// Calls `decode` until it needs more (`None`) or the body ended or failed.
fn drain(dec: &mut Decoder, buf: &mut BytesMut, data: &mut Vec<u8>) -> Option<Outcome> {
    loop {
        match dec.decode(buf) {
            Ok(Step::Data(d)) => {
                assert!(!d.is_empty(), "empty Data step");
                data.extend_from_slice(&d);
            }
            Ok(Step::NeedMore) => {
                assert!(buf.is_empty(), "NeedMore left bytes in the buffer");
                return None;
            }
            Ok(Step::End) => return Some(Outcome::End(Vec::new())),
            Err(e) => {
                assert_eq!(dec.decode(buf), Err(e), "errors are sticky");
                return Some(Outcome::Err(e));
            }
        }
    }
}

/// A chunked decoder that sees the whole input at once and follows the grammar of RFC 9112
/// §7.1 line by line, with the same limits as the decoder under test.
mod reference {
    use super::*;

    /// What the whole input is.
    #[derive(Debug, PartialEq, Eq)]
    enum Verdict {
        /// A complete body; `rest` starts at this offset.
        Complete(usize),
        /// A valid body so far that has not ended.
        Incomplete,
        /// No continuation makes it valid (or a limit was crossed).
        Invalid,
    }

    /// The decoder ends exactly when the reference does, with the same data and rest; it
    /// needs more exactly when the input is a valid unfinished body; it fails otherwise.
    pub fn check(input: &[u8], limit: u64, got: &Run) {
        let (verdict, data) = decode(input, limit);
        assert_eq!(
            got.data, data,
            "data differs from the reference ({verdict:?})"
        );
        match (&verdict, &got.outcome) {
            (Verdict::Complete(at), Outcome::End(rest)) => assert_eq!(&input[*at..], &rest[..]),
            (Verdict::Incomplete, Outcome::NeedMore) | (Verdict::Invalid, Outcome::Err(_)) => {}
            (want, got) => panic!("reference says {want:?}, decoder says {got:?}"),
        }
    }

    fn decode(input: &[u8], limit: u64) -> (Verdict, Vec<u8>) {
        let mut data = Vec::new();
        let mut pos = 0;
        let mut announced: u64 = 0;
        // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
        loop {
            let (line, next) = match line_at(input, pos, MAX_CHUNK_LINE_BYTES) {
                Line::Full(line, next) => (line, next),
                // The decoder waits for the LF to tell a bad line from a bare CR.
                Line::AwaitingLf(line) => return (partial_chunk_line(line), data),
                Line::Partial(part) => return (partial_chunk_line(part), data),
                Line::Invalid => return (Verdict::Invalid, data),
            };
            let Some(size) = chunk_line(line) else {
                return (Verdict::Invalid, data);
            };
            pos = next;
            if size == 0 {
                break; // last-chunk
            }
            announced = match announced.checked_add(size) {
                Some(total) if total <= limit => total,
                _ => return (Verdict::Invalid, data),
            };
            let available = (input.len() - pos) as u64;
            if available < size {
                data.extend_from_slice(&input[pos..]);
                return (Verdict::Incomplete, data);
            }
            let end = pos + size as usize;
            data.extend_from_slice(&input[pos..end]);
            pos = end;
            match &input[pos..] {
                [b'\r', b'\n', ..] => pos += 2,
                [] | [b'\r'] => return (Verdict::Incomplete, data),
                _ => return (Verdict::Invalid, data),
            }
        }
        // trailer-section = *( field-line CRLF ), then CRLF
        let start = pos;
        loop {
            let left = MAX_TRAILER_BYTES - (pos - start);
            match line_at(input, pos, left) {
                Line::Full([], next) => return (Verdict::Complete(next), data),
                Line::Full(line, next) if trailer_line(line) => pos = next,
                Line::Full(..) | Line::Invalid => return (Verdict::Invalid, data),
                Line::AwaitingLf(part) | Line::Partial(part) => {
                    let ok = part.is_empty() || trailer_line(&[part, b":"].concat());
                    return (verdict(ok), data);
                }
            }
        }
    }

    enum Line<'a> {
        /// A line ending in CRLF (without it), and the offset after the LF.
        Full(&'a [u8], usize),
        /// The input ends right after the line's CR. The decoder waits for the LF before it
        /// reports a bad line (its error depends on whether the CR was bare), so this is
        /// judged like a partial line.
        AwaitingLf(&'a [u8]),
        /// The input ends inside the line.
        Partial(&'a [u8]),
        /// A bare CR or LF, or longer than allowed.
        Invalid,
    }

    /// The line at `pos`, at most `max` bytes counting its CRLF.
    fn line_at(input: &[u8], pos: usize, max: usize) -> Line<'_> {
        let rest = &input[pos..];
        let lf = rest.iter().position(|&b| b == b'\n');
        let line = lf.map_or(rest, |lf| &rest[..=lf]);
        if line.len() > max {
            return Line::Invalid;
        }
        // RFC 9112 §2.2: every line ends in CRLF, and a CR appears nowhere else.
        let (body, line_kind) = if let Some(body) = line.strip_suffix(b"\r\n") {
            (body, Line::Full(body, pos + line.len()))
        } else if lf.is_some() {
            return Line::Invalid;
        } else if let Some(body) = line.strip_suffix(b"\r") {
            (body, Line::AwaitingLf(body))
        } else {
            (line, Line::Partial(line))
        };
        if body.contains(&b'\r') {
            return Line::Invalid;
        }
        line_kind
    }

    fn verdict(valid_so_far: bool) -> Verdict {
        if valid_so_far {
            Verdict::Incomplete
        } else {
            Verdict::Invalid
        }
    }

    /// A chunk line cut short is valid so far if one of these endings makes it a valid line
    /// (one for each place the grammar can be in).
    fn partial_chunk_line(part: &[u8]) -> Verdict {
        let endings: [&[u8]; 6] = [b"", b"a", b";a", b"=a", b"\"", b"a\""];
        verdict(
            endings
                .iter()
                .any(|e| chunk_line(&[part, e].concat()).is_some()),
        )
    }

    /// chunk-size [ chunk-ext ]: the size, if the line is valid.
    /// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
    fn chunk_line(line: &[u8]) -> Option<u64> {
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return None;
        }
        let mut size: u64 = 0;
        for &d in &line[..digits] {
            let v = u64::from(char::from(d).to_digit(16)?);
            size = size.checked_mul(16)?.checked_add(v)?;
        }
        let mut s = &line[digits..];
        while !s.is_empty() {
            s = skip_bws(s).strip_prefix(b";")?;
            s = skip_bws(s);
            let name = s.iter().take_while(|&&b| is_tchar(b)).count();
            if name == 0 {
                return None;
            }
            s = &s[name..];
            if let Some(after) = skip_bws(s).strip_prefix(b"=") {
                s = ext_value(skip_bws(after))?;
            }
        }
        Some(size)
    }

    /// ext-val = token / quoted-string; returns what follows it.
    fn ext_value(s: &[u8]) -> Option<&[u8]> {
        if let Some(mut q) = s.strip_prefix(b"\"") {
            loop {
                match q {
                    [b'"', rest @ ..] => return Some(rest),
                    [b'\\', c, rest @ ..] if is_field_byte(*c) => q = rest,
                    [c, rest @ ..] if *c != b'\\' && is_field_byte(*c) => q = rest,
                    _ => return None,
                }
            }
        }
        let token = s.iter().take_while(|&&b| is_tchar(b)).count();
        (token > 0).then(|| &s[token..])
    }

    /// field-name ":" OWS field-value OWS
    fn trailer_line(line: &[u8]) -> bool {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return false;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        !name.is_empty()
            && name.iter().all(|&b| is_tchar(b))
            && value.iter().all(|&b| is_field_byte(b))
    }

    fn skip_bws(s: &[u8]) -> &[u8] {
        let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        &s[n..]
    }

    fn is_tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }

    /// HTAB / SP / VCHAR / obs-text.
    fn is_field_byte(b: u8) -> bool {
        b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80
    }
}
