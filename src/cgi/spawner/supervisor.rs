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
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    let mut supervisor = Supervisor {
        table,
        exe: process_loop::helper_exe(),
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

    fn reaped(&mut self, _pid: i32) {}
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
            Ok(Ok(pid)) => Reply::Spawned { id, pid },
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
