//! Why the probe got no complete response: the response itself was malformed
//! ([`ResponseError`]), or the request failed on the way ([`ProbeError`]).

use std::time::Duration;

/// Why a response could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResponseError {
    /// The status line or a header field is not HTTP/1.x syntax.
    #[error("{0} in the head")]
    Head(httparse::Error),
    /// No end of the head within this many bytes.
    #[error("response head longer than {0} bytes")]
    HeadTooLarge(usize),
    /// `101 Switching Protocols`: the probe measures HTTP/1.1 only.
    #[error("the server switched protocols (101)")]
    SwitchingProtocols,
    /// A Content-Length that is not a number, or several that differ.
    #[error("invalid Content-Length")]
    ContentLength,
    /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.3 calls this a smuggling risk).
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndChunked,
    /// A chunk-size line that is not `HEX [BWS] [; ext] CRLF`.
    #[error("invalid chunk size line")]
    ChunkSize,
    /// Chunk payload not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    ChunkDataEnd,
    /// A chunk extension beyond [`super::chunked::MAX_EXTENSION_BYTES`].
    #[error("chunk extension too long")]
    ChunkExtension,
    /// A malformed or too long trailer section.
    #[error("malformed or too long trailer section")]
    Trailers,
}

/// Why a request got no complete response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// `HOST:PORT`.
        address: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// Reading or writing failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection without sending anything.
    #[error("connection closed before a response")]
    Closed,
    /// The server closed the connection inside the response head.
    #[error("connection closed inside the response head ({received} bytes received)")]
    ClosedInHead {
        /// Bytes of the head that did arrive.
        received: u64,
    },
    /// The server closed the connection before the body was complete.
    #[error("connection closed before the end of the body ({received} body bytes received)")]
    ClosedInBody {
        /// Body bytes that did arrive.
        received: u64,
    },
    /// The response is not valid HTTP/1.1.
    #[error("malformed response: {0}")]
    Malformed(#[from] ResponseError),
    /// The request took longer than `--timeout`.
    #[error("timed out after {timeout:?} {stage}")]
    Timeout {
        /// The limit.
        timeout: Duration,
        /// How far the request got.
        stage: String,
    },
}
