//! The isolation settings (SPEC §9): who the server and its scripts run as, the limits a
//! script runs under, its sandbox, and which request headers it sees. Names of users and
//! groups are resolved here, once, so a missing one is a config error with its position.

use std::ffi::CString;
use std::path::PathBuf;
use std::time::Duration;

use nix::unistd::{getgrouplist, Gid, Group, Uid, User};
use serde::{Deserialize, Serialize};

/// The lowest uid and gid a script may be switched to unless the config says otherwise
/// (SPEC §9 `min_uid`, `min_gid`): suEXEC's default, below which are root and the system's
/// own accounts.
pub const DEFAULT_MIN_ID: u32 = 100;

/// An account, resolved: everything `setgroups`, `setgid` and `setuid` need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user's name.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// The group to run as: the user's primary group unless `group` names another.
    pub gid: u32,
    /// Supplementary groups: the user's, from the group database.
    pub groups: Vec<u32>,
}

impl Identity {
    /// The account `user`, with the group `gid` instead of its primary group if given.
    pub(crate) fn of_user(user: &str, gid: Option<u32>) -> Result<Identity, String> {
        let account = User::from_name(user)
            .map_err(|e| format!("cannot look up user {user:?}: {e}"))?
            .ok_or_else(|| format!("no user {user:?} on this system"))?;
        let gid = gid.unwrap_or_else(|| account.gid.as_raw());
        Ok(Identity {
            groups: supplementary_groups(&account.name, account.gid, gid),
            user: account.name,
            uid: account.uid.as_raw(),
            gid,
        })
    }

    /// The account with uid `uid` (a script's owner), with its primary group.
    pub(crate) fn of_uid(uid: u32) -> Result<Identity, String> {
        let account = User::from_uid(Uid::from_raw(uid))
            .map_err(|e| format!("cannot look up uid {uid}: {e}"))?
            .ok_or_else(|| format!("uid {uid} has no user on this system"))?;
        let gid = account.gid.as_raw();
        Ok(Identity {
            groups: supplementary_groups(&account.name, account.gid, gid),
            user: account.name,
            uid,
            gid,
        })
    }

    /// The identity this process runs as now.
    pub(crate) fn current() -> Identity {
        let uid = nix::unistd::getuid();
        let user = User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name);
        Identity {
            user,
            uid: uid.as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            groups: nix::unistd::getgroups()
                .unwrap_or_default()
                .into_iter()
                .map(Gid::as_raw)
                .collect(),
        }
    }

    /// Whether this is root.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// The gid of the group `name`.
pub(crate) fn group_gid(name: &str) -> Result<u32, String> {
    Group::from_name(name)
        .map_err(|e| format!("cannot look up group {name:?}: {e}"))?
        .map(|g| g.gid.as_raw())
        .ok_or_else(|| format!("no group {name:?} on this system"))
}

/// The user's groups from the group database, with `gid` (the one it will run as) first.
fn supplementary_groups(user: &str, primary: Gid, gid: u32) -> Vec<u32> {
    let listed = CString::new(user)
        .ok()
        .and_then(|name| getgrouplist(&name, primary).ok())
        .unwrap_or_default();
    let mut groups = vec![gid];
    for g in listed.into_iter().map(Gid::as_raw) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    groups
}

/// Who a route's scripts run as.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum RunAs {
    /// The server's own identity (the default).
    #[default]
    Server,
    /// This account (`user`, `group`).
    User(Identity),
    /// The owner of each script file (`run_as_owner = true`, suEXEC-style).
    Owner,
}

/// Resource limits for a route's scripts (`limits = { … }`); `None`: not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// CPU time (RLIMIT_CPU): SIGXCPU at this, SIGKILL a second later.
    pub cpu: Option<Duration>,
    /// Address space in bytes (RLIMIT_AS): allocations beyond it fail.
    pub memory: Option<u64>,
    /// Processes of the script's user (RLIMIT_NPROC): forks beyond it fail.
    pub processes: Option<u64>,
    /// Open descriptors (RLIMIT_NOFILE).
    pub open_files: Option<u64>,
    /// Largest file it may write, in bytes (RLIMIT_FSIZE): SIGXFSZ beyond it.
    pub file_size: Option<u64>,
    /// Largest core dump, in bytes (RLIMIT_CORE); 0 (the default) is none.
    pub core: Option<u64>,
}

impl Limits {
    /// The `[cgi]` default: no limit but no core dumps.
    pub(crate) fn default_for_cgi() -> Limits {
        Limits {
            core: Some(0),
            ..Limits::default()
        }
    }

    /// Whether any limit but `core` is set.
    pub fn is_limiting(&self) -> bool {
        self.cpu.is_some()
            || self.memory.is_some()
            || self.processes.is_some()
            || self.open_files.is_some()
            || self.file_size.is_some()
    }
}

/// A route's sandbox (`[cgi.sandbox]`, or `sandbox = { … }` on a route), on Landlock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// Whether scripts run sandboxed.
    pub enabled: bool,
    /// Paths scripts may read (beyond their folder and the system's).
    pub read: Vec<PathBuf>,
    /// Paths scripts may read and write.
    pub write: Vec<PathBuf>,
    /// Whether scripts may open TCP connections.
    pub tcp_connect: bool,
    /// Whether scripts may bind TCP ports.
    pub tcp_bind: bool,
    /// On a kernel without Landlock (or without its network rules), run unsandboxed (or
    /// without them) and say so in the log, rather than refusing to start.
    pub best_effort: bool,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            enabled: false,
            read: Vec::new(),
            write: Vec::new(),
            tcp_connect: true,
            tcp_bind: true,
            best_effort: false,
        }
    }
}
