//! TLS (SPEC §7): rustls with the ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`. Sessions
//! resume both ways: TLS 1.2 session IDs from a bounded in-memory cache, TLS 1.3 through
//! stateless tickets. A client that resets in the middle of a handshake changes nothing in
//! either — the cache is only read during a resumption and written after a full handshake —
//! so it cannot cost another connection its session (the IIS/IE failure of KB937480).
//!
//! Plain HTTP sent to a TLS port gets a short 400 and a close; anything else that is not a
//! TLS handshake is closed at once; a handshake has `handshake_timeout` in all.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache};
use rustls::HandshakeKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::config::TlsConfig;
use crate::metrics::{Handshake, Metrics};
use crate::proxy::prefixed::Prefixed;

pub(crate) mod tickets;

/// TLS record type of a handshake message (RFC 8446 §5.1): the first byte of a ClientHello.
const HANDSHAKE_RECORD: u8 = 0x16;
/// What a plain-HTTP client on the TLS port is told.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 55\r\nConnection: close\r\n\r\n400 Bad Request: plain HTTP was sent to the HTTPS port\n";
/// How long the plain-HTTP answer lingers to read the rest of the request (so no RST).
const PLAIN_LINGER: Duration = Duration::from_millis(500);

/// Why TLS cannot be set up; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing or holds no usable certificate.
    #[error("tls cert {path}: {message}")]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key file is missing or holds no usable private key.
    #[error("tls key {path}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The `ticket_keys` file is missing, open to others, or not a key file.
    #[error("tls ticket_keys {path}: {message}")]
    TicketKeys {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("tls cert {cert} and key {key}: {source}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
}

/// Build the rustls server configuration for `[tls]`.
pub(crate) fn server_config(cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config_after(cfg, None)
}

/// Build it again for a reload: the certificate, key and ticket key file are read again;
/// what lives only in memory (the session cache, and this process's own ticket keys when
/// there is no key file) is carried over from `previous` when its settings are unchanged,
/// so that a reload does not end every resumable session.
pub(crate) fn server_config_after(
    cfg: &TlsConfig,
    previous: Option<(&TlsConfig, &rustls::ServerConfig)>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = load_certs(&cfg.cert)?;
    let key = load_key(&cfg.key)?;
    let pair_error = |source| TlsError::Pair {
        cert: cfg.cert.clone(),
        key: cfg.key.clone(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(pair_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(pair_error)?;
    // RFC 7301: we speak HTTP/1.1 only; a client offering only h2 gets no_application_protocol.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.session_storage = match previous {
        Some((was, old)) if was.session_cache == cfg.session_cache => old.session_storage.clone(),
        _ => new_session_storage(cfg),
    };
    config.ticketer = match (&cfg.ticket_keys, previous) {
        // Shared keys: a ticket from any instance resumes on every other.
        (Some(path), _) => Arc::new(tickets::SharedTickets::load(path).map_err(|message| {
            TlsError::TicketKeys {
                path: path.clone(),
                message,
            }
        })?),
        (None, Some((was, old))) if was.ticket_keys.is_none() => old.ticketer.clone(),
        // Keys of this process alone, rotated by rustls.
        (None, _) => rustls::crypto::ring::Ticketer::new().map_err(pair_error)?,
    };
    Ok(Arc::new(config))
}

/// A session cache of `[tls] session_cache` entries (none for 0).
fn new_session_storage(cfg: &TlsConfig) -> Arc<dyn rustls::server::StoresServerSessions> {
    if cfg.session_cache == 0 {
        Arc::new(NoServerSessionStorage {})
    } else {
        ServerSessionMemoryCache::new(cfg.session_cache)
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |message: String| TlsError::Cert {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(pem_message(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(pem_message(&e)))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.to_path_buf(),
        message: pem_message(&e),
    })
}

fn pem_message(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM item of the right kind in the file".into()
        }
        other => format!("invalid PEM: {other:?}"),
    }
}

/// Run the TLS handshake on an accepted socket within `limit`; None if it failed (logged).
/// Each handshake is counted in `metrics`: full, resumed, or failed (a TLS error, the
/// timeout, or bytes that are not TLS); a connection closed before its first byte tried
/// none (a balancer's health check), and is not counted.
pub(crate) async fn accept(
    sock: Prefixed,
    acceptor: &TlsAcceptor,
    limit: Duration,
    metrics: &Metrics,
) -> Option<TlsStream<Prefixed>> {
    let deadline = Instant::now() + limit;
    let first = match timeout_at(deadline, sock.peek_byte()).await {
        Ok(Some(b)) => b,
        Ok(None) => return None,
        Err(_) => {
            debug!("closing: handshake_timeout before any byte");
            metrics.count_handshake(Handshake::Failed);
            return None;
        }
    };
    if first != HANDSHAKE_RECORD {
        // Counted before the answer, which lingers.
        metrics.count_handshake(Handshake::Failed);
        if first.is_ascii_uppercase() {
            debug!("plain HTTP on the TLS port");
            answer_plain_http(sock).await;
        }
        return None;
    }
    let stream = match timeout_at(deadline, acceptor.accept(sock)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            debug!("closing: handshake_timeout");
            None
        }
    };
    metrics.count_handshake(match &stream {
        Some(s) if s.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed) => {
            Handshake::Resumed
        }
        Some(_) => Handshake::Full,
        None => Handshake::Failed,
    });
    stream
}

async fn answer_plain_http(mut sock: Prefixed) {
    if sock.write_all(PLAIN_HTTP_ANSWER).await.is_err() {
        return;
    }
    let _ = sock.shutdown().await;
    // Read what the client still sends so it gets the answer, not a reset.
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + PLAIN_LINGER;
    while let Ok(Ok(n)) = timeout_at(deadline, sock.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_http_answer_has_the_right_length() {
        let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }

    #[test]
    fn missing_and_invalid_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem at all\n").unwrap();
        let cfg = |cert: &Path, key: &Path| TlsConfig {
            listen: vec![],
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            session_cache: 16,
            handshake_timeout: Duration::from_secs(1),
            proxy_protocol: crate::config::ProxyProtocol::Off,
            ticket_keys: None,
        };
        let missing = dir.path().join("missing.pem");
        let e = server_config(&cfg(&missing, &junk))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("tls cert ") && e.contains("missing.pem"),
            "{e}"
        );
        let e = server_config(&cfg(&junk, &junk)).unwrap_err().to_string();
        assert!(e.contains("junk.pem") && e.contains("no PEM"), "{e}");
    }
}
