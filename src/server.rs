//! The server: listeners, the accept loops, the connection limit, reloads and graceful
//! shutdown. Each connection runs in a task of its own holding a semaphore permit
//! (`max_connections`: beyond it, accept waits) and a drop-guard sender, so shutdown can wait
//! for in-flight responses. What a config decides (routes, settings, certificates,
//! listeners) is one [`Generation`], which a reload (SIGHUP, [`Reloader`]) replaces whole.

mod error;
mod listen;
mod reload;
mod shared;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, info, warn};

use crate::access_log::AccessLog;
use crate::app::{App, Forwarding};
use crate::cgi::helpers::Helpers;
use crate::config::{Config, Identity, OutputConfig, RouteKind};
use crate::handler::Handler;
use crate::privilege;
use crate::routes::{self, Built, HelperPlan, Mounted};
use crate::stats::Stats;
pub use error::ServerError;
use listen::Bound;
use reload::State;
pub use reload::{ReloadError, Reloaded, Reloader};
use shared::{Generation, Shared};

/// How long the access log gets to write its last lines at exit.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// Check that `config` can be served, as `cgigate check` does: the TLS certificate and key
/// load, folders and programs exist, plugins load and initialise (and are terminated
/// again), the sandboxes can be enforced. Returns the report `cgigate check` prints after
/// its verdict: who the server runs as, and each route's handler and, for CGI routes, who
/// its scripts run as, their limits and their sandbox.
pub fn check_config(config: &Config) -> Result<Vec<String>, ServerError> {
    if let Some(tls) = &config.tls {
        crate::tls::server_config(tls)?;
    }
    let built = routes::build(config, Vec::new(), &Arc::new(Stats::default()), None)?;
    for plugin in built.plugins.all() {
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

/// A bound, not yet running server.
pub struct Server {
    /// Sockets bound, their accept loops not started.
    bound: Vec<Bound>,
    shared: Arc<Shared>,
    state: Arc<tokio::sync::Mutex<State>>,
    /// Waited for by shutdown: every `done` sender dropped.
    done: mpsc::Receiver<()>,
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
        } = routes::build(&config, mounted.clone(), &stats, None)?;
        let helpers = match helpers {
            // Started here, on the main thread, before any connection and before the server
            // drops its privileges: the supervisor's parent-death signal is tied to the
            // thread that spawns it, and it may need them to start helpers as other users.
            Some(plan) => {
                let helpers = Arc::new(start_helpers(plan, stats.clone()).await?);
                let _ = cgi_shared.helpers.set(helpers.clone());
                Some(helpers)
            }
            None => None,
        };
        let (access, log_task) = AccessLog::start(&config.log.access, config.log.format)
            .await
            .map_err(ServerError::AccessLog)?;
        let inherited_sockets = !inherited.is_empty();
        let sockets = if inherited_sockets {
            listen::adopt(inherited)?
        } else {
            let reuse_port = config.server.reuse_port;
            let specs = listen::specs(&config);
            let bind = |spec| listen::bind_spec(spec, reuse_port).map(|tcp| (tcp, spec));
            specs.into_iter().map(bind).collect::<Result<_, _>>()?
        };
        let user = config.server.user.clone();
        let generation = Generation::of(config, None)?;
        // Everything that needed the starting user is done: listeners, TLS files, plugins,
        // the access log, the supervisor.
        privilege::drop_to(user.as_ref(), &generation.config).map_err(ServerError::Privilege)?;
        let (bound, open) = sockets
            .into_iter()
            .map(|(tcp, spec)| listen::listener(tcp, spec, &generation))
            .unzip();
        let forwarding = Forwarding::of(&generation.config);
        let app = Arc::new(App::new(router, access, stats.clone(), forwarding));
        let (done_tx, done) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(generation.config.server.max_connections)),
            current: ArcSwap::from_pointee(generation),
            app,
            cgi,
            stats,
            shutdown: watch::channel(false).0,
            ids: AtomicU64::new(0),
        });
        let state = State {
            mounted,
            plugins,
            children: cgi_shared.children.clone(),
            fair: cgi_shared.fair.clone(),
            helpers,
            open,
            inherited: inherited_sockets,
            done: Some(done_tx),
            log_tasks: log_task.into_iter().collect(),
        };
        Ok(Server {
            bound,
            shared,
            state: Arc::new(tokio::sync::Mutex::new(state)),
            done,
        })
    }
}

/// Start the supervisor and the helpers that start with the server; a helper that cannot
/// apply its profile stops the start-up, naming its route.
pub(crate) async fn start_helpers(
    plan: HelperPlan,
    stats: Arc<Stats>,
) -> Result<Helpers, ServerError> {
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
        self.bound
            .iter()
            .filter_map(|b| {
                let tls = b.role.borrow().as_ref().is_some_and(listen::Role::is_tls);
                let scheme = if tls { "https" } else { "http" };
                b.tcp.local_addr().ok().map(|a| format!("{scheme}://{a}"))
            })
            .collect()
    }

    /// A handle that reloads this server's config while it runs.
    pub fn reloader(&self) -> Reloader {
        Reloader::new(self.shared.clone(), self.state.clone())
    }

    /// Serve until `signal` completes, then shut down gracefully (SPEC §1).
    pub async fn run(self, signal: impl Future<Output = ()>) {
        let Server {
            bound,
            shared,
            state,
            mut done,
        } = self;
        {
            let state = state.lock().await;
            if let Some(tx) = &state.done {
                for b in bound {
                    tokio::spawn(listen::accept_loop(b, shared.clone(), tx.clone()));
                }
            }
        }
        signal.await;
        info!("shutting down: no new connections; finishing responses in flight");
        shared.shutdown.send_replace(true);
        // A reload waiting for the lock now finds no `done`, and opens nothing.
        let mut state = state.lock().await;
        state.done = None;
        let generation = shared.current.load_full();
        let config = &generation.config;
        let grace = config.server.shutdown_timeout;
        if tokio::time::timeout(grace, done.recv()).await.is_err() {
            let open = shared.stats.snapshot().open_connections;
            warn!(
                open,
                "shutdown_timeout passed; closing the remaining connections"
            );
        }
        // SPEC §1: scripts still running are stopped (group SIGTERM, then SIGKILL).
        let grace = config.cgi.kill_grace;
        shared.cgi.terminate_all(grace).await;
        for plugin in state.plugins.all() {
            let plugin = plugin.clone();
            // Waiting for handle calls blocks; do it off the runtime's threads.
            let _ = tokio::task::spawn_blocking(move || plugin.terminate(grace)).await;
        }
        let log_tasks = std::mem::take(&mut state.log_tasks);
        drop(state);
        drop(generation);
        // The last access log sender goes with the routes: then the writers can finish.
        shared.app.replace_log(AccessLog::off());
        drop(shared);
        for task in log_tasks {
            let _ = tokio::time::timeout(LOG_DRAIN, task).await;
        }
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
