//! The supervisor: the one process that starts spawn helpers, and the only one that may keep
//! the privilege to start them as other users once the server has dropped its own, as the
//! root parents of Apache and nginx do. It does nothing else: it is the cgigate binary
//! re-executed as `__cgigate-supervisor` before the server drops its privileges,
//! given then — while the server has parsed nothing from the network — the table of
//! profiles it may start helpers for. Later the server only names a row of that table (and,
//! for a run-as-owner row, the owner, which the supervisor checks against `min_uid`), so a
//! server taken over through HTTP cannot obtain a helper the config did not allow.
//!
//! When no profile needs another user than the server's, the supervisor takes the server's
//! identity at once and keeps no privilege at all.
//!
//! It is also its helpers' scripts' subreaper: when a helper dies, the scripts it had
//! started become the supervisor's children, and the supervisor kills their process groups
//! and reaps them, so none runs on unwatched (the server's requests on that helper fail;
//! their exit statuses are lost with it).

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use super::helper::HELPER_ARG;
use super::process_loop::{self, Service};
use super::wire::{Command as Message, Reply};
use crate::cgi::isolation::{switch_identity, Profile, Strict};
use crate::config::Identity;

/// The hidden first argument that makes the cgigate binary run as the supervisor.
pub(crate) const SUPERVISOR_ARG: &str = "__cgigate-supervisor";

/// What the supervisor is given at its start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Table {
    /// Who the server runs as once it has dropped its privileges.
    pub(crate) server: Identity,
    /// The profiles it may start helpers for, by index.
    pub(crate) profiles: Vec<Profile>,
}

impl Table {
    /// Whether some profile runs as another user than the server: then the supervisor has
    /// to keep the privilege to start its helper.
    pub(crate) fn needs_privilege(&self) -> bool {
        self.profiles
            .iter()
            .any(|p| !p.is_identity_of(&self.server))
    }
}

/// Run the supervisor with the table in [`process_loop::SETTINGS_VAR`]; returns the exit
/// code. The socket to the server is stdin.
pub(crate) fn supervisor_main() -> i32 {
    if !process_loop::prepare(c"cgigate-super") {
        return 0;
    }
    let table: Table = match process_loop::settings() {
        Ok(table) => table,
        Err(e) => return refuse(&format!("no table: {e}")),
    };
    if !table.needs_privilege() {
        if let Err(reason) = switch_identity(&table.server) {
            return refuse(&reason);
        }
    }
    // Orphans of a dead helper come here rather than to init (see the module's notes).
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        return refuse(&format!("PR_SET_CHILD_SUBREAPER: {e}"));
    }
    let mut supervisor = Supervisor {
        table,
        exe: process_loop::helper_exe(),
        helpers: HashSet::new(),
    };
    let sock = std::io::stdin();
    process_loop::exit_code(process_loop::serve(sock.as_fd(), &mut supervisor))
}

/// What `ps` shows of a helper: its route, and its owner on a run-as-owner route.
fn helper_name(profile: &Profile) -> String {
    match (&profile.identity, profile.strict) {
        (Some(id), Strict::Owner) => format!("{} {}", profile.name, id.user),
        _ => profile.name.clone(),
    }
}

fn refuse(reason: &str) -> i32 {
    eprintln!("cgigate supervisor: {reason}");
    1
}

struct Supervisor {
    table: Table,
    exe: PathBuf,
    /// The helpers it started that have not been reaped.
    helpers: HashSet<i32>,
}

impl Service for Supervisor {
    fn command(&mut self, message: Message, fds: Vec<OwnedFd>) -> Option<Reply> {
        match message {
            Message::StartHelper { id, profile, owner } => {
                Some(self.start(id, profile, owner, fds))
            }
            Message::Spawn(request) => Some(failed(request.id, Errno::EINVAL)),
            Message::Signal { .. } => None,
        }
    }

    fn reaped(&mut self, pid: i32) {
        if self.helpers.remove(&pid) {
            stop_orphans(&self.helpers);
        }
    }
}

/// Kill the process group of every child that is not a helper: scripts (and their own
/// children) whose helper has died, reparented to us. The SIGCHLD path reaps them.
fn stop_orphans(helpers: &HashSet<i32>) {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if helpers.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((ppid, pgrp)) = parent_and_group(&stat) {
            if ppid == me && pgrp > 1 {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgrp),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The parent pid and process group from a `/proc/PID/stat` line: `pid (comm) state ppid
/// pgrp …`, where `comm` may hold spaces and parentheses (hence the last `)`).
fn parent_and_group(stat: &str) -> Option<(u32, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((ppid, pgrp))
}

impl Supervisor {
    /// Start a helper for row `index` of the table, serving the one descriptor given.
    fn start(&mut self, id: u64, index: u32, owner: Option<u32>, fds: Vec<OwnedFd>) -> Reply {
        let Ok([sock]) = <[OwnedFd; 1]>::try_from(fds) else {
            return failed(id, Errno::EINVAL);
        };
        let Some(template) = usize::try_from(index)
            .ok()
            .and_then(|i| self.table.profiles.get(i))
        else {
            return failed(id, Errno::EINVAL);
        };
        let profile = match (template.identity.is_none(), owner) {
            (true, Some(uid)) => match template.for_owner(uid) {
                Ok(p) => p,
                Err(reason) => {
                    eprintln!("cgigate supervisor ({}): {reason}", template.name);
                    return failed(id, Errno::EPERM);
                }
            },
            (false, None) => template.clone(),
            _ => return failed(id, Errno::EINVAL),
        };
        let Ok(json) = serde_json::to_string(&profile) else {
            return failed(id, Errno::EINVAL);
        };
        let spawned = Command::new(&self.exe)
            .arg(HELPER_ARG)
            .arg(helper_name(&profile))
            .env(process_loop::SETTINGS_VAR, json)
            .stdin(Stdio::from(sock))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        match spawned.map(|child| i32::try_from(child.id())) {
            Ok(Ok(pid)) => {
                self.helpers.insert(pid);
                Reply::Spawned { id, pid }
            }
            Ok(Err(_)) => failed(id, Errno::EOVERFLOW),
            Err(e) => Reply::Failed {
                id,
                errno: e.raw_os_error().unwrap_or(Errno::EIO as i32),
            },
        }
    }
}

fn failed(id: u64, errno: Errno) -> Reply {
    Reply::Failed {
        id,
        errno: errno as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_parent_and_group() {
        let line = "4242 (perl) S 17 4242 4242 0 -1 4194560 301 0 0 0";
        assert_eq!(parent_and_group(line), Some((17, 4242)));
        // A name with spaces and parentheses of its own.
        let line = "9 (a) b (c)) R 1 9 9 0";
        assert_eq!(parent_and_group(line), Some((1, 9)));
        assert_eq!(parent_and_group("9 (x"), None);
        assert_eq!(parent_and_group("9 (x) S"), None);
    }
}
