//! Request head parsing and validation: the request line, the header fields, and the decisions
//! that follow from them — body framing and the client's keep-alive intent (RFC 9112 §2–§3,
//! §5–§6, §9.3; RFC 9110 §5, §7.2, §8.6, §10.1.1).
//!
//! Sans-IO: [`parse`] looks at the bytes read so far and answers "need more" (`Ok(None)`), a
//! complete [`RequestHead`] split zero-copy off the front of the buffer, or a [`HeadError`] that
//! maps to exactly one status ([`HeadError::status`]). Every error means the connection closes.
//!
//! The head is read in two passes. A scan in byte order enforces the line discipline, the size
//! limits and the request line as soon as each arrives, so a bad request fails early and any
//! prefix of an input yields either `Ok(None)` or the same error as the whole input. Once the
//! empty line has arrived, httparse splits the header fields and their meaning is checked.
//!
//! Strictness (deliberately stricter than Apache; where the RFCs leave a choice, we reject):
//! - Every line ends in CRLF; a bare LF or a CR not followed by LF is a 400, even though the
//!   RFC lets a recipient accept a bare LF (RFC 9112 §2.2). At most
//!   [`MAX_LEADING_EMPTY_LINES`] empty lines are skipped before the request line.
//! - The head is measured from the first byte of the buffer (skipped empty lines included)
//!   through the final CRLFCRLF. Past `max_head_bytes`: 414 if the request line has not ended
//!   within the limit, else 431. More than `max_headers` fields: 431.
//! - Request line: exactly `method SP target SP version`, single spaces, no HTAB. The version is
//!   exactly `HTTP/1.0` or `HTTP/1.1`; any other `HTTP/` DIGIT [ "." DIGIT ] is 505, including
//!   `HTTP/1.2` (RFC 9110 §2.5 would let us serve it as 1.1; we refuse) and the HTTP/2 preface
//!   (`PRI * HTTP/2.0`); anything else (`http/1.1`, `HTTP/1.10`, no version) is 400.
//! - Request target: origin-form; absolute-form with the `http`/`https` scheme only, a non-empty
//!   host, no userinfo; `*` only with OPTIONS; authority-form (`host:port`, port required) only
//!   with CONNECT, and CONNECT only with authority-form. Bytes 0x21..=0x7E except `#`; `%` must
//!   start a `%HH` escape. ``"<>\^`{|}`` are tolerated, as nginx and Apache do.
//! - Header fields: names are tokens; no whitespace before the colon; no obs-fold (nor a
//!   whitespace-led line right after the request line, RFC 9112 §2.2); values are VCHAR, SP,
//!   HTAB and obs-text only (so NUL, other controls and DEL are 400).
//! - Host: exactly one on HTTP/1.1, at most one on HTTP/1.0. Its value is empty or
//!   `uri-host [":" port]` with a non-empty host and a port of at most 65535 (an empty port after
//!   the colon is allowed, as RFC 3986 §3.2.3 does). IPv6 literals must parse; IPvFuture and
//!   zone identifiers are refused. An absolute-form authority wins over the Host header.
//! - Content-Length: 1*DIGIT fitting a u64. Repeated fields and comma lists are accepted only
//!   if every element has the same value; an empty element is 400. Over `max_body_bytes`: 413.
//!   `Content-Length: 0` is reported as `Length(0)`, not `None`.
//! - Transfer-Encoding: refused on HTTP/1.0 and together with Content-Length (in any order).
//!   All fields form one list; empty elements are skipped but a field with no element is 400.
//!   Codings are bare tokens, case-insensitive; parameters (`;x=y`) and quotes are 400. The
//!   list must end in exactly one `chunked` (else 400); any coding before it is 501, since we
//!   implement none. Without CL and TE a request has no body; never close-delimited.
//! - Connection: a list of tokens (anything else is 400); `close` wins over `keep-alive`.
//! - Expect on HTTP/1.1: only `100-continue` (case-insensitive); anything else, parameters
//!   included, is 417; an empty Expect is no expectation. Every Expect field is ignored on
//!   HTTP/1.0, even one we would refuse on 1.1.
//! - Methods are any token, compared case-sensitively (`HEAD`, `OPTIONS`, `CONNECT`).
//!
//! Each call scans from the start of the buffer, so a client that trickles its head one byte
//! per read costs O(max_head_bytes²) bytes of scanning over the whole head; the header timeout
//! bounds it.

use std::fmt;
use std::net::Ipv6Addr;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::status;
use super::syntax::{is_field_value, is_token, parse_decimal, split_list, trim_ows};

/// Default for [`Limits::max_head_bytes`]: request line plus header fields, in bytes (64 KiB).
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 * 1024;

/// Default for [`Limits::max_headers`]: header field lines per request.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Default for [`Limits::max_body_bytes`]: largest accepted Content-Length, in bytes (16 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// Most empty lines (CRLF) skipped before a request line; RFC 9112 §2.2 asks for at least one.
/// One more is [`HeadError::BadRequestLine`].
pub const MAX_LEADING_EMPTY_LINES: usize = 4;

/// The protocol version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

impl Version {
    /// The version as written on the wire, e.g. `"HTTP/1.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No Content-Length and no Transfer-Encoding: the request has no body.
    None,
    /// `Content-Length: n` (possibly 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// One header field line, sharing the memory of the request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name as sent (a token, so ASCII).
    pub name: Bytes,
    /// The field value with leading and trailing SP/HTAB removed.
    pub value: Bytes,
}

impl Header {
    /// The field name as text.
    pub fn name_str(&self) -> &str {
        ascii_str(&self.name)
    }

    /// The field value as text, or `None` if it holds obs-text that is not UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// The limits a request head must respect (config keys `max_head_bytes`, `max_headers`,
/// `max_body_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest head, in bytes, from the first byte through the final CRLFCRLF (→ 414 / 431).
    pub max_head_bytes: usize,
    /// Most header field lines (→ 431).
    pub max_headers: usize,
    /// Largest Content-Length, in bytes (→ 413).
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Which of the four request-target forms was sent (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetForm {
    Origin,
    Absolute,
    Authority,
    Asterisk,
}

/// Where the parts of a request-target lie, as ranges into the target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TargetParts {
    form: TargetForm,
    path: Range<usize>,
    query: Range<usize>,
    authority: Range<usize>,
}

/// A parsed and validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, a token, compared case-sensitively.
    pub method: Bytes,
    /// The raw request-target as sent.
    pub target: Bytes,
    /// The protocol version.
    pub version: Version,
    /// Every header field line, in order.
    pub headers: Vec<Header>,
    /// How the body that follows the head is framed.
    pub body: BodyFraming,
    /// Client's keep-alive intent: 1.1 unless "Connection: close"; 1.0 only with
    /// "Connection: keep-alive" (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// "Expect: 100-continue" on HTTP/1.1 (ignored on 1.0 per RFC 9110 §10.1.1).
    pub expect_continue: bool,
    parts: TargetParts,
    host_field: Option<usize>,
}

impl RequestHead {
    /// The method as text.
    pub fn method_str(&self) -> &str {
        ascii_str(&self.method)
    }

    /// The raw request-target as text.
    pub fn target_str(&self) -> &str {
        ascii_str(&self.target)
    }

    /// The path part of the target (origin-form: up to '?'; absolute-form: the path after the
    /// authority, "/" if empty; asterisk-form: "*"; authority-form: ""). Raw, not decoded.
    pub fn path(&self) -> &str {
        let path = self.target_part(&self.parts.path);
        if path.is_empty() && self.parts.form == TargetForm::Absolute {
            "/"
        } else {
            path
        }
    }

    /// Raw query after the first '?', "" if none.
    pub fn query(&self) -> &str {
        self.target_part(&self.parts.query)
    }

    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|h| is_named(h, name))
            .map(|h| &h.value)
    }

    /// All values of a header, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
        values(&self.headers, name)
    }

    /// The effective host: authority of an absolute-form target, else the Host header
    /// (RFC 9112 §3.2.2); may be "".
    pub fn host(&self) -> &str {
        if self.parts.form == TargetForm::Absolute {
            return self.target_part(&self.parts.authority);
        }
        self.host_field
            .and_then(|i| self.headers.get(i))
            .map_or("", |h| ascii_str(&h.value))
    }

    /// Whether the method is `HEAD`, whose response carries no body.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    fn target_part(&self, range: &Range<usize>) -> &str {
        self.target_str().get(range.clone()).unwrap_or("")
    }
}

/// Why a request head was refused. Each variant maps to one status in [`HeadError::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The request line is not `method SP target SP version` (extra or missing spaces, no
    /// version as in HTTP/0.9, leading whitespace, too many leading empty lines).
    BadRequestLine,
    /// The method is not a token.
    BadMethod,
    /// The request-target has a form or a byte we refuse.
    BadTarget,
    /// The version is not `HTTP/` DIGIT [ "." DIGIT ] (e.g. lowercase `http/1.1`).
    BadVersion,
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1.
    UnsupportedVersion,
    /// A line ends in LF without CR.
    BareLineEnding,
    /// A CR is not followed by LF.
    BareCarriageReturn,
    /// A header line starts with SP or HTAB (obs-fold).
    ObsFold,
    /// A header name is empty, not a token, or has no colon after it.
    BadHeaderName,
    /// Whitespace between a header name and its colon.
    SpaceBeforeColon,
    /// A header value holds a control byte or DEL.
    BadHeaderValue,
    /// No Host header on HTTP/1.1.
    MissingHost,
    /// More than one Host header.
    DuplicateHost,
    /// The Host value is not `uri-host [":" port]`.
    BadHost,
    /// Content-Length is malformed, overflows, or its values differ.
    BadContentLength,
    /// Both Content-Length and Transfer-Encoding are present.
    ContentLengthAndChunked,
    /// Transfer-Encoding is empty, malformed, repeats `chunked`, or does not end in `chunked`.
    BadTransferEncoding,
    /// A transfer coding other than `chunked` precedes the final `chunked`.
    UnknownTransferCoding,
    /// Transfer-Encoding on an HTTP/1.0 request.
    TransferEncodingOn10,
    /// The Connection header holds something other than tokens.
    BadConnection,
    /// An Expect value other than `100-continue`.
    ExpectationFailed,
    /// The request line did not end within `max_head_bytes`.
    UriTooLong,
    /// The head did not end within `max_head_bytes`.
    HeadTooLarge,
    /// More than `max_headers` header field lines.
    TooManyHeaders,
    /// Content-Length exceeds `max_body_bytes`.
    BodyTooLarge,
}

impl HeadError {
    /// The status code the error response carries.
    pub fn status(self) -> u16 {
        match self {
            HeadError::UnsupportedVersion => status::HTTP_VERSION_NOT_SUPPORTED,
            HeadError::UnknownTransferCoding => status::NOT_IMPLEMENTED,
            HeadError::UriTooLong => status::URI_TOO_LONG,
            HeadError::HeadTooLarge | HeadError::TooManyHeaders => status::HEADER_FIELDS_TOO_LARGE,
            HeadError::BodyTooLarge => status::CONTENT_TOO_LARGE,
            HeadError::ExpectationFailed => status::EXPECTATION_FAILED,
            _ => status::BAD_REQUEST,
        }
    }

    /// Short static text for the log and the error body.
    pub fn as_str(self) -> &'static str {
        match self {
            HeadError::BadRequestLine => "malformed request line",
            HeadError::BadMethod => "method is not a token",
            HeadError::BadTarget => "invalid request-target",
            HeadError::BadVersion => "malformed HTTP version",
            HeadError::UnsupportedVersion => "HTTP version not supported",
            HeadError::BareLineEnding => "line ending without CR",
            HeadError::BareCarriageReturn => "CR without LF",
            HeadError::ObsFold => "obsolete line folding",
            HeadError::BadHeaderName => "invalid header field name",
            HeadError::SpaceBeforeColon => "whitespace before header colon",
            HeadError::BadHeaderValue => "invalid byte in header field value",
            HeadError::MissingHost => "missing Host header",
            HeadError::DuplicateHost => "more than one Host header",
            HeadError::BadHost => "invalid Host header",
            HeadError::BadContentLength => "invalid Content-Length",
            HeadError::ContentLengthAndChunked => "both Content-Length and Transfer-Encoding",
            HeadError::BadTransferEncoding => "invalid Transfer-Encoding",
            HeadError::UnknownTransferCoding => "unsupported transfer coding",
            HeadError::TransferEncodingOn10 => "Transfer-Encoding on HTTP/1.0",
            HeadError::BadConnection => "invalid Connection header",
            HeadError::ExpectationFailed => "unsupported expectation",
            HeadError::UriTooLong => "request line too long",
            HeadError::HeadTooLarge => "request head too large",
            HeadError::TooManyHeaders => "too many header fields",
            HeadError::BodyTooLarge => "Content-Length exceeds the body limit",
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for HeadError {}

/// Try to parse one request head from the front of `buf`.
///
/// `Ok(None)`: incomplete, need more bytes (but if `buf` already exceeds the limits, the limit
/// error is returned instead). `Ok(Some(head))`: complete; the head bytes (any skipped empty
/// lines, the request line, the fields and the final CRLFCRLF) are split off the front of `buf`
/// and shared zero-copy by the head; body bytes stay in `buf`. `Err(e)`: invalid; the connection
/// must close, and `buf` is left in an unspecified state.
pub fn parse(buf: &mut BytesMut, limits: &Limits) -> Result<Option<RequestHead>, HeadError> {
    let Some(shape) = scan(buf, limits)? else {
        return Ok(None);
    };
    let head = buf.split_to(shape.end).freeze();
    build(&head, shape, limits).map(Some)
}

/// A request line, as ranges into the buffer, checked as soon as its CRLF arrived.
struct RequestLine {
    method: Range<usize>,
    target: Range<usize>,
    version: Version,
    parts: TargetParts,
}

/// Where a complete head lies in the buffer.
struct Shape {
    line: RequestLine,
    /// Index just after the request line's CRLF.
    fields_start: usize,
    /// Index just after the final CRLFCRLF.
    end: usize,
}

/// Scans `buf` line by line up to `max_head_bytes`, checking line endings, obs-fold and the
/// request line as they arrive, until the empty line that ends the head. Errors are found in
/// byte order, as a byte-at-a-time scan would find them (`scan_bytewise` in the tests).
fn scan(buf: &[u8], limits: &Limits) -> Result<Option<Shape>, HeadError> {
    let window = buf.get(..limits.max_head_bytes).unwrap_or(buf);
    let mut line_start = 0;
    let mut empty_lines = 0;
    let mut request: Option<(RequestLine, usize)> = None;
    loop {
        let rest = window.get(line_start..).unwrap_or_default();
        if request.is_some() && matches!(rest.first(), Some(b' ' | b'\t')) {
            // RFC 9112 §5.2 (obs-fold) and §2.2 (whitespace before the first field)
            return Err(HeadError::ObsFold);
        }
        let Some(lf) = memchr::memchr(b'\n', rest) else {
            // An unfinished line: a CR followed by anything is bare; one at the very end may
            // still get its LF.
            if memchr::memchr(b'\r', rest).is_some_and(|cr| cr + 1 < rest.len()) {
                return Err(HeadError::BareCarriageReturn); // RFC 9112 §2.2
            }
            break;
        };
        // RFC 9112 §2.2: a line ends in CRLF; a CR anywhere else is bare.
        match memchr::memchr(b'\r', rest.get(..lf).unwrap_or_default()) {
            Some(cr) if cr + 1 < lf => return Err(HeadError::BareCarriageReturn),
            Some(cr) if cr + 1 == lf => {}
            _ => return Err(HeadError::BareLineEnding),
        }
        let end = line_start + lf; // the LF
        let line = line_start..end - 1;
        line_start = end + 1;
        match request.take() {
            None if line.is_empty() => {
                empty_lines += 1;
                if empty_lines > MAX_LEADING_EMPTY_LINES {
                    return Err(HeadError::BadRequestLine); // RFC 9112 §2.2
                }
            }
            None => request = Some((parse_request_line(buf, line)?, line_start)),
            Some((req, fields_start)) if line.is_empty() => {
                return Ok(Some(Shape {
                    line: req,
                    fields_start,
                    end: line_start,
                }));
            }
            found => request = found,
        }
    }
    if buf.len() > limits.max_head_bytes {
        // RFC 9112 §3 (414 for a request-target too long to parse); RFC 6585 §5 (431)
        return Err(match request {
            None => HeadError::UriTooLong,
            Some(_) => HeadError::HeadTooLarge,
        });
    }
    Ok(None)
}

/// Parses `method SP request-target SP HTTP-version` (RFC 9112 §3).
fn parse_request_line(buf: &[u8], line: Range<usize>) -> Result<RequestLine, HeadError> {
    let bytes = sub(buf, line.clone());
    let mut spaces = bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b' ')
        .map(|(i, _)| i);
    // RFC 9112 §3: exactly one SP between the parts
    let (Some(sp1), Some(sp2), None) = (spaces.next(), spaces.next(), spaces.next()) else {
        return Err(HeadError::BadRequestLine);
    };
    let (method, target, version) = (
        sub(bytes, 0..sp1),
        sub(bytes, sp1 + 1..sp2),
        sub(bytes, sp2 + 1..bytes.len()),
    );
    if method.is_empty() || target.is_empty() || version.is_empty() {
        return Err(HeadError::BadRequestLine);
    }
    // The version first: an HTTP/2 preface is a 505, whatever its target looks like.
    let version = parse_version(version)?;
    if !is_token(method) {
        return Err(HeadError::BadMethod); // RFC 9112 §3.1
    }
    let parts = parse_target(method, target)?;
    let at = line.start;
    Ok(RequestLine {
        method: at..at + sp1,
        target: at + sp1 + 1..at + sp2,
        version,
        parts,
    })
}

/// RFC 9112 §2.3: `HTTP-version = HTTP-name "/" DIGIT "." DIGIT`, case-sensitive.
fn parse_version(v: &[u8]) -> Result<Version, HeadError> {
    match v {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        // "HTTP/2" and "HTTP/3" are how those versions name themselves; all are 505.
        [b'H', b'T', b'T', b'P', b'/', major] if major.is_ascii_digit() => {
            Err(HeadError::UnsupportedVersion) // RFC 9110 §15.6.6
        }
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(HeadError::UnsupportedVersion) // RFC 9110 §15.6.6
        }
        _ => Err(HeadError::BadVersion),
    }
}

/// Classifies the request-target into one of its four forms (RFC 9112 §3.2).
fn parse_target(method: &[u8], target: &[u8]) -> Result<TargetParts, HeadError> {
    // RFC 9112 §3.2, RFC 3986 §2.1: visible ASCII, no fragment, '%' only as "%" HEXDIG HEXDIG
    if !all_pct_or(target, |b| matches!(b, 0x21..=0x7E) && b != b'#') {
        return Err(HeadError::BadTarget);
    }
    let parts = if method == b"CONNECT" {
        authority_form(target) // RFC 9112 §3.2.3
    } else if target == b"*" {
        (method == b"OPTIONS").then(asterisk_form) // RFC 9112 §3.2.4
    } else if target.first() == Some(&b'/') {
        Some(origin_form(target)) // RFC 9112 §3.2.1
    } else {
        absolute_form(target) // RFC 9112 §3.2.2
    };
    parts.ok_or(HeadError::BadTarget)
}

fn origin_form(target: &[u8]) -> TargetParts {
    let (path, query) = split_query(target, 0);
    TargetParts {
        form: TargetForm::Origin,
        path,
        query,
        authority: 0..0,
    }
}

fn asterisk_form() -> TargetParts {
    TargetParts {
        form: TargetForm::Asterisk,
        path: 0..1,
        query: 1..1,
        authority: 0..0,
    }
}

fn authority_form(target: &[u8]) -> Option<TargetParts> {
    // RFC 9112 §3.2.3: authority-form = uri-host ":" port
    is_host_port(target, true).then_some(TargetParts {
        form: TargetForm::Authority,
        path: 0..0,
        query: 0..0,
        authority: 0..target.len(),
    })
}

fn absolute_form(target: &[u8]) -> Option<TargetParts> {
    // RFC 9110 §4.2: only the http and https schemes; RFC 3986 §3.1: schemes are case-insensitive
    let start = if starts_with_ignore_case(target, b"http://") {
        7
    } else if starts_with_ignore_case(target, b"https://") {
        8
    } else {
        return None;
    };
    let end = target
        .iter()
        .skip(start)
        .position(|&b| b == b'/' || b == b'?')
        .map_or(target.len(), |p| start + p);
    // RFC 9110 §4.2.1: an empty host is invalid; §4.2.4: userinfo ('@') is refused
    if !is_host_port(sub(target, start..end), false) {
        return None;
    }
    let (path, query) = split_query(target, end);
    Some(TargetParts {
        form: TargetForm::Absolute,
        path,
        query,
        authority: start..end,
    })
}

/// Splits `s[from..]` at its first '?' into the path range and the query range.
fn split_query(s: &[u8], from: usize) -> (Range<usize>, Range<usize>) {
    match s.iter().skip(from).position(|&b| b == b'?') {
        Some(q) => (from..from + q, from + q + 1..s.len()),
        None => (from..s.len(), s.len()..s.len()),
    }
}

/// `uri-host [":" port]` with a non-empty host (RFC 3986 §3.2.2–§3.2.3); the port is required
/// for authority-form.
fn is_host_port(a: &[u8], port_required: bool) -> bool {
    // An IP-literal holds colons of its own; its port starts after the ']'.
    let host_len = if a.first() == Some(&b'[') {
        a.iter().position(|&b| b == b']').map_or(a.len(), |p| p + 1)
    } else {
        a.iter().position(|&b| b == b':').unwrap_or(a.len())
    };
    let Some((host, rest)) = a.split_at_checked(host_len) else {
        return false;
    };
    let port_ok = match rest {
        [] => !port_required,
        [b':', port @ ..] => is_port(port, port_required),
        _ => false,
    };
    port_ok && is_uri_host(host)
}

/// RFC 3986 §3.2.3: `port = *DIGIT`; we also insist it names a TCP port (at most 65535).
fn is_port(port: &[u8], required: bool) -> bool {
    if port.is_empty() {
        return !required;
    }
    port.len() <= 5 && parse_decimal(port).is_some_and(|n| n <= 65535)
}

/// RFC 3986 §3.2.2: `IP-literal / IPv4address / reg-name`, non-empty. IPvFuture is refused.
fn is_uri_host(host: &[u8]) -> bool {
    match host {
        [b'[', inner @ .., b']'] => {
            std::str::from_utf8(inner).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok())
        }
        // reg-name = *( unreserved / pct-encoded / sub-delims ); it covers IPv4address too.
        _ => {
            !host.is_empty()
                && all_pct_or(host, |b| {
                    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
                })
        }
    }
}

/// Whether every byte of `s` is `allowed` or part of a `"%" HEXDIG HEXDIG` escape.
fn all_pct_or(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let hex = |j: usize| s.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false; // RFC 3986 §2.1
            }
            i += 3;
        } else if allowed(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Splits the header fields with httparse, then builds the head and decides its framing.
fn build(head: &Bytes, shape: Shape, limits: &Limits) -> Result<RequestHead, HeadError> {
    let headers = parse_fields(head, shape.fields_start, limits.max_headers)?;
    let RequestLine {
        method,
        target,
        version,
        parts,
    } = shape.line;
    let host_field = host_field(&headers, version)?;
    let body = body_framing(&headers, version, limits)?;
    let keep_alive = keep_alive(&headers, version)?;
    let expect_continue = expect_continue(&headers, version)?;
    Ok(RequestHead {
        method: sub_bytes(head, method),
        target: sub_bytes(head, target),
        version,
        headers,
        body,
        keep_alive,
        expect_continue,
        parts,
        host_field,
    })
}

/// Field slots on the stack: most requests have fewer fields; more fall back to the heap.
const STACK_FIELDS: usize = 32;

fn parse_fields(head: &Bytes, start: usize, max_headers: usize) -> Result<Vec<Header>, HeadError> {
    let block = sub(head, start..head.len());
    let mut stack = [httparse::EMPTY_HEADER; STACK_FIELDS];
    let mut heap = Vec::new();
    let slots = if max_headers <= STACK_FIELDS {
        stack.get_mut(..max_headers).unwrap_or_default()
    } else {
        // Cheap: the field lines were already scanned once, so count them first.
        let lines = memchr::memchr_iter(b'\n', block).count();
        if lines <= STACK_FIELDS {
            &mut stack[..]
        } else {
            heap.resize(max_headers, httparse::EMPTY_HEADER);
            &mut heap[..]
        }
    };
    match httparse::parse_headers(block, slots) {
        Ok(httparse::Status::Complete((_, fields))) => {
            let mut headers = Vec::with_capacity(fields.len());
            for f in fields.iter() {
                headers.push(to_header(head, f)?);
            }
            Ok(headers)
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders), // RFC 6585 §5
        // The scan saw the empty line, so httparse stopped at a field it could not read.
        Ok(httparse::Status::Partial) | Err(_) => Err(diagnose_fields(block)),
    }
}

/// Re-checks a field httparse accepted against our own rules and shares its bytes.
fn to_header(head: &Bytes, field: &httparse::Header<'_>) -> Result<Header, HeadError> {
    let name = field.name.as_bytes();
    if !is_token(name) {
        return Err(HeadError::BadHeaderName); // RFC 9110 §5.1
    }
    // RFC 9112 §5.1: OWS around the value is not part of it
    let value = trim_ows(field.value);
    if !is_field_value(value) {
        return Err(HeadError::BadHeaderValue); // RFC 9110 §5.5
    }
    Ok(Header {
        name: head.slice_ref(name),
        value: head.slice_ref(value),
    })
}

/// Names the first field line in `block` that breaks a rule, after httparse refused it.
fn diagnose_fields(block: &[u8]) -> HeadError {
    block
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .find_map(|line| check_field_line(line).err())
        .unwrap_or(HeadError::BadHeaderName)
}

fn check_field_line(line: &[u8]) -> Result<(), HeadError> {
    // RFC 9112 §5: field-line = field-name ":" OWS field-value OWS
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(HeadError::BadHeaderName);
    };
    let (name, value) = (sub(line, 0..colon), sub(line, colon + 1..line.len()));
    if name.last().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(HeadError::SpaceBeforeColon); // RFC 9112 §5.1
    }
    if !is_token(name) {
        return Err(HeadError::BadHeaderName); // RFC 9110 §5.1
    }
    if !is_field_value(trim_ows(value)) {
        return Err(HeadError::BadHeaderValue); // RFC 9110 §5.5
    }
    Ok(())
}

/// Finds the one Host field and checks its value (RFC 9112 §3.2).
fn host_field(headers: &[Header], version: Version) -> Result<Option<usize>, HeadError> {
    let mut hosts = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| is_named(h, "host"));
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(HeadError::DuplicateHost); // RFC 9112 §3.2
    }
    match first {
        None if version == Version::Http11 => Err(HeadError::MissingHost), // RFC 9112 §3.2
        None => Ok(None),
        // RFC 9112 §3.2: empty when the target has no authority
        Some((i, h)) if h.value.is_empty() || is_host_port(&h.value, false) => Ok(Some(i)),
        Some(_) => Err(HeadError::BadHost), // RFC 9112 §3.2
    }
}

/// Decides how the body is framed (RFC 9112 §6.3), refusing anything ambiguous.
fn body_framing(
    headers: &[Header],
    version: Version,
    limits: &Limits,
) -> Result<BodyFraming, HeadError> {
    let has_te = values(headers, "transfer-encoding").next().is_some();
    let has_cl = values(headers, "content-length").next().is_some();
    if has_te && version == Version::Http10 {
        return Err(HeadError::TransferEncodingOn10); // RFC 9112 §6.1
    }
    if has_te && has_cl {
        return Err(HeadError::ContentLengthAndChunked); // RFC 9112 §6.1, §6.3 item 3
    }
    if has_te {
        return transfer_coding(headers).map(|()| BodyFraming::Chunked);
    }
    match content_length(headers)? {
        None => Ok(BodyFraming::None), // RFC 9112 §6.3 item 7
        Some(n) if n > limits.max_body_bytes => Err(HeadError::BodyTooLarge), // RFC 9110 §15.5.14
        Some(n) => Ok(BodyFraming::Length(n)),
    }
}

/// The one Content-Length value, across repeated fields and comma lists (RFC 9110 §8.6).
fn content_length(headers: &[Header]) -> Result<Option<u64>, HeadError> {
    let mut found = None;
    for element in list_elements(headers, "content-length") {
        // RFC 9110 §8.6: Content-Length = 1*DIGIT
        let n = parse_decimal(element).ok_or(HeadError::BadContentLength)?;
        if found.is_some_and(|m| m != n) {
            return Err(HeadError::BadContentLength); // RFC 9112 §6.3 item 5
        }
        found = Some(n);
    }
    Ok(found)
}

/// Checks that the Transfer-Encoding list is exactly a final `chunked` (RFC 9112 §6.1).
fn transfer_coding(headers: &[Header]) -> Result<(), HeadError> {
    let (mut chunked, mut other, mut last_chunked) = (0, false, false);
    for value in values(headers, "transfer-encoding") {
        let mut any = false;
        // RFC 9110 §5.6.1: empty list elements are ignored
        for coding in split_list(value).filter(|c| !c.is_empty()) {
            if !is_token(coding) {
                return Err(HeadError::BadTransferEncoding); // RFC 9112 §6.1, no parameters
            }
            any = true;
            last_chunked = coding.eq_ignore_ascii_case(b"chunked"); // RFC 9112 §7
            if last_chunked {
                chunked += 1;
            } else {
                other = true;
            }
        }
        if !any {
            return Err(HeadError::BadTransferEncoding); // RFC 9112 §6.1: 1#transfer-coding
        }
    }
    if chunked > 1 || !last_chunked {
        Err(HeadError::BadTransferEncoding) // RFC 9112 §6.1 (chunked once), §6.3 item 4 (final)
    } else if other {
        Err(HeadError::UnknownTransferCoding) // RFC 9112 §6.1: 501 for a coding we do not know
    } else {
        Ok(())
    }
}

/// The client's keep-alive intent from the Connection options (RFC 9112 §9.3).
fn keep_alive(headers: &[Header], version: Version) -> Result<bool, HeadError> {
    let (mut close, mut keep) = (false, false);
    for option in list_elements(headers, "connection").filter(|o| !o.is_empty()) {
        if !is_token(option) {
            return Err(HeadError::BadConnection); // RFC 9110 §7.6.1
        }
        close |= option.eq_ignore_ascii_case(b"close");
        keep |= option.eq_ignore_ascii_case(b"keep-alive");
    }
    Ok(match version {
        Version::Http11 => !close,         // RFC 9112 §9.3
        Version::Http10 => keep && !close, // RFC 9112 §9.3, Appendix C.2.2
    })
}

/// Whether the client waits for `100 Continue` (RFC 9110 §10.1.1).
fn expect_continue(headers: &[Header], version: Version) -> Result<bool, HeadError> {
    if version == Version::Http10 {
        return Ok(false); // RFC 9110 §10.1.1: a 1.0 expectation is ignored
    }
    let mut wants = false;
    for expectation in list_elements(headers, "expect").filter(|e| !e.is_empty()) {
        if !expectation.eq_ignore_ascii_case(b"100-continue") {
            return Err(HeadError::ExpectationFailed); // RFC 9110 §10.1.1: 417
        }
        wants = true;
    }
    Ok(wants)
}

fn is_named(header: &Header, name: &str) -> bool {
    header.name.eq_ignore_ascii_case(name.as_bytes()) // RFC 9110 §5.1
}

fn values<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
    headers
        .iter()
        .filter(move |h| is_named(h, name))
        .map(|h| &h.value)
}

/// The OWS-trimmed elements of every field named `name`, empty ones included (RFC 9110 §5.6.1).
fn list_elements<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    values(headers, name).flat_map(|v| split_list(v))
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// `s[range]`, or empty if the range does not fit (it always does for ranges found in `s`).
fn sub(s: &[u8], range: Range<usize>) -> &[u8] {
    s.get(range).unwrap_or_default()
}

/// `head[range]` sharing `head`'s memory.
fn sub_bytes(head: &Bytes, range: Range<usize>) -> Bytes {
    head.slice_ref(sub(head, range))
}

/// Validated parts of the head are ASCII; anything else reads as "".
fn ascii_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time scan that [`scan`] replaced: both must agree on every input.
    mod reference {
        use super::super::*;

        /// The original byte-at-a-time scan, kept as the reference for [`scan`]: scans `buf` in byte order up to `max_head_bytes`, checking line endings, obs-fold and the
        /// request line as they arrive, until the empty line that ends the head.
        pub(super) fn scan_bytewise(
            buf: &[u8],
            limits: &Limits,
        ) -> Result<Option<Shape>, HeadError> {
            let mut line_start = 0;
            let mut empty_lines = 0;
            let mut request: Option<(RequestLine, usize)> = None;
            let mut after_cr = false;
            for (i, &b) in buf.iter().enumerate().take(limits.max_head_bytes) {
                if after_cr && b != b'\n' {
                    return Err(HeadError::BareCarriageReturn); // RFC 9112 §2.2
                }
                let ends_line = after_cr;
                after_cr = b == b'\r';
                match b {
                    b'\n' if !ends_line => return Err(HeadError::BareLineEnding), // RFC 9112 §2.2
                    b'\n' => {
                        let line = line_start..i.saturating_sub(1);
                        line_start = i + 1;
                        match request.take() {
                            None if line.is_empty() => {
                                empty_lines += 1;
                                if empty_lines > MAX_LEADING_EMPTY_LINES {
                                    return Err(HeadError::BadRequestLine); // RFC 9112 §2.2
                                }
                            }
                            None => request = Some((parse_request_line(buf, line)?, i + 1)),
                            Some((req, fields_start)) if line.is_empty() => {
                                return Ok(Some(Shape {
                                    line: req,
                                    fields_start,
                                    end: i + 1,
                                }));
                            }
                            found => request = found,
                        }
                    }
                    // RFC 9112 §5.2 (obs-fold) and §2.2 (whitespace before the first field)
                    b' ' | b'\t' if i == line_start && request.is_some() => {
                        return Err(HeadError::ObsFold)
                    }
                    _ => {}
                }
            }
            if buf.len() > limits.max_head_bytes {
                // RFC 9112 §3 (414 for a request-target too long to parse); RFC 6585 §5 (431)
                return Err(match request {
                    None => HeadError::UriTooLong,
                    Some(_) => HeadError::HeadTooLarge,
                });
            }
            Ok(None)
        }
    }

    fn same_scan(input: &[u8], limits: &Limits) {
        let fast = scan(input, limits).map(|s| s.map(|s| (s.fields_start, s.end)));
        let slow =
            reference::scan_bytewise(input, limits).map(|s| s.map(|s| (s.fields_start, s.end)));
        assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(input));
    }

    #[test]
    fn the_line_scan_agrees_with_the_byte_scan() {
        let limits = Limits {
            max_head_bytes: 48,
            max_headers: 10,
            max_body_bytes: 1 << 20,
        };
        let pieces: &[&[u8]] = &[
            b"GET / HTTP/1.1",
            b"\r\n",
            b"\n",
            b"\r",
            b"Host: a",
            b" ",
            b"\t",
            b"x",
            b"GET /a b HTTP/1.1",
            b"HTTP/1.0",
            b":",
            b"\r\n\r\n",
        ];
        // Every sequence of up to 4 pieces, then random longer ones and random bytes, so that
        // the limit, unfinished lines and every error meet in every order.
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        let mut frontier = inputs.clone();
        for _ in 0..4 {
            let mut next = Vec::new();
            for input in &frontier {
                for p in pieces {
                    let mut longer = input.clone();
                    longer.extend_from_slice(p);
                    next.push(longer);
                }
            }
            inputs.extend(next.iter().cloned());
            frontier = next;
        }
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as usize
        };
        for _ in 0..50_000 {
            let mut input = Vec::new();
            for _ in 0..random(9) {
                input.extend_from_slice(pieces[random(pieces.len() as u64)]);
            }
            inputs.push(input);
            let alphabet = b"GET /H1.\r\n\t:a";
            inputs.push(
                (0..random(70))
                    .map(|_| alphabet[random(alphabet.len() as u64)])
                    .collect(),
            );
        }
        for input in &inputs {
            same_scan(input, &limits);
        }
    }

    const LIMITS: Limits = Limits {
        max_head_bytes: 8192,
        max_headers: 100,
        max_body_bytes: 1000,
    };

    /// What a table case expects from a parsed head; `rest` is what stays in the buffer.
    #[derive(Debug, Clone, PartialEq)]
    struct Facts<'a> {
        method: &'a str,
        target: &'a str,
        version: Version,
        path: &'a str,
        query: &'a str,
        host: &'a str,
        body: BodyFraming,
        keep_alive: bool,
        expect_continue: bool,
        fields: usize,
        rest: &'a [u8],
    }

    impl<'a> Facts<'a> {
        fn of(head: &'a RequestHead, rest: &'a [u8]) -> Self {
            Facts {
                method: head.method_str(),
                target: head.target_str(),
                version: head.version,
                path: head.path(),
                query: head.query(),
                host: head.host(),
                body: head.body,
                keep_alive: head.keep_alive,
                expect_continue: head.expect_continue,
                fields: head.headers.len(),
                rest,
            }
        }
    }

    /// The facts of `GET / HTTP/1.1` with `Host: a`.
    fn ok() -> Facts<'static> {
        Facts {
            method: "GET",
            target: "/",
            version: Version::Http11,
            path: "/",
            query: "",
            host: "a",
            body: BodyFraming::None,
            keep_alive: true,
            expect_continue: false,
            fields: 1,
            rest: b"",
        }
    }

    /// `GET / HTTP/1.1`, `Host: a`, then `fields` (each ending in CRLF), the empty line, `body`.
    fn get(fields: &str, body: &str) -> String {
        format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n{body}")
    }

    /// `GET / HTTP/1.0` with `fields` and no Host.
    fn get10(fields: &str) -> String {
        format!("GET / HTTP/1.0\r\n{fields}\r\n")
    }

    /// A request line with `Host: a`.
    fn line(request_line: &str) -> String {
        format!("{request_line}\r\nHost: a\r\n\r\n")
    }

    type Case = (String, Result<Facts<'static>, HeadError>);

    fn request_line_cases() -> Vec<Case> {
        use HeadError::*;
        let v10 = Facts {
            version: Version::Http10,
            keep_alive: false,
            host: "",
            fields: 0,
            ..ok()
        };
        vec![
            (get("", ""), Ok(ok())),
            (get10(""), Ok(v10.clone())),
            (
                get10("Connection: keep-alive\r\n"),
                Ok(Facts {
                    keep_alive: true,
                    fields: 1,
                    ..v10
                }),
            ),
            (
                line("get / HTTP/1.1"),
                Ok(Facts {
                    method: "get",
                    ..ok()
                }),
            ),
            (
                line("M-SEARCH / HTTP/1.1"),
                Ok(Facts {
                    method: "M-SEARCH",
                    ..ok()
                }),
            ),
            (
                line("HEAD / HTTP/1.1"),
                Ok(Facts {
                    method: "HEAD",
                    ..ok()
                }),
            ),
            (line("G@T / HTTP/1.1"), Err(BadMethod)),
            (line("GET  / HTTP/1.1"), Err(BadRequestLine)),
            (line("GET / HTTP/1.1 "), Err(BadRequestLine)),
            (line(" GET / HTTP/1.1"), Err(BadRequestLine)),
            (line("GET\t/ HTTP/1.1"), Err(BadRequestLine)),
            (line("GET / "), Err(BadRequestLine)),
            ("GET /\r\n\r\n".into(), Err(BadRequestLine)),
            ("GET\r\n\r\n".into(), Err(BadRequestLine)),
            (line("GET / http/1.1"), Err(BadVersion)),
            (line("GET / HTTP/1.10"), Err(BadVersion)),
            (line("GET / HTTP/"), Err(BadVersion)),
            (line("GET / HTTP/1.x"), Err(BadVersion)),
            (line("GET / HTTP/2.0"), Err(UnsupportedVersion)),
            (line("GET / HTTP/1.2"), Err(UnsupportedVersion)),
            (line("GET / HTTP/3"), Err(UnsupportedVersion)),
            (line("GET / HTTP/0.9"), Err(UnsupportedVersion)),
            (
                "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".into(),
                Err(UnsupportedVersion),
            ),
            (format!("\r\n\r\n{}", get("", "")), Ok(ok())),
            (format!("{}{}", "\r\n".repeat(4), get("", "")), Ok(ok())),
            (
                format!("{}{}", "\r\n".repeat(5), get("", "")),
                Err(BadRequestLine),
            ),
            (format!("\n{}", get("", "")), Err(BareLineEnding)),
        ]
    }

    fn line_ending_cases() -> Vec<Case> {
        use HeadError::*;
        vec![
            (
                "GET / HTTP/1.1\nHost: a\r\n\r\n".into(),
                Err(BareLineEnding),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\n\r\n".into(),
                Err(BareLineEnding),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\n\n".into(),
                Err(BareLineEnding),
            ),
            (get("X: a\rb\r\n", ""), Err(BareCarriageReturn)),
            (get("X: a\r\r\n", ""), Err(BareCarriageReturn)),
            (line("GET /\r HTTP/1.1"), Err(BareCarriageReturn)),
            (get("X: a\r\n b\r\n", ""), Err(ObsFold)),
            (get("X: a\r\n\tb\r\n", ""), Err(ObsFold)),
            ("GET / HTTP/1.1\r\n Host: a\r\n\r\n".into(), Err(ObsFold)),
        ]
    }

    fn field_cases() -> Vec<Case> {
        use HeadError::*;
        vec![
            (
                "GET / HTTP/1.1\r\nHost : a\r\n\r\n".into(),
                Err(SpaceBeforeColon),
            ),
            (get("X-A\t: b\r\n", ""), Err(SpaceBeforeColon)),
            (get(": b\r\n", ""), Err(BadHeaderName)),
            (get("X A: b\r\n", ""), Err(BadHeaderName)),
            (get("X-A b\r\n", ""), Err(BadHeaderName)),
            (get("X\"A: b\r\n", ""), Err(BadHeaderName)),
            (get("X-\u{e9}: b\r\n", ""), Err(BadHeaderName)),
            (get("X: a\0b\r\n", ""), Err(BadHeaderValue)),
            (get("X: a\x01b\r\n", ""), Err(BadHeaderValue)),
            (get("X: a\x7f\r\n", ""), Err(BadHeaderValue)),
            (get("X: caf\u{e9}\r\n", ""), Ok(Facts { fields: 2, ..ok() })),
            (get("X: a\tb\r\n", ""), Ok(Facts { fields: 2, ..ok() })),
            (get("X:\r\nY: \t \r\n", ""), Ok(Facts { fields: 3, ..ok() })),
            ("GET / HTTP/1.1\r\nHost: \t a \t\r\n\r\n".into(), Ok(ok())),
            ("GET / HTTP/1.1\r\nhOST: a\r\n\r\n".into(), Ok(ok())),
        ]
    }

    fn target_cases() -> Vec<Case> {
        use HeadError::*;
        let abs = |target, path, query, host| Facts {
            target,
            path,
            query,
            host,
            ..ok()
        };
        vec![
            (
                line("GET /a/b?x=1&y HTTP/1.1"),
                Ok(abs("/a/b?x=1&y", "/a/b", "x=1&y", "a")),
            ),
            (
                line("GET /a?b?c/d HTTP/1.1"),
                Ok(abs("/a?b?c/d", "/a", "b?c/d", "a")),
            ),
            (line("GET //x? HTTP/1.1"), Ok(abs("//x?", "//x", "", "a"))),
            (
                line("GET /p%20q%aF HTTP/1.1"),
                Ok(abs("/p%20q%aF", "/p%20q%aF", "", "a")),
            ),
            (
                line("GET /<>\"^`{|}\\ HTTP/1.1"),
                Ok(abs("/<>\"^`{|}\\", "/<>\"^`{|}\\", "", "a")),
            ),
            (line("GET /p%2 HTTP/1.1"), Err(BadTarget)),
            (line("GET /p%zz HTTP/1.1"), Err(BadTarget)),
            (line("GET /a#frag HTTP/1.1"), Err(BadTarget)),
            (line("GET /caf\u{e9} HTTP/1.1"), Err(BadTarget)),
            (line("GET /a\x7f HTTP/1.1"), Err(BadTarget)),
            (line("GET /a\x01 HTTP/1.1"), Err(BadTarget)),
            (line("GET a/b HTTP/1.1"), Err(BadTarget)),
            (line("GET ?x HTTP/1.1"), Err(BadTarget)),
            (
                line("GET http://example.com/x?y HTTP/1.1"),
                Ok(abs("http://example.com/x?y", "/x", "y", "example.com")),
            ),
            (
                line("GET HTTPS://Ex.com:8443 HTTP/1.1"),
                Ok(abs("HTTPS://Ex.com:8443", "/", "", "Ex.com:8443")),
            ),
            (
                line("GET http://b?q HTTP/1.1"),
                Ok(abs("http://b?q", "/", "q", "b")),
            ),
            (
                line("GET http://[::1]:80/ HTTP/1.1"),
                Ok(abs("http://[::1]:80/", "/", "", "[::1]:80")),
            ),
            (line("GET ftp://b/ HTTP/1.1"), Err(BadTarget)),
            (line("GET http:/b/ HTTP/1.1"), Err(BadTarget)),
            (line("GET http:///x HTTP/1.1"), Err(BadTarget)),
            (line("GET http://u@b/ HTTP/1.1"), Err(BadTarget)),
            (line("GET http://b:99999/ HTTP/1.1"), Err(BadTarget)),
            (line("GET http://[zz]/ HTTP/1.1"), Err(BadTarget)),
            (
                line("OPTIONS * HTTP/1.1"),
                Ok(Facts {
                    method: "OPTIONS",
                    ..abs("*", "*", "", "a")
                }),
            ),
            (line("GET * HTTP/1.1"), Err(BadTarget)),
            (line("OPTIONS *x HTTP/1.1"), Err(BadTarget)),
            (
                line("CONNECT b.example:443 HTTP/1.1"),
                Ok(Facts {
                    method: "CONNECT",
                    ..abs("b.example:443", "", "", "a")
                }),
            ),
            (line("CONNECT b.example HTTP/1.1"), Err(BadTarget)),
            (line("CONNECT b.example: HTTP/1.1"), Err(BadTarget)),
            (line("CONNECT / HTTP/1.1"), Err(BadTarget)),
            (line("GET b.example:443 HTTP/1.1"), Err(BadTarget)),
        ]
    }

    fn host_cases() -> Vec<Case> {
        use HeadError::*;
        let host = |value: &str| format!("GET / HTTP/1.1\r\nHost: {value}\r\n\r\n");
        let with = |h| Facts { host: h, ..ok() };
        vec![
            ("GET / HTTP/1.1\r\n\r\n".into(), Err(MissingHost)),
            (get("Host: a\r\n", ""), Err(DuplicateHost)),
            (get10("Host: a\r\nHost: a\r\n"), Err(DuplicateHost)),
            (
                get10("Host: b\r\n"),
                Ok(Facts {
                    version: Version::Http10,
                    keep_alive: false,
                    ..with("b")
                }),
            ),
            (host(""), Ok(with(""))),
            (host("[::1]:8080"), Ok(with("[::1]:8080"))),
            (host("b.example:"), Ok(with("b.example:"))),
            (host("10.0.0.1:65535"), Ok(with("10.0.0.1:65535"))),
            (
                host("xn--bcher-kva.example"),
                Ok(with("xn--bcher-kva.example")),
            ),
            (host("%41b"), Ok(with("%41b"))),
            (host("a b"), Err(BadHost)),
            (host("a/b"), Err(BadHost)),
            (host("a@b"), Err(BadHost)),
            (host("[::1"), Err(BadHost)),
            (host("[::1]x"), Err(BadHost)),
            (host("a:80x"), Err(BadHost)),
            (host("a:65536"), Err(BadHost)),
            (host(":80"), Err(BadHost)),
            (host("%4"), Err(BadHost)),
            (host("caf\u{e9}"), Err(BadHost)),
            (
                "GET http://b/ HTTP/1.1\r\nHost: c\r\n\r\n".into(),
                Ok(Facts {
                    target: "http://b/",
                    ..with("b")
                }),
            ),
        ]
    }

    fn content_length_cases() -> Vec<Case> {
        use HeadError::*;
        let len = |n| Facts {
            body: BodyFraming::Length(n),
            fields: 2,
            ..ok()
        };
        vec![
            (
                get("Content-Length: 5\r\n", "hello"),
                Ok(Facts {
                    rest: b"hello",
                    ..len(5)
                }),
            ),
            (get("Content-Length: 0\r\n", ""), Ok(len(0))),
            (get("content-length: 007\r\n", ""), Ok(len(7))),
            (get("Content-Length: 5 , 5\r\n", ""), Ok(len(5))),
            (
                get("Content-Length: 5\r\nContent-Length: 5\r\n", ""),
                Ok(Facts {
                    fields: 3,
                    ..len(5)
                }),
            ),
            (get("Content-Length: 1000\r\n", ""), Ok(len(1000))),
            (get("Content-Length: 5, 6\r\n", ""), Err(BadContentLength)),
            (
                get("Content-Length: 5\r\nContent-Length: 6\r\n", ""),
                Err(BadContentLength),
            ),
            (get("Content-Length:\r\n", ""), Err(BadContentLength)),
            (get("Content-Length: 5,\r\n", ""), Err(BadContentLength)),
            (get("Content-Length: +5\r\n", ""), Err(BadContentLength)),
            (get("Content-Length: -1\r\n", ""), Err(BadContentLength)),
            (get("Content-Length: 5 5\r\n", ""), Err(BadContentLength)),
            (get("Content-Length: 0x5\r\n", ""), Err(BadContentLength)),
            (
                get("Content-Length: 18446744073709551616\r\n", ""),
                Err(BadContentLength),
            ),
            (
                get("Content-Length: 18446744073709551615\r\n", ""),
                Err(BodyTooLarge),
            ),
            (get("Content-Length: 1001\r\n", ""), Err(BodyTooLarge)),
        ]
    }

    fn transfer_encoding_cases() -> Vec<Case> {
        use HeadError::*;
        let chunked = |fields| Facts {
            body: BodyFraming::Chunked,
            fields,
            ..ok()
        };
        vec![
            (
                get("Transfer-Encoding: chunked\r\n", "0\r\n\r\n"),
                Ok(Facts {
                    rest: b"0\r\n\r\n",
                    ..chunked(2)
                }),
            ),
            (get("transfer-encoding: Chunked\r\n", ""), Ok(chunked(2))),
            (
                get("Transfer-Encoding: , chunked ,\r\n", ""),
                Ok(chunked(2)),
            ),
            (
                get("Transfer-Encoding: gzip, chunked\r\n", ""),
                Err(UnknownTransferCoding),
            ),
            (
                get(
                    "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                    "",
                ),
                Err(UnknownTransferCoding),
            ),
            (
                get("Transfer-Encoding: chunked, gzip\r\n", ""),
                Err(BadTransferEncoding),
            ),
            (
                get("Transfer-Encoding: gzip\r\n", ""),
                Err(BadTransferEncoding),
            ),
            (
                get("Transfer-Encoding: chunked, chunked\r\n", ""),
                Err(BadTransferEncoding),
            ),
            (
                get(
                    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                    "",
                ),
                Err(BadTransferEncoding),
            ),
            (get("Transfer-Encoding:\r\n", ""), Err(BadTransferEncoding)),
            (
                get("Transfer-Encoding: , ,\r\n", ""),
                Err(BadTransferEncoding),
            ),
            (
                get("Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n", ""),
                Err(BadTransferEncoding),
            ),
            (
                get("Transfer-Encoding: \"chunked\"\r\n", ""),
                Err(BadTransferEncoding),
            ),
            (
                get("Transfer-Encoding: chunked;x=1\r\n", ""),
                Err(BadTransferEncoding),
            ),
            (
                get("Transfer-Encoding: chunked\u{e9}\r\n", ""),
                Err(BadTransferEncoding),
            ),
            (
                get10("Transfer-Encoding: chunked\r\n"),
                Err(TransferEncodingOn10),
            ),
            (
                get10("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
                Err(TransferEncodingOn10),
            ),
            (
                get("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", ""),
                Err(ContentLengthAndChunked),
            ),
            (
                get("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", ""),
                Err(ContentLengthAndChunked),
            ),
        ]
    }

    fn connection_and_expect_cases() -> Vec<Case> {
        use HeadError::*;
        let v10 = |fields| Facts {
            version: Version::Http10,
            host: "",
            fields,
            ..ok()
        };
        vec![
            (
                get("Connection: close\r\n", ""),
                Ok(Facts {
                    keep_alive: false,
                    fields: 2,
                    ..ok()
                }),
            ),
            (
                get("Connection: Upgrade, CLOSE\r\n", ""),
                Ok(Facts {
                    keep_alive: false,
                    fields: 2,
                    ..ok()
                }),
            ),
            (
                get("Connection: Keep-Alive, , Upgrade\r\n", ""),
                Ok(Facts { fields: 2, ..ok() }),
            ),
            (get10("Connection: KEEP-ALIVE\r\n"), Ok(v10(1))),
            (
                get10("Connection: keep-alive, close\r\n"),
                Ok(Facts {
                    keep_alive: false,
                    ..v10(1)
                }),
            ),
            (
                get10("Connection: keep-alive\r\nConnection: close\r\n"),
                Ok(Facts {
                    keep_alive: false,
                    ..v10(2)
                }),
            ),
            (get("Connection: a b\r\n", ""), Err(BadConnection)),
            (get("Connection: \"close\"\r\n", ""), Err(BadConnection)),
            (
                get("Expect: 100-continue\r\n", ""),
                Ok(Facts {
                    expect_continue: true,
                    fields: 2,
                    ..ok()
                }),
            ),
            (
                get("Expect: 100-Continue\r\n", ""),
                Ok(Facts {
                    expect_continue: true,
                    fields: 2,
                    ..ok()
                }),
            ),
            (get("Expect:\r\n", ""), Ok(Facts { fields: 2, ..ok() })),
            (
                get10("Expect: 100-continue\r\n"),
                Ok(Facts {
                    keep_alive: false,
                    ..v10(1)
                }),
            ),
            (
                get10("Expect: something-else\r\n"),
                Ok(Facts {
                    keep_alive: false,
                    ..v10(1)
                }),
            ),
            (
                get("Expect: something-else\r\n", ""),
                Err(ExpectationFailed),
            ),
            (
                get("Expect: 100-continue, x\r\n", ""),
                Err(ExpectationFailed),
            ),
            (
                get("Expect: 100-continue=1\r\n", ""),
                Err(ExpectationFailed),
            ),
        ]
    }

    fn cases() -> Vec<Case> {
        [
            request_line_cases(),
            line_ending_cases(),
            field_cases(),
            target_cases(),
            host_cases(),
            content_length_cases(),
            transfer_encoding_cases(),
            connection_and_expect_cases(),
        ]
        .concat()
    }

    /// Parses `input` in one call: the result and what stayed in the buffer.
    fn one_shot(
        input: &[u8],
        limits: &Limits,
    ) -> (Result<Option<RequestHead>, HeadError>, BytesMut) {
        crate::fuzz_seeds::save("head", input);
        let mut buf = BytesMut::from(input);
        let result = parse(&mut buf, limits);
        (result, buf)
    }

    #[test]
    fn table() {
        let cases = cases();
        assert!(cases.len() >= 150, "{} cases", cases.len());
        for (input, expected) in &cases {
            let (result, rest) = one_shot(input.as_bytes(), &LIMITS);
            match (result, expected) {
                (Ok(Some(head)), Ok(facts)) => {
                    assert_eq!(Facts::of(&head, &rest), *facts, "{input:?}")
                }
                (Err(e), Err(want)) => assert_eq!(e, *want, "{input:?}"),
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// Feeds `input` one byte at a time: every prefix before the end of the head is `Ok(None)`
    /// (or, for a bad head, the same error early), and the rest stays in the buffer.
    fn assert_every_prefix(input: &[u8], limits: &Limits) {
        let (expected, expected_rest) = one_shot(input, limits);
        let head_len = input.len() - expected_rest.len();
        let mut buf = BytesMut::new();
        for (i, &b) in input.iter().enumerate() {
            buf.extend_from_slice(&[b]);
            match parse(&mut buf, limits) {
                Ok(None) => assert!(i + 1 < input.len() && (expected.is_err() || i + 1 < head_len)),
                Ok(Some(head)) => {
                    assert_eq!(i + 1, head_len, "{input:?}");
                    assert_eq!(Ok(Some(head)), expected, "{input:?}");
                    buf.extend_from_slice(&input[i + 1..]);
                    assert_eq!(buf, expected_rest, "{input:?}");
                    return;
                }
                Err(e) => {
                    assert_eq!(Err(e), expected, "{input:?} at {i}");
                    return;
                }
            }
        }
        panic!("{input:?}: no result");
    }

    /// Feeds `input` as two appends split at every offset.
    fn assert_every_split(input: &[u8], limits: &Limits) {
        let (expected, expected_rest) = one_shot(input, limits);
        for at in 0..=input.len() {
            let mut buf = BytesMut::from(&input[..at]);
            let mut result = parse(&mut buf, limits);
            if let Ok(None) = result {
                buf.extend_from_slice(&input[at..]);
                result = parse(&mut buf, limits);
            } else {
                buf.extend_from_slice(&input[at..]);
            }
            assert_eq!(result, expected, "{input:?} split at {at}");
            if expected.is_ok() {
                assert_eq!(buf, expected_rest, "{input:?} split at {at}");
            }
        }
    }

    #[test]
    fn every_prefix_and_split() {
        for (input, _) in cases() {
            assert_every_prefix(input.as_bytes(), &LIMITS);
            assert_every_split(input.as_bytes(), &LIMITS);
        }
    }

    fn limits(max_head_bytes: usize, max_headers: usize) -> Limits {
        Limits {
            max_head_bytes,
            max_headers,
            ..LIMITS
        }
    }

    #[test]
    fn long_request_line_is_414_one_byte_over() {
        let input = format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(200));
        let line_len = input.len() - 2;
        for (max, want) in [
            (line_len - 1, Err(HeadError::UriTooLong)),
            (line_len, Err(HeadError::HeadTooLarge)),
            (input.len() - 1, Err(HeadError::HeadTooLarge)),
            (input.len(), Ok(())),
        ] {
            let (result, _) = one_shot(input.as_bytes(), &limits(max, 10));
            assert_eq!(result.map(|h| assert!(h.is_some())), want, "max {max}");
            assert_every_prefix(input.as_bytes(), &limits(max, 10));
            assert_every_split(input.as_bytes(), &limits(max, 10));
        }
        assert_eq!(HeadError::UriTooLong.status(), 414);
    }

    #[test]
    fn big_header_is_431_one_byte_over() {
        let input = get(&format!("X: {}\r\n", "b".repeat(300)), "body");
        let head_len = input.len() - 4;
        let (result, rest) = one_shot(input.as_bytes(), &limits(head_len, 10));
        assert!(matches!(result, Ok(Some(_))) && rest == "body");
        let (result, _) = one_shot(input.as_bytes(), &limits(head_len - 1, 10));
        assert_eq!(result, Err(HeadError::HeadTooLarge));
        assert_eq!(HeadError::HeadTooLarge.status(), 431);
        assert_every_prefix(input.as_bytes(), &limits(head_len - 1, 10));
    }

    #[test]
    fn incomplete_head_over_the_limit_fails_early() {
        let cases: [(&[u8], _); 6] = [
            (b"GET /aaaaaaaaaaa", Ok(None)),
            (b"GET /aaaaaaaaaaaa", Err(HeadError::UriTooLong)),
            (b"\r\nGET / HTTP/1.1", Ok(None)),
            (b"\r\nGET / HTTP/1.1\r", Err(HeadError::UriTooLong)),
            (b"GET / HTTP/1.1\r\n", Ok(None)),
            (b"GET / HTTP/1.1\r\nX", Err(HeadError::HeadTooLarge)),
        ];
        for (input, want) in cases {
            let (result, _) = one_shot(input, &limits(16, 10));
            assert_eq!(result.map(|h| h.map(|_| ())), want, "{input:?}");
        }
    }

    #[test]
    fn too_many_headers_at_max_plus_one() {
        let fields = |n: usize| (1..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
        let (result, _) = one_shot(get(&fields(5), "").as_bytes(), &limits(8192, 5));
        assert_eq!(result.map(|h| h.map(|h| h.headers.len())), Ok(Some(5)));
        let input = get(&fields(6), "");
        let (result, _) = one_shot(input.as_bytes(), &limits(8192, 5));
        assert_eq!(result.map(|_| ()), Err(HeadError::TooManyHeaders));
        assert_eq!(HeadError::TooManyHeaders.status(), 431);
        assert_every_split(input.as_bytes(), &limits(8192, 5));
    }

    #[test]
    fn too_many_headers_on_both_sides_of_the_stack_slots() {
        // Up to STACK_FIELDS field slots live on the stack; a larger limit with more fields
        // takes them from the heap. The limit holds the same either way.
        let fields = |n: usize| (1..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
        for max in [STACK_FIELDS - 1, STACK_FIELDS, STACK_FIELDS + 1, 100] {
            let (result, _) = one_shot(get(&fields(max), "").as_bytes(), &limits(8192, max));
            assert_eq!(
                result.map(|h| h.map(|h| h.headers.len())),
                Ok(Some(max)),
                "{max} fields, max {max}"
            );
            let (result, _) = one_shot(get(&fields(max + 1), "").as_bytes(), &limits(8192, max));
            assert_eq!(
                result.map(|_| ()),
                Err(HeadError::TooManyHeaders),
                "{} fields, max {max}",
                max + 1
            );
        }
    }

    #[test]
    fn body_limit_is_413_one_byte_over() {
        let at = |max_body_bytes| Limits {
            max_body_bytes,
            ..LIMITS
        };
        let input = get("Content-Length: 42\r\n", "");
        let (result, _) = one_shot(input.as_bytes(), &at(42));
        assert_eq!(
            result.map(|h| h.map(|h| h.body)),
            Ok(Some(BodyFraming::Length(42)))
        );
        let (result, _) = one_shot(input.as_bytes(), &at(41));
        assert_eq!(result.map(|_| ()), Err(HeadError::BodyTooLarge));
        assert_eq!(HeadError::BodyTooLarge.status(), 413);
    }

    #[test]
    fn statuses_and_texts() {
        use HeadError::*;
        let all = [
            (BadRequestLine, 400),
            (BadMethod, 400),
            (BadTarget, 400),
            (BadVersion, 400),
            (UnsupportedVersion, 505),
            (BareLineEnding, 400),
            (BareCarriageReturn, 400),
            (ObsFold, 400),
            (BadHeaderName, 400),
            (SpaceBeforeColon, 400),
            (BadHeaderValue, 400),
            (MissingHost, 400),
            (DuplicateHost, 400),
            (BadHost, 400),
            (BadContentLength, 400),
            (ContentLengthAndChunked, 400),
            (BadTransferEncoding, 400),
            (UnknownTransferCoding, 501),
            (TransferEncodingOn10, 400),
            (BadConnection, 400),
            (ExpectationFailed, 417),
            (UriTooLong, 414),
            (HeadTooLarge, 431),
            (TooManyHeaders, 431),
            (BodyTooLarge, 413),
        ];
        for (e, status) in all {
            assert_eq!(e.status(), status, "{e:?}");
            assert_eq!(e.to_string(), e.as_str());
            assert!(!e.as_str().is_empty());
        }
        assert_eq!(
            ContentLengthAndChunked.to_string(),
            "both Content-Length and Transfer-Encoding"
        );
    }

    #[test]
    fn pipelined_heads_parse_in_order() {
        let mut buf = BytesMut::from(
            "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        let first = parse(&mut buf, &LIMITS).unwrap().unwrap();
        assert_eq!(
            (first.method_str(), first.path(), first.body),
            ("POST", "/a", BodyFraming::Length(2))
        );
        assert_eq!(&buf.split_to(2)[..], b"hi");
        let second = parse(&mut buf, &LIMITS).unwrap().unwrap();
        assert_eq!((second.method_str(), second.path()), ("GET", "/b"));
        assert!(buf.is_empty());
        assert_eq!(parse(&mut buf, &LIMITS), Ok(None));
    }

    #[test]
    fn header_accessors() {
        let input = "GET /x?y HTTP/1.1\r\nHost: a\r\nX-Tag: one\r\nx-tag:  two \r\nX-Raw: caf\u{e9}\r\n\r\n";
        let mut buf = BytesMut::from(input);
        let head = parse(&mut buf, &LIMITS).unwrap().unwrap();
        assert_eq!(head.header("X-TAG").map(|v| &v[..]), Some(&b"one"[..]));
        let tags: Vec<&[u8]> = head.headers_named("x-tag").map(|v| &v[..]).collect();
        assert_eq!(tags, [&b"one"[..], b"two"]);
        assert_eq!(head.header("missing"), None);
        assert_eq!(head.headers[2].name_str(), "x-tag");
        assert_eq!(head.headers[2].value_str(), Some("two"));
        assert_eq!(head.headers[3].value_str(), Some("caf\u{e9}"));
        let latin1 = Header {
            name: Bytes::from_static(b"X"),
            value: Bytes::from_static(b"caf\xe9"),
        };
        assert_eq!(latin1.value_str(), None);
        assert!(!head.is_head());
        assert_eq!(head.version.as_str(), "HTTP/1.1");
        assert_eq!(Version::Http10.as_str(), "HTTP/1.0");
    }

    #[test]
    fn obs_text_value_is_kept_raw() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n"[..]);
        let head = parse(&mut buf, &LIMITS).unwrap().unwrap();
        assert_eq!(&head.headers[1].value[..], b"caf\xe9");
        assert_eq!(head.headers[1].value_str(), None);
    }

    #[test]
    fn head_shares_the_buffer() {
        let mut buf = BytesMut::from("GET /zero?copy HTTP/1.1\r\nHost: a\r\n\r\nbody");
        let base = buf.as_ptr() as usize;
        let within = |b: &Bytes| (base..base + 40).contains(&(b.as_ptr() as usize));
        let head = parse(&mut buf, &LIMITS).unwrap().unwrap();
        assert!(within(&head.method) && within(&head.target));
        assert!(head
            .headers
            .iter()
            .all(|h| within(&h.name) && within(&h.value)));
        assert_eq!(&buf[..], b"body");
    }

    #[test]
    fn empty_and_blank_buffers_need_more() {
        for input in [
            "",
            "\r",
            "\r\n",
            "\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n\r",
        ] {
            assert_eq!(one_shot(input.as_bytes(), &LIMITS).0, Ok(None), "{input:?}");
        }
    }
}
