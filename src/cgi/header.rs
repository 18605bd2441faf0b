//! The script's header block: the CGI response header fields a script writes before its body
//! (RFC 3875 §6), and the status line plus header fields of an NPH script (RFC 3875 §5).
//!
//! Sans-IO: [`parse`] and [`parse_nph`] look at everything the script has written so far and
//! answer "need more" (`Ok(None)`), a complete [`ScriptHead`] plus the length of the block (the
//! rest of the buffer is body and is never inspected), or a [`HeadError`]. Every error becomes
//! the same generic 502 for the client; [`HeadError::as_str`] is for the log. When stdout ends
//! before a block is complete, [`at_eof`] (or [`at_eof_nph`]) names the error to log.
//!
//! Lines are checked in byte order as soon as each one ends, so a bad line fails at once and
//! every prefix of an input gives either `Ok(None)` or the result of the whole input. The rules
//! that need the whole block (redirect kind, required Content-Type) run at the empty line.
//!
//! Strictness (stricter than Apache where the RFCs allow it; valid CGI output always passes):
//! - A line ends in LF or CRLF, mixed freely (scripts print `\n`). The block ends at the first
//!   empty line; a line of only SP/HTAB is not empty. A CR anywhere but right before the LF is
//!   [`HeadError::CrInLine`], in names, values and the NPH status line alike.
//! - Each line is `name ":" OWS value OWS`: the name a token with no whitespace before the
//!   colon, the value HTAB, SP, VCHAR and obs-text (kept as raw bytes, trimmed). A line led by
//!   SP/HTAB (obs-fold) is refused, not unfolded.
//! - `Status`: `3DIGIT [SP reason]` with a status of 200..=599 and an ASCII reason. 1xx is
//!   refused: interim responses belong to the server, and a script cannot send one and then its
//!   final response through a single header block.
//! - Status, Location and Content-Type may each appear once (RFC 3875 §6.3).
//! - `Transfer-Encoding` is always refused: the server owns the framing.
//! - `Content-Length`: `1*DIGIT` fitting a u64; no sign, no list. Repeats must have the same
//!   value. It is reported, not enforced: the caller compares it with the body.
//! - `Location` is never empty and holds only VCHAR (no SP, controls or obs-text), with or
//!   without Status. Without Status it decides the kind: `/path[?query]` is a local redirect
//!   (no fragment, only valid `%HH` escapes; `//` is a network-path reference and refused),
//!   `scheme:…` a client redirect (status 302), anything else is refused. With Status it is an
//!   ordinary field.
//! - `Content-Type` must be `type "/" subtype`, then optional parameters (not checked further).
//!
//! Leniency (common in real scripts, accepted on purpose):
//! - A Status without Content-Type needs no Content-Type (`Status: 404` and an empty line), as
//!   Apache and Go's CGI host allow; RFC 3875 §6.3.1 only asks for one when a body follows,
//!   which a header parser cannot know. Without Status and without a redirect it is required.
//! - Redirects may carry other fields (Content-Type, cookies) and a body, though RFC 3875
//!   §6.2.2–§6.2.3 forbid them; they stay in `headers` and the caller ignores what it must.
//! - NPH (SPEC §5.5): the first line is `HTTP/1.0` or `HTTP/1.1`, SP, a status of 200..=599,
//!   and an optional reason (the SP before it too). Status, Location and Content-Type are
//!   ordinary fields there; Transfer-Encoding and a bad Content-Length are still refused.
//!
//! Each call scans from the start of the buffer. Since the answer only changes when an LF
//! arrives or the buffer grows past `max`, the caller may skip calls for reads without an LF.

use std::fmt;

use crate::http::status;
use crate::http::syntax::{is_field_value, is_text, is_token, parse_decimal, trim_ows};

/// What the script's header block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHead {
    /// The response status: from Status (or the NPH status line); 200 without one; 302 for a
    /// client redirect without Status. Unused for a local redirect.
    pub status: u16,
    /// The reason text the script gave after its status code, if any.
    pub reason: Option<String>,
    /// Every field but Status, in the order sent: the name as sent, the value without the OWS
    /// around it. Location, Content-Type and Content-Length are in here too.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Which of the responses of RFC 3875 §6.2 this is.
    pub kind: Kind,
    /// The value of Content-Length, if the script sent one (the field stays in `headers`).
    pub content_length: Option<u64>,
}

/// The kind of response the header block announces (RFC 3875 §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A normal document response (RFC 3875 §6.2.1).
    Document,
    /// "Location: /local/path?q" with no Status: the server re-dispatches it as a GET
    /// (RFC 3875 §6.2.2). Holds the Location value.
    LocalRedirect(String),
    /// "Location: scheme:…" (absolute URI) with no Status: a redirect to the client
    /// (RFC 3875 §6.2.3/§6.2.4).
    ClientRedirect,
}

/// Why a script's header block is refused. Each one is a 502 for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The script's output ended before the empty line that ends the block.
    NoBlankLine,
    /// The block did not end within `max` bytes.
    TooLarge,
    /// A header line has no colon.
    NoColon,
    /// A header name is empty, not a token, or followed by whitespace before the colon.
    BadName,
    /// A header line starts with SP or HTAB (obs-fold).
    ObsFold,
    /// A header value holds a control byte (NUL, DEL, …) other than HTAB.
    ControlInValue,
    /// A CR that is not right before the LF ending its line.
    CrInLine,
    /// Status is not `3DIGIT [SP reason]` with a status of 200..=599.
    BadStatus,
    /// More than one Status field.
    DuplicateStatus,
    /// A Transfer-Encoding field: the server owns the framing.
    TransferEncoding,
    /// Content-Length is not `1*DIGIT` fitting a u64, or its repeats differ.
    BadContentLength,
    /// A document response without Content-Type and without Status.
    MissingContentType,
    /// Content-Type is not `type "/" subtype [parameters]`.
    BadContentType,
    /// More than one Content-Type field.
    DuplicateContentType,
    /// Location is empty, holds SP, controls or non-ASCII, or (without Status) is neither a
    /// local path nor an absolute URI.
    BadLocation,
    /// More than one Location field.
    DuplicateLocation,
    /// The first line of an NPH script is not an HTTP/1.x status line.
    BadStatusLine,
}

impl HeadError {
    /// Short static text for the log; the client always gets a generic 502.
    pub fn as_str(self) -> &'static str {
        match self {
            HeadError::NoBlankLine => "script output ended inside the header block",
            HeadError::TooLarge => "script header block too large",
            HeadError::NoColon => "script header line without a colon",
            HeadError::BadName => "invalid script header field name",
            HeadError::ObsFold => "obsolete line folding in script header",
            HeadError::ControlInValue => "control byte in script header value",
            HeadError::CrInLine => "bare CR in script header",
            HeadError::BadStatus => "invalid Status from script",
            HeadError::DuplicateStatus => "more than one Status from script",
            HeadError::TransferEncoding => "Transfer-Encoding from script",
            HeadError::BadContentLength => "invalid Content-Length from script",
            HeadError::MissingContentType => "script document without Content-Type",
            HeadError::BadContentType => "invalid Content-Type from script",
            HeadError::DuplicateContentType => "more than one Content-Type from script",
            HeadError::BadLocation => "invalid Location from script",
            HeadError::DuplicateLocation => "more than one Location from script",
            HeadError::BadStatusLine => "invalid status line from NPH script",
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for HeadError {}

/// Try to parse a complete CGI header block from the start of `buf` (everything the script
/// wrote so far).
///
/// `Ok(None)`: the block has not ended and `buf.len() <= max`; call again with more bytes.
/// `Ok(Some((head, n)))`: the block is complete; `n` counts its bytes including the empty line
/// that ends it, and `buf[n..]` is body. `Err(TooLarge)` as soon as `buf.len() > max` without a
/// complete block, or for a complete block longer than `max`. Errors in lines that are already
/// complete are reported before the block ends.
pub fn parse(buf: &[u8], max: usize) -> Result<Option<(ScriptHead, usize)>, HeadError> {
    scan(buf, max, Mode::Cgi)
}

/// [`parse`] for an NPH script (SPEC §5.5): the first line is an HTTP/1.x status line, then
/// header fields as for [`parse`]. The Location and Content-Type rules do not apply (the kind is
/// always [`Kind::Document`]); Transfer-Encoding is still refused.
pub fn parse_nph(buf: &[u8], max: usize) -> Result<Option<(ScriptHead, usize)>, HeadError> {
    scan(buf, max, Mode::Nph)
}

/// The error to log when the script's stdout ended before [`parse`] returned a block:
/// [`HeadError::NoBlankLine`], or the error of a bad line already in `buf`.
pub fn at_eof(buf: &[u8]) -> HeadError {
    eof_error(parse(buf, usize::MAX))
}

/// [`at_eof`] for an NPH script, whose first line is a status line and not a field.
pub fn at_eof_nph(buf: &[u8]) -> HeadError {
    eof_error(parse_nph(buf, usize::MAX))
}

fn eof_error(result: Result<Option<(ScriptHead, usize)>, HeadError>) -> HeadError {
    match result {
        Err(e) => e,
        Ok(_) => HeadError::NoBlankLine,
    }
}

/// Which grammar the block follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// CGI response header fields (RFC 3875 §6.3).
    Cgi,
    /// An HTTP status line, then header fields (RFC 3875 §5.2).
    Nph,
}

/// Walks the complete lines of `buf` in order, up to the empty line that ends the block.
fn scan(buf: &[u8], max: usize, mode: Mode) -> Result<Option<(ScriptHead, usize)>, HeadError> {
    let mut block = Block::new(mode);
    let mut end = 0;
    for raw in buf.split_inclusive(|&b| b == b'\n') {
        let Some(line) = raw.strip_suffix(b"\n") else {
            break;
        };
        let start = end;
        end += raw.len();
        // A line is measured through its LF, so a block of exactly `max` bytes passes and a
        // line ending past `max` fails even if the buffer holds it whole.
        if end > max {
            return Err(HeadError::TooLarge);
        }
        let line = strip_cr(line)?;
        if line.is_empty() {
            return block.finish().map(|head| Some((head, end)));
        }
        if mode == Mode::Nph && start == 0 {
            block.status_line(line)?;
        } else {
            block.field(line)?;
        }
    }
    if buf.len() > max {
        Err(HeadError::TooLarge)
    } else {
        Ok(None)
    }
}

/// The line without its line ending: LF or CRLF, both accepted (scripts print `\n`).
fn strip_cr(line: &[u8]) -> Result<&[u8], HeadError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // RFC 9112 §2.2: a bare CR is refused rather than read as a line end or a space.
    if line.contains(&b'\r') {
        Err(HeadError::CrInLine)
    } else {
        Ok(line)
    }
}

/// The fields the rules single out, matched case-insensitively (RFC 3875 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Status,
    Location,
    ContentType,
    ContentLength,
    TransferEncoding,
    Other,
}

fn known(name: &[u8]) -> Known {
    const NAMES: [(&[u8], Known); 5] = [
        (b"status", Known::Status),
        (b"location", Known::Location),
        (b"content-type", Known::ContentType),
        (b"content-length", Known::ContentLength),
        (b"transfer-encoding", Known::TransferEncoding),
    ];
    NAMES
        .iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map_or(Known::Other, |&(_, kind)| kind)
}

/// What the lines seen so far have said.
struct Block {
    mode: Mode,
    status: Option<u16>,
    reason: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    content_length: Option<u64>,
    location: Option<String>,
    has_content_type: bool,
}

impl Block {
    fn new(mode: Mode) -> Self {
        Block {
            mode,
            status: None,
            reason: None,
            headers: Vec::new(),
            content_length: None,
            location: None,
            has_content_type: false,
        }
    }

    /// The first line of an NPH script.
    fn status_line(&mut self, line: &[u8]) -> Result<(), HeadError> {
        // RFC 9112 §4: HTTP-version SP status-code SP [ reason-phrase ]; the version is 1.x
        // because the script answers an HTTP/1.x request, and the second SP may be left out.
        let rest = line
            .strip_prefix(b"HTTP/1.1 ")
            .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
            .ok_or(HeadError::BadStatusLine)?;
        let (status, reason) = status_and_reason(rest).ok_or(HeadError::BadStatusLine)?;
        self.status = Some(status);
        self.reason = reason;
        Ok(())
    }

    /// One `name: value` line after the NPH status line, or any line of a CGI block.
    fn field(&mut self, line: &[u8]) -> Result<(), HeadError> {
        let (name, value) = split_field(line)?;
        match (known(name), self.mode) {
            // RFC 3875 §6.3.4: the script must not send fields about the client connection;
            // the response writer decides the framing.
            (Known::TransferEncoding, _) => return Err(HeadError::TransferEncoding),
            (Known::ContentLength, _) => self.content_length(value)?,
            // RFC 3875 §6.3.3: Status is for the server, never forwarded.
            (Known::Status, Mode::Cgi) => return self.status_field(value),
            (Known::Location, Mode::Cgi) => self.location(value)?,
            (Known::ContentType, Mode::Cgi) => self.content_type(value)?,
            _ => {}
        }
        self.headers.push((ascii_string(name), value.to_vec()));
        Ok(())
    }

    fn status_field(&mut self, value: &[u8]) -> Result<(), HeadError> {
        // RFC 3875 §6.3: each CGI field at most once.
        if self.status.is_some() {
            return Err(HeadError::DuplicateStatus);
        }
        // RFC 3875 §6.3.3: Status = "Status:" status-code SP reason-phrase
        let (status, reason) = status_and_reason(value).ok_or(HeadError::BadStatus)?;
        self.status = Some(status);
        self.reason = reason;
        Ok(())
    }

    fn content_length(&mut self, value: &[u8]) -> Result<(), HeadError> {
        // RFC 9110 §8.6: Content-Length = 1*DIGIT. Unlike a request, a list is refused: a
        // script has no proxy in front of it that could have merged repeated fields.
        let length = parse_decimal(value).ok_or(HeadError::BadContentLength)?;
        match self.content_length {
            Some(previous) if previous != length => Err(HeadError::BadContentLength),
            _ => {
                self.content_length = Some(length);
                Ok(())
            }
        }
    }

    fn location(&mut self, value: &[u8]) -> Result<(), HeadError> {
        if self.location.is_some() {
            return Err(HeadError::DuplicateLocation);
        }
        // RFC 3875 §6.3.2 and RFC 3986 §2: a URI is non-empty here and never holds SP,
        // controls or raw non-ASCII bytes, whatever the kind of response.
        if value.is_empty() || !value.iter().all(u8::is_ascii_graphic) {
            return Err(HeadError::BadLocation);
        }
        self.location = Some(ascii_string(value));
        Ok(())
    }

    fn content_type(&mut self, value: &[u8]) -> Result<(), HeadError> {
        if self.has_content_type {
            return Err(HeadError::DuplicateContentType);
        }
        if !is_media_type(value) {
            return Err(HeadError::BadContentType);
        }
        self.has_content_type = true;
        Ok(())
    }

    /// The rules that need the whole block, applied at its empty line.
    fn finish(self) -> Result<ScriptHead, HeadError> {
        let kind = match (&self.location, self.status) {
            // RFC 3875 §6.2.4: with Status, Location is an ordinary field of a document.
            (Some(location), None) => redirect_kind(location)?,
            _ => Kind::Document,
        };
        let status = match (self.mode, self.status, &kind) {
            (_, Some(status), _) => status,
            // An NPH block that starts with the empty line has no status line at all.
            (Mode::Nph, None, _) => return Err(HeadError::BadStatusLine),
            // RFC 3875 §6.2.3: the server answers a client redirect with 302.
            (Mode::Cgi, None, Kind::ClientRedirect) => status::FOUND,
            (Mode::Cgi, None, _) => status::OK,
        };
        // RFC 3875 §6.2.1, §6.3.1: a document needs Content-Type; a Status field excuses it
        // (see the module doc).
        if kind == Kind::Document && self.status.is_none() && !self.has_content_type {
            return Err(HeadError::MissingContentType);
        }
        Ok(ScriptHead {
            status,
            reason: self.reason,
            headers: self.headers,
            kind,
            content_length: self.content_length,
        })
    }
}

/// Splits `name ":" OWS value OWS` and checks both parts.
fn split_field(line: &[u8]) -> Result<(&[u8], &[u8]), HeadError> {
    // RFC 9112 §5.2: obs-fold is refused rather than unfolded.
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(HeadError::ObsFold);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeadError::NoColon)?;
    let (name, rest) = line.split_at(colon);
    // RFC 9110 §5.1: field-name = token; RFC 9112 §5.1: no whitespace before the colon.
    if !is_token(name) {
        return Err(HeadError::BadName);
    }
    let value = trim_ows(rest.get(1..).unwrap_or_default());
    // RFC 9110 §5.5: field-value = *( VCHAR / obs-text / SP / HTAB ).
    if !is_field_value(value) {
        return Err(HeadError::ControlInValue);
    }
    Ok((name, value))
}

/// `3DIGIT [SP reason]`: the status, and the reason if it is not empty.
fn status_and_reason(s: &[u8]) -> Option<(u16, Option<String>)> {
    let (digits, rest) = s.split_at_checked(3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = digits.iter().fold(0, |n, &d| n * 10 + u16::from(d - b'0'));
    // RFC 9110 §15.2: 1xx responses are interim and belong to the server.
    if !(200..=599).contains(&status) {
        return None;
    }
    let reason = match rest {
        [] => b"".as_slice(),
        [b' ', reason @ ..] => trim_ows(reason),
        _ => return None,
    };
    // RFC 3875 §6.3.3: reason-phrase = *TEXT, which is ASCII.
    if !reason.iter().all(|&b| is_text(b)) {
        return None;
    }
    Some((status, (!reason.is_empty()).then(|| ascii_string(reason))))
}

/// The kind of a Location sent without Status.
fn redirect_kind(location: &str) -> Result<Kind, HeadError> {
    match location.as_bytes() {
        // RFC 3986 §4.2: "//" starts a network-path reference (another host), not a path.
        [b'/', b'/', ..] => Err(HeadError::BadLocation),
        // RFC 3875 §6.2.2: local-pathquery = abs-path [ "?" query-string ], no fragment;
        // RFC 3986 §2.1: '%' only as "%" HEXDIG HEXDIG. The server dispatches this one itself.
        [b'/', ..] if !location.contains('#') && has_valid_escapes(location.as_bytes()) => {
            Ok(Kind::LocalRedirect(location.to_owned()))
        }
        // RFC 3875 §6.2.3: client-Location = absolute URI [ "#" fragment ].
        bytes if has_scheme(bytes) => Ok(Kind::ClientRedirect),
        _ => Err(HeadError::BadLocation),
    }
}

/// Whether every '%' in `s` starts a `"%" HEXDIG HEXDIG` escape (RFC 3986 §2.1).
fn has_valid_escapes(s: &[u8]) -> bool {
    s.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || s.get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

/// Whether `s` starts with `scheme ":"` (RFC 3986 §3.1).
fn has_scheme(s: &[u8]) -> bool {
    let Some(colon) = s.iter().position(|&b| b == b':') else {
        return false;
    };
    match s.split_at(colon).0.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphabetic()
                && rest
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

/// RFC 9110 §8.3.1: media-type = type "/" subtype parameters. The parameters are passed on
/// unchecked: the client reads them, the server does not.
fn is_media_type(value: &[u8]) -> bool {
    let essence = trim_ows(value.split(|&b| b == b';').next().unwrap_or(value));
    match essence.iter().position(|&b| b == b'/') {
        Some(slash) => {
            let (kind, subtype) = essence.split_at(slash);
            is_token(kind) && is_token(subtype.get(1..).unwrap_or_default())
        }
        None => false,
    }
}

/// `bytes` as a String; only called on bytes already checked to be ASCII.
fn ascii_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit well above every table row.
    const MAX: usize = 8192;

    type Parse = fn(&[u8], usize) -> Result<Option<(ScriptHead, usize)>, HeadError>;

    /// One row: `block` is the header block for a valid row, or everything through the line
    /// (or the empty line) where the error shows for an invalid one; `body` follows it.
    struct Case {
        nph: bool,
        block: Vec<u8>,
        body: &'static [u8],
        want: Result<ScriptHead, HeadError>,
    }

    impl Case {
        fn parser(&self) -> Parse {
            if self.nph {
                parse_nph
            } else {
                parse
            }
        }

        fn eof(&self, buf: &[u8]) -> HeadError {
            if self.nph {
                at_eof_nph(buf)
            } else {
                at_eof(buf)
            }
        }

        fn input(&self) -> Vec<u8> {
            [self.block.as_slice(), self.body].concat()
        }

        fn expected(&self) -> Result<Option<(ScriptHead, usize)>, HeadError> {
            self.want.clone().map(|head| Some((head, self.block.len())))
        }
    }

    fn cgi(block: &[u8], body: &'static [u8], want: Result<ScriptHead, HeadError>) -> Case {
        Case {
            nph: false,
            block: block.to_vec(),
            body,
            want,
        }
    }

    fn nph(block: &[u8], body: &'static [u8], want: Result<ScriptHead, HeadError>) -> Case {
        Case {
            nph: true,
            ..cgi(block, body, want)
        }
    }

    fn fields(headers: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    /// A 200 document with these fields.
    fn doc(headers: &[(&str, &str)]) -> ScriptHead {
        ScriptHead {
            status: 200,
            reason: None,
            headers: fields(headers),
            kind: Kind::Document,
            content_length: None,
        }
    }

    /// A document with a status and reason.
    fn status(status: u16, reason: Option<&str>, headers: &[(&str, &str)]) -> ScriptHead {
        ScriptHead {
            status,
            reason: reason.map(str::to_string),
            ..doc(headers)
        }
    }

    fn with_length(head: ScriptHead, length: u64) -> ScriptHead {
        ScriptHead {
            content_length: Some(length),
            ..head
        }
    }

    fn local(path: &str) -> ScriptHead {
        ScriptHead {
            kind: Kind::LocalRedirect(path.to_string()),
            ..doc(&[("Location", path)])
        }
    }

    fn client(location: &str) -> ScriptHead {
        ScriptHead {
            status: 302,
            kind: Kind::ClientRedirect,
            ..doc(&[("Location", location)])
        }
    }

    const HTML: (&str, &str) = ("Content-Type", "text/html");

    fn line_ending_cases() -> Vec<Case> {
        vec![
            cgi(
                b"Content-Type: text/html\n\n",
                b"<p>hi</p>\n",
                Ok(doc(&[HTML])),
            ),
            cgi(b"Content-Type: text/html\r\n\r\n", b"x", Ok(doc(&[HTML]))),
            cgi(
                b"Content-Type: text/html\r\nX-A: 1\n\r\n",
                b"",
                Ok(doc(&[HTML, ("X-A", "1")])),
            ),
            cgi(
                b"Content-Type: text/html\nX-A: 1\r\n\n",
                b"\r\n",
                Ok(doc(&[HTML, ("X-A", "1")])),
            ),
            // The body is never inspected, however much it looks like fields.
            cgi(
                b"Content-Type: text/plain\n\n",
                b"Status: 500\n\nX\r\0\x7f: \r\n",
                Ok(doc(&[("Content-Type", "text/plain")])),
            ),
        ]
    }

    fn status_cases() -> Vec<Case> {
        vec![
            cgi(
                b"Status: 404 Not Found\nContent-Type: text/plain\n\n",
                b"gone",
                Ok(status(
                    404,
                    Some("Not Found"),
                    &[("Content-Type", "text/plain")],
                )),
            ),
            cgi(b"Status: 404\n\n", b"", Ok(status(404, None, &[]))),
            cgi(
                b"Status: 500 Internal Server Error\r\n\r\n",
                b"",
                Ok(status(500, Some("Internal Server Error"), &[])),
            ),
            cgi(
                b"status: 201 Created\r\ncontent-type: application/json\r\n\r\n",
                b"{}",
                Ok(status(
                    201,
                    Some("Created"),
                    &[("content-type", "application/json")],
                )),
            ),
            cgi(b"STATUS: 599 x\n\n", b"", Ok(status(599, Some("x"), &[]))),
            cgi(b"Status: 200\n\n", b"", Ok(status(200, None, &[]))),
            cgi(b"Status:200 \t\n\n", b"", Ok(status(200, None, &[]))),
            cgi(
                b"Status: 418 I'm a  teapot \nContent-Type: text/plain\n\n",
                b"",
                Ok(status(
                    418,
                    Some("I'm a  teapot"),
                    &[("Content-Type", "text/plain")],
                )),
            ),
            cgi(
                b"Status: 200 \t OK\n\n",
                b"",
                Ok(status(200, Some("OK"), &[])),
            ),
            cgi(
                b"X-Before: 1\nStatus: 403 Forbidden\nX-After: 2\n\n",
                b"",
                Ok(status(
                    403,
                    Some("Forbidden"),
                    &[("X-Before", "1"), ("X-After", "2")],
                )),
            ),
        ]
    }

    fn redirect_cases() -> Vec<Case> {
        vec![
            cgi(
                b"Location: /cgi-bin/next?a=1&b=2\n\n",
                b"",
                Ok(local("/cgi-bin/next?a=1&b=2")),
            ),
            cgi(b"Location: /\r\n\r\n", b"", Ok(local("/"))),
            cgi(
                b"Location: /a%20b?c=%2f\n\n",
                b"",
                Ok(local("/a%20b?c=%2f")),
            ),
            cgi(
                b"Location: http://example.com/x\n\n",
                b"",
                Ok(client("http://example.com/x")),
            ),
            cgi(
                b"location: https://example.com/a?b#frag\r\n\r\n",
                b"",
                Ok(ScriptHead {
                    headers: fields(&[("location", "https://example.com/a?b#frag")]),
                    ..client("")
                }),
            ),
            cgi(
                b"Location: web+app.x-1:thing\n\n",
                b"",
                Ok(client("web+app.x-1:thing")),
            ),
            cgi(
                b"Location: mailto:a@b.example\n\n",
                b"",
                Ok(client("mailto:a@b.example")),
            ),
            // With Status, Location is an ordinary field (RFC 3875 §6.2.4).
            cgi(
                b"Status: 301 Moved Permanently\nLocation: https://e.example/\n\n",
                b"",
                Ok(status(
                    301,
                    Some("Moved Permanently"),
                    &[("Location", "https://e.example/")],
                )),
            ),
            cgi(
                b"Location: /later\nStatus: 302\n\n",
                b"",
                Ok(status(302, None, &[("Location", "/later")])),
            ),
            cgi(
                b"Status: 303 See Other\nLocation: other?x=1\nContent-Type: text/html\n\n",
                b"<a href=other>",
                Ok(status(
                    303,
                    Some("See Other"),
                    &[("Location", "other?x=1"), HTML],
                )),
            ),
            cgi(
                b"Status: 302\nLocation: //cdn.example/x\n\n",
                b"",
                Ok(status(302, None, &[("Location", "//cdn.example/x")])),
            ),
            // Redirects may carry other fields and a body; the caller drops them.
            cgi(
                b"Content-Type: text/html\nLocation: /x\n\n",
                b"ignored",
                Ok(ScriptHead {
                    headers: fields(&[HTML, ("Location", "/x")]),
                    ..local("/x")
                }),
            ),
            cgi(
                b"Location: http://e.example/\nSet-Cookie: a=1\n\n",
                b"",
                Ok(ScriptHead {
                    headers: fields(&[("Location", "http://e.example/"), ("Set-Cookie", "a=1")]),
                    ..client("")
                }),
            ),
        ]
    }

    fn field_cases() -> Vec<Case> {
        vec![
            cgi(
                b"Content-Type: text/plain\nContent-Length: 5\n\n",
                b"hello",
                Ok(with_length(
                    doc(&[("Content-Type", "text/plain"), ("Content-Length", "5")]),
                    5,
                )),
            ),
            cgi(
                b"Content-Length: 5\r\nContent-Type: text/plain\r\ncontent-length: 005\r\n\r\n",
                b"hello",
                Ok(with_length(
                    doc(&[
                        ("Content-Length", "5"),
                        ("Content-Type", "text/plain"),
                        ("content-length", "005"),
                    ]),
                    5,
                )),
            ),
            cgi(
                b"Status: 204\nContent-Length: 0\n\n",
                b"",
                Ok(with_length(status(204, None, &[("Content-Length", "0")]), 0)),
            ),
            cgi(
                b"Status: 200\nContent-Length: 18446744073709551615\n\n",
                b"",
                Ok(with_length(
                    status(200, None, &[("Content-Length", "18446744073709551615")]),
                    u64::MAX,
                )),
            ),
            // Order kept, repeats kept, values trimmed, empty values allowed.
            cgi(
                b"X-B:  two \t\nContent-Type:\ttext/html \nX-A:one\nX-B: 2\nX-Empty:\nX-Sp: \t \n\n",
                b"",
                Ok(doc(&[
                    ("X-B", "two"),
                    ("Content-Type", "text/html"),
                    ("X-A", "one"),
                    ("X-B", "2"),
                    ("X-Empty", ""),
                    ("X-Sp", ""),
                ])),
            ),
            cgi(
                b"Content-Type: text/html ; charset=\"utf-8\"\nX-Time: 12:30:00\nX-!#$%&'*+.^_`|~9: a \t b\n\n",
                b"",
                Ok(doc(&[
                    ("Content-Type", "text/html ; charset=\"utf-8\""),
                    ("X-Time", "12:30:00"),
                    ("X-!#$%&'*+.^_`|~9", "a \t b"),
                ])),
            ),
            cgi(
                b"Content-Type: application/vnd.api+json;charset=utf-8\n\n",
                b"",
                Ok(doc(&[("Content-Type", "application/vnd.api+json;charset=utf-8")])),
            ),
            // obs-text is kept byte for byte.
            cgi(
                b"Content-Type: text/plain; charset=\xe9\nX-Name: caf\xc3\xa9 \xff\n\n",
                b"\xff",
                Ok(ScriptHead {
                    headers: vec![
                        ("Content-Type".into(), b"text/plain; charset=\xe9".to_vec()),
                        ("X-Name".into(), b"caf\xc3\xa9 \xff".to_vec()),
                    ],
                    ..doc(&[])
                }),
            ),
        ]
    }

    fn nph_cases() -> Vec<Case> {
        vec![
            nph(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
                b"hi",
                Ok(status(200, Some("OK"), &[("Content-Type", "text/plain")])),
            ),
            nph(
                b"HTTP/1.0 404 Not Found\nContent-Length: 3\n\n",
                b"abc",
                Ok(with_length(
                    status(404, Some("Not Found"), &[("Content-Length", "3")]),
                    3,
                )),
            ),
            nph(b"HTTP/1.1 204\r\n\r\n", b"", Ok(status(204, None, &[]))),
            nph(b"HTTP/1.1 204 \r\n\r\n", b"", Ok(status(204, None, &[]))),
            // Status, Location and Content-Type are ordinary fields in NPH output.
            nph(
                b"HTTP/1.1 302 Found\nLocation: foo\nStatus: 500\nContent-Type: x\nContent-Type: y\n\n",
                b"",
                Ok(status(
                    302,
                    Some("Found"),
                    &[
                        ("Location", "foo"),
                        ("Status", "500"),
                        ("Content-Type", "x"),
                        ("Content-Type", "y"),
                    ],
                )),
            ),
        ]
    }

    fn syntax_error_cases() -> Vec<Case> {
        use HeadError::*;
        vec![
            cgi(
                b"Content-Type: text/html\nfoo bar\n",
                b"\nbody",
                Err(NoColon),
            ),
            cgi(b"Content-Type text/html\n", b"\n", Err(NoColon)),
            cgi(b"\0\n", b"\n", Err(NoColon)),
            cgi(b"Content Type: text/html\n", b"\n", Err(BadName)),
            cgi(b"X-A : 1\n", b"Content-Type: text/html\n\n", Err(BadName)),
            cgi(b"X-A\t: 1\n", b"\n", Err(BadName)),
            cgi(b": x\n", b"\n", Err(BadName)),
            cgi(b"X\0: 1\n", b"\n", Err(BadName)),
            cgi(b"X\"Q: 1\n", b"\n", Err(BadName)),
            cgi(b"\xc3\x96l: 1\n", b"\n", Err(BadName)),
            cgi(
                b"Content-Type: text/html\n continued\n",
                b"\n",
                Err(ObsFold),
            ),
            cgi(b"\tX: 1\n", b"\n", Err(ObsFold)),
            cgi(b"Content-Type: text/html\n \n", b"\n", Err(ObsFold)),
            cgi(b"X: a\0b\n", b"\n", Err(ControlInValue)),
            cgi(b"X: a\x7fb\n", b"\n", Err(ControlInValue)),
            cgi(b"X: \x01\n", b"\n", Err(ControlInValue)),
            cgi(b"X: a\x0bb\r\n", b"\r\n", Err(ControlInValue)),
            cgi(
                b"Content-Type: text/html\nX: a\x1b\n",
                b"\n",
                Err(ControlInValue),
            ),
            cgi(b"X: a\rb\n", b"\n", Err(CrInLine)),
            cgi(b"X: a\r\r\n", b"\r\n", Err(CrInLine)),
            cgi(b"X\r: a\n", b"\n", Err(CrInLine)),
            cgi(b"\r\r\n", b"", Err(CrInLine)),
            cgi(b"Content-Type: text/html\r\n\rx\n", b"\n", Err(CrInLine)),
            cgi(
                b"Status: 200\rContent-Type: text/html\n",
                b"\n",
                Err(CrInLine),
            ),
        ]
    }

    fn status_error_cases() -> Vec<Case> {
        use HeadError::*;
        let bad: [&[u8]; 15] = [
            b"Status: abc\n",
            b"Status: 20\n",
            b"Status: 2000\n",
            b"Status: 200abc\n",
            b"Status:\n",
            b"Status: \t\n",
            b"Status: 199 Early\n",
            b"Status: 100 Continue\n",
            b"Status: 600 Nope\n",
            b"Status: 099\n",
            b"Status: +20\n",
            b"Status: 200\tOK\n",
            b"Status: 2 00\n",
            b"Status: 200 caf\xc3\xa9\n",
            b"Content-Type: text/html\nStatus: OK 200\n",
        ];
        let mut cases: Vec<Case> = bad.iter().map(|b| cgi(b, b"\n", Err(BadStatus))).collect();
        cases.extend([
            cgi(b"Status: 200\nStatus: 200\n", b"\n", Err(DuplicateStatus)),
            cgi(
                b"Status: 200\nX: 1\nstatus: 404\n",
                b"\n",
                Err(DuplicateStatus),
            ),
            cgi(b"Status: 200\nStatus: bad\n", b"\n", Err(DuplicateStatus)),
        ]);
        cases
    }

    fn framing_error_cases() -> Vec<Case> {
        use HeadError::*;
        vec![
            cgi(
                b"Transfer-Encoding: chunked\n",
                b"\n",
                Err(TransferEncoding),
            ),
            cgi(
                b"Content-Type: text/html\ntransfer-encoding: identity\n",
                b"\n",
                Err(TransferEncoding),
            ),
            cgi(b"Transfer-Encoding:\n", b"\n", Err(TransferEncoding)),
            cgi(b"Content-Length: -1\n", b"\n", Err(BadContentLength)),
            cgi(b"Content-Length: +5\n", b"\n", Err(BadContentLength)),
            cgi(b"Content-Length: 5, 5\n", b"\n", Err(BadContentLength)),
            cgi(b"Content-Length: 5 5\n", b"\n", Err(BadContentLength)),
            cgi(b"Content-Length:\n", b"\n", Err(BadContentLength)),
            cgi(b"Content-Length: 1e3\n", b"\n", Err(BadContentLength)),
            cgi(b"Content-Length: 0x10\n", b"\n", Err(BadContentLength)),
            cgi(
                b"Content-Length: 18446744073709551616\n",
                b"\n",
                Err(BadContentLength),
            ),
            cgi(
                b"Content-Length: 5\nContent-Type: text/html\nContent-Length: 6\n",
                b"\n",
                Err(BadContentLength),
            ),
        ]
    }

    fn content_type_error_cases() -> Vec<Case> {
        use HeadError::*;
        let bad: [&[u8]; 8] = [
            b"Content-Type: html\n",
            b"Content-Type:\n",
            b"Content-Type: text/\n",
            b"Content-Type: /html\n",
            b"Content-Type: text /html\n",
            b"Content-Type: te xt/html\n",
            b"Content-Type: ;charset=utf-8\n",
            b"Content-Type: text/html/x\n",
        ];
        let mut cases: Vec<Case> = bad
            .iter()
            .map(|b| cgi(b, b"\n", Err(BadContentType)))
            .collect();
        cases.extend([
            cgi(b"\n", b"body", Err(MissingContentType)),
            cgi(b"\r\n", b"", Err(MissingContentType)),
            cgi(b"X-A: 1\n\n", b"", Err(MissingContentType)),
            cgi(b"Content-Length: 0\r\n\r\n", b"", Err(MissingContentType)),
            cgi(
                b"Content-Type: text/html\ncontent-type: text/html\n",
                b"\n",
                Err(DuplicateContentType),
            ),
        ]);
        cases
    }

    fn location_error_cases() -> Vec<Case> {
        use HeadError::*;
        vec![
            // Checked as soon as the line ends, with or without Status.
            cgi(b"Location: /a b\n", b"\n", Err(BadLocation)),
            cgi(b"Location:\n", b"\n", Err(BadLocation)),
            cgi(b"Location: \t\n", b"\n", Err(BadLocation)),
            cgi(b"Location: /caf\xc3\xa9\n", b"\n", Err(BadLocation)),
            cgi(
                b"Status: 302\nLocation: http://e.example/a b\n",
                b"\n",
                Err(BadLocation),
            ),
            cgi(b"Location: /a\tb\n", b"\n", Err(BadLocation)),
            // Without Status the kind is decided at the empty line.
            cgi(b"Location: foo\n\n", b"", Err(BadLocation)),
            cgi(b"Location: //evil.example/\n\n", b"", Err(BadLocation)),
            cgi(b"Location: ./x\n\n", b"", Err(BadLocation)),
            cgi(b"Location: 1http://x\n\n", b"", Err(BadLocation)),
            cgi(b"Location: :x\n\n", b"", Err(BadLocation)),
            cgi(b"Location: ?q=1\n\n", b"", Err(BadLocation)),
            cgi(b"Location: #f\n\n", b"", Err(BadLocation)),
            cgi(b"Location: /x#frag\n\n", b"", Err(BadLocation)),
            // The server dispatches a local redirect itself: its escapes must be valid.
            cgi(b"Location: /x?a=%zz\n\n", b"", Err(BadLocation)),
            cgi(b"Location: /x%4\n\n", b"", Err(BadLocation)),
            cgi(b"Location: /x%\n\n", b"", Err(BadLocation)),
            cgi(b"Location: a/b:c\n\n", b"", Err(BadLocation)),
            cgi(
                b"Location: /a\nLocation: /b\n",
                b"\n",
                Err(DuplicateLocation),
            ),
            cgi(
                b"Status: 302\nLocation: /a\nlocation: http://e.example/\n",
                b"\n",
                Err(DuplicateLocation),
            ),
        ]
    }

    fn nph_error_cases() -> Vec<Case> {
        use HeadError::*;
        let bad: [&[u8]; 15] = [
            b"HTTP/2 200 OK\n",
            b"HTTP/1.2 200 OK\n",
            b"HTTP/1.1  200 OK\n",
            b"http/1.1 200 OK\n",
            b"HTTP/1.1 200OK\n",
            b"HTTP/1.1 99 X\n",
            b"HTTP/1.1 100 Continue\n",
            b"HTTP/1.1 600 X\n",
            b"HTTP/1.1\n",
            b"HTTP/1.1 \n",
            b" HTTP/1.1 200 OK\n",
            b"HTTP/1.1 200 O\x01K\n",
            b"Content-Type: text/html\n",
            b"Status: 200 OK\n",
            b"\n",
        ];
        let mut cases: Vec<Case> = bad
            .iter()
            .map(|b| nph(b, b"\n", Err(BadStatusLine)))
            .collect();
        cases.extend([
            nph(b"HTTP/1.1 200 O\rK\n", b"\n", Err(CrInLine)),
            nph(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n", b"\r\n", Err(CrInLine)),
            nph(b"HTTP/1.1 200 OK\nbad\n", b"\n", Err(NoColon)),
            nph(b"HTTP/1.1 200 OK\n folded\n", b"\n", Err(ObsFold)),
            nph(b"HTTP/1.1 200 OK\nX: \0\n", b"\n", Err(ControlInValue)),
            nph(
                b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n",
                b"\n",
                Err(TransferEncoding),
            ),
            nph(
                b"HTTP/1.1 200 OK\nContent-Length: x\n",
                b"\n",
                Err(BadContentLength),
            ),
        ]);
        cases
    }

    fn cases() -> Vec<Case> {
        [
            line_ending_cases(),
            status_cases(),
            redirect_cases(),
            field_cases(),
            nph_cases(),
            syntax_error_cases(),
            status_error_cases(),
            framing_error_cases(),
            content_type_error_cases(),
            location_error_cases(),
            nph_error_cases(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    #[test]
    fn table() {
        let cases = cases();
        assert!(cases.len() >= 100, "{} cases", cases.len());
        for case in &cases {
            let input = case.input();
            crate::fuzz_seeds::save("cgi_header", &input);
            let got = (case.parser())(&input, MAX);
            assert_eq!(
                got,
                case.expected(),
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    /// Every prefix shorter than the block (or the offending line) needs more; every longer
    /// one gives the result of the whole input.
    #[test]
    fn every_prefix() {
        for case in cases() {
            let input = case.input();
            let want = case.expected();
            for end in 0..=input.len() {
                let got = (case.parser())(&input[..end], MAX);
                let shown = String::from_utf8_lossy(&input[..end]);
                if end < case.block.len() {
                    assert_eq!(got, Ok(None), "{shown:?}");
                } else {
                    assert_eq!(got, want, "{shown:?}");
                }
            }
        }
    }

    /// Stdout ending early is `NoBlankLine` until the offending line is complete.
    #[test]
    fn at_eof_on_every_truncation() {
        for case in cases() {
            let input = case.input();
            for end in 0..case.block.len() {
                assert_eq!(case.eof(&input[..end]), HeadError::NoBlankLine, "{end}");
            }
            if let Err(e) = case.want {
                assert_eq!(case.eof(&input), e, "{:?}", String::from_utf8_lossy(&input));
            }
        }
    }

    #[test]
    fn at_eof_rows() {
        use HeadError::*;
        let rows: [(&[u8], HeadError); 9] = [
            (b"", NoBlankLine),
            (b"Content-Type: text/html", NoBlankLine),
            (b"Content-Type: text/html\n", NoBlankLine),
            (b"Content-Type: text/html\r\n\r", NoBlankLine),
            (b"X: a\rb", NoBlankLine),
            (b"bad line\nContent-Type: text/html\n", NoColon),
            (b"X: 1\nStatus: 2000\nY", BadStatus),
            (b"HTTP/1.1 200 OK\n", NoColon),
            (b"Location: foo\n\n", BadLocation),
        ];
        for (input, want) in rows {
            assert_eq!(at_eof(input), want, "{:?}", String::from_utf8_lossy(input));
        }
        assert_eq!(at_eof_nph(b"HTTP/1.1 200 OK\n"), NoBlankLine);
        assert_eq!(at_eof_nph(b"HTTP/1.1 200 OK\r\nX: 1"), NoBlankLine);
        assert_eq!(at_eof_nph(b"HTTP/9 200 OK\r\n"), BadStatusLine);
    }

    /// A complete block passes with `max` equal to its length and fails one byte below.
    #[test]
    fn block_of_exactly_max_bytes() {
        for case in cases().into_iter().filter(|c| c.want.is_ok()) {
            let input = case.input();
            let n = case.block.len();
            assert_eq!((case.parser())(&input, n), case.expected());
            assert_eq!((case.parser())(&input, n - 1), Err(HeadError::TooLarge));
        }
    }

    #[test]
    fn unended_block_is_too_large_at_max_plus_one() {
        let mut input = b"Content-Type: text/html\nX-Long: ".to_vec();
        input.resize(200, b'a');
        for max in [10, 23, 24, 25, 50, 199] {
            assert_eq!(parse(&input[..max], max), Ok(None), "{max}");
            assert_eq!(
                parse(&input[..=max], max),
                Err(HeadError::TooLarge),
                "{max}"
            );
        }
        let mut input = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        input.resize(200, b'a');
        for max in [10, 16, 17, 18, 199] {
            assert_eq!(parse_nph(&input[..max], max), Ok(None), "{max}");
            assert_eq!(
                parse_nph(&input[..=max], max),
                Err(HeadError::TooLarge),
                "{max}"
            );
        }
        assert_eq!(parse(b"", 0), Ok(None));
        assert_eq!(parse(b"\n", 0), Err(HeadError::TooLarge));
    }

    #[test]
    fn line_ending_past_max_is_too_large_even_when_complete() {
        let input = b"Content-Type: text/html\nX-Long: aaaaaaaaaa\n\nbody";
        assert_eq!(parse(input, 30), Err(HeadError::TooLarge));
        // The empty line itself crosses the limit.
        assert_eq!(parse(input, 43), Err(HeadError::TooLarge));
        assert!(matches!(parse(input, 44), Ok(Some((_, 44)))));
    }

    #[test]
    fn earlier_bad_line_wins_over_the_limit() {
        let mut input = b"bad\n".to_vec();
        input.resize(100, b'a');
        assert_eq!(parse(&input, 10), Err(HeadError::NoColon));
        let mut input = b"X: 1\n".to_vec();
        input.resize(100, b'a');
        input.extend_from_slice(b"\nbad\n");
        assert_eq!(parse(&input, 50), Err(HeadError::TooLarge));
    }

    #[test]
    fn every_error_has_a_distinct_text() {
        use HeadError::*;
        let all = [
            NoBlankLine,
            TooLarge,
            NoColon,
            BadName,
            ObsFold,
            ControlInValue,
            CrInLine,
            BadStatus,
            DuplicateStatus,
            TransferEncoding,
            BadContentLength,
            MissingContentType,
            BadContentType,
            DuplicateContentType,
            BadLocation,
            DuplicateLocation,
            BadStatusLine,
        ];
        let mut texts: Vec<&str> = all.iter().map(|e| e.as_str()).collect();
        for e in all {
            assert_eq!(e.to_string(), e.as_str());
            assert!(!e.as_str().is_empty());
        }
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), all.len());
    }

    /// Every variant is produced by some row of the table or of the tests above.
    #[test]
    fn table_covers_every_line_and_block_error() {
        let mut seen: Vec<HeadError> = cases().into_iter().filter_map(|c| c.want.err()).collect();
        seen.sort_by_key(|e| e.as_str());
        seen.dedup();
        // NoBlankLine and TooLarge need truncated or oversized input: see the tests above.
        assert_eq!(seen.len(), 15, "{seen:?}");
    }
}
