//! Listeners, the accept loop, the connection limit and graceful shutdown. Each connection
//! runs in a task of its own holding a semaphore permit (`max_connections`: beyond it,
//! accept waits) and a drop-guard sender, so shutdown can wait for in-flight responses.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::access_log::AccessLog;
use crate::app::{App, Forwarding};
use crate::cgi::helpers::Helpers;
use crate::cgi::process::Registry;
use crate::config::{Config, Identity, OutputConfig, ProxyProtocol, RouteKind, TlsConfig};
use crate::handler::{ConnInfo, Handler};
use crate::http::conn::{self, Context, Settings};
use crate::http::head::Limits;
use crate::metrics::BadRequest;
use crate::plugin::Plugin;
use crate::privilege;
use crate::proxy::prefixed::Prefixed;
use crate::proxy::{self, Preamble};
use crate::routes::{self, Built, HelperPlan, Mounted, RouteError};
use crate::stats::Stats;

/// After an accept error (EMFILE, ENFILE…) wait this long before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long the access log gets to write its last lines at exit.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// What the accept loops share.
struct Shared {
    /// The validated configuration.
    config: Config,
    /// What each connection obeys, from `[server]`.
    settings: Settings,
    /// The application connections serve.
    app: Arc<App>,
    /// Running CGI process groups.
    cgi: Arc<Registry>,
    /// Counters.
    stats: Arc<Stats>,
    /// Flips to true once at shutdown.
    shutdown: watch::Sender<bool>,
}

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

/// Check that `config` can be served, as `cgigate check` does: the TLS certificate and key
/// load, folders and programs exist, plugins load and initialise (and are terminated
/// again), the sandboxes can be enforced. Returns the report `cgigate check` prints after
/// its verdict: who the server runs as, and each route's handler and, for CGI routes, who
/// its scripts run as, their limits and their sandbox.
pub fn check_config(config: &Config) -> Result<Vec<String>, ServerError> {
    if let Some(tls) = &config.tls {
        crate::tls::server_config(tls)?;
    }
    let built = routes::build(config, Vec::new(), &Arc::new(Stats::default()))?;
    for plugin in &built.plugins {
        plugin.terminate(Duration::ZERO);
    }
    let mut lines = vec![match &config.server.user {
        Some(id) => format!(
            "server: binds, then runs as {} (uid {}, gid {})",
            id.user, id.uid, id.gid
        ),
        None => {
            let me = Identity::current();
            let hint = if me.is_root() {
                "; set [server] user to drop root after binding"
            } else {
                ""
            };
            format!(
                "server: runs as {} (uid {}), the user it is started as{hint}",
                me.user, me.uid
            )
        }
    }];
    let mut profiles = built.isolation.iter();
    for route in &config.routes {
        lines.push(format!("{} -> {}", route.prefix, route.kind));
        if matches!(route.kind, RouteKind::CgiDir(_) | RouteKind::CgiScript(_)) {
            if let Some(profile) = profiles.next() {
                let described = profile.describe(built.landlock);
                lines.extend(described.into_iter().map(|l| format!("    {l}")));
            }
        }
    }
    Ok(lines)
}

/// A bound socket, plain or TLS.
struct Listener {
    tcp: TcpListener,
    /// The handshake to run on each connection, and its time limit.
    tls: Option<(TlsAcceptor, Duration)>,
    /// Whether connections start with a PROXY header.
    proxy: ProxyProtocol,
}

impl Listener {
    /// A plain-HTTP listener, as `[server]` says.
    fn plain(tcp: TcpListener, config: &Config) -> Listener {
        Listener {
            tcp,
            tls: None,
            proxy: config.server.proxy_protocol,
        }
    }

    /// A TLS listener, as `[tls]` says.
    fn tls(tcp: TcpListener, acceptor: &TlsAcceptor, tls: &TlsConfig) -> Listener {
        Listener {
            tcp,
            tls: Some((acceptor.clone(), tls.handshake_timeout)),
            proxy: tls.proxy_protocol,
        }
    }
}

/// A bound, not yet running server.
pub struct Server {
    listeners: Vec<Listener>,
    shared: Arc<Shared>,
    plugins: Vec<Arc<Plugin>>,
    log_task: Option<tokio::task::JoinHandle<()>>,
}

/// A server being put together: a config, and handlers of the embedding program's own
/// mounted beside the config's routes (SPEC §6.1). They get the same output modes, limits,
/// access log and keep-alive as every other route.
pub struct Builder {
    config: Config,
    mounted: Vec<Mounted>,
    inherited: Vec<std::net::TcpListener>,
}

impl Builder {
    /// Mount `handler` at `prefix` (longest prefix wins, as for `[[route]]`), with the
    /// config's `[output]` settings.
    pub fn handler(self, prefix: &str, handler: impl Handler) -> Builder {
        self.mount(prefix, Arc::new(handler), None)
    }

    /// Mount `handler` at `prefix` with output settings of its own.
    pub fn handler_with_output(
        self,
        prefix: &str,
        handler: impl Handler,
        output: OutputConfig,
    ) -> Builder {
        self.mount(prefix, Arc::new(handler), Some(output))
    }

    /// Serve on sockets that are already listening (systemd socket activation, see
    /// [`inherited_listeners`]) instead of binding the config's addresses: a socket on the
    /// port of a `[tls] listen` address serves TLS, every other one plain HTTP.
    pub fn listeners(mut self, inherited: Vec<std::net::TcpListener>) -> Builder {
        self.inherited = inherited;
        self
    }

    fn mount(
        mut self,
        prefix: &str,
        handler: Arc<dyn Handler>,
        output: Option<OutputConfig>,
    ) -> Builder {
        self.mounted.push(Mounted {
            prefix: prefix.to_string(),
            handler,
            output,
        });
        self
    }

    /// Build the routes, open the access log and bind every listener (call inside a tokio
    /// runtime). A mounted prefix that is invalid or taken is a [`ServerError::Route`].
    pub async fn bind(self) -> Result<Server, ServerError> {
        let Builder {
            config,
            mounted,
            inherited,
        } = self;
        let stats = Arc::new(Stats::default());
        // Scripts (and helpers) inherit it: core dumps are off unless a route says otherwise.
        privilege::limit_core_dumps(config.cgi.limits.core);
        let Built {
            router,
            cgi,
            cgi_shared,
            plugins,
            helpers,
            ..
        } = routes::build(&config, mounted, &stats)?;
        if let Some(plan) = helpers {
            // Started here, on the main thread, before any connection and before the server
            // drops its privileges: the supervisor's parent-death signal is tied to the
            // thread that spawns it, and it may need them to start helpers as other users.
            let helpers = start_helpers(plan, stats.clone()).await?;
            let _ = cgi_shared.helpers.set(Arc::new(helpers));
        }
        let (access, log_task) = AccessLog::start(&config.log.access, config.log.format)
            .await
            .map_err(ServerError::AccessLog)?;
        let listeners = if inherited.is_empty() {
            bind_all(&config)?
        } else {
            adopt_all(&config, inherited)?
        };
        // Everything that needed the starting user is done: listeners, TLS files, plugins,
        // the access log, the supervisor.
        privilege::drop_to(config.server.user.as_ref(), &config).map_err(ServerError::Privilege)?;
        let (shutdown, _) = watch::channel(false);
        let forwarding = Forwarding {
            headers: config.server.forwarded,
            trusted: config.server.trusted_proxies.clone(),
        };
        let app = Arc::new(App::new(router, access, stats.clone(), forwarding));
        let shared = Arc::new(Shared {
            settings: settings(&config),
            config,
            app,
            cgi,
            stats,
            shutdown,
        });
        Ok(Server {
            listeners,
            shared,
            plugins,
            log_task,
        })
    }
}

/// Start the supervisor and the helpers that start with the server; a helper that cannot
/// apply its profile stops the start-up, naming its route.
async fn start_helpers(plan: HelperPlan, stats: Arc<Stats>) -> Result<Helpers, ServerError> {
    let helpers = Helpers::start(plan.table, stats).map_err(ServerError::Spawner)?;
    debug!(pid = helpers.supervisor_pid(), "CGI supervisor running");
    for (row, route) in plan.eager {
        if let Err(reason) = helpers.start_row(row).await {
            return Err(ServerError::Route(
                route.saying(format!("cannot start its spawn helper: {reason}")),
            ));
        }
    }
    Ok(helpers)
}

/// The listening sockets systemd (or anything speaking its protocol: `LISTEN_FDS`, and
/// `LISTEN_PID` when set) passed to this process, which it then owns; none without them.
/// Call it before any thread exists: it clears those variables from the environment.
pub fn inherited_listeners() -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for i in 0..fds.len() {
        if let Some(l) = fds.take_tcp_listener(i)? {
            listeners.push(l);
        }
    }
    Ok(listeners)
}

/// Serve on `inherited` sockets: TLS on the ports of `[tls] listen`, plain HTTP elsewhere.
fn adopt_all(
    config: &Config,
    inherited: Vec<std::net::TcpListener>,
) -> Result<Vec<Listener>, ServerError> {
    let tls = config
        .tls
        .as_ref()
        .map(|tls| {
            let acceptor = TlsAcceptor::from(crate::tls::server_config(tls)?);
            Ok::<_, ServerError>((acceptor, tls))
        })
        .transpose()?;
    let mut listeners = Vec::new();
    for std_listener in inherited {
        let addr = std_listener.local_addr().map_err(ServerError::Inherited)?;
        let adopt = || {
            std_listener.set_nonblocking(true)?;
            TcpListener::from_std(std_listener)
        };
        let tcp = adopt().map_err(|source| ServerError::Bind { addr, source })?;
        let listener = match &tls {
            Some((acceptor, tls)) if tls.listen.iter().any(|a| a.port() == addr.port()) => {
                Listener::tls(tcp, acceptor, tls)
            }
            _ => Listener::plain(tcp, config),
        };
        listeners.push(listener);
    }
    info!(
        count = listeners.len(),
        "serving on inherited sockets (LISTEN_FDS)"
    );
    Ok(listeners)
}

/// Bind the plain listeners, then the TLS ones.
fn bind_all(config: &Config) -> Result<Vec<Listener>, ServerError> {
    let mut listeners = Vec::new();
    let reuse_port = config.server.reuse_port;
    for addr in &config.server.listen {
        listeners.push(Listener::plain(bind(*addr, reuse_port)?, config));
    }
    if let Some(tls) = &config.tls {
        let acceptor = TlsAcceptor::from(crate::tls::server_config(tls)?);
        for addr in &tls.listen {
            listeners.push(Listener::tls(bind(*addr, reuse_port)?, &acceptor, tls));
        }
    }
    Ok(listeners)
}

impl Server {
    /// A server for `config`, to which handlers can be added before it binds.
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            mounted: Vec::new(),
            inherited: Vec::new(),
        }
    }

    /// Build routes, open the access log and bind every listener.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        Server::builder(config).bind().await
    }

    /// The URL of each listener: plain ones first, then TLS, each in config order.
    pub fn urls(&self) -> Vec<String> {
        self.listeners
            .iter()
            .filter_map(|l| {
                let scheme = if l.tls.is_some() { "https" } else { "http" };
                l.tcp.local_addr().ok().map(|a| format!("{scheme}://{a}"))
            })
            .collect()
    }

    /// Serve until `signal` completes, then shut down gracefully (SPEC §1).
    pub async fn run(self, signal: impl Future<Output = ()>) {
        let Server {
            listeners,
            shared,
            plugins,
            log_task,
        } = self;
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let permits = Arc::new(Semaphore::new(shared.config.server.max_connections));
        let ids = Arc::new(AtomicU64::new(0));
        for listener in listeners {
            tokio::spawn(accept_loop(
                listener,
                shared.clone(),
                permits.clone(),
                done_tx.clone(),
                ids.clone(),
            ));
        }
        drop(done_tx);
        signal.await;
        info!("shutting down: no new connections; finishing responses in flight");
        shared.shutdown.send_replace(true);
        let grace = shared.config.server.shutdown_timeout;
        if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
            let open = shared.stats.snapshot().open_connections;
            warn!(
                open,
                "shutdown_timeout passed; closing the remaining connections"
            );
        }
        // SPEC §1: scripts still running are stopped (group SIGTERM, then SIGKILL).
        shared.cgi.terminate_all(shared.config.cgi.kill_grace).await;
        let grace = shared.config.cgi.kill_grace;
        for plugin in plugins {
            // Waiting for handle calls blocks; do it off the runtime's threads.
            let _ = tokio::task::spawn_blocking(move || plugin.terminate(grace)).await;
        }
        drop(shared);
        if let Some(task) = log_task {
            let _ = tokio::time::timeout(LOG_DRAIN, task).await;
        }
    }
}

/// Serve one accepted connection: its PROXY header first (when its listener has them),
/// then TLS (when it is a TLS listener), then HTTP.
async fn serve_connection(
    mut sock: TcpStream,
    mut info: ConnInfo,
    proxy: ProxyProtocol,
    tls: Option<(TlsAcceptor, Duration)>,
    shared: &Shared,
    id: u64,
) {
    let mut first = Vec::new();
    if proxy != ProxyProtocol::Off {
        let trusted = shared
            .config
            .server
            .trusted_proxies
            .contains(info.peer.ip());
        let limit = shared.settings.header_timeout;
        match proxy::read_preamble(&mut sock, proxy, trusted, limit).await {
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
    let ctx = shared.context();
    match tls {
        None => {
            let (r, w) = sock.into_split();
            conn::serve(r, w, first, info, ctx, id).await;
        }
        Some((acceptor, limit)) => {
            // Boxed: the handshake's state is large, and a plain connection's task would
            // otherwise be sized for it too (an idle connection's memory).
            Box::pin(async {
                let sock = Prefixed::new(first, sock);
                let metrics = &shared.stats.metrics;
                if let Some(stream) = crate::tls::accept(sock, &acceptor, limit, metrics).await {
                    let (r, w) = tokio::io::split(stream);
                    conn::serve(r, w, Vec::new(), info, ctx, id).await;
                }
            })
            .await;
        }
    }
}

impl Shared {
    /// What one connection is given.
    fn context(&self) -> Context<App> {
        Context {
            settings: self.settings.clone(),
            service: self.app.clone(),
            shutdown: self.shutdown.subscribe(),
        }
    }
}

/// The connection settings of `[server]`.
fn settings(config: &Config) -> Settings {
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

/// Resolves on SIGTERM or SIGINT: the signal for [`Server::run`] to drain and stop. Call
/// it inside the runtime, before saying the server is up: the handlers are installed when
/// this is called, not when the future is first polled, so a signal that arrives from then
/// on starts a graceful shutdown instead of hitting the default action.
pub fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
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

async fn accept_loop(
    listener: Listener,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    done: mpsc::Sender<()>,
    ids: Arc<AtomicU64>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let accepted = tokio::select! {
            a = listener.tcp.accept() => a,
            _ = shutdown.changed() => return,
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
        let info = ConnInfo {
            peer,
            local,
            tls: listener.tls.is_some(),
        };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let done = done.clone();
        let tls = listener.tls.clone();
        let proxy = listener.proxy;
        tokio::spawn(async move {
            let _open = shared.stats.open_connection();
            serve_connection(sock, info, proxy, tls, &shared, id).await;
            debug!(id, "connection closed");
            drop(permit);
            drop(done);
        });
    }
}
