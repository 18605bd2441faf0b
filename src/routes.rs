//! Route building: a validated [`Config`]'s `[[route]]` tables, plus the handlers an
//! embedding program mounts in code ([`Mounted`]), become the [`Router`]'s entries. Each
//! kind of route gets its handler here: a built-in from the one table of them, a static
//! folder, a CGI folder or program, a native plugin (loaded and initialised once per
//! library).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;
use tracing::warn;

use crate::cgi::fair::Fair;
use crate::cgi::isolation::{needs_profile, Profile};
use crate::cgi::process::Registry;
use crate::cgi::sandbox::{self, Level, Support};
use crate::cgi::spawner::Table;
use crate::cgi::{CgiHandler, CgiShared, Confinement};
use crate::config::{Config, Identity, OutputConfig, Route, RouteKind, SpawnMode};
use crate::handler::Handler;
use crate::handlers::{builtin, Listing, StaticDir};
use crate::plugin::{Plugin, PluginHandler};
use crate::router::{Dispatcher, RouteEntry, Router};
use crate::stats::Stats;

/// A route that cannot be served: a config problem (a missing folder, a plugin that does
/// not load…), or a mounted handler's prefix.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A config route.
    #[error("{file}:{line}: route {prefix}: {message}")]
    Config {
        /// The config file.
        file: String,
        /// The route's line.
        line: usize,
        /// The route's prefix.
        prefix: String,
        /// What is wrong.
        message: String,
    },
    /// A handler mounted in code.
    #[error("mounted handler at {prefix:?}: {message}")]
    Mounted {
        /// The prefix.
        prefix: String,
        /// What is wrong.
        message: String,
    },
}

impl RouteError {
    /// The same route, with another message.
    pub(crate) fn saying(self, message: String) -> RouteError {
        match self {
            RouteError::Config {
                file, line, prefix, ..
            } => RouteError::Config {
                file,
                line,
                prefix,
                message,
            },
            RouteError::Mounted { prefix, .. } => RouteError::Mounted { prefix, message },
        }
    }
}

/// A handler an embedding program mounts at a prefix, beside the config's routes.
#[derive(Clone)]
pub(crate) struct Mounted {
    /// The prefix (checked as a config `prefix` is).
    pub(crate) prefix: String,
    /// What answers.
    pub(crate) handler: Arc<dyn Handler>,
    /// Output settings; `None`: the config's `[output]`.
    pub(crate) output: Option<OutputConfig>,
}

/// What serving a config needs beyond the config itself.
pub(crate) struct Built {
    /// The routes.
    pub(crate) router: Arc<Router>,
    /// Running CGI process groups.
    pub(crate) cgi: Arc<Registry>,
    /// What the CGI routes share; the server gives it the spawn helper.
    pub(crate) cgi_shared: Arc<CgiShared>,
    /// Loaded plugins (those carried over from before a reload too), terminated at shutdown.
    pub(crate) plugins: Plugins,
    /// The spawn helpers the CGI routes need (row 0: the plain helper), if any.
    pub(crate) helpers: Option<HelperPlan>,
    /// What each CGI route's scripts run with, in route order, for `cgigate check`.
    pub(crate) isolation: Vec<Profile>,
    /// What this kernel's Landlock enforces, if a route has a sandbox.
    pub(crate) landlock: Option<Support>,
    /// The CGI routes' handlers by prefix, for `cgigate run`.
    pub(crate) cgi_routes: Vec<(String, Arc<CgiHandler>)>,
}

/// The helpers to start: the supervisor's table, and which rows to start at once.
pub(crate) struct HelperPlan {
    /// The supervisor's table.
    pub(crate) table: Table,
    /// Rows started with the server, each with the route it serves (for errors).
    pub(crate) eager: Vec<(u32, RouteError)>,
}

/// What a reload carries over from the routes it replaces: the scripts running (so that
/// shutdown still stops them), the `max_children` slots they hold, and the plugins loaded
/// (a library is loaded and initialised once per process).
pub(crate) struct Carried {
    /// Running CGI process groups.
    pub(crate) registry: Arc<Registry>,
    /// The `max_children` slots; the caller resizes them to the new config.
    pub(crate) children: Arc<Semaphore>,
    /// Who holds and waits for them; the caller gives them the new
    /// `max_children_per_client` once the reload is certain.
    pub(crate) fair: Arc<Fair>,
    /// Loaded plugins.
    pub(crate) plugins: Plugins,
}

/// Build the router for a config and the mounted handlers, checking that every route can
/// be served (this loads and initialises plugins not in `carried`).
pub(crate) fn build(
    config: &Config,
    mounted: Vec<Mounted>,
    stats: &Arc<Stats>,
    carried: Option<Carried>,
) -> Result<Built, RouteError> {
    let per_client = config.cgi.max_children_per_client;
    let (registry, children, fair, mut plugins) = match carried {
        Some(c) => (c.registry, c.children, c.fair, c.plugins),
        None => (
            Arc::new(Registry::new(stats.metrics.cgi.clone())),
            Arc::new(Semaphore::new(config.cgi.max_children)),
            Arc::new(Fair::new(per_client)),
            Plugins::default(),
        ),
    };
    let cgi = Arc::new(CgiShared {
        children,
        fair,
        registry,
        dispatcher: Arc::new(Dispatcher::default()),
        max_head_bytes: config.server.max_head_bytes,
        spawn: config.cgi.spawn,
        helpers: OnceLock::new(),
        stats: stats.clone(),
    });
    let mut plan = Planner::new(config);
    let listed = listing(config, &mounted);
    let mut entries = Vec::with_capacity(config.routes.len() + mounted.len());
    let mut cgi_routes = Vec::new();
    for route in &config.routes {
        let handler = match cgi_handler(config, route, &cgi, &mut plan)? {
            Some(handler) => {
                let handler = Arc::new(handler);
                cgi_routes.push((route.prefix.clone(), handler.clone()));
                handler
            }
            None => route_handler(config, route, &mut plugins, stats, &listed)?,
        };
        entries.push(RouteEntry {
            prefix: Arc::from(route.prefix.as_str()),
            handler,
            output: route.output,
            metrics: stats.metrics.route(&route.prefix),
            only: owned_paths(&route.kind),
        });
    }
    for m in mounted {
        check_mounted(&m, &entries)?;
        entries.push(RouteEntry {
            prefix: Arc::from(m.prefix.as_str()),
            handler: m.handler,
            output: m.output.unwrap_or(config.output),
            metrics: stats.metrics.route(&m.prefix),
            only: &[],
        });
    }
    let unrouted = stats.metrics.unrouted().clone();
    let router = Arc::new(Router::new(entries, config.output, unrouted));
    cgi.dispatcher.set(&router);
    let (helpers, isolation, landlock) = plan.finish(config);
    Ok(Built {
        router,
        cgi: cgi.registry.clone(),
        cgi_shared: cgi,
        plugins,
        helpers,
        isolation,
        landlock,
        cgi_routes,
    })
}

/// Collects the profiles of the CGI routes into the supervisor's table.
struct Planner {
    /// Who the server's scripts run as: the server's user once it has dropped privileges.
    server: Identity,
    /// Row 0 is the plain profile.
    profiles: Vec<Profile>,
    eager: Vec<(u32, RouteError)>,
    /// Whether a route starts scripts with the server's own identity.
    plain_cgi: bool,
    /// Every CGI route's profile (the unconfined ones too), for `cgigate check`.
    report: Vec<Profile>,
    /// What Landlock enforces here, found when the first sandboxed route is placed.
    landlock: Option<Support>,
}

impl Planner {
    fn new(config: &Config) -> Planner {
        let server = config.server.user.clone().unwrap_or_else(Identity::current);
        Planner {
            profiles: vec![Profile::plain(&server)],
            server,
            eager: Vec::new(),
            plain_cgi: false,
            report: Vec::new(),
            landlock: None,
        }
    }

    /// Confine a CGI route's handler if its settings ask for it.
    fn place(
        &mut self,
        config: &Config,
        route: &Route,
        handler: CgiHandler,
        fail: &dyn Fn(String) -> RouteError,
    ) -> Result<CgiHandler, RouteError> {
        let profile = Profile::for_route(&route.prefix, &route.cgi, handler.roots(), &self.server);
        self.report.push(profile.clone());
        if !needs_profile(&route.cgi, &self.server, config.cgi.limits.core) {
            self.plain_cgi = true;
            return Ok(handler);
        }
        if route.cgi.limits.processes.is_some()
            && profile.identity.as_ref().is_some_and(Identity::is_root)
        {
            return Err(fail(
                "limits.processes does nothing for scripts run as root (RLIMIT_NPROC does \
                 not apply to root); run them as another user, or drop the limit"
                    .to_string(),
            ));
        }
        if let Some(rules) = &profile.sandbox {
            let support = *self.landlock.get_or_insert_with(sandbox::support);
            if let Some(why) = rules.refusal(support) {
                return Err(fail(why));
            }
            if rules.best_effort && support.files == Level::None {
                warn!(
                    route = route.prefix,
                    "sandbox: this kernel has no Landlock; the route's scripts run \
                     unsandboxed (best_effort)"
                );
            }
        }
        let row = u32::try_from(self.profiles.len()).unwrap_or(u32::MAX);
        let foreign = !profile.is_identity_of(&self.server);
        if profile.identity.is_some() {
            self.eager.push((row, fail(String::new())));
        }
        self.profiles.push(profile.clone());
        Ok(handler.confined(Confinement {
            row,
            profile,
            foreign,
        }))
    }

    /// The helpers to start, every CGI route's profile, and Landlock's support.
    fn finish(self, config: &Config) -> (Option<HelperPlan>, Vec<Profile>, Option<Support>) {
        let plain = self.plain_cgi && config.cgi.spawn != SpawnMode::Direct;
        if !plain && self.profiles.len() == 1 {
            return (None, self.report, self.landlock);
        }
        let mut eager = self.eager;
        if plain {
            let none = RouteError::Mounted {
                prefix: "(scripts)".to_string(),
                message: String::new(),
            };
            eager.insert(0, (0, none));
        }
        let plan = HelperPlan {
            table: Table {
                server: self.server,
                profiles: self.profiles,
            },
            eager,
        };
        (Some(plan), self.report, self.landlock)
    }
}

/// A config route's place in its file, for its errors.
fn route_error(config: &Config, route: &Route) -> impl Fn(String) -> RouteError {
    let file = config.source.as_ref().map_or_else(
        || "(built-in defaults)".to_string(),
        |p| p.display().to_string(),
    );
    let (line, prefix) = (route.line, route.prefix.clone());
    move |message: String| RouteError::Config {
        file: file.clone(),
        line,
        prefix: prefix.clone(),
        message,
    }
}

/// The handler of a CGI route (confined as its settings say); `None` for other routes.
fn cgi_handler(
    config: &Config,
    route: &Route,
    cgi: &Arc<CgiShared>,
    plan: &mut Planner,
) -> Result<Option<CgiHandler>, RouteError> {
    let fail = route_error(config, route);
    let handler = match &route.kind {
        RouteKind::CgiDir(dir) => CgiHandler::dir(dir, route.cgi.clone(), cgi.clone())
            .map_err(|e| fail(format!("cgi_dir {}: {e}", dir.display())))?,
        RouteKind::CgiScript(program) => {
            CgiHandler::script(program, route.cgi.clone(), cgi.clone())
                .map_err(|e| fail(format!("cgi_script {}: {e}", program.display())))?
        }
        _ => return Ok(None),
    };
    plan.place(config, route, handler, &fail).map(Some)
}

/// The handler of one config route that is not a CGI route.
fn route_handler(
    config: &Config,
    route: &Route,
    plugins: &mut Plugins,
    stats: &Arc<Stats>,
    listed: &[Listing],
) -> Result<Arc<dyn Handler>, RouteError> {
    let fail = route_error(config, route);
    Ok(match &route.kind {
        RouteKind::Handler(name) => {
            builtin(name, stats, listed).ok_or_else(|| fail(format!("unknown handler {name:?}")))?
        }
        RouteKind::StaticDir(dir) => Arc::new(
            StaticDir::new(dir).map_err(|e| fail(format!("static_dir {}: {e}", dir.display())))?,
        ),
        RouteKind::Plugin { path, config } => Arc::new(PluginHandler::new(
            plugins.load(path, config).map_err(fail)?,
        )),
        RouteKind::CgiDir(_) | RouteKind::CgiScript(_) => {
            return Err(fail("a CGI route built as another kind".to_string()))
        }
    })
}

/// The paths below its prefix a route answers (empty: all). The landing page is usually at
/// `/`, which every path matches: it owns only itself, and other paths get the 404 (and the
/// metrics series) of a path no route matches.
fn owned_paths(kind: &RouteKind) -> &'static [&'static str] {
    match kind {
        RouteKind::Handler(name) if name == "welcome" => crate::handlers::WELCOME_PATHS,
        _ => &[],
    }
}

/// Every route as the landing page lists it (`handler = "welcome"`): the config's, then the
/// mounted ones.
fn listing(config: &Config, mounted: &[Mounted]) -> Vec<Listing> {
    // Relative to the config's folder, as the file spells them: shorter, and the page does
    // not show where the server's files are.
    let shown = |path: &Path| {
        path.strip_prefix(&config.base_dir)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut listed: Vec<Listing> = config
        .routes
        .iter()
        .map(|route| {
            let (kind, target, cgi_dir) = match &route.kind {
                RouteKind::Handler(name) => ("handler", name.clone(), None),
                RouteKind::StaticDir(dir) => ("static_dir", shown(dir), None),
                RouteKind::CgiDir(dir) => ("cgi_dir", shown(dir), Some(dir.clone())),
                RouteKind::CgiScript(program) => ("cgi_script", shown(program), None),
                RouteKind::Plugin { path, .. } => ("plugin", shown(path), None),
            };
            let is_files = matches!(route.kind, RouteKind::StaticDir(_));
            Listing {
                prefix: route.prefix.clone(),
                kind,
                target,
                output: (!is_files).then(|| route.output.mode.as_str()),
                flush_after: route.output.flush_after,
                cgi_dir,
            }
        })
        .collect();
    listed.extend(mounted.iter().map(|m| {
        let output = m.output.unwrap_or(config.output);
        Listing {
            prefix: m.prefix.clone(),
            kind: "mounted",
            target: String::new(),
            output: Some(output.mode.as_str()),
            flush_after: output.flush_after,
            cgi_dir: None,
        }
    }));
    listed
}

/// A mounted prefix must be a valid prefix that no other route has.
fn check_mounted(m: &Mounted, entries: &[RouteEntry]) -> Result<(), RouteError> {
    let fail = |message: String| RouteError::Mounted {
        prefix: m.prefix.clone(),
        message,
    };
    crate::config::check_prefix(&m.prefix).map_err(fail)?;
    if entries.iter().any(|e| *e.prefix == *m.prefix) {
        return Err(fail("another route has this prefix".to_string()));
    }
    Ok(())
}

/// The plugins loaded so far: canonical path, `plugin_config`, plugin.
#[derive(Clone, Default)]
pub(crate) struct Plugins(Vec<(PathBuf, String, Arc<Plugin>)>);

impl Plugins {
    /// Every plugin loaded.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.0.iter().map(|(_, _, p)| p)
    }

    /// Load a plugin once per library: a second route naming the same file shares it, and
    /// must give it the same `plugin_config` (`init` runs once per library, as ISAPI's
    /// GetExtensionVersion did).
    fn load(&mut self, path: &Path, config: &str) -> Result<Arc<Plugin>, String> {
        let canonical = path
            .canonicalize()
            .map_err(|e| format!("plugin {}: {e}", path.display()))?;
        if let Some((_, first_config, plugin)) = self.0.iter().find(|(p, _, _)| *p == canonical) {
            if first_config != config {
                return Err(format!(
                    "plugin {} is already loaded with a different plugin_config (a library \
                     is initialised once per process: by another route, or before a reload, \
                     which needs a restart to change it)",
                    path.display()
                ));
            }
            return Ok(plugin.clone());
        }
        let plugin = Arc::new(Plugin::load(&canonical, config).map_err(|e| e.to_string())?);
        tracing::info!(plugin = plugin.name(), path = %canonical.display(), "plugin loaded");
        self.0.push((canonical, config.to_string(), plugin.clone()));
        Ok(plugin)
    }
}
