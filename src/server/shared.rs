//! What the server's parts share: the [`Generation`] a config gives (swapped whole by a
//! reload), and what every accept loop and connection reads ([`Shared`]).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::error::ServerError;
use crate::app::App;
use crate::cgi::process::Registry;
use crate::config::Config;
use crate::http::conn::Settings;
use crate::http::head::Limits;
use crate::stats::Stats;

/// What one config gives the accept loops and new connections.
pub(super) struct Generation {
    /// The validated configuration.
    pub(super) config: Config,
    /// What each connection obeys, from `[server]`.
    pub(super) settings: Arc<Settings>,
    /// The handshake of the TLS listeners, from `[tls]`.
    pub(super) tls: Option<TlsAcceptor>,
}

impl Generation {
    /// The generation of `config`, loading its certificates and ticket keys (keeping what
    /// `previous` holds in memory only: see [`crate::tls::server_config_after`]).
    pub(super) fn of(
        config: Config,
        previous: Option<&Generation>,
    ) -> Result<Generation, ServerError> {
        let tls = match &config.tls {
            Some(tls) => {
                let before = previous.and_then(|p| Some((p.config.tls.as_ref()?, p.tls.as_ref()?)));
                let before = before.map(|(cfg, acceptor)| (cfg, &**acceptor.config()));
                let server = crate::tls::server_config_after(tls, before)?;
                Some(TlsAcceptor::from(server))
            }
            None => None,
        };
        Ok(Generation {
            settings: Arc::new(settings(&config)),
            config,
            tls,
        })
    }
}

/// What the accept loops and connections share.
pub(super) struct Shared {
    /// The config in force; a connection reads it once, when it is accepted.
    pub(super) current: ArcSwap<Generation>,
    /// The application connections serve (its routes swap inside it).
    pub(super) app: Arc<App>,
    /// Running CGI process groups, of every generation.
    pub(super) cgi: Arc<Registry>,
    /// Counters.
    pub(super) stats: Arc<Stats>,
    /// Flips to true once at shutdown.
    pub(super) shutdown: watch::Sender<bool>,
    /// `max_connections`.
    pub(super) permits: Arc<Semaphore>,
    /// Connection ids, for the log.
    pub(super) ids: AtomicU64,
}

/// The connection settings of `[server]`.
pub(super) fn settings(config: &Config) -> Settings {
    let server = &config.server;
    Settings {
        limits: Limits {
            max_head_bytes: server.max_head_bytes,
            max_headers: server.max_headers,
            max_body_bytes: server.max_body_bytes,
        },
        max_requests: server.max_requests_per_connection,
        header_timeout: server.header_timeout,
        body_timeout: server.body_timeout,
        keep_alive_timeout: server.keep_alive_timeout,
        write_timeout: server.write_timeout,
        half_close: server.half_close,
    }
}
