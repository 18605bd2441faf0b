//! The server's own privileges (SPEC §9): core dumps off for what it starts, and the drop to
//! `[server] user` once the listeners are bound and the files only the starting user may
//! read are read — or, for a server left running as root, one warning that says so.

use tracing::{info, warn};

use crate::cgi::isolation::switch_identity;
use crate::config::{Config, Identity, RouteKind, RunAs};

/// Set the soft core-dump limit to `core` bytes (the `[cgi] limits.core`, 0 by default) for
/// this process and so for every script and helper it starts; the hard limit is left as
/// it is. `None`: leave it.
pub(crate) fn limit_core_dumps(core: Option<u64>) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let Some(core) = core else {
        return;
    };
    let hard = getrlimit(Resource::Core).maximum;
    let soft = hard.map_or(core, |h| core.min(h));
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(soft),
            maximum: hard,
        },
    );
}

/// Become `user` for good (supplementary groups, gid, uid; verified by trying to switch
/// back, and by no capability being left), or, without one, warn once if scripts will run
/// as root.
pub(crate) fn drop_to(user: Option<&Identity>, config: &Config) -> Result<(), String> {
    let Some(user) = user else {
        warn_if_root(config);
        return Ok(());
    };
    switch_identity(user)?;
    if let Some(left) = capabilities_left() {
        return Err(format!(
            "still holding capabilities {left} as {}; refusing to serve",
            user.user
        ));
    }
    info!(
        user = user.user,
        uid = user.uid,
        gid = user.gid,
        "dropped privileges"
    );
    Ok(())
}

fn warn_if_root(config: &Config) {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let as_server = config.routes.iter().any(|r| {
        matches!(r.kind, RouteKind::CgiDir(_) | RouteKind::CgiScript(_))
            && r.cgi.run_as == RunAs::Server
    });
    if as_server {
        warn!(
            "running as root without [server] user: CGI scripts on routes without a user run \
             as root; set [server] user (and [cgi] user) to change that"
        );
    }
}

/// The permitted or effective capability sets, if either is not empty.
fn capabilities_left() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .filter(|l| l.starts_with("CapPrm:") || l.starts_with("CapEff:"))
        .find(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|v| !v.trim_start_matches('0').is_empty())
        })
        .map(str::to_string)
}
