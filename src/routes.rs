//! Route building: a validated [`Config`]'s `[[route]]` tables, plus the handlers an
//! embedding program mounts in code ([`Mounted`]), become the [`Router`]'s entries. Each
//! kind of route gets its handler here: a built-in from the one table of them, a static
//! folder, a CGI folder or program, a native plugin (loaded and initialised once per
//! library).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use crate::cgi::process::Registry;
use crate::cgi::{CgiHandler, CgiShared};
use crate::config::{Config, OutputConfig, Route, RouteKind};
use crate::handler::Handler;
use crate::handlers::{builtin, StaticDir};
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

/// A handler an embedding program mounts at a prefix, beside the config's routes.
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
    /// Loaded plugins, terminated at shutdown.
    pub(crate) plugins: Vec<Arc<Plugin>>,
}

/// Build the router for a config and the mounted handlers, checking that every route can
/// be served (this loads and initialises plugins).
pub(crate) fn build(
    config: &Config,
    mounted: Vec<Mounted>,
    stats: &Arc<Stats>,
) -> Result<Built, RouteError> {
    let cgi = Arc::new(CgiShared {
        children: Arc::new(Semaphore::new(config.cgi.max_children)),
        registry: Arc::new(Registry::default()),
        dispatcher: Arc::new(Dispatcher::default()),
        max_head_bytes: config.server.max_head_bytes,
        spawn: config.cgi.spawn,
        spawner: OnceLock::new(),
        stats: stats.clone(),
    });
    let mut plugins = Plugins::default();
    let mut entries = Vec::with_capacity(config.routes.len() + mounted.len());
    for route in &config.routes {
        let handler = route_handler(config, route, &cgi, &mut plugins, stats)?;
        entries.push(RouteEntry {
            prefix: Arc::from(route.prefix.as_str()),
            handler,
            output: route.output,
        });
    }
    for m in mounted {
        check_mounted(&m, &entries)?;
        entries.push(RouteEntry {
            prefix: Arc::from(m.prefix.as_str()),
            handler: m.handler,
            output: m.output.unwrap_or(config.output),
        });
    }
    let router = Arc::new(Router::new(entries, config.output));
    cgi.dispatcher.set(&router);
    Ok(Built {
        router,
        cgi: cgi.registry.clone(),
        cgi_shared: cgi,
        plugins: plugins.0.into_iter().map(|(_, _, p)| p).collect(),
    })
}

/// The handler of one config route.
fn route_handler(
    config: &Config,
    route: &Route,
    cgi: &Arc<CgiShared>,
    plugins: &mut Plugins,
    stats: &Arc<Stats>,
) -> Result<Arc<dyn Handler>, RouteError> {
    let fail = |message: String| RouteError::Config {
        file: config.source.as_ref().map_or_else(
            || "(built-in defaults)".to_string(),
            |p| p.display().to_string(),
        ),
        line: route.line,
        prefix: route.prefix.clone(),
        message,
    };
    Ok(match &route.kind {
        RouteKind::Handler(name) => {
            builtin(name, stats).ok_or_else(|| fail(format!("unknown handler {name:?}")))?
        }
        RouteKind::StaticDir(dir) => Arc::new(
            StaticDir::new(dir).map_err(|e| fail(format!("static_dir {}: {e}", dir.display())))?,
        ),
        RouteKind::CgiDir(dir) => Arc::new(
            CgiHandler::dir(dir, route.cgi.clone(), cgi.clone())
                .map_err(|e| fail(format!("cgi_dir {}: {e}", dir.display())))?,
        ),
        RouteKind::CgiScript(program) => Arc::new(
            CgiHandler::script(program, route.cgi.clone(), cgi.clone())
                .map_err(|e| fail(format!("cgi_script {}: {e}", program.display())))?,
        ),
        RouteKind::Plugin { path, config } => Arc::new(PluginHandler::new(
            plugins.load(path, config).map_err(fail)?,
        )),
    })
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
#[derive(Default)]
struct Plugins(Vec<(PathBuf, String, Arc<Plugin>)>);

impl Plugins {
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
                    "plugin {} is already loaded by another route with a different plugin_config",
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
