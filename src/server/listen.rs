//! Listening sockets and their accept loops. A listener is known by what configured it (a
//! [`Spec`]), so that a reload can tell the sockets it keeps from those it opens or closes,
//! and each accept loop takes its role (plain or TLS, PROXY headers or not) from a watch
//! channel a reload updates: certificates and settings change under a socket that stays
//! open, and a socket whose address left the config is closed by sending it no role.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::error::ServerError;
use super::shared::{Generation, Shared};
use crate::config::{Config, ProxyProtocol};
use crate::handler::ConnInfo;
use crate::http::conn::{self, Context};
use crate::metrics::BadRequest;
use crate::proxy::prefixed::Prefixed;
use crate::proxy::{self, Preamble};
use crate::stats::ConnectionGuard;

/// After an accept error (EMFILE, ENFILE…) wait this long before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a listening socket was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Spec {
    /// A `[server] listen` address as configured (port 0 and all).
    Plain(SocketAddr),
    /// A `[tls] listen` address as configured.
    Tls(SocketAddr),
    /// A socket passed with `LISTEN_FDS`, by its address: TLS on a port of `[tls] listen`.
    Inherited(SocketAddr),
}

/// What a listener's connections get: a handshake or none, a PROXY header or none.
#[derive(Clone)]
pub(super) struct Role {
    /// The handshake to run on each connection, and its time limit.
    tls: Option<(TlsAcceptor, Duration)>,
    /// Whether connections start with a PROXY header.
    proxy: ProxyProtocol,
}

impl Role {
    /// The role `spec` has under `generation`. A `Tls` spec always finds `[tls]` there:
    /// specs come from the same config, and a reload closes the ones it no longer names.
    pub(super) fn of(spec: Spec, generation: &Generation) -> Role {
        let config = &generation.config;
        let tls = |acceptor: &TlsAcceptor, tls: &crate::config::TlsConfig| Role {
            tls: Some((acceptor.clone(), tls.handshake_timeout)),
            proxy: tls.proxy_protocol,
        };
        let plain = Role {
            tls: None,
            proxy: config.server.proxy_protocol,
        };
        match (spec, &generation.tls, &config.tls) {
            (Spec::Tls(_), Some(acceptor), Some(t)) => tls(acceptor, t),
            (Spec::Inherited(addr), Some(acceptor), Some(t))
                if t.listen.iter().any(|a| a.port() == addr.port()) =>
            {
                tls(acceptor, t)
            }
            _ => plain,
        }
    }

    /// Whether connections get TLS.
    pub(super) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// A bound socket whose accept loop has not started.
pub(super) struct Bound {
    pub(super) tcp: TcpListener,
    /// Its role now and after each reload; `None` closes it.
    pub(super) role: watch::Receiver<Option<Role>>,
}

/// A socket being served, as a reload sees it.
pub(super) struct Open {
    pub(super) spec: Spec,
    /// Its URL, for the log.
    pub(super) url: String,
    /// Where its role is sent.
    pub(super) role: watch::Sender<Option<Role>>,
}

/// Make a listener of `tcp`, opened for `spec`, with the role `generation` gives it.
pub(super) fn listener(tcp: TcpListener, spec: Spec, generation: &Generation) -> (Bound, Open) {
    let role = Role::of(spec, generation);
    let scheme = if role.is_tls() { "https" } else { "http" };
    let url = tcp
        .local_addr()
        .map_or_else(|_| "(unknown)".to_string(), |a| format!("{scheme}://{a}"));
    let (tx, rx) = watch::channel(Some(role));
    (
        Bound { tcp, role: rx },
        Open {
            spec,
            url,
            role: tx,
        },
    )
}

/// The specs `config` asks for: its plain addresses, then its TLS ones, each in order.
pub(super) fn specs(config: &Config) -> Vec<Spec> {
    let plain = config.server.listen.iter().map(|a| Spec::Plain(*a));
    let tls = config.tls.iter().flat_map(|t| t.listen.iter());
    plain.chain(tls.map(|a| Spec::Tls(*a))).collect()
}

/// Bind the socket `spec` names (not an inherited one: those are already open).
pub(super) fn bind_spec(spec: Spec, reuse_port: bool) -> Result<TcpListener, ServerError> {
    match spec {
        Spec::Plain(addr) | Spec::Tls(addr) => bind(addr, reuse_port),
        Spec::Inherited(addr) => Err(ServerError::Bind {
            addr,
            source: std::io::Error::other("an inherited socket cannot be opened again"),
        }),
    }
}

/// Serve on `inherited` sockets: TLS on the ports of `[tls] listen`, plain HTTP elsewhere.
pub(super) fn adopt(
    inherited: Vec<std::net::TcpListener>,
) -> Result<Vec<(TcpListener, Spec)>, ServerError> {
    let mut adopted = Vec::new();
    for std_listener in inherited {
        let addr = std_listener.local_addr().map_err(ServerError::Inherited)?;
        let adopt = || {
            std_listener.set_nonblocking(true)?;
            TcpListener::from_std(std_listener)
        };
        let tcp = adopt().map_err(|source| ServerError::Bind { addr, source })?;
        adopted.push((tcp, Spec::Inherited(addr)));
    }
    info!(
        count = adopted.len(),
        "serving on inherited sockets (LISTEN_FDS)"
    );
    Ok(adopted)
}

/// Listen on `addr`: SO_REUSEADDR as tokio's own bind sets it, SO_REUSEPORT when several
/// processes are to share the port (`reuse_port`), tokio's backlog of 1024.
fn bind(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener, ServerError> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if reuse_port {
            socket.set_reuseport(true)?;
        }
        socket.bind(addr)?;
        socket.listen(1024)
    };
    listen().map_err(|source| ServerError::Bind { addr, source })
}

/// Accept connections on `bound` until shutdown or until a reload takes its role away.
/// `done` is held by the loop and by each connection it starts: shutdown waits for them.
pub(super) async fn accept_loop(bound: Bound, shared: Arc<Shared>, done: mpsc::Sender<()>) {
    let Bound { tcp, mut role } = bound;
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let permit = tokio::select! {
            p = shared.permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
            _ = removed(&mut role) => return,
        };
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            _ = shutdown.changed() => return,
            _ = removed(&mut role) => return,
        };
        let (sock, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Our writes are already coalesced (one writev per batch); Nagle would only delay
        // streamed pieces (SPEC §4 stream).
        let _ = sock.set_nodelay(true);
        let Ok(local) = sock.local_addr() else {
            continue;
        };
        let Some(now) = role.borrow().clone() else {
            return;
        };
        let info = ConnInfo {
            peer,
            local,
            tls: now.is_tls(),
        };
        let id = shared.ids.fetch_add(1, Ordering::Relaxed);
        let held = Held {
            _open: shared.stats.open_connection(),
            _permit: permit,
            _done: done.clone(),
        };
        // The connection's own future is the task, not awaited inside a wrapper: a wrapper
        // would keep a second copy of its arguments (socket, addresses, role) for as long
        // as the connection is open.
        tokio::spawn(serve_connection(sock, info, now, shared.clone(), id, held));
    }
}

/// What a connection task holds until it ends: its `max_connections` slot, a sender
/// shutdown waits on, and its place in the open-connection count.
struct Held {
    _open: ConnectionGuard,
    _permit: OwnedSemaphorePermit,
    _done: mpsc::Sender<()>,
}

/// Resolves once the listener has no role any more (a reload removed its address).
async fn removed(role: &mut watch::Receiver<Option<Role>>) {
    let _ = role.wait_for(Option::is_none).await;
}

/// Serve one accepted connection: its PROXY header first (when its listener has them),
/// then TLS (when it is a TLS listener), then HTTP, all with the config current when it
/// was accepted.
///
/// Not an `async fn`: that would copy its arguments into its future beside the
/// originals, a second socket, addresses and role in every connection's task.
#[allow(clippy::manual_async_fn)]
fn serve_connection(
    mut sock: TcpStream,
    mut info: ConnInfo,
    role: Role,
    shared: Arc<Shared>,
    id: u64,
    held: Held,
) -> impl Future<Output = ()> + Send {
    async move {
        let generation = shared.current.load_full();
        let mut first = Vec::new();
        if role.proxy != ProxyProtocol::Off {
            let server = &generation.config.server;
            let trusted = server.trusted_proxies.contains(info.peer.ip());
            let limit = generation.settings.header_timeout;
            match proxy::read_preamble(&mut sock, role.proxy, trusted, limit).await {
                Ok(Preamble {
                    addresses,
                    leftover,
                }) => {
                    if let Some((client, local)) = addresses {
                        (info.peer, info.local) = (client, local);
                    }
                    first = leftover;
                }
                Err(why) => {
                    warn!(id, peer = %info.peer, reason = %why, "connection refused");
                    shared.stats.count_error(BadRequest::Proxy);
                    return;
                }
            }
        }
        let ctx = Context {
            settings: generation.settings.clone(),
            service: shared.app.clone(),
            shutdown: shared.shutdown.subscribe(),
        };
        drop(generation);
        match role.tls {
            None => {
                // Borrowed halves: `into_split` would put the socket in an Arc, an allocation
                // every connection keeps while it is open.
                let (r, w) = sock.split();
                conn::serve(r, w, first, info, ctx, id).await;
            }
            Some((acceptor, limit)) => {
                // Boxed: the handshake's state is large, and a plain connection's task would
                // otherwise be sized for it too (an idle connection's memory).
                Box::pin(async {
                    let sock = Prefixed::new(first, sock);
                    let metrics = &shared.stats.metrics;
                    if let Some(stream) = crate::tls::accept(sock, &acceptor, limit, metrics).await
                    {
                        let (r, w) = tokio::io::split(stream);
                        conn::serve(r, w, Vec::new(), info, ctx, id).await;
                    }
                })
                .await;
            }
        }
        debug!(id, "connection closed");
        drop(held);
    }
}
