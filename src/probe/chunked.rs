//! The probe's reader for a chunked response body (RFC 9112 §7.1): a small state machine over
//! bytes that counts payload and discards it, so a peer announcing a huge chunk costs nothing.
//! Strict on purpose: a probe that reports malformed framing is more useful than one that
//! guesses, and every byte it does not understand ends the response with an error.

use super::error::ResponseError;

/// Longest chunk extension the probe skips, in bytes (as hyper's client).
pub(super) const MAX_EXTENSION_BYTES: usize = 16 * 1024;
/// Longest trailer section the probe skips, in bytes (as hyper's client).
pub(super) const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Hex digits in a chunk size: 16 of them already fill a u64.
const MAX_SIZE_DIGITS: u8 = 16;

/// Where the decoder is in the chunked grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// Blanks after the size, before `;` or CR (RFC 9112 §7.1.1 BWS).
    SizeBlank,
    /// A chunk extension, skipped up to CR.
    Extension,
    /// The LF ending a size line.
    SizeLf,
    /// Chunk payload.
    Data,
    /// The CR after chunk payload.
    DataCr,
    /// The LF after chunk payload.
    DataLf,
    /// The start of a trailer line, or of the final empty line.
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// The LF ending a trailer line.
    TrailerLf,
    /// The LF of the final empty line.
    EndLf,
    /// The body is complete; bytes after it belong to the next response.
    Done,
}

/// What one call of a body decoder did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Progress {
    /// Input bytes used (framing and payload); the rest belongs to the next response.
    pub consumed: usize,
    /// Payload bytes among them.
    pub payload: usize,
}

/// Decodes one chunked body, counting its payload.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChunkedDecoder {
    state: State,
    /// The size being read, then the payload left in the current chunk.
    size: u64,
    digits: u8,
    extension: usize,
    trailers: usize,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub(super) fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            extension: 0,
            trailers: 0,
        }
    }

    /// Whether the last chunk and the trailer section have been read.
    pub(super) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing and payload from `input` up to the end of the body.
    pub(super) fn decode(&mut self, input: &[u8]) -> Result<Progress, ResponseError> {
        let mut progress = Progress::default();
        while progress.consumed < input.len() && !self.is_done() {
            let rest = &input[progress.consumed..];
            if self.state == State::Data {
                let n = rest
                    .len()
                    .min(usize::try_from(self.size).unwrap_or(usize::MAX));
                progress.consumed += n;
                progress.payload += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            progress.consumed += 1;
            self.state = self.step(rest[0])?;
        }
        Ok(progress)
    }

    /// One framing byte.
    fn step(&mut self, b: u8) -> Result<State, ResponseError> {
        match self.state {
            State::Size => self.read_size(b),
            State::SizeBlank => read_size_blank(b),
            State::Extension => self.read_extension(b),
            State::SizeLf => self.read_size_lf(b),
            State::DataCr => expect(b, b'\r', State::DataLf, ResponseError::ChunkDataEnd),
            State::DataLf => {
                self.size = 0;
                self.digits = 0;
                self.extension = 0;
                expect(b, b'\n', State::Size, ResponseError::ChunkDataEnd)
            }
            State::TrailerStart if b == b'\r' => Ok(State::EndLf),
            State::TrailerStart | State::Trailer => self.read_trailer(b),
            State::TrailerLf => expect(b, b'\n', State::TrailerStart, ResponseError::Trailers),
            State::EndLf => expect(b, b'\n', State::Done, ResponseError::Trailers),
            // `decode` handles payload in bulk and stops at the end of the body.
            State::Data | State::Done => Ok(self.state),
        }
    }

    fn read_size(&mut self, b: u8) -> Result<State, ResponseError> {
        if let Some(digit) = char::from(b).to_digit(16) {
            if self.digits == MAX_SIZE_DIGITS {
                return Err(ResponseError::ChunkSize);
            }
            self.digits += 1;
            self.size = self.size * 16 + u64::from(digit);
            return Ok(State::Size);
        }
        if self.digits == 0 {
            return Err(ResponseError::ChunkSize);
        }
        match b {
            b' ' | b'\t' => Ok(State::SizeBlank),
            b';' => Ok(State::Extension),
            b'\r' => Ok(State::SizeLf),
            _ => Err(ResponseError::ChunkSize),
        }
    }

    fn read_extension(&mut self, b: u8) -> Result<State, ResponseError> {
        match b {
            b'\r' => Ok(State::SizeLf),
            b'\n' => Err(ResponseError::ChunkSize),
            _ if self.extension == MAX_EXTENSION_BYTES => Err(ResponseError::ChunkExtension),
            _ => {
                self.extension += 1;
                Ok(State::Extension)
            }
        }
    }

    fn read_size_lf(&mut self, b: u8) -> Result<State, ResponseError> {
        let next = if self.size == 0 {
            State::TrailerStart // RFC 9112 §7.1: last-chunk, then the trailer section
        } else {
            State::Data
        };
        expect(b, b'\n', next, ResponseError::ChunkSize)
    }

    fn read_trailer(&mut self, b: u8) -> Result<State, ResponseError> {
        if self.trailers == MAX_TRAILER_BYTES {
            return Err(ResponseError::Trailers);
        }
        self.trailers += 1;
        match b {
            b'\r' => Ok(State::TrailerLf),
            b'\n' => Err(ResponseError::Trailers),
            _ => Ok(State::Trailer),
        }
    }
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

fn read_size_blank(b: u8) -> Result<State, ResponseError> {
    match b {
        b' ' | b'\t' => Ok(State::SizeBlank),
        b';' => Ok(State::Extension),
        b'\r' => Ok(State::SizeLf),
        _ => Err(ResponseError::ChunkSize),
    }
}

/// `next` if `b` is `want`, else `err`: bare CR or LF in the framing is never accepted.
fn expect(b: u8, want: u8, next: State, err: ResponseError) -> Result<State, ResponseError> {
    if b == want {
        Ok(next)
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces split at `cuts`; returns (payload, consumed, done).
    fn decode_split(input: &[u8], cuts: &[usize]) -> Result<(usize, usize, bool), ResponseError> {
        let mut d = ChunkedDecoder::new();
        let (mut payload, mut consumed, mut start) = (0, 0, 0);
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            let piece = &input[start..end];
            let mut offset = 0;
            while offset < piece.len() && !d.is_done() {
                let p = d.decode(&piece[offset..])?;
                offset += p.consumed;
                consumed += p.consumed;
                payload += p.payload;
            }
            start = end;
        }
        Ok((payload, consumed, d.is_done()))
    }

    /// Every split of `input` into two pieces gives the same answer as no split.
    fn decode_every_split(input: &[u8]) -> Result<(usize, usize, bool), ResponseError> {
        let whole = decode_split(input, &[]);
        for cut in 0..=input.len() {
            assert_eq!(decode_split(input, &[cut]), whole, "split at {cut}");
        }
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(decode_split(input, &bytewise), whole, "byte by byte");
        whole
    }

    #[test]
    fn counts_payload_and_stops_at_the_end() {
        let body = b"7\r\ntick 1\n\r\n7\r\ntick 2\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
        assert_eq!(decode_every_split(body), Ok((14, 29, true)));
    }

    #[test]
    fn skips_extensions_blanks_and_trailers() {
        let body = b"A ;name=value\r\n0123456789\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n";
        assert_eq!(decode_every_split(body), Ok((10, body.len(), true)));
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        assert_eq!(decode_every_split(b"5\r\nabc"), Ok((3, 6, false)));
        assert_eq!(decode_every_split(b"0\r\n"), Ok((0, 3, false)));
    }

    #[test]
    fn a_huge_announced_chunk_is_only_counted() {
        assert_eq!(
            decode_every_split(b"ffffffffffffffff\r\nabc"),
            Ok((3, 21, false))
        );
        assert_eq!(
            decode_split(b"10000000000000000\r\n", &[]),
            Err(ResponseError::ChunkSize)
        );
    }

    #[test]
    fn malformed_framing_is_an_error() {
        for (input, err) in [
            (&b"\r\n"[..], ResponseError::ChunkSize),
            (b"x\r\n", ResponseError::ChunkSize),
            (b"-1\r\n", ResponseError::ChunkSize),
            (b"5\n", ResponseError::ChunkSize),
            (b"5;ext\n", ResponseError::ChunkSize),
            (b"5\r\r", ResponseError::ChunkSize),
            (b"2\r\nabX", ResponseError::ChunkDataEnd),
            (b"2\r\nab\rX", ResponseError::ChunkDataEnd),
            (b"2\r\nab\n", ResponseError::ChunkDataEnd),
            (b"0\r\nX: 1\n", ResponseError::Trailers),
            (b"0\r\n\rX", ResponseError::Trailers),
        ] {
            assert_eq!(
                decode_every_split(input),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn extensions_and_trailers_are_bounded() {
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(2 + MAX_EXTENSION_BYTES + 1, b'a');
        assert_eq!(
            decode_split(&long_ext, &[]),
            Err(ResponseError::ChunkExtension)
        );
        let mut long_trailer = b"0\r\n".to_vec();
        long_trailer.resize(3 + MAX_TRAILER_BYTES + 1, b'a');
        assert_eq!(
            decode_split(&long_trailer, &[]),
            Err(ResponseError::Trailers)
        );
    }
}
