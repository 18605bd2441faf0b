//! Why a server cannot start.

use std::net::SocketAddr;

use crate::routes::RouteError;

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A route cannot be served (a missing folder, an unknown handler…): a config problem.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A socket passed with `LISTEN_FDS` cannot be used.
    #[error("cannot use a socket passed with LISTEN_FDS: {0}")]
    Inherited(#[source] std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The CGI supervisor cannot be started.
    #[error("cannot start the CGI supervisor: {0}")]
    Spawner(#[source] std::io::Error),
    /// The server cannot become `[server] user`.
    #[error("cannot drop privileges: {0}")]
    Privilege(String),
    /// The access log file cannot be opened.
    #[error("cannot open access log: {0}")]
    AccessLog(#[source] std::io::Error),
}

impl ServerError {
    /// Whether this is the configuration's fault (exit 2) rather than the environment's (exit 1).
    pub fn is_config_error(&self) -> bool {
        matches!(self, ServerError::Route(_) | ServerError::Tls(_))
    }
}
