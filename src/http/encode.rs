//! Response framing pieces: chunk headers and whole chunks (RFC 9112 §7.1).
//!
//! Sans-IO and allocation-free where it matters: the response writer decides the framing and
//! copies these bytes into its output buffer.

use bytes::BytesMut;

/// The last chunk and an empty trailer section: sent only when the body is known complete.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The line terminator, also the end of each chunk's data.
pub(crate) const CRLF: &[u8] = b"\r\n";

/// Hex digits of a `u64` plus CRLF.
const CHUNK_HEADER_CAPACITY: usize = 18;

/// A chunk header (`"{len:x}\r\n"`, lowercase hex) built without allocation.
#[derive(Clone, Copy)]
pub(crate) struct ChunkHeader {
    buf: [u8; CHUNK_HEADER_CAPACITY],
    len: u8,
}

impl ChunkHeader {
    /// The header for a chunk of `len` data bytes.
    pub(crate) fn new(len: usize) -> ChunkHeader {
        let value = len as u64;
        // RFC 9112 §7.1: chunk-size = 1*HEXDIG, so zero still takes one digit.
        let digits = (64 - value.leading_zeros()).div_ceil(4).max(1) as usize;
        let mut buf = [0u8; CHUNK_HEADER_CAPACITY];
        for (i, slot) in buf.iter_mut().take(digits).enumerate() {
            let shift = 4 * (digits - 1 - i);
            *slot = hex_digit((value >> shift) as u8 & 0xf);
        }
        for (slot, &b) in buf.iter_mut().skip(digits).zip(CRLF) {
            *slot = b;
        }
        ChunkHeader {
            buf,
            len: (digits + CRLF.len()) as u8,
        }
    }

    /// The header bytes, size and CRLF.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl std::fmt::Debug for ChunkHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ChunkHeader")
            .field(&String::from_utf8_lossy(self.as_bytes()))
            .finish()
    }
}

fn hex_digit(nibble: u8) -> u8 {
    if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' + nibble - 10
    }
}

/// Appends one whole chunk (header, data, CRLF) to `dst`. Zero-length data appends nothing:
/// an empty chunk is the last chunk and would end the body (RFC 9112 §7.1).
pub fn encode_chunk(dst: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let header = ChunkHeader::new(data.len());
    dst.reserve(header.as_bytes().len() + data.len() + CRLF.len());
    dst.extend_from_slice(header.as_bytes());
    dst.extend_from_slice(data);
    dst.extend_from_slice(CRLF);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_header_bytes() {
        let cases: &[(usize, &[u8])] = &[
            (0, b"0\r\n"),
            (1, b"1\r\n"),
            (15, b"f\r\n"),
            (16, b"10\r\n"),
            (255, b"ff\r\n"),
            (4096, b"1000\r\n"),
            (0xdead_beef, b"deadbeef\r\n"),
        ];
        for (len, bytes) in cases {
            assert_eq!(ChunkHeader::new(*len).as_bytes(), *bytes, "len {len}");
        }
        let max = format!("{:x}\r\n", usize::MAX);
        assert_eq!(ChunkHeader::new(usize::MAX).as_bytes(), max.as_bytes());
        #[cfg(target_pointer_width = "64")]
        assert_eq!(
            ChunkHeader::new(usize::MAX).as_bytes(),
            b"ffffffffffffffff\r\n"
        );
    }

    #[test]
    fn chunk_header_matches_format_for_every_width() {
        for shift in 0..usize::BITS {
            for len in [
                1usize << shift,
                (1usize << shift) - 1,
                (1usize << shift) + 1,
            ] {
                let expected = format!("{len:x}\r\n");
                assert_eq!(ChunkHeader::new(len).as_bytes(), expected.as_bytes());
            }
        }
    }

    #[test]
    fn encode_chunk_exact_output() {
        let mut dst = BytesMut::new();
        encode_chunk(&mut dst, b"hello");
        assert_eq!(&dst[..], b"5\r\nhello\r\n");
        encode_chunk(&mut dst, b"");
        assert_eq!(&dst[..], b"5\r\nhello\r\n", "empty data appends nothing");
        encode_chunk(&mut dst, &[b'x'; 26]);
        let mut expected = b"5\r\nhello\r\n1a\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 26]);
        expected.extend_from_slice(b"\r\n");
        assert_eq!(&dst[..], &expected[..]);
    }

    /// A minimal chunked reader, independent of the crate's decoder.
    fn reference_decode(mut wire: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line_end = wire
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("size line");
            let size_text = std::str::from_utf8(&wire[..line_end]).expect("ascii size");
            let size = usize::from_str_radix(size_text, 16).expect("hex size");
            wire = &wire[line_end + 2..];
            if size == 0 {
                assert_eq!(wire, b"\r\n", "empty trailer section");
                return out;
            }
            out.extend_from_slice(&wire[..size]);
            assert_eq!(&wire[size..size + 2], b"\r\n");
            wire = &wire[size + 2..];
        }
    }

    #[test]
    fn encode_then_decode_round_trip() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for piece in [1, 2, 15, 16, 17, 255, 256, 4096, 10_000] {
            let mut wire = BytesMut::new();
            for chunk in body.chunks(piece) {
                encode_chunk(&mut wire, chunk);
            }
            encode_chunk(&mut wire, b"");
            wire.extend_from_slice(LAST_CHUNK);
            assert_eq!(reference_decode(&wire), body, "pieces of {piece}");
        }
    }
}
