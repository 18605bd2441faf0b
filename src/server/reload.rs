//! Reloading the config while serving (SIGHUP, SPEC §8). A reload is all or nothing:
//! everything that can fail (reading certificates and ticket keys, building the routes,
//! loading new plugins, opening the access log, binding new addresses) happens first, and
//! only when all of it worked is the new [`Generation`] put in place. Requests already
//! running keep the route they were given; connections already open keep the `[server]`
//! settings they were accepted with; everything new gets the new config. What cannot change
//! in a running server (who it runs as, the spawn helpers' profiles, the core-dump limit)
//! refuses the reload and says so, and the old config keeps serving. docs/operations.md
//! lists what applies when.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tracing::{info, warn};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::error::ServerError;
use super::listen::{self, Open, Role, Spec};
use super::shared::{Generation, Shared};
use crate::access_log::AccessLog;
use crate::app::{App, Forwarding};
use crate::cgi::helpers::Helpers;
use crate::config::{self, Config};
use crate::routes::{self, Built, Carried, Mounted, Plugins};

/// What only reloads and shutdown need, behind one lock (a reload at a time).
pub(super) struct State {
    /// The embedding program's handlers, mounted again on each reload.
    pub(super) mounted: Vec<Mounted>,
    /// Every plugin loaded: kept to the end (requests of an older generation may still be
    /// in one), terminated at shutdown.
    pub(super) plugins: Plugins,
    /// The `max_children` slots, shared by every generation's CGI routes.
    pub(super) children: Arc<Semaphore>,
    /// Who holds and waits for them.
    pub(super) fair: Arc<crate::cgi::fair::Fair>,
    /// The spawn helpers, if the server started them.
    pub(super) helpers: Option<Arc<Helpers>>,
    /// The sockets being served.
    pub(super) open: Vec<Open>,
    /// Whether those came from `LISTEN_FDS` (a reload keeps them as they are).
    pub(super) inherited: bool,
    /// Held by every accept loop and connection: shutdown waits until all are gone. Taken
    /// at shutdown, so a reload after it opens nothing.
    pub(super) done: Option<mpsc::Sender<()>>,
    /// The access log writers, waited for at exit.
    pub(super) log_tasks: Vec<JoinHandle<()>>,
}

/// Why a reload did not happen; the old config keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config cannot be served (a route, a certificate, an address, the log).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// It changes what a running server cannot change.
    #[error("{0} changed, which takes a restart")]
    NeedsRestart(&'static str),
    /// The server is stopping.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// What a reload changed.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// URLs of the listeners opened.
    pub opened: Vec<String>,
    /// URLs of the listeners closed.
    pub closed: Vec<String>,
}

/// Reloads a running server's config (see [`super::Server::reloader`]).
#[derive(Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
    state: Arc<tokio::sync::Mutex<State>>,
}

impl Reloader {
    pub(super) fn new(shared: Arc<Shared>, state: Arc<tokio::sync::Mutex<State>>) -> Reloader {
        Reloader { shared, state }
    }

    /// Serve `config` from now on, or say why not and change nothing; either is logged.
    pub async fn reload(&self, config: Config) -> Result<Reloaded, ReloadError> {
        let source = config.source.as_ref().map_or_else(
            || "built-in defaults".to_string(),
            |p| p.display().to_string(),
        );
        let result = self.apply(config).await;
        log_outcome(&result, &source);
        result
    }

    async fn apply(&self, config: Config) -> Result<Reloaded, ReloadError> {
        let mut state = self.state.lock().await;
        let Some(done) = state.done.clone() else {
            return Err(ReloadError::ShuttingDown);
        };
        let old = self.shared.current.load_full();
        needs_restart(&old.config, &config)?;
        let generation = Generation::of(config, Some(&old))?;
        let new = &generation.config;
        let carried = Carried {
            registry: self.shared.cgi.clone(),
            children: state.children.clone(),
            fair: state.fair.clone(),
            plugins: state.plugins.clone(),
        };
        let built = routes::build(
            new,
            state.mounted.clone(),
            &self.shared.stats,
            Some(carried),
        );
        let Built {
            router,
            cgi_shared,
            plugins,
            helpers,
            ..
        } = built.map_err(ServerError::from)?;
        // Plugins loaded by this build stay loaded whatever happens next: remember them, so
        // that shutdown terminates them.
        state.plugins = plugins;
        if let Some(plan) = helpers {
            match &state.helpers {
                Some(running) if running.serve(&plan.table) => {
                    let _ = cgi_shared.helpers.set(running.clone());
                }
                _ => return Err(ReloadError::NeedsRestart(HELPERS_CHANGED)),
            }
        }
        let (access, log_task) = access_log(&old.config, new, &self.shared.app).await?;
        let (kept, fresh) = sockets(&state, &generation)?;

        // Nothing below fails: the new config takes over.
        let mut reloaded = Reloaded::default();
        let mut open = Vec::with_capacity(kept.len() + fresh.len());
        for (listener, keep) in std::mem::take(&mut state.open).into_iter().zip(kept) {
            if keep {
                listener
                    .role
                    .send_replace(Some(Role::of(listener.spec, &generation)));
                open.push(listener);
            } else {
                listener.role.send_replace(None);
                reloaded.closed.push(listener.url);
            }
        }
        for (tcp, spec) in fresh {
            let (bound, listener) = listen::listener(tcp, spec, &generation);
            tokio::spawn(listen::accept_loop(
                bound,
                self.shared.clone(),
                done.clone(),
            ));
            reloaded.opened.push(listener.url.clone());
            open.push(listener);
        }
        state.open = open;
        state.log_tasks.extend(log_task);
        resize(
            &self.shared.permits,
            old.config.server.max_connections,
            new.server.max_connections,
        );
        resize(
            &state.children,
            old.config.cgi.max_children,
            new.cgi.max_children,
        );
        state.fair.set_per_client(new.cgi.max_children_per_client);
        self.shared.app.replace(router, access, Forwarding::of(new));
        self.shared.current.store(Arc::new(generation));
        Ok(reloaded)
    }
}

const HELPERS_CHANGED: &str = "the isolation of a CGI route (its prefix, user, limits, \
     sandbox or programs), or whether scripts start through the spawn helper,";

/// Refuse a config that changes what is fixed once the server runs: its identity (the
/// privileges to become another are gone) and the process-wide core-dump limit.
fn needs_restart(old: &Config, new: &Config) -> Result<(), ReloadError> {
    if old.server.user != new.server.user {
        return Err(ReloadError::NeedsRestart("[server] user or group"));
    }
    if old.cgi.limits.core != new.cgi.limits.core {
        return Err(ReloadError::NeedsRestart("[cgi] limits.core"));
    }
    Ok(())
}

/// The access log of the new config: the old one when nothing about it changed, except
/// that a file is opened again (after logrotate moved it away, lines go to a new file; if
/// it cannot be opened again, the old one is kept and that is logged).
async fn access_log(
    old: &Config,
    new: &Config,
    app: &App,
) -> Result<(AccessLog, Option<tokio::task::JoinHandle<()>>), ServerError> {
    let same = old.log.access == new.log.access && old.log.format == new.log.format;
    if same && !matches!(new.log.access, config::AccessLog::File(_)) {
        return Ok((app.access_log(), None));
    }
    match AccessLog::start(&new.log.access, new.log.format).await {
        Ok(log) => Ok(log),
        Err(e) if same => {
            warn!(error = %e, "cannot open the access log again; still writing to the old file");
            Ok((app.access_log(), None))
        }
        Err(e) => Err(ServerError::AccessLog(e)),
    }
}

/// Which open sockets the new config keeps (one flag per `state.open`, in order), and the
/// sockets it needs that are not open yet, bound now. Inherited sockets are kept as they
/// are: the service manager owns what they listen on.
#[allow(clippy::type_complexity)]
fn sockets(
    state: &State,
    generation: &Generation,
) -> Result<(Vec<bool>, Vec<(tokio::net::TcpListener, Spec)>), ServerError> {
    if state.inherited {
        return Ok((vec![true; state.open.len()], Vec::new()));
    }
    let mut kept = vec![false; state.open.len()];
    let mut fresh = Vec::new();
    let reuse_port = generation.config.server.reuse_port;
    for spec in listen::specs(&generation.config) {
        let same = |(i, o): &(usize, &Open)| o.spec == spec && !kept[*i];
        match state.open.iter().enumerate().find(same) {
            Some((i, _)) => kept[i] = true,
            None => fresh.push((listen::bind_spec(spec, reuse_port)?, spec)),
        }
    }
    Ok((kept, fresh))
}

/// Give `slots` `to` permits where it had `from`: added at once, or, fewer, taken back as
/// they are returned (the holders finish first).
fn resize(slots: &Arc<Semaphore>, from: usize, to: usize) {
    if to > from {
        slots.add_permits(to - from);
    } else if to < from {
        let Ok(fewer) = u32::try_from(from - to) else {
            return;
        };
        let slots = slots.clone();
        tokio::spawn(async move {
            if let Ok(taken) = slots.acquire_many_owned(fewer).await {
                taken.forget();
            }
        });
    }
}

/// Log what a reload did or why it did not happen.
fn log_outcome(result: &Result<Reloaded, ReloadError>, source: &str) {
    match result {
        Ok(r) => {
            for url in &r.closed {
                info!(%url, "stopped listening");
            }
            info!(
                config = source,
                opened = r.opened.len(),
                closed = r.closed.len(),
                "config reloaded"
            );
        }
        Err(e) => warn!(
            config = source,
            error = %e,
            "reload refused; still serving the previous config"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Let the taking task run until `slots` has `free` permits (bounded).
    async fn settle(slots: &Semaphore, free: usize) {
        for _ in 0..1000 {
            if slots.available_permits() == free {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{} free, not {free}", slots.available_permits());
    }

    #[tokio::test]
    async fn fewer_slots_are_taken_back_as_their_holders_give_them_back() {
        let slots = Arc::new(Semaphore::new(3));
        let held = slots.clone().acquire_many_owned(2).await.expect("open");
        resize(&slots, 3, 1);
        // The one free slot is taken at once; the second only when a holder gives one back.
        settle(&slots, 0).await;
        drop(held);
        settle(&slots, 1).await;
        resize(&slots, 1, 4);
        assert_eq!(slots.available_permits(), 4);
    }
}
