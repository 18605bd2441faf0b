//! Response framing pieces: chunk headers and whole chunks (RFC 9112 §7.1), reason phrases
//! (RFC 9110 §15) and the `Date` value (RFC 9110 §5.6.7).
//!
//! Sans-IO and allocation-free where it matters: the response writer decides the framing and
//! copies these bytes into its output buffer.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

/// The last chunk and an empty trailer section: sent only when the body is known complete.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The line terminator, also the end of each chunk's data.
pub const CRLF: &[u8] = b"\r\n";

/// Hex digits of a `u64` plus CRLF.
const CHUNK_HEADER_CAPACITY: usize = 18;

/// A chunk header (`"{len:x}\r\n"`, lowercase hex) built without allocation.
#[derive(Clone, Copy)]
pub struct ChunkHeader {
    buf: [u8; CHUNK_HEADER_CAPACITY],
    len: u8,
}

impl ChunkHeader {
    /// The header for a chunk of `len` data bytes.
    pub fn new(len: usize) -> ChunkHeader {
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
    pub fn as_bytes(&self) -> &[u8] {
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

/// Reason phrase for a status code (IANA HTTP Status Code Registry, RFC 9110 §15); "" for
/// codes the registry does not assign.
pub fn reason(status: u16) -> &'static str {
    match status {
        100..=199 => reason_1xx(status),
        200..=299 => reason_2xx(status),
        300..=399 => reason_3xx(status),
        400..=499 => reason_4xx(status),
        500..=599 => reason_5xx(status),
        _ => "",
    }
}

fn reason_1xx(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        _ => "",
    }
}

fn reason_2xx(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        _ => "",
    }
}

fn reason_3xx(status: u16) -> &'static str {
    match status {
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        _ => "",
    }
}

fn reason_4xx(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        // RFC 9110 §15.5.14 renamed "Payload Too Large".
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        // RFC 9110 §15.5.21 renamed "Unprocessable Entity".
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        _ => "",
    }
}

fn reason_5xx(status: u16) -> &'static str {
    match status {
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Seconds from the epoch to 9999-12-31T23:59:59Z, the last instant IMF-fixdate can write.
const MAX_HTTP_DATE_SECS: u64 = 253_402_300_799;

const SECS_PER_DAY: u64 = 86_400;

/// A UTC calendar date and time of day, for the `Date` header and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year, 1970..=9999.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
    /// Day of the week, 0 = Sunday ..= 6 = Saturday.
    pub weekday: u8,
}

impl Civil {
    /// The UTC date and time of `t`, to the second. Instants before 1970 give the epoch and
    /// instants after 9999 give its last second, so every field fits its fixed-width form.
    pub fn from_system_time(t: SystemTime) -> Civil {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .min(MAX_HTTP_DATE_SECS);
        let days = secs / SECS_PER_DAY;
        let time = secs % SECS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year: year as u16,
            month: month as u8,
            day: day as u8,
            hour: (time / 3600) as u8,
            minute: (time % 3600 / 60) as u8,
            second: (time % 60) as u8,
            // 1970-01-01 was a Thursday.
            weekday: ((days + 4) % 7) as u8,
        }
    }
}

/// An HTTP date (IMF-fixdate, RFC 9110 §5.6.7) for `t`, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
/// Instants before 1970 are written as the epoch and after 9999 as its last second, so the
/// value always has the fixed 29-byte form.
pub fn http_date(t: SystemTime) -> String {
    let c = Civil::from_system_time(t);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        weekday_name(c.weekday),
        c.day,
        month_name(c.month),
        c.year,
        c.hour,
        c.minute,
        c.second,
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, restricted to non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn weekday_name(weekday: u8) -> &'static str {
    const NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    NAMES.get(usize::from(weekday)).copied().unwrap_or("Sun")
}

fn month_name(month: u8) -> &'static str {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    NAMES
        .get(usize::from(month).wrapping_sub(1))
        .copied()
        .unwrap_or("Jan")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    #[test]
    fn reason_phrases() {
        let cases = [
            (100, "Continue"),
            (200, "OK"),
            (204, "No Content"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (404, "Not Found"),
            (408, "Request Timeout"),
            (413, "Content Too Large"),
            (414, "URI Too Long"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (502, "Bad Gateway"),
            (503, "Service Unavailable"),
            (504, "Gateway Timeout"),
            (505, "HTTP Version Not Supported"),
        ];
        for (status, phrase) in cases {
            assert_eq!(reason(status), phrase, "{status}");
        }
        for unknown in [0, 99, 199, 299, 306, 418, 499, 599, 600, 999, u16::MAX] {
            assert_eq!(reason(unknown), "", "{unknown}");
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn http_dates() {
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (1_709_251_200, "Fri, 01 Mar 2024 00:00:00 GMT"),
            (1_795_182_310, "Fri, 20 Nov 2026 13:45:10 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (MAX_HTTP_DATE_SECS, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, expected) in cases {
            assert_eq!(http_date(at(secs)), expected, "{secs}");
        }
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(http_date(before), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(at(u64::MAX / 2)), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(http_date(SystemTime::now()).len(), 29);
    }

    #[test]
    fn civil_fields() {
        let c = Civil::from_system_time(at(1_795_182_310));
        let expected = Civil {
            year: 2026,
            month: 11,
            day: 20,
            hour: 13,
            minute: 45,
            second: 10,
            weekday: 5,
        };
        assert_eq!(c, expected);
        assert_eq!(Civil::from_system_time(UNIX_EPOCH).weekday, 4);
    }

    #[test]
    fn calendar_agrees_with_day_by_day_count() {
        let mut civil = (1970u64, 1u64, 1u64);
        for days in 0..150_000u64 {
            assert_eq!(civil_from_days(days), civil, "day {days}");
            let (y, m, d) = civil;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            civil = match (d < month_len, m < 12) {
                (true, _) => (y, m, d + 1),
                (false, true) => (y, m + 1, 1),
                (false, false) => (y + 1, 1, 1),
            };
        }
    }
}
