//! The probe's reader for one HTTP/1.1 response, without I/O: the head (httparse), how the body
//! is delimited (RFC 9112 §6.3), and a body decoder that counts payload bytes. Independent of the
//! server's request-side parsers, so the probe checks the server rather than agreeing with it.

use super::chunked::{ChunkedDecoder, Progress};
use super::error::ResponseError;

/// Longest response head the probe waits for, in bytes (64 KiB); a longer one is malformed.
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields in a response head.
pub(super) const MAX_HEADERS: usize = 128;

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length: N`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    Close,
    /// No body (1xx, 204, 304).
    None,
}

impl Framing {
    /// The name the probe reports: `length`, `chunked`, `close` or `none`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Framing::Length(_) => "length",
            Framing::Chunked => "chunked",
            Framing::Close => "close",
            Framing::None => "none",
        }
    }
}

/// What the probe keeps of a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Head {
    /// The status code.
    pub status: u16,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
}

/// The final (non-1xx) response head at the start of `buf`, with the bytes it and any interim
/// responses before it took; `None` while more bytes are needed.
pub(super) fn parse_final_head(buf: &[u8]) -> Result<Option<(Head, usize)>, ResponseError> {
    let mut offset = 0;
    loop {
        let Some((head, len)) = parse_head(&buf[offset..])? else {
            return Ok(None);
        };
        offset += len;
        match head.status {
            101 => return Err(ResponseError::SwitchingProtocols),
            100..=199 => continue, // RFC 9110 §15.2: interim, the final response follows
            _ => return Ok(Some((head, offset))),
        }
    }
}

/// One response head at the start of `buf`.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, ResponseError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => return Ok(None),
        Ok(_) => return Err(ResponseError::HeadTooLarge(MAX_HEAD_BYTES)),
        Err(e) => return Err(ResponseError::Head(e)),
    };
    let status = response.code.unwrap_or_default();
    let framing = framing(status, response.headers)?;
    let mut connection = tokens(response.headers, "connection");
    let persistent = if response.version == Some(0) {
        // RFC 9112 §9.3: HTTP/1.0 persists only when asked to.
        connection.any(|t| t.eq_ignore_ascii_case("keep-alive"))
    } else {
        !connection.any(|t| t.eq_ignore_ascii_case("close"))
    };
    let keep_alive = persistent && framing != Framing::Close;
    Ok(Some((
        Head {
            status,
            framing,
            keep_alive,
        },
        len,
    )))
}

/// RFC 9112 §6.3, for a response to GET.
fn framing(status: u16, fields: &[httparse::Header<'_>]) -> Result<Framing, ResponseError> {
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::None);
    }
    let length = content_length(fields)?;
    let last_coding = tokens(fields, "transfer-encoding").last();
    match (last_coding, length) {
        (Some(_), Some(_)) => Err(ResponseError::LengthAndChunked),
        (Some(coding), None) if coding.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
        // RFC 9112 §6.3 item 4: any other final coding is delimited by the close.
        (Some(_), None) | (None, None) => Ok(Framing::Close),
        (None, Some(n)) => Ok(Framing::Length(n)),
    }
}

/// The Content-Length, if any; repeated values must agree (RFC 9110 §8.6).
fn content_length(fields: &[httparse::Header<'_>]) -> Result<Option<u64>, ResponseError> {
    let mut length = None;
    for value in tokens(fields, "content-length") {
        let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        let n: u64 = value
            .parse()
            .ok()
            .filter(|_| ok)
            .ok_or(ResponseError::ContentLength)?;
        if length.is_some_and(|l| l != n) {
            return Err(ResponseError::ContentLength);
        }
        length = Some(n);
    }
    Ok(length)
}

/// The comma-separated elements of every field named `name`, trimmed.
fn tokens<'a>(
    fields: &'a [httparse::Header<'a>],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    fields
        .iter()
        .filter(move |f| f.name.eq_ignore_ascii_case(name))
        .flat_map(|f| std::str::from_utf8(f.value).unwrap_or("\u{0}").split(','))
        .map(str::trim)
}

/// A response body being read: payload is counted, not kept.
#[derive(Clone, Copy, Debug)]
pub(super) enum Body {
    /// `remaining` bytes of a Content-Length body still to come.
    Length {
        /// Bytes still to come.
        remaining: u64,
    },
    /// A chunked body.
    Chunked(ChunkedDecoder),
    /// Everything until the connection closes.
    Close,
    /// Complete.
    Done,
}

impl Body {
    /// The decoder for a body delimited by `framing`.
    pub(super) fn new(framing: Framing) -> Body {
        match framing {
            Framing::Length(0) | Framing::None => Body::Done,
            Framing::Length(n) => Body::Length { remaining: n },
            Framing::Chunked => Body::Chunked(ChunkedDecoder::new()),
            Framing::Close => Body::Close,
        }
    }

    /// Whether the body is complete (a close-delimited one is complete only at EOF).
    pub(super) fn is_done(&self) -> bool {
        match self {
            Body::Done => true,
            Body::Chunked(d) => d.is_done(),
            Body::Length { .. } | Body::Close => false,
        }
    }

    /// Consumes body bytes from `input`.
    pub(super) fn decode(&mut self, input: &[u8]) -> Result<Progress, ResponseError> {
        match self {
            Body::Length { remaining } => {
                let n = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *remaining -= n as u64;
                if *remaining == 0 {
                    *self = Body::Done;
                }
                Ok(Progress {
                    consumed: n,
                    payload: n,
                })
            }
            Body::Chunked(d) => d.decode(input),
            Body::Close => Ok(Progress {
                consumed: input.len(),
                payload: input.len(),
            }),
            Body::Done => Ok(Progress::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<(Head, usize)>, ResponseError> {
        parse_final_head(text.as_bytes())
    }

    fn complete(text: &str) -> Head {
        let (h, len) = head(text).expect("valid").expect("complete");
        assert_eq!(len, text.len());
        h
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        for (text, framing) in [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n",
                Framing::Length(21),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n",
                Framing::Length(5),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                Framing::Chunked,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
                Framing::Chunked,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                Framing::Close,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", Framing::Close),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
                Framing::None,
            ),
            ("HTTP/1.1 304 Not Modified\r\n\r\n", Framing::None),
        ] {
            assert_eq!(complete(text).framing, framing, "{text:?}");
        }
    }

    #[test]
    fn keep_alive_depends_on_version_connection_and_framing() {
        for (text, keep_alive) in [
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
            (
                "HTTP/1.1 200 OK\r\nConnection: x, Close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", false),
            ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
        ] {
            assert_eq!(complete(text).keep_alive, keep_alive, "{text:?}");
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (h, len) = head(text).unwrap().unwrap();
        assert_eq!((h.status, h.framing), (200, Framing::Length(2)));
        assert_eq!(&text[len..], "ok");
        assert_eq!(head("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"), Ok(None));
    }

    #[test]
    fn a_head_is_complete_only_at_its_empty_line() {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        for cut in 0..text.len() {
            assert_eq!(head(&text[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn malformed_heads_are_errors() {
        for (text, err) in [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ResponseError::ContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
                ResponseError::ContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
                ResponseError::ContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                ResponseError::ContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                ResponseError::LengthAndChunked,
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                ResponseError::SwitchingProtocols,
            ),
            (
                "HTTP/2 200 OK\r\n\r\n",
                ResponseError::Head(httparse::Error::Version),
            ),
            (
                "HTTP/1.1 abc OK\r\n\r\n",
                ResponseError::Head(httparse::Error::Status),
            ),
        ] {
            assert_eq!(head(text), Err(err), "{text:?}");
        }
        let mut long = "HTTP/1.1 200 OK\r\nX: ".to_string();
        long.push_str(&"a".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            head(&long),
            Err(ResponseError::HeadTooLarge(MAX_HEAD_BYTES))
        );
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        let mut body = Body::new(Framing::Length(5));
        assert_eq!(
            body.decode(b"abc").unwrap(),
            Progress {
                consumed: 3,
                payload: 3
            }
        );
        assert!(!body.is_done());
        assert_eq!(
            body.decode(b"deHTTP").unwrap(),
            Progress {
                consumed: 2,
                payload: 2
            }
        );
        assert!(body.is_done());
        assert!(Body::new(Framing::Length(0)).is_done());
        assert!(Body::new(Framing::None).is_done());
    }

    #[test]
    fn a_close_delimited_body_takes_everything() {
        let mut body = Body::new(Framing::Close);
        assert_eq!(
            body.decode(b"abc").unwrap(),
            Progress {
                consumed: 3,
                payload: 3
            }
        );
        assert!(!body.is_done());
    }
}
