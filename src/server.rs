//! Listeners, the accept loop, the connection limit and graceful shutdown. Each connection
//! runs in a task of its own holding a semaphore permit (`max_connections`: beyond it,
//! accept waits) and a drop-guard sender, so shutdown can wait for in-flight responses.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::access_log::AccessLog;
use crate::cgi::process::Registry;
use crate::cgi::spawner::Spawner;
use crate::cgi::{CgiHandler, CgiShared};
use crate::config::{Config, RouteKind, SpawnMode};
use crate::handler::{ConnInfo, Handler};
use crate::handlers::{Echo, Hello, StaticDir, Status, Ticker};
use crate::plugin::{Plugin, PluginHandler};
use crate::router::{Dispatcher, RouteEntry, Router};
use crate::stats::Stats;

/// After an accept error (EMFILE, ENFILE…) wait this long before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long the access log gets to write its last lines at exit.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// What every connection task shares.
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// Routes.
    pub router: Arc<Router>,
    /// Running CGI process groups.
    pub cgi: Arc<Registry>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// The access log.
    pub access: AccessLog,
    /// Flips to true once at shutdown.
    pub shutdown: watch::Sender<bool>,
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A route cannot be served (a missing folder, an unknown handler…): a config problem.
    #[error("{file}:{line}: route {prefix}: {message}")]
    Route {
        /// The config file.
        file: String,
        /// The route's line.
        line: usize,
        /// The route's prefix.
        prefix: String,
        /// What is wrong.
        message: String,
    },
    /// A listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The CGI spawn helper cannot be started.
    #[error("cannot start the CGI spawn helper: {0}")]
    Spawner(#[source] std::io::Error),
    /// The access log file cannot be opened.
    #[error("cannot open access log: {0}")]
    AccessLog(#[source] std::io::Error),
}

impl ServerError {
    /// Whether this is the configuration's fault (exit 2) rather than the environment's (exit 1).
    pub fn is_config_error(&self) -> bool {
        matches!(self, ServerError::Route { .. } | ServerError::Tls(_))
    }
}

/// What serving a config needs beyond the config itself.
pub struct Built {
    /// The routes.
    pub router: Arc<Router>,
    /// Running CGI process groups.
    pub cgi: Arc<Registry>,
    /// What the CGI routes share; [`Server::bind`] gives it the spawn helper.
    pub cgi_shared: Arc<CgiShared>,
    /// Loaded plugins, terminated at shutdown.
    pub plugins: Vec<Arc<Plugin>>,
}

/// Build the router for a config, checking that every route can be served (this loads and
/// initialises plugins).
pub fn build_router(config: &Config, stats: &Arc<Stats>) -> Result<Built, ServerError> {
    let file = config.source.as_ref().map_or_else(
        || "(built-in defaults)".to_string(),
        |p| p.display().to_string(),
    );
    let cgi = Arc::new(CgiShared {
        children: Arc::new(Semaphore::new(config.cgi.max_children)),
        registry: Arc::new(Registry::default()),
        dispatcher: Arc::new(Dispatcher::default()),
        max_head_bytes: config.server.max_head_bytes,
        spawn: config.cgi.spawn,
        spawner: std::sync::OnceLock::new(),
        stats: stats.clone(),
    });
    let mut entries = Vec::with_capacity(config.routes.len());
    let mut plugins: Vec<(PathBuf, String, Arc<Plugin>)> = Vec::new();
    for route in &config.routes {
        let fail = |message: String| ServerError::Route {
            file: file.clone(),
            line: route.line,
            prefix: route.prefix.clone(),
            message,
        };
        let handler: Arc<dyn Handler> = match &route.kind {
            RouteKind::Handler(name) => match name.as_str() {
                "status" => Arc::new(Status::new(stats.clone())),
                "echo" => Arc::new(Echo),
                "ticker" => Arc::new(Ticker),
                "hello" => Arc::new(Hello),
                other => return Err(fail(format!("unknown handler {other:?}"))),
            },
            RouteKind::StaticDir(dir) => Arc::new(
                StaticDir::new(dir)
                    .map_err(|e| fail(format!("static_dir {}: {e}", dir.display())))?,
            ),
            RouteKind::CgiDir(dir) => Arc::new(
                CgiHandler::dir(dir, route.cgi.clone(), cgi.clone())
                    .map_err(|e| fail(format!("cgi_dir {}: {e}", dir.display())))?,
            ),
            RouteKind::CgiScript(program) => Arc::new(
                CgiHandler::script(program, route.cgi.clone(), cgi.clone())
                    .map_err(|e| fail(format!("cgi_script {}: {e}", program.display())))?,
            ),
            RouteKind::Plugin { path, config } => {
                let plugin = load_plugin(&mut plugins, path, config).map_err(fail)?;
                Arc::new(PluginHandler::new(plugin))
            }
        };
        entries.push(RouteEntry {
            prefix: Arc::from(route.prefix.as_str()),
            handler,
            output: route.output,
        });
    }
    let router = Arc::new(Router::new(entries, config.output));
    cgi.dispatcher.set(&router);
    Ok(Built {
        router,
        cgi: cgi.registry.clone(),
        cgi_shared: cgi,
        plugins: plugins.into_iter().map(|(_, _, p)| p).collect(),
    })
}

/// Load a plugin once per library: a second route naming the same file shares it, and must
/// give it the same `plugin_config` (`init` runs once per library, as ISAPI's
/// GetExtensionVersion did).
fn load_plugin(
    loaded: &mut Vec<(PathBuf, String, Arc<Plugin>)>,
    path: &std::path::Path,
    config: &str,
) -> Result<Arc<Plugin>, String> {
    let canonical = path
        .canonicalize()
        .map_err(|e| format!("plugin {}: {e}", path.display()))?;
    if let Some((_, first_config, plugin)) = loaded.iter().find(|(p, _, _)| *p == canonical) {
        if first_config != config {
            return Err(format!(
                "plugin {} is already loaded by another route with a different plugin_config",
                path.display()
            ));
        }
        return Ok(plugin.clone());
    }
    let plugin = Arc::new(Plugin::load(&canonical, config).map_err(|e| e.to_string())?);
    tracing::info!(plugin = plugin.name(), path = %canonical.display(), "plugin loaded");
    loaded.push((canonical, config.to_string(), plugin.clone()));
    Ok(plugin)
}

/// A bound socket, plain or TLS.
struct Listener {
    tcp: TcpListener,
    /// The handshake to run on each connection, and its time limit.
    tls: Option<(TlsAcceptor, Duration)>,
}

/// A bound, not yet running server.
pub struct Server {
    listeners: Vec<Listener>,
    shared: Arc<Shared>,
    plugins: Vec<Arc<Plugin>>,
    log_task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Build routes, open the access log and bind every listener.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let stats = Arc::new(Stats::default());
        let Built {
            router,
            cgi,
            cgi_shared,
            plugins,
        } = build_router(&config, &stats)?;
        let has_cgi = config
            .routes
            .iter()
            .any(|r| matches!(r.kind, RouteKind::CgiDir(_) | RouteKind::CgiScript(_)));
        if has_cgi && config.cgi.spawn != SpawnMode::Direct {
            // Started here, on the main thread, before any connection: the helper's
            // parent-death signal is tied to the thread that spawns it.
            let spawner = Spawner::start().map_err(ServerError::Spawner)?;
            debug!(pid = spawner.helper_pid(), "CGI spawn helper running");
            let _ = cgi_shared.spawner.set(Arc::new(spawner));
        }
        let (access, log_task) = AccessLog::start(&config.log.access, config.log.format)
            .await
            .map_err(ServerError::AccessLog)?;
        let mut listeners = Vec::new();
        for addr in &config.server.listen {
            listeners.push(Listener {
                tcp: bind(*addr).await?,
                tls: None,
            });
        }
        if let Some(tls) = &config.tls {
            let acceptor = TlsAcceptor::from(crate::tls::server_config(tls)?);
            for addr in &tls.listen {
                listeners.push(Listener {
                    tcp: bind(*addr).await?,
                    tls: Some((acceptor.clone(), tls.handshake_timeout)),
                });
            }
        }
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            router,
            cgi,
            stats,
            access,
            shutdown,
        });
        Ok(Server {
            listeners,
            shared,
            plugins,
            log_task,
        })
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

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
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
        tokio::spawn(async move {
            let _open = shared.stats.open_connection();
            match tls {
                None => {
                    let (r, w) = sock.into_split();
                    crate::http::conn::serve(r, w, info, shared.clone(), id).await;
                }
                Some((acceptor, limit)) => {
                    // Boxed: the handshake's state is large, and a plain connection's task
                    // would otherwise be sized for it too (an idle connection's memory).
                    Box::pin(async {
                        if let Some(stream) = crate::tls::accept(sock, &acceptor, limit).await {
                            let (r, w) = tokio::io::split(stream);
                            crate::http::conn::serve(r, w, info, shared.clone(), id).await;
                        }
                    })
                    .await;
                }
            }
            debug!(id, "connection closed");
            drop(permit);
            drop(done);
        });
    }
}
