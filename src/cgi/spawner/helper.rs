//! The spawn helper itself: the cgigate binary re-executed as `__cgigate-spawner ROUTE`, its
//! profile in its environment, its stdin the helper's end of the socket. It applies its
//! [`Profile`] to itself (user, limit on processes, sandbox), says `Ready`, then serves: it
//! starts the programs it is asked for, after checking them against its profile, with the
//! per-script limits set before they run ([`super::launch`]), signals their groups on
//! request (its scripts may run as a user the server cannot signal), and reaps every child,
//! reporting each exit. Single-threaded and blocking, as the supervisor
//! is ([`super::process_loop`]).

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::launch::{Launch, Launcher, Stage};
use super::process_loop::{self, Service};
use super::wire::{Command as Message, Reply, Request};
use crate::cgi::isolation::{ChildLimits, Profile};

/// The hidden first argument that makes the cgigate binary run as a spawn helper.
pub(crate) const HELPER_ARG: &str = "__cgigate-spawner";

/// Run the helper with the profile in [`process_loop::SETTINGS_VAR`]; returns the process
/// exit code. The socket is stdin (fd 0); the argument (the route) is for `ps` only.
pub(crate) fn helper_main() -> i32 {
    if !process_loop::prepare(c"cgigate-spawner") {
        return 0;
    }
    let sock = std::io::stdin();
    let sock = sock.as_fd();
    let profile: Profile = match process_loop::settings() {
        Ok(p) => p,
        Err(e) => return unusable(sock, format!("no profile: {e}")),
    };
    let sandbox = match profile.apply_to_self() {
        Ok(state) => state,
        Err(reason) => return unusable(sock, format!("{}: {reason}", profile.name)),
    };
    if process_loop::reply(sock, &Reply::Ready { sandbox }).is_err() {
        return 0;
    }
    let mut helper = Helper {
        limits: profile.child_limits(),
        profile,
        groups: Vec::new(),
        launcher: Launcher::new(),
    };
    process_loop::exit_code(process_loop::serve(sock, &mut helper))
}

/// Says why the helper cannot serve, and the exit code that goes with it.
fn unusable(sock: BorrowedFd<'_>, reason: String) -> i32 {
    eprintln!("cgigate spawner: {reason}");
    let _ = process_loop::reply(sock, &Reply::Unusable { reason });
    1
}

struct Helper {
    profile: Profile,
    /// What each child gets between its fork and its execve.
    limits: ChildLimits,
    launcher: Launcher,
    /// Process groups it started (a script's pid is its group): the only ones it signals.
    groups: Vec<i32>,
}

impl Service for Helper {
    fn command(&mut self, message: Message, fds: Vec<OwnedFd>) -> Option<Reply> {
        match message {
            Message::Spawn(request) => {
                let Ok(stdio) = <[OwnedFd; 3]>::try_from(fds) else {
                    return Some(failed(request.id, Errno::EINVAL));
                };
                Some(self.spawn(&request, stdio))
            }
            Message::Signal { pgid, signal } => {
                self.signal(pgid, signal);
                None
            }
            Message::StartHelper { id, .. } => Some(failed(id, Errno::EINVAL)),
        }
    }

    fn reaped(&mut self, _pid: i32) {
        // A group outlives its leader while members are left: forget it once it is empty.
        self.groups
            .retain(|&g| killpg(Pid::from_raw(g), None).is_ok());
    }
}

impl Helper {
    fn spawn(&mut self, req: &Request, stdio: [OwnedFd; 3]) -> Reply {
        let os = |b: &[u8]| PathBuf::from(OsStr::from_bytes(b));
        let program = os(&req.program);
        let args: Vec<PathBuf> = req.args.iter().map(|a| os(a)).collect();
        if let Err(reason) = self.profile.check_program(&program, &args) {
            eprintln!("cgigate spawner ({}): refused: {reason}", self.profile.name);
            return failed(req.id, Errno::EACCES);
        }
        let launch = Launch {
            program: &req.program,
            args: &req.args,
            dir: &req.dir,
            env: &req.env,
            stdio: stdio.each_ref().map(AsRawFd::as_raw_fd),
        };
        // Our copies of the child's descriptors close when `stdio` drops, after the spawn.
        match self.launcher.spawn(&launch, &self.limits) {
            Ok(pgid) => {
                self.groups.push(pgid);
                Reply::Spawned {
                    id: req.id,
                    pid: pgid,
                }
            }
            Err(e) => {
                // The program's own failure (no such file …) is the server's to report;
                // a step of the launch failing is the helper's.
                if e.stage != Stage::Exec {
                    let step = match e.stage {
                        Stage::Limit(i) => self
                            .limits
                            .rlimits
                            .get(i)
                            .map_or("setrlimit".to_string(), |(r, ..)| {
                                format!("setrlimit({r:?})")
                            }),
                        other => format!("{other:?}"),
                    };
                    eprintln!(
                        "cgigate spawner ({}): starting {}: {step}: {}",
                        self.profile.name,
                        program.display(),
                        e.errno
                    );
                }
                failed(req.id, e.errno)
            }
        }
    }

    fn signal(&mut self, pgid: i32, signal: i32) {
        let Ok(signal) = Signal::try_from(signal) else {
            return;
        };
        if self.groups.contains(&pgid) {
            let _ = killpg(Pid::from_raw(pgid), signal);
        }
    }
}

fn failed(id: u64, errno: Errno) -> Reply {
    Reply::Failed {
        id,
        errno: errno as i32,
    }
}
