//! Request body decoders: `Content-Length` and `chunked` framing (RFC 9112 §6, §7.1).
//!
//! Sans-IO: the connection hands in whatever bytes it has read and gets back body data, a
//! request for more bytes, or the end of the body. The chunked decoder is a small `Copy` state
//! machine that consumes framing one byte at a time and never buffers anything itself, so a
//! client announcing a huge chunk (or a huge chunk line) costs only the size of [`Decoder`].
//! Framing is strict: anything the grammar does not allow is an error, never a guess.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::status;
use super::syntax::{hex_value, is_field_byte, is_qdtext, is_tchar};

/// Longest chunk-size line, in bytes, counting the size, its extensions and the CRLF (16 KiB).
pub const MAX_CHUNK_LINE_BYTES: usize = 16 * 1024;

/// Most trailer-section bytes, in bytes, counting every trailer line and the final empty line
/// with their CRLFs (16 KiB).
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Why a request body could not be decoded. Every variant means the end of the body is in
/// doubt, so the connection must close after the error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The chunk size is empty or not `1*HEXDIG` (whitespace, sign, `0x`, trailing junk).
    BadChunkSize,
    /// The chunk size does not fit in a `u64`.
    ChunkSizeOverflow,
    /// A chunk extension does not match `*( BWS ";" BWS name [ BWS "=" BWS value ] )`.
    BadChunkExtension,
    /// A chunk-size line is longer than [`MAX_CHUNK_LINE_BYTES`].
    ChunkLineTooLong,
    /// A CR not followed by LF, or an LF not preceded by CR, in a chunk line or trailer.
    BareLineEnding,
    /// Chunk data is not followed by exactly CRLF.
    MissingChunkCrlf,
    /// A trailer line is malformed (no colon, space before the colon, obs-fold, control byte).
    BadTrailer,
    /// The trailer section is longer than [`MAX_TRAILER_BYTES`].
    TrailersTooLarge,
    /// The decoded body would exceed the limit set with [`Decoder::with_limit`].
    TooLarge,
    /// The connection ended before the body did (see [`Decoder::check_eof`]).
    Truncated,
}

impl BodyError {
    /// HTTP status for this error: 413 for `TooLarge`, 400 for everything else (a `Truncated`
    /// body has nobody left to answer, so its status only ends up in logs).
    pub fn status(self) -> u16 {
        match self {
            BodyError::TooLarge => status::CONTENT_TOO_LARGE,
            _ => status::BAD_REQUEST,
        }
    }

    /// Short static description for logs and the error body, e.g. "bad chunk size".
    pub fn as_str(self) -> &'static str {
        match self {
            BodyError::BadChunkSize => "bad chunk size",
            BodyError::ChunkSizeOverflow => "chunk size overflow",
            BodyError::BadChunkExtension => "bad chunk extension",
            BodyError::ChunkLineTooLong => "chunk line too long",
            BodyError::BareLineEnding => "bare CR or LF in chunked framing",
            BodyError::MissingChunkCrlf => "missing CRLF after chunk data",
            BodyError::BadTrailer => "bad trailer field",
            BodyError::TrailersTooLarge => "trailer section too large",
            BodyError::TooLarge => "request body too large",
            BodyError::Truncated => "request body truncated",
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for BodyError {}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body data, never empty, split off the front of the input without copying.
    Data(Bytes),
    /// The input holds no complete next piece; read more and call again.
    NeedMore,
    /// The body is complete; whatever follows in the input belongs to the next request.
    End,
}

/// A request body decoder, chosen from the request head (RFC 9112 §6.3).
#[derive(Debug, Clone)]
pub struct Decoder {
    kind: Kind,
    decoded: u64,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Body data bytes still expected.
    Length(u64),
    Chunked(Chunked),
}

impl Decoder {
    /// A decoder for a body of exactly `n` bytes (`Content-Length: n`).
    pub fn length(n: u64) -> Decoder {
        Decoder {
            kind: Kind::Length(n),
            decoded: 0,
        }
    }

    /// A decoder for a `Transfer-Encoding: chunked` body, without a size limit.
    pub fn chunked() -> Decoder {
        Decoder {
            kind: Kind::Chunked(Chunked::new()),
            decoded: 0,
        }
    }

    /// A decoder for a request without a body (same as `length(0)`).
    pub fn empty() -> Decoder {
        Decoder::length(0)
    }

    /// Chunked only: fail with [`BodyError::TooLarge`] once the decoded data would exceed
    /// `max` bytes. The check runs when a chunk is announced, so none of the chunk that
    /// crosses the limit is returned. A length decoder is unchanged: the caller compares
    /// `Content-Length` with the limit before building it.
    #[must_use]
    pub fn with_limit(mut self, max: u64) -> Decoder {
        if let Kind::Chunked(chunked) = &mut self.kind {
            chunked.limit = max;
        }
        self
    }

    /// Consumes framing and data from the front of `buf` and returns the next step.
    ///
    /// Data is split off `buf` without copying as soon as any is available. Framing bytes are
    /// consumed and remembered in the decoder's state, so `NeedMore` always leaves `buf` empty
    /// and the caller never needs to buffer framing. After `End`, bytes in `buf` are left
    /// untouched and further calls return `End`. After an error, further calls return the same
    /// error.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, BodyError> {
        let step = match &mut self.kind {
            Kind::Length(remaining) => decode_length(remaining, buf),
            Kind::Chunked(chunked) => chunked.decode(buf)?,
        };
        if let Step::Data(data) = &step {
            self.decoded = self.decoded.saturating_add(data.len() as u64);
        }
        Ok(step)
    }

    /// Whether the whole body has been decoded.
    pub fn is_end(&self) -> bool {
        match &self.kind {
            Kind::Length(remaining) => *remaining == 0,
            Kind::Chunked(chunked) => chunked.state == State::End,
        }
    }

    /// Whether this is a chunked decoder.
    pub fn is_chunked(&self) -> bool {
        matches!(self.kind, Kind::Chunked(_))
    }

    /// Bytes of body data still expected for a length body (`None` for chunked).
    pub fn remaining(&self) -> Option<u64> {
        match self.kind {
            Kind::Length(remaining) => Some(remaining),
            Kind::Chunked(_) => None,
        }
    }

    /// Total data bytes returned so far.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded
    }

    /// Call when the peer closed its side: [`BodyError::Truncated`] unless the body ended.
    pub fn check_eof(&self) -> Result<(), BodyError> {
        if self.is_end() {
            Ok(())
        } else {
            Err(BodyError::Truncated)
        }
    }
}

fn decode_length(remaining: &mut u64, buf: &mut BytesMut) -> Step {
    if *remaining == 0 {
        return Step::End;
    }
    if buf.is_empty() {
        return Step::NeedMore;
    }
    let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
    *remaining -= n as u64;
    Step::Data(buf.split_to(n).freeze())
}

/// Where the chunked decoder is in the grammar (RFC 9112 §7.1). Each state names the byte it
/// expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// First digit of a chunk size.
    SizeStart,
    /// Further digits of a chunk size.
    Size,
    /// BWS after the size, which must lead to an extension.
    SizeBws,
    /// BWS after ";", before an extension name.
    ExtStart,
    ExtName,
    /// BWS after an extension name.
    ExtNameBws,
    /// BWS after "=", before an extension value.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    /// The byte after a backslash inside a quoted value.
    ExtEscape,
    /// Right after the closing quote of a value.
    ExtQuoteEnd,
    /// BWS after a value, which must lead to another extension.
    ExtValueBws,
    /// The LF ending a valid chunk-size line.
    SizeLf,
    /// `size` data bytes still to return.
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer line, or the CR of the empty line ending the trailer section.
    TrailerStart,
    TrailerName,
    TrailerValue,
    /// The LF ending a trailer line.
    TrailerLf,
    /// The LF ending the trailer section, and so the body.
    EndLf,
    /// An LF that completes an invalid line: the line's error, unless the CR was bare.
    BadLf(BodyError),
    End,
    Failed(BodyError),
}

impl State {
    /// The state after a CR, for states inside a chunk line or trailer line; `None` elsewhere.
    fn after_cr(self) -> Option<State> {
        use State::*;
        let next = match self {
            Size | ExtName | ExtToken | ExtQuoteEnd => SizeLf,
            SizeStart | SizeBws => BadLf(BodyError::BadChunkSize),
            ExtStart | ExtNameBws | ExtValueStart | ExtQuoted | ExtEscape | ExtValueBws => {
                BadLf(BodyError::BadChunkExtension)
            }
            TrailerStart => EndLf,
            TrailerName => BadLf(BodyError::BadTrailer),
            TrailerValue => TrailerLf,
            SizeLf | Data | DataCr | DataLf | TrailerLf | EndLf | BadLf(_) | End | Failed(_) => {
                return None
            }
        };
        Some(next)
    }

    fn is_chunk_line(self) -> bool {
        use State::*;
        matches!(
            self,
            SizeStart
                | Size
                | SizeBws
                | ExtStart
                | ExtName
                | ExtNameBws
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtEscape
                | ExtQuoteEnd
                | ExtValueBws
                | SizeLf
        )
    }

    fn is_trailer(self) -> bool {
        use State::*;
        matches!(
            self,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | EndLf
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Chunked {
    state: State,
    /// The size being parsed, then the data bytes left in the current chunk.
    size: u64,
    /// Sum of all chunk sizes announced so far, for the limit.
    announced: u64,
    limit: u64,
    /// Bytes of the current chunk-size line seen so far.
    line_bytes: usize,
    /// Bytes of the trailer section seen so far.
    trailer_bytes: usize,
}

impl Chunked {
    fn new() -> Chunked {
        Chunked {
            state: State::SizeStart,
            size: 0,
            announced: 0,
            limit: u64::MAX,
            line_bytes: 0,
            trailer_bytes: 0,
        }
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, BodyError> {
        match self.read_framing(buf) {
            Ok(consumed) => buf.advance(consumed),
            Err(e) => {
                self.state = State::Failed(e);
                return Err(e);
            }
        }
        match self.state {
            State::End => Ok(Step::End),
            State::Data if !buf.is_empty() => Ok(Step::Data(self.read_data(buf))),
            _ => Ok(Step::NeedMore),
        }
    }

    /// Runs framing bytes through the state machine until data, the end, or the end of
    /// `bytes`; returns how many bytes it consumed.
    fn read_framing(&mut self, bytes: &[u8]) -> Result<usize, BodyError> {
        for (i, &b) in bytes.iter().enumerate() {
            match self.state {
                State::Data | State::End => return Ok(i),
                State::Failed(e) => return Err(e),
                _ => self.state = self.step(b)?,
            }
        }
        match self.state {
            State::Failed(e) => Err(e),
            _ => Ok(bytes.len()),
        }
    }

    fn read_data(&mut self, buf: &mut BytesMut) -> Bytes {
        let n = usize::try_from(self.size).map_or(buf.len(), |s| s.min(buf.len()));
        self.size -= n as u64;
        if self.size == 0 {
            self.state = State::DataCr;
        }
        buf.split_to(n).freeze()
    }

    /// Consumes one framing byte and returns the next state.
    fn step(&mut self, b: u8) -> Result<State, BodyError> {
        use State::*;
        self.count()?;
        if let Some(after_cr) = self.state.after_cr() {
            match b {
                // RFC 9112 §2.2: a bare LF is not a line terminator here.
                b'\n' => return Err(BodyError::BareLineEnding),
                b'\r' => return Ok(after_cr),
                _ => {}
            }
        }
        match self.state {
            SizeStart | Size | SizeBws => read_size(self.state, b, &mut self.size),
            ExtStart | ExtName | ExtNameBws => read_ext_name(self.state, b),
            ExtValueStart | ExtToken | ExtQuoted | ExtEscape | ExtQuoteEnd | ExtValueBws => {
                read_ext_value(self.state, b)
            }
            TrailerStart | TrailerName | TrailerValue => read_trailer(self.state, b),
            DataCr | DataLf => read_data_crlf(self.state, b),
            SizeLf | TrailerLf | EndLf | BadLf(_) => self.read_lf(b),
            Data | End | Failed(_) => Ok(self.state),
        }
    }

    /// Enforces the line and trailer limits, counting bytes whether or not the line ends.
    fn count(&mut self) -> Result<(), BodyError> {
        if self.state.is_chunk_line() {
            self.line_bytes += 1;
            if self.line_bytes > MAX_CHUNK_LINE_BYTES {
                return Err(BodyError::ChunkLineTooLong);
            }
        } else if self.state.is_trailer() {
            self.trailer_bytes += 1;
            if self.trailer_bytes > MAX_TRAILER_BYTES {
                return Err(BodyError::TrailersTooLarge);
            }
        }
        Ok(())
    }

    /// The byte after a CR that ended a line.
    fn read_lf(&mut self, b: u8) -> Result<State, BodyError> {
        if b != b'\n' {
            // RFC 9112 §2.2: a CR must be followed by LF.
            return Err(BodyError::BareLineEnding);
        }
        match self.state {
            State::SizeLf => self.end_size_line(),
            State::TrailerLf => Ok(State::TrailerStart),
            State::EndLf => Ok(State::End),
            State::BadLf(e) => Err(e),
            other => Ok(other),
        }
    }

    fn end_size_line(&mut self) -> Result<State, BodyError> {
        self.line_bytes = 0;
        if self.size == 0 {
            // RFC 9112 §7.1: last-chunk, then the trailer section.
            return Ok(State::TrailerStart);
        }
        self.announced = match self.announced.checked_add(self.size) {
            Some(total) if total <= self.limit => total,
            _ => return Err(BodyError::TooLarge),
        };
        Ok(State::Data)
    }
}

/// chunk-size = 1*HEXDIG, then BWS only before an extension (RFC 9112 §7.1, RFC 9110 §5.6.3).
fn read_size(state: State, b: u8, size: &mut u64) -> Result<State, BodyError> {
    if let (State::SizeStart | State::Size, Some(digit)) = (state, hex_value(b)) {
        *size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(digit)))
            .ok_or(BodyError::ChunkSizeOverflow)?;
        return Ok(State::Size);
    }
    match (state, b) {
        (State::Size | State::SizeBws, b' ' | b'\t') => Ok(State::SizeBws),
        (State::Size | State::SizeBws, b';') => Ok(State::ExtStart),
        _ => Err(BodyError::BadChunkSize),
    }
}

/// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-name = token
/// (RFC 9112 §7.1.1, RFC 9110 §5.6.2).
fn read_ext_name(state: State, b: u8) -> Result<State, BodyError> {
    match (state, b) {
        (State::ExtStart, b' ' | b'\t') => Ok(State::ExtStart),
        (State::ExtStart | State::ExtName, _) if is_tchar(b) => Ok(State::ExtName),
        (State::ExtName | State::ExtNameBws, b' ' | b'\t') => Ok(State::ExtNameBws),
        (State::ExtName | State::ExtNameBws, b'=') => Ok(State::ExtValueStart),
        (State::ExtName | State::ExtNameBws, b';') => Ok(State::ExtStart),
        _ => Err(BodyError::BadChunkExtension),
    }
}

/// ext-val = token / quoted-string (RFC 9112 §7.1.1, RFC 9110 §5.6.4).
fn read_ext_value(state: State, b: u8) -> Result<State, BodyError> {
    match (state, b) {
        (State::ExtValueStart, b' ' | b'\t') => Ok(State::ExtValueStart),
        (State::ExtValueStart, b'"') => Ok(State::ExtQuoted),
        (State::ExtValueStart | State::ExtToken, _) if is_tchar(b) => Ok(State::ExtToken),
        (State::ExtQuoted, b'"') => Ok(State::ExtQuoteEnd),
        (State::ExtQuoted, b'\\') => Ok(State::ExtEscape),
        // RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
        (State::ExtQuoted, _) if is_qdtext(b) => Ok(State::ExtQuoted),
        // RFC 9110 §5.6.4: quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        (State::ExtEscape, _) if is_field_byte(b) => Ok(State::ExtQuoted),
        (State::ExtToken | State::ExtQuoteEnd | State::ExtValueBws, b' ' | b'\t') => {
            Ok(State::ExtValueBws)
        }
        (State::ExtToken | State::ExtQuoteEnd | State::ExtValueBws, b';') => Ok(State::ExtStart),
        _ => Err(BodyError::BadChunkExtension),
    }
}

/// trailer-section = *( field-line CRLF ), field-line = field-name ":" OWS field-value OWS
/// (RFC 9112 §7.1.2, §5). Trailers are checked and discarded.
fn read_trailer(state: State, b: u8) -> Result<State, BodyError> {
    match (state, b) {
        // A leading SP/HTAB is obs-fold (RFC 9112 §5.2), rejected like in the head.
        (State::TrailerStart | State::TrailerName, _) if is_tchar(b) => Ok(State::TrailerName),
        // RFC 9112 §5.1: no whitespace between field name and colon.
        (State::TrailerName, b':') => Ok(State::TrailerValue),
        // RFC 9110 §5.5: field-vchar, SP and HTAB only; no other control bytes.
        (State::TrailerValue, _) if is_field_byte(b) => Ok(State::TrailerValue),
        _ => Err(BodyError::BadTrailer),
    }
}

/// chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF (RFC 9112 §7.1).
fn read_data_crlf(state: State, b: u8) -> Result<State, BodyError> {
    match (state, b) {
        (State::DataCr, b'\r') => Ok(State::DataLf),
        (State::DataLf, b'\n') => Ok(State::SizeStart),
        _ => Err(BodyError::MissingChunkCrlf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How a whole run over some input ended.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Outcome {
        /// The body ended; the bytes left in the buffer after it.
        End(Vec<u8>),
        /// All input was consumed without reaching the end.
        NeedMore,
        Err(BodyError),
    }

    /// Calls `decode` until it stops making progress; appends returned data to `out`.
    fn drain(dec: &mut Decoder, buf: &mut BytesMut, out: &mut Vec<u8>) -> Option<Outcome> {
        loop {
            match dec.decode(buf) {
                Ok(Step::Data(data)) => {
                    assert!(!data.is_empty(), "empty Data step");
                    out.extend_from_slice(&data);
                }
                Ok(Step::NeedMore) => {
                    assert!(buf.is_empty(), "NeedMore left bytes in the buffer");
                    return None;
                }
                Ok(Step::End) => {
                    assert!(dec.is_end());
                    return Some(Outcome::End(buf.to_vec()));
                }
                Err(e) => {
                    assert_eq!(dec.decode(buf), Err(e), "error is sticky");
                    return Some(Outcome::Err(e));
                }
            }
        }
    }

    /// Feeds `pieces` one after the other, draining after each.
    fn run_pieces(mut dec: Decoder, pieces: &[&[u8]]) -> (Vec<u8>, Outcome) {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut last = drain(&mut dec, &mut buf, &mut out);
        for piece in pieces {
            if matches!(last, Some(Outcome::Err(_))) {
                break;
            }
            buf.extend_from_slice(piece);
            last = drain(&mut dec, &mut buf, &mut out);
        }
        let outcome = last.unwrap_or(Outcome::NeedMore);
        assert_eq!(dec.decoded_bytes(), out.len() as u64);
        (out, outcome)
    }

    /// Offsets to split `input` at: all of them for short inputs; for the long inputs of the
    /// limit tests, both ends and a stride, to keep the quadratic cost down (the byte-by-byte
    /// run still crosses every boundary).
    fn split_points(len: usize) -> Vec<usize> {
        if len <= 2048 {
            return (0..=len).collect();
        }
        let mut points: Vec<usize> = (0..64).chain(len - 64..=len).collect();
        points.extend((64..len - 64).step_by(len / 128));
        points
    }

    /// Runs `input` whole, split in two at every offset and one byte at a time; all runs must
    /// agree on the data and on how the run ended.
    fn check_every_split(dec: &Decoder, input: &[u8]) -> (Vec<u8>, Outcome) {
        if dec.is_chunked() {
            crate::fuzz_seeds::save("chunked", input);
        }
        let whole = run_pieces(dec.clone(), &[input]);
        for at in split_points(input.len()) {
            let (a, b) = input.split_at(at);
            let split = run_pieces(dec.clone(), &[a, b]);
            assert_eq!(split, whole, "split at {at} of {:?}", show(input));
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let one_by_one = run_pieces(dec.clone(), &bytes);
        assert_eq!(one_by_one, whole, "byte by byte: {:?}", show(input));
        whole
    }

    fn show(input: &[u8]) -> String {
        String::from_utf8_lossy(&input[..input.len().min(80)]).into_owned()
    }

    fn chunked_ok(input: &[u8], data: &[u8], rest: &[u8]) {
        let (out, outcome) = check_every_split(&Decoder::chunked(), input);
        assert_eq!(out, data, "data of {:?}", show(input));
        assert_eq!(
            outcome,
            Outcome::End(rest.to_vec()),
            "end of {:?}",
            show(input)
        );
    }

    fn chunked_err(input: &[u8], err: BodyError) {
        let (_, outcome) = check_every_split(&Decoder::chunked(), input);
        assert_eq!(outcome, Outcome::Err(err), "input {:?}", show(input));
    }

    #[test]
    fn valid_chunked_bodies() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (
                b"1b\r\nabcdefghijklmnopqrstuvwxyz!\r\n0\r\n\r\n",
                b"abcdefghijklmnopqrstuvwxyz!",
            ),
            (
                b"1B\r\nabcdefghijklmnopqrstuvwxyz!\r\n0\r\n\r\n",
                b"abcdefghijklmnopqrstuvwxyz!",
            ),
            (b"000a\r\n0123456789\r\n0000\r\n\r\n", b"0123456789"),
            (b"3\r\n\r\n\r\r\n0\r\n\r\n", b"\r\n\r"),
            (b"3;foo\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3;foo=bar\r\nabc\r\n0;x=1\r\n\r\n", b"abc"),
            (b"3 ; foo = bar ; baz\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3\t;\tfoo\t=\tbar\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3;a=\"quoted value\"\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3;a=\"esc \\\" \\\\ q\";b\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3;a=\"\" ;b=\"\xff\t\"\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3;a;b;c=d\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3;!#$%&'*+-.^_`|~=x\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3\r\nabc\r\n0\r\nExpires: never\r\n\r\n", b"abc"),
            (
                b"3\r\nabc\r\n0\r\nA: 1\r\nB:2 \r\nC:\r\nD: x\t\xffy\r\n\r\n",
                b"abc",
            ),
        ];
        for (input, data) in cases {
            chunked_ok(input, data, b"");
        }
    }

    #[test]
    fn pipelined_bytes_after_chunked_body_are_left_alone() {
        chunked_ok(
            b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            b"abc",
            b"GET / HTTP/1.1\r\n\r\n",
        );
        chunked_ok(b"0\r\n\r\n0\r\n\r\n", b"", b"0\r\n\r\n");
        chunked_ok(b"0\r\nX: y\r\n\r\n\n\r\x00", b"", b"\n\r\x00");
    }

    #[test]
    fn end_is_repeated_and_leaves_buffer_alone() {
        let mut dec = Decoder::chunked();
        let mut buf = BytesMut::from(&b"0\r\n\r\nrest"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(Step::End));
        assert_eq!(dec.decode(&mut buf), Ok(Step::End));
        assert_eq!(&buf[..], b"rest");
        assert_eq!(dec.check_eof(), Ok(()));
    }

    #[test]
    fn data_is_returned_as_soon_as_it_arrives() {
        let mut dec = Decoder::chunked();
        let mut buf = BytesMut::from(&b"ffff\r\nabc"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Step::Data(Bytes::from_static(b"abc")))
        );
        assert_eq!(dec.decode(&mut buf), Ok(Step::NeedMore));
        assert_eq!(dec.decoded_bytes(), 3);
        assert!(!dec.is_end());
        assert_eq!(dec.check_eof(), Err(BodyError::Truncated));
    }

    #[test]
    fn huge_announced_chunk_costs_nothing() {
        let mut dec = Decoder::chunked();
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"ffffffff\r\n0123456789");
        let capacity = buf.capacity();
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Step::Data(Bytes::from_static(b"0123456789")))
        );
        assert_eq!(dec.decode(&mut buf), Ok(Step::NeedMore));
        assert!(buf.capacity() <= capacity);
        // The decoder holds no buffer of its own, whatever was announced.
        assert!(std::mem::size_of::<Decoder>() <= 64);
        let (out, outcome) = check_every_split(&Decoder::chunked(), b"ffffffffffffffff\r\nxy");
        assert_eq!((out, outcome), (b"xy".to_vec(), Outcome::NeedMore));
    }

    #[test]
    fn invalid_chunk_sizes() {
        let cases: &[(&[u8], BodyError)] = &[
            (b"g\r\n", BodyError::BadChunkSize),
            (b"5g\r\nhello\r\n0\r\n\r\n", BodyError::BadChunkSize),
            (b"-1\r\n", BodyError::BadChunkSize),
            (b"+1\r\n", BodyError::BadChunkSize),
            (b"0x10\r\n", BodyError::BadChunkSize),
            (b" 5\r\nhello\r\n0\r\n\r\n", BodyError::BadChunkSize),
            (b"\t5\r\n", BodyError::BadChunkSize),
            (b"5 \r\nhello\r\n0\r\n\r\n", BodyError::BadChunkSize),
            (b"5\t\r\n", BodyError::BadChunkSize),
            (b"5 5\r\n", BodyError::BadChunkSize),
            (b"\r\n", BodyError::BadChunkSize),
            (b";a\r\n", BodyError::BadChunkSize),
            (b"3\r\nabc\r\n\r\n", BodyError::BadChunkSize),
            (b"1ffffffffffffffff\r\n", BodyError::ChunkSizeOverflow),
            (b"10000000000000000\r\n", BodyError::ChunkSizeOverflow),
        ];
        for (input, err) in cases {
            chunked_err(input, *err);
        }
        // 16 significant digits still fit, leading zeros are not significant.
        let (_, outcome) = check_every_split(&Decoder::chunked(), b"0000ffffffffffffffff\r\n");
        assert_eq!(outcome, Outcome::NeedMore);
    }

    #[test]
    fn bare_line_endings() {
        let cases: &[&[u8]] = &[
            b"\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\rhello\r\n0\r\n\r\n",
            b"5;a\nhello\r\n0\r\n\r\n",
            b"5;a\rb\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"x\ry\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=b\r\r\nhello\r\n0\r\n\r\n",
            b"5 \n",
            b"0\r\n\n",
            b"0\r\n\r\r\n",
            b"0\r\nA: b\n\r\n",
            b"0\r\nA: b\rc\r\n\r\n",
            b"0\r\nA\n",
        ];
        for input in cases {
            chunked_err(input, BodyError::BareLineEnding);
        }
    }

    #[test]
    fn missing_crlf_after_data() {
        let cases: &[&[u8]] = &[
            b"3\r\nabcX\r\n0\r\n\r\n",
            b"3\r\nabc\n0\r\n\r\n",
            b"3\r\nabc\rX0\r\n\r\n",
            b"3\r\nabc\r\r\n0\r\n\r\n",
            b"3\r\nabcd\r\n0\r\n\r\n",
        ];
        for input in cases {
            chunked_err(input, BodyError::MissingChunkCrlf);
        }
        // The data itself is still delivered before the framing error.
        let (out, _) = check_every_split(&Decoder::chunked(), b"3\r\nabcX");
        assert_eq!(out, b"abc");
    }

    #[test]
    fn invalid_chunk_extensions() {
        let cases: &[&[u8]] = &[
            b"3;\r\nabc\r\n0\r\n\r\n",
            b"3; \r\nabc\r\n0\r\n\r\n",
            b"3;;a\r\n",
            b"3; =x\r\n",
            b"3;=x\r\n",
            b"3;a=\r\n",
            b"3;a= \r\n",
            b"3;a \r\n",
            b"3;a=b \r\n",
            b"3;a=\"x\" \r\n",
            b"3;a=\"unterminated\r\nabc\r\n0\r\n\r\n",
            b"3;a=\"x\\\r\n",
            b"3;a=\"x\"y\r\n",
            b"3;a=b c\r\n",
            b"3;a b\r\n",
            b"3;a=b=c\r\n",
            b"3;a(b\r\n",
            b"3;a\x00\r\n",
            b"3;a=b\x01\r\n",
            b"3;a=\"\x7f\"\r\n",
            b"3;a=\"\\\x00\"\r\n",
            b"3;a\x7f\r\n",
            b"3;\xff\r\n",
        ];
        for input in cases {
            chunked_err(input, BodyError::BadChunkExtension);
        }
    }

    #[test]
    fn chunk_line_limit() {
        let line = |len: usize| {
            let mut line = b"1;a=".to_vec();
            line.resize(len - 2, b'b');
            line.extend_from_slice(b"\r\n");
            line
        };
        // Exactly at the limit, CRLF included.
        let mut ok = line(MAX_CHUNK_LINE_BYTES);
        ok.extend_from_slice(b"x\r\n0\r\n\r\n");
        chunked_ok(&ok, b"x", b"");
        let mut long = line(MAX_CHUNK_LINE_BYTES + 1);
        long.extend_from_slice(b"x\r\n0\r\n\r\n");
        chunked_err(&long, BodyError::ChunkLineTooLong);
        // Too long even though the line never ends.
        let mut open = b"1;a=".to_vec();
        open.resize(MAX_CHUNK_LINE_BYTES, b'b');
        let (_, outcome) = check_every_split(&Decoder::chunked(), &open);
        assert_eq!(outcome, Outcome::NeedMore);
        open.push(b'b');
        chunked_err(&open, BodyError::ChunkLineTooLong);
        // Leading zeros count too.
        chunked_err(
            &vec![b'0'; MAX_CHUNK_LINE_BYTES + 1],
            BodyError::ChunkLineTooLong,
        );
    }

    #[test]
    fn the_line_limit_is_per_line() {
        let mut input = Vec::new();
        for _ in 0..3 {
            let mut line = b"1;a=".to_vec();
            line.resize(MAX_CHUNK_LINE_BYTES - 2, b'b');
            input.extend_from_slice(&line);
            input.extend_from_slice(b"\r\nx\r\n");
        }
        input.extend_from_slice(b"0\r\n\r\n");
        chunked_ok(&input, b"xxx", b"");
    }

    #[test]
    fn invalid_trailers() {
        let cases: &[&[u8]] = &[
            b"0\r\nA: b\r\n folded\r\n\r\n",
            b"0\r\nA: b\r\n\tfolded\r\n\r\n",
            b"0\r\n leading: x\r\n\r\n",
            b"0\r\nNoColon\r\n\r\n",
            b"0\r\nA : b\r\n\r\n",
            b"0\r\nA\t: b\r\n\r\n",
            b"0\r\n: b\r\n\r\n",
            b"0\r\nA(b: c\r\n\r\n",
            b"0\r\nA: b\x00c\r\n\r\n",
            b"0\r\nA: b\x7f\r\n\r\n",
            b"0\r\nA: \x1b[31m\r\n\r\n",
        ];
        for input in cases {
            chunked_err(input, BodyError::BadTrailer);
        }
    }

    #[test]
    fn trailer_limit() {
        let trailers = |len: usize| {
            let mut body = b"0\r\n".to_vec();
            let mut line = b"X:".to_vec();
            line.resize(len - 4, b'v');
            body.extend_from_slice(&line);
            body.extend_from_slice(b"\r\n\r\n");
            body
        };
        chunked_ok(&trailers(MAX_TRAILER_BYTES), b"", b"");
        chunked_err(
            &trailers(MAX_TRAILER_BYTES + 1),
            BodyError::TrailersTooLarge,
        );
        // Many small lines add up.
        let mut many = b"0\r\n".to_vec();
        for _ in 0..(MAX_TRAILER_BYTES / 6 + 1) {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        chunked_err(&many, BodyError::TrailersTooLarge);
    }

    #[test]
    fn limit_on_decoded_size() {
        let input = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let (out, outcome) = check_every_split(&Decoder::chunked().with_limit(11), input);
        assert_eq!(
            (out, outcome),
            (b"hello world".to_vec(), Outcome::End(vec![]))
        );
        let (out, outcome) = check_every_split(&Decoder::chunked().with_limit(10), input);
        assert_eq!(
            (out, outcome),
            (b"hello".to_vec(), Outcome::Err(BodyError::TooLarge))
        );
        let (out, outcome) = check_every_split(&Decoder::chunked().with_limit(0), b"1\r\n");
        assert_eq!((out, outcome), (vec![], Outcome::Err(BodyError::TooLarge)));
        let (_, outcome) = check_every_split(&Decoder::chunked().with_limit(0), b"0\r\n\r\n");
        assert_eq!(outcome, Outcome::End(vec![]));
    }

    #[test]
    fn with_limit_ignores_length_decoders() {
        let dec = Decoder::length(5).with_limit(1);
        let (out, outcome) = check_every_split(&dec, b"hello");
        assert_eq!((out, outcome), (b"hello".to_vec(), Outcome::End(vec![])));
    }

    #[test]
    fn length_bodies() {
        let cases: &[(u64, &[u8], &[u8], Outcome)] = &[
            (0, b"", b"", Outcome::End(vec![])),
            (0, b"GET", b"", Outcome::End(b"GET".to_vec())),
            (5, b"hello", b"hello", Outcome::End(vec![])),
            (5, b"hel", b"hel", Outcome::NeedMore),
            (
                5,
                b"helloGET / HTTP/1.1\r\n",
                b"hello",
                Outcome::End(b"GET / HTTP/1.1\r\n".to_vec()),
            ),
            (3, b"\r\n\n", b"\r\n\n", Outcome::End(vec![])),
        ];
        for (len, input, data, outcome) in cases {
            let whole = check_every_split(&Decoder::length(*len), input);
            assert_eq!(whole, (data.to_vec(), outcome.clone()), "length {len}");
        }
    }

    #[test]
    fn length_decoder_accessors() {
        let mut dec = Decoder::length(4);
        assert!(!dec.is_chunked());
        assert_eq!(dec.remaining(), Some(4));
        let mut buf = BytesMut::from(&b"ab"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Step::Data(Bytes::from_static(b"ab")))
        );
        assert_eq!((dec.remaining(), dec.decoded_bytes()), (Some(2), 2));
        assert_eq!(dec.decode(&mut buf), Ok(Step::NeedMore));
        assert_eq!(dec.check_eof(), Err(BodyError::Truncated));
        buf.extend_from_slice(b"cdef");
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Step::Data(Bytes::from_static(b"cd")))
        );
        assert!(dec.is_end());
        assert_eq!(dec.decode(&mut buf), Ok(Step::End));
        assert_eq!(&buf[..], b"ef");
        let mut empty = Decoder::empty();
        assert!(empty.is_end());
        assert_eq!(empty.decode(&mut BytesMut::new()), Ok(Step::End));
        assert!(Decoder::chunked().is_chunked());
        assert_eq!(Decoder::chunked().remaining(), None);
    }

    #[test]
    fn length_body_larger_than_usize_is_streamed() {
        let mut dec = Decoder::length(u64::MAX);
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Step::Data(Bytes::from_static(b"abc")))
        );
        assert_eq!(dec.remaining(), Some(u64::MAX - 3));
    }

    #[test]
    fn data_is_split_off_without_copying() {
        let mut dec = Decoder::chunked();
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n"[..]);
        let start = buf.as_ptr() as usize;
        let Ok(Step::Data(data)) = dec.decode(&mut buf) else {
            panic!("expected data");
        };
        assert_eq!(data.as_ptr() as usize, start + 3);
    }

    #[test]
    fn error_statuses_and_messages() {
        let all = [
            BodyError::BadChunkSize,
            BodyError::ChunkSizeOverflow,
            BodyError::BadChunkExtension,
            BodyError::ChunkLineTooLong,
            BodyError::BareLineEnding,
            BodyError::MissingChunkCrlf,
            BodyError::BadTrailer,
            BodyError::TrailersTooLarge,
            BodyError::TooLarge,
            BodyError::Truncated,
        ];
        for e in all {
            let expected = if e == BodyError::TooLarge { 413 } else { 400 };
            assert_eq!(e.status(), expected, "{e:?}");
            assert_eq!(e.to_string(), e.as_str());
            assert!(!e.as_str().is_empty());
        }
        assert_eq!(BodyError::BadChunkSize.to_string(), "bad chunk size");
    }
}
