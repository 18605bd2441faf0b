//! What a balancer in front says about a connection: the PROXY protocol header before its
//! first byte (`header`), forwarding headers on each request (`forwarded`), believed only
//! from `trusted` networks; and the thin async shell that reads a PROXY header off a new
//! connection ([`read_preamble`]). Used by `server` (connections) and `app` (requests);
//! imports nothing above `http`.

pub(crate) mod forwarded;
pub mod header;
pub(crate) mod prefixed;
pub(crate) mod trusted;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use header::{BadHeader, Parsed};

/// `proxy_protocol` of a set of listeners (SPEC §8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    /// No PROXY headers: a connection that starts with one is served as what it is (and
    /// fails as HTTP or TLS).
    #[default]
    Off,
    /// A trusted source may send one; plain connections are served too.
    Optional,
    /// Every connection must come from a trusted source and start with one.
    Required,
}

/// `forwarded` (SPEC §8): which forwarding headers are believed from trusted proxies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeaders {
    /// None.
    #[default]
    Off,
    /// `X-Forwarded-For` and `X-Forwarded-Proto`.
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

/// Why a connection was closed before its first request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// `required`, from a source outside `trusted_proxies`.
    #[error("a connection from outside trusted_proxies, where a PROXY header is required")]
    Untrusted,
    /// A PROXY header from a source outside `trusted_proxies`.
    #[error("a PROXY header from outside trusted_proxies")]
    UntrustedHeader,
    /// `required`, and the connection started with something else.
    #[error("no PROXY header, where one is required")]
    Missing,
    /// Malformed.
    #[error(transparent)]
    Bad(#[from] BadHeader),
    /// The connection ended inside the header.
    #[error("the connection ended inside a PROXY header")]
    Truncated,
    /// `header_timeout` passed first.
    #[error("no whole PROXY header within header_timeout")]
    Timeout,
}

/// The start of a connection, PROXY header read.
#[derive(Debug)]
pub(crate) struct Preamble {
    /// The client's address and the one it connected to, if a header gave them.
    pub(crate) addresses: Option<(SocketAddr, SocketAddr)>,
    /// Bytes read past the header: the connection's own first bytes.
    pub(crate) leftover: Vec<u8>,
}

/// Read what a connection starts with under `mode` (not `Off`): a PROXY header from a
/// trusted source, or (`optional`) the connection's own bytes. Reads at most the longest
/// header, and only as much as has arrived; bounded by `limit`.
pub(crate) async fn read_preamble(
    sock: &mut TcpStream,
    mode: ProxyProtocol,
    trusted: bool,
    limit: Duration,
) -> Result<Preamble, Refused> {
    if mode == ProxyProtocol::Required && !trusted {
        return Err(Refused::Untrusted);
    }
    let read = async {
        let mut buf = vec![0u8; header::V2_MAX];
        let mut have = 0;
        loop {
            match header::parse(&buf[..have])? {
                Parsed::Header(h) if trusted => {
                    buf.truncate(have);
                    return Ok(Preamble {
                        addresses: h.addresses,
                        leftover: buf.split_off(h.len),
                    });
                }
                Parsed::Header(_) => return Err(Refused::UntrustedHeader),
                Parsed::NotProxy if mode == ProxyProtocol::Required => {
                    return Err(Refused::Missing)
                }
                Parsed::NotProxy => {
                    buf.truncate(have);
                    return Ok(Preamble {
                        addresses: None,
                        leftover: buf,
                    });
                }
                Parsed::Incomplete => {}
            }
            // Incomplete with a full buffer cannot happen (the parser refuses longer
            // headers); a read of 0 is the end of the stream.
            match sock.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => return Err(Refused::Truncated),
                Ok(n) => have += n,
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or(Err(Refused::Timeout))
}
