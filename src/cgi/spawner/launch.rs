//! Starting one script from a spawn helper with its limits in place before it runs: vfork
//! (clone with CLONE_VM | CLONE_VFORK, as glibc's posix_spawn does), then in the child the
//! descriptors, the process group, the folder, the limits and the niceness, then `execve`.
//! This is the one place in cgigate that forks by hand, and it is here for one reason:
//! limits put on a child with `prlimit` after `posix_spawn` returned left the program
//! running without them for as long as the helper waited for a CPU (on a loaded 2-core
//! machine, long enough for a Perl script to open 64 files under `open_files = 16`).
//!
//! The child shares the helper's memory until its `execve`, and the helper is suspended
//! meanwhile; so the child only makes system calls on what the helper prepared — no
//! allocation, no lock, no panic — and reports a failure through shared memory before
//! `_exit`, as glibc does.

// The spawn helper's fork-and-limit: the one allowed use of `unsafe` outside the plugin
// loader and the SDK (each block says why it is sound).
#![allow(unsafe_code)]

use std::ffi::{c_char, CString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::{AccessFlags, Pid};

use crate::cgi::isolation::ChildLimits;

/// The child's stack: it runs a few system calls, then `execve`s.
const STACK: usize = 64 * 1024;

/// glibc's execvp default, for a bare program name with no PATH in the environment.
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// What a script is started with, as the helper received it.
pub(super) struct Launch<'a> {
    pub(super) program: &'a [u8],
    pub(super) args: &'a [Vec<u8>],
    pub(super) dir: &'a [u8],
    pub(super) env: &'a [(Vec<u8>, Vec<u8>)],
    /// Its stdin, stdout and stderr: descriptors of the helper, all above 2.
    pub(super) stdio: [RawFd; 3],
}

/// Where a start failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// The vfork itself (EAGAIN: the user's process limit).
    Fork,
    /// Giving it its stdin, stdout and stderr.
    Descriptors,
    /// Putting it in a process group of its own.
    ProcessGroup,
    /// Entering its working folder.
    Folder,
    /// Setting the limit at this index of [`ChildLimits::rlimits`].
    Limit(usize),
    /// Setting its niceness.
    Niceness,
    /// Resetting its signal mask and SIGPIPE.
    Signals,
    /// Finding the program, or `execve`: the program's own failure (no such file …).
    Exec,
}

impl Stage {
    /// As the child stores it: one number (0 is "no failure").
    fn code(self) -> usize {
        match self {
            Stage::Descriptors => 1,
            Stage::ProcessGroup => 2,
            Stage::Folder => 3,
            Stage::Niceness => 4,
            Stage::Signals => 5,
            Stage::Exec => 6,
            Stage::Fork => 7,
            Stage::Limit(i) => 100 + i,
        }
    }

    fn from_code(code: usize) -> Stage {
        match code {
            1 => Stage::Descriptors,
            2 => Stage::ProcessGroup,
            3 => Stage::Folder,
            4 => Stage::Niceness,
            5 => Stage::Signals,
            7 => Stage::Fork,
            n if n >= 100 => Stage::Limit(n - 100),
            _ => Stage::Exec,
        }
    }
}

/// Why a child did not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LaunchError {
    pub(super) stage: Stage,
    pub(super) errno: Errno,
}

impl LaunchError {
    fn new(stage: Stage) -> impl Fn(Errno) -> LaunchError {
        move |errno| LaunchError { stage, errno }
    }
}

/// The launcher of one helper: the stack its children start on, reused.
pub(super) struct Launcher {
    stack: Vec<u8>,
}

impl Launcher {
    pub(super) fn new() -> Launcher {
        Launcher {
            stack: vec![0; STACK],
        }
    }

    /// Start `launch` under `limits`; its pid (also its process group) once it has called
    /// `execve`, or why it could not (the child is reaped then).
    pub(super) fn spawn(
        &mut self,
        launch: &Launch<'_>,
        limits: &ChildLimits,
    ) -> Result<i32, LaunchError> {
        let exec = LaunchError::new(Stage::Exec);
        // 0, 1 and 2 of the helper are open (its socket, /dev/null, stderr), so received
        // descriptors are above them, and the dup2s below cannot overwrite one another.
        if launch.stdio.iter().any(|&fd| fd <= 2) {
            return Err(LaunchError::new(Stage::Descriptors)(Errno::EBADF));
        }
        let program = find_program(launch.program, launch.env).map_err(&exec)?;
        let cstring = |b: &[u8]| CString::new(b).map_err(|_| exec(Errno::EINVAL));
        let dir = cstring(launch.dir)?;
        let mut argv = vec![cstring(launch.program)?];
        for a in launch.args {
            argv.push(cstring(a)?);
        }
        let env = launch
            .env
            .iter()
            .map(|(k, v)| cstring(&[k.as_slice(), b"=", v.as_slice()].concat()))
            .collect::<Result<Vec<_>, _>>()?;
        let pointers = |v: &[CString]| {
            let mut p: Vec<*const c_char> = v.iter().map(|s| s.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        };
        let (argv_p, env_p) = (pointers(&argv), pointers(&env));
        let stdio = launch.stdio;
        // What failed in the child, and how: written before it exits.
        let (stage, error) = (AtomicUsize::new(0), AtomicI32::new(0));

        // Runs in the child, on `self.stack`, in the helper's memory.
        let child = || -> isize {
            let fail = |at: Stage, e: Errno| -> isize {
                stage.store(at.code(), Ordering::Relaxed);
                error.store(e as i32, Ordering::Relaxed);
                // SAFETY: _exit runs no atexit handler and flushes nothing of the helper's.
                unsafe { libc::_exit(127) }
            };
            for (target, &fd) in (0..).zip(stdio.iter()) {
                if let Err(e) = nix::unistd::dup2(fd, target) {
                    return fail(Stage::Descriptors, e);
                }
            }
            // Its own group: the server stops groups.
            if let Err(e) = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0)) {
                return fail(Stage::ProcessGroup, e);
            }
            if let Err(e) = nix::unistd::chdir(dir.as_c_str()) {
                return fail(Stage::Folder, e);
            }
            for (i, &(resource, soft, hard)) in limits.rlimits.iter().enumerate() {
                if let Err(e) = nix::sys::resource::setrlimit(resource, soft, hard) {
                    return fail(Stage::Limit(i), e);
                }
            }
            if limits.nice != 0 {
                if let Err(e) = rustix::process::setpriority_process(None, limits.nice) {
                    return fail(Stage::Niceness, Errno::from_raw(e.raw_os_error()));
                }
            }
            // What std gives a child: SIGPIPE back to its default (std ignores it in the
            // helper, and an ignored signal stays ignored across execve), and no signal
            // blocked (the helper blocks SIGCHLD and the terminal's signals).
            // SAFETY: setting a disposition to SIG_DFL installs no handler; the child has
            // its own copy of the signal table (no CLONE_SIGHAND).
            if let Err(e) = unsafe {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGPIPE,
                    nix::sys::signal::SigHandler::SigDfl,
                )
            } {
                return fail(Stage::Signals, e);
            }
            if let Err(e) =
                nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            {
                return fail(Stage::Signals, e);
            }
            // SAFETY: the three pointers are NUL-terminated strings and NULL-terminated
            // arrays of them, owned by the helper's frame, which is suspended until this
            // call succeeds or the child exits.
            unsafe { libc::execve(program.as_ptr(), argv_p.as_ptr(), env_p.as_ptr()) };
            fail(Stage::Exec, Errno::last())
        };
        let flags = CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK;
        // SAFETY: CLONE_VFORK suspends this thread until the child has called execve or
        // _exit, so everything `child` borrows outlives its use, and nothing else touches
        // `self.stack` meanwhile (the helper is single-threaded). The child makes only
        // system calls on prepared data (no allocation, no lock that another thread could
        // hold, no unwinding), and 64 KiB of stack is many times what they need.
        let pid = unsafe {
            nix::sched::clone(Box::new(child), &mut self.stack, flags, Some(libc::SIGCHLD))
        }
        .map_err(LaunchError::new(Stage::Fork))?;
        match stage.load(Ordering::Relaxed) {
            0 => Ok(pid.as_raw()),
            code => {
                // It has exited; reap it here so it is not reported as a script's exit.
                let _ = nix::sys::wait::waitpid(pid, None);
                Err(LaunchError {
                    stage: Stage::from_code(code),
                    errno: Errno::from_raw(error.load(Ordering::Relaxed)),
                })
            }
        }
    }
}

/// `program` as `execve` takes it: as given if it has a slash, else the first executable
/// file of that name on the script's PATH (glibc's default without one), as execvp does.
fn find_program(program: &[u8], env: &[(Vec<u8>, Vec<u8>)]) -> Result<CString, Errno> {
    let exact = || CString::new(program).map_err(|_| Errno::EINVAL);
    if program.is_empty() {
        return Err(Errno::ENOENT);
    }
    if program.contains(&b'/') {
        return exact();
    }
    let path = env
        .iter()
        .find(|(k, _)| k == b"PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_slice());
    let mut denied = false;
    for dir in path.split(|&b| b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let candidate = [dir, b"/", program].concat();
        let candidate = std::path::Path::new(std::ffi::OsStr::from_bytes(&candidate));
        if !candidate.is_file() {
            continue;
        }
        match nix::unistd::access(candidate, AccessFlags::X_OK) {
            Ok(()) => {
                return CString::new(candidate.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
            }
            Err(_) => denied = true,
        }
    }
    Err(if denied { Errno::EACCES } else { Errno::ENOENT })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![(b"PATH".to_vec(), path.as_bytes().to_vec())]
    }

    #[test]
    fn programs_with_a_slash_are_taken_as_given() {
        let p = find_program(b"./x/y", &[]).unwrap();
        assert_eq!(p.as_bytes(), b"./x/y");
        assert_eq!(find_program(b"", &[]), Err(Errno::ENOENT));
        assert_eq!(find_program(b"a\0b/", &[]), Err(Errno::EINVAL));
    }

    #[test]
    fn bare_names_are_found_on_the_scripts_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("tool");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        let path = format!("/nonexistent::{}", dir.path().display());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = find_program(b"tool", &env(&path)).unwrap();
        assert_eq!(found.as_bytes(), bin.as_os_str().as_bytes());
        assert_eq!(
            find_program(b"no-such-tool", &env(&path)),
            Err(Errno::ENOENT)
        );
        // sh is in glibc's default PATH.
        assert!(find_program(b"sh", &[]).is_ok());
    }

    #[test]
    fn a_child_starts_with_its_limits_and_failures_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let file = std::fs::File::create(&out).unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        let (null_fd, out_fd) = (null.as_raw_fd(), file.as_raw_fd());
        let args = [b"-c".to_vec(), b"ulimit -n; ulimit -f; pwd".to_vec()];
        let env = env("/usr/bin:/bin");
        let dir_bytes = dir.path().as_os_str().as_bytes().to_vec();
        let launch = Launch {
            program: b"sh",
            args: &args,
            dir: &dir_bytes,
            env: &env,
            stdio: [null_fd, out_fd, out_fd],
        };
        let limits = ChildLimits {
            rlimits: vec![
                (nix::sys::resource::Resource::RLIMIT_NOFILE, 16, 16),
                (nix::sys::resource::Resource::RLIMIT_FSIZE, 4096, 4096),
            ],
            nice: 0,
        };
        let mut launcher = Launcher::new();
        let pid = launcher.spawn(&launch, &limits).unwrap();
        let status = nix::sys::wait::waitpid(Pid::from_raw(pid), None).unwrap();
        assert_eq!(
            status,
            nix::sys::wait::WaitStatus::Exited(Pid::from_raw(pid), 0)
        );
        let printed = std::fs::read_to_string(&out).unwrap();
        // ulimit -f counts 512-byte blocks.
        let expected = format!("16\n8\n{}\n", dir.path().canonicalize().unwrap().display());
        assert_eq!(printed, expected);
        // A folder that does not exist: the errno comes back, the child is reaped.
        let missing = Launch {
            dir: b"/nonexistent-folder",
            ..launch
        };
        let err = launcher.spawn(&missing, &limits).unwrap_err();
        assert_eq!((err.stage, err.errno), (Stage::Folder, Errno::ENOENT));
        // A limit the kernel refuses (soft above hard) names its place in the list.
        let mut bad = limits.clone();
        bad.rlimits
            .push((nix::sys::resource::Resource::RLIMIT_CORE, 2, 1));
        let err = launcher.spawn(&launch, &bad).unwrap_err();
        assert_eq!((err.stage, err.errno), (Stage::Limit(2), Errno::EINVAL));
        // A program that is not there.
        let gone = Launch {
            program: b"/nonexistent/program",
            ..launch
        };
        let err = launcher.spawn(&gone, &limits).unwrap_err();
        assert_eq!((err.stage, err.errno), (Stage::Exec, Errno::ENOENT));
        // Descriptors 0-2 are refused: they could overwrite one another.
        let low = Launch {
            stdio: [0, out_fd, out_fd],
            ..launch
        };
        let err = launcher.spawn(&low, &limits).unwrap_err();
        assert_eq!((err.stage, err.errno), (Stage::Descriptors, Errno::EBADF));
    }
}
