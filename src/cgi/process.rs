//! CGI process management (SPEC §5.6): spawn a script in a process group of its own with
//! piped stdio and a clean environment, and make sure it ends — group SIGTERM, `kill_grace`,
//! group SIGKILL — and is reaped, whether the request finished, timed out, or was cancelled
//! because the client went away (dropping a [`Process`] stops it in the background).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::killpg;
pub(crate) use nix::sys::signal::Signal;
use nix::unistd::{pipe2, Pid};
use tokio::net::unix::pipe;
use tokio::process::Command;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::debug;

use super::script::Script;
use super::spawner::{Spawned, Spawner};
use crate::metrics::{CgiMetrics, StopReason};

/// How often a group that outlived its leader is checked while it is given time to exit.
const GROUP_POLL: Duration = Duration::from_millis(10);
/// Scripts being started at once from the server itself, each on a blocking thread.
const SPAWNS_AT_ONCE: usize = 8;

/// Direct mode only (the helper needs neither: its send does not block). Starting a
/// process blocks the calling thread until the child has exec'd (vfork), which
/// under a burst of CGI requests on a busy machine takes milliseconds each. On a runtime
/// worker that stalls every connection the worker serves — 500 uploads arriving together
/// froze even the in-process status page for a second (bench/soak, scenario b) — so spawns
/// run on blocking threads, a few at a time.
static SPAWNING: Semaphore = Semaphore::const_new(SPAWNS_AT_ONCE);

/// Who can signal a script's process group: the server itself, or — for a script that runs
/// as a user the server is not — the helper that started it.
#[derive(Clone, Default)]
pub(crate) enum Signaller {
    /// The server (same user).
    #[default]
    Server,
    /// Its helper.
    Helper(Arc<Spawner>),
}

impl Signaller {
    /// Send `sig` to the group `pgid`.
    pub(crate) fn signal(&self, pgid: i32, sig: Signal) {
        match self {
            Signaller::Server => signal_group(pgid, sig),
            Signaller::Helper(helper) => helper.signal(pgid, sig),
        }
    }
}

/// The process groups of every running script, so shutdown can stop what is left; it keeps
/// the metrics' count of running scripts and of the stops it sees (disconnect, shutdown).
#[derive(Default)]
pub(crate) struct Registry {
    groups: Mutex<HashMap<i32, Signaller>>,
    metrics: Arc<CgiMetrics>,
}

impl Registry {
    /// A registry counting into `metrics`.
    pub(crate) fn new(metrics: Arc<CgiMetrics>) -> Registry {
        Registry {
            groups: Mutex::default(),
            metrics,
        }
    }

    fn insert(&self, pgid: i32, signaller: Signaller) {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.insert(pgid, signaller);
        self.metrics.set_running(groups.len());
    }

    fn remove(&self, pgid: i32) {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.remove(&pgid);
        self.metrics.set_running(groups.len());
    }

    /// Count a stop of `pgid` for `reason`, if it is still registered (not one that
    /// shutdown is stopping).
    fn count_stop(&self, pgid: i32, reason: StopReason) {
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if groups.contains_key(&pgid) {
            self.metrics.count_stop(reason);
        }
    }

    /// How many scripts are running.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    #[cfg(test)]
    /// Whether no script is running.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Process groups still registered.
    #[cfg(test)]
    pub(crate) fn live(&self) -> Vec<i32> {
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.keys().copied().collect()
    }

    /// Shutdown: SIGTERM every group, wait up to `grace`, SIGKILL what is left (SPEC §1).
    pub(crate) async fn terminate_all(&self, grace: Duration) {
        // Taken out of the registry at once: a request cancelled while its group is being
        // stopped here is then not counted as a disconnect as well.
        let groups: Vec<(i32, Signaller)> = {
            let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
            self.metrics.set_running(0);
            groups.drain().collect()
        };
        if groups.is_empty() {
            return;
        }
        debug!(count = groups.len(), "stopping CGI process groups");
        for (g, signaller) in &groups {
            self.metrics.count_stop(StopReason::Shutdown);
            signaller.signal(*g, Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while groups.iter().any(|(g, _)| group_alive(*g)) && Instant::now() < deadline {
            tokio::time::sleep(GROUP_POLL).await;
        }
        for (g, signaller) in &groups {
            signaller.signal(*g, Signal::SIGKILL);
        }
    }
}

/// What a script reads on stdin.
pub(crate) enum Input {
    /// Nothing: `/dev/null`.
    Null,
    /// A spooled body in a file, positioned at its start.
    File(std::fs::File),
    /// A pipe the server writes the body into ([`Pipes::stdin`]).
    Pipe,
}

/// The pipes to a running script: the server's ends, non-blocking, the same whichever way
/// the script was started.
pub(crate) struct Pipes {
    /// Its stdin, when the body is fed through a pipe.
    pub stdin: Option<pipe::Sender>,
    /// Its stdout: the CGI response.
    pub stdout: pipe::Receiver,
    /// Its stderr: log lines.
    pub stderr: pipe::Receiver,
}

/// The script's ends of its stdio, closed in the server once it has started.
struct ChildEnds {
    /// `None`: `/dev/null`.
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Pipes made by the server (close-on-exec; the child gets its ends as 0, 1 and 2).
fn make_pipes(input: Input) -> std::io::Result<(ChildEnds, Pipes)> {
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (stdin, sender) = match input {
        Input::Null => (None, None),
        Input::File(file) => (Some(OwnedFd::from(file)), None),
        Input::Pipe => {
            let (in_r, in_w) = pipe2(OFlag::O_CLOEXEC)?;
            let in_w = nonblocking(in_w)?;
            (
                Some(in_r),
                Some(pipe::Sender::from_owned_fd_unchecked(in_w)?),
            )
        }
    };
    let pipes = Pipes {
        stdin: sender,
        stdout: pipe::Receiver::from_owned_fd_unchecked(nonblocking(out_r)?)?,
        stderr: pipe::Receiver::from_owned_fd_unchecked(nonblocking(err_r)?)?,
    };
    let ends = ChildEnds {
        stdin,
        stdout: out_w,
        stderr: err_w,
    };
    Ok((ends, pipes))
}

/// Our end of a pipe just made, non-blocking (the script's end stays blocking: O_NONBLOCK
/// belongs to each end's open file description). One `fcntl` where tokio's checked
/// `from_owned_fd` makes an `fstat` and two: we know it is a pipe and which end.
fn nonblocking(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
    )?;
    Ok(fd)
}

/// How a script is to be started and stopped.
pub(crate) struct Launch<'a> {
    /// SIGTERM → SIGKILL.
    pub(crate) grace: Duration,
    /// Where its group is registered.
    pub(crate) registry: Arc<Registry>,
    /// Its `max_children` slot.
    pub(crate) permit: OwnedSemaphorePermit,
    /// The helper to start it from; `None`: the server starts it.
    pub(crate) spawner: Option<&'a Arc<Spawner>>,
    /// It runs confined by its helper's profile: never started elsewhere.
    pub(crate) confined: bool,
    /// It runs as another user than the server: only its helper may signal it.
    pub(crate) foreign: bool,
}

/// What becomes part of a started [`Process`].
struct Start {
    grace: Duration,
    registry: Arc<Registry>,
    permit: OwnedSemaphorePermit,
    signaller: Signaller,
}

/// Why the helper did not start a script.
enum Refused {
    /// The request does not fit in one message: what a direct spawn needs, handed back.
    TooLarge(ChildEnds, Arc<Registry>, OwnedSemaphorePermit),
    /// It failed.
    Failed(std::io::Error),
}

/// The running script as its starter sees it.
enum Child {
    /// Spawned by the server; tokio reaps it.
    Direct(tokio::process::Child),
    /// Spawned by the helper, which reaps it and reports the status; `None` once reported
    /// (or once the helper is known to be gone).
    Helper(Option<oneshot::Receiver<ExitStatus>>),
}

impl Child {
    /// Wait until it is reaped. Cancel-safe.
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Child::Direct(child) => child.wait().await,
            Child::Helper(exit) => {
                let Some(rx) = exit.as_mut() else {
                    return Err(std::io::Error::other("exit status already taken or lost"));
                };
                let status = rx.await;
                *exit = None;
                status.map_err(|_| std::io::Error::other("the CGI spawn helper is gone"))
            }
        }
    }

    /// Its status if it has been reaped already.
    fn try_wait(&mut self) -> Option<ExitStatus> {
        match self {
            Child::Direct(child) => child.try_wait().ok().flatten(),
            Child::Helper(exit) => {
                let status = exit.as_mut()?.try_recv().ok()?;
                *exit = None;
                Some(status)
            }
        }
    }
}

/// A running script. Dropping it without [`Process::stop`] stops it in the background.
pub(crate) struct Process {
    child: Option<Child>,
    pgid: i32,
    grace: Duration,
    signaller: Signaller,
    registry: Arc<Registry>,
    permit: Option<OwnedSemaphorePermit>,
    exited: Option<ExitStatus>,
}

impl Process {
    /// Start `script` with exactly `env`, in its own process group, in the script's folder:
    /// through `spawner` if given ([`SpawnMode::Helper`](crate::config::SpawnMode)), else
    /// from this process. The program is exec'd directly, never through a shell (SPEC
    /// §5.1). Every descriptor the server opens is close-on-exec, so the child holds only
    /// 0, 1 and 2.
    ///
    /// Cancelling this future never leaves a script behind: the [`Process`] is built by a
    /// task (or blocking thread) of its own, and if nobody is waiting for it any more,
    /// dropping it stops the script.
    pub(crate) async fn spawn(
        script: &Script,
        env: &[(String, Vec<u8>)],
        input: Input,
        launch: Launch<'_>,
    ) -> std::io::Result<(Process, Pipes)> {
        let (ends, pipes) = make_pipes(input)?;
        let Launch {
            grace,
            registry,
            permit,
            spawner,
            confined,
            foreign,
        } = launch;
        let (ends, registry, permit) = match spawner {
            None => (ends, registry, permit),
            Some(spawner) => {
                let signaller = if foreign {
                    Signaller::Helper(spawner.clone())
                } else {
                    Signaller::Server
                };
                let start = Start {
                    grace,
                    registry,
                    permit,
                    signaller,
                };
                match Process::spawn_helper(spawner, script, env, ends, start).await {
                    Ok(process) => return Ok((process, pipes)),
                    Err(Refused::Failed(e)) => return Err(e),
                    // A confined script never starts anywhere but in its helper.
                    Err(Refused::TooLarge(..)) if confined => {
                        return Err(Errno::E2BIG.into());
                    }
                    // More than one message to the helper carries: the same pipes, directly.
                    Err(Refused::TooLarge(ends, registry, permit)) => {
                        debug!("spawn request too large for the helper; spawning directly");
                        (ends, registry, permit)
                    }
                }
            }
        };
        Process::spawn_direct(script, env, ends, grace, registry, permit)
            .await
            .map(|p| (p, pipes))
    }

    /// Have the helper start the script. The wait for its answer runs in a task of its own,
    /// so that a cancelled request still gets its Process (and drops it, stopping the
    /// script) once the helper has answered.
    async fn spawn_helper(
        spawner: &Arc<Spawner>,
        script: &Script,
        env: &[(String, Vec<u8>)],
        ends: ChildEnds,
        start: Start,
    ) -> Result<Process, Refused> {
        let Start {
            grace,
            registry,
            permit,
            signaller,
        } = start;
        let too_large = |e: &std::io::Error| e.raw_os_error() == Some(Errno::EMSGSIZE as i32);
        let request = match spawner.prepare(&script.program, &script.args, &script.dir, env) {
            Ok(r) => r,
            Err(e) if too_large(&e) => return Err(Refused::TooLarge(ends, registry, permit)),
            Err(e) => return Err(Refused::Failed(e)),
        };
        let spawner = spawner.clone();
        let task = tokio::spawn(async move {
            let stdin = ends
                .stdin
                .as_ref()
                .map_or_else(|| spawner.dev_null(), AsFd::as_fd);
            let spawned = spawner
                .spawn(request, [stdin, ends.stdout.as_fd(), ends.stderr.as_fd()])
                .await;
            let Spawned { pid, exit } = match spawned {
                Ok(s) => s,
                Err(e) if too_large(&e) => return Err(Refused::TooLarge(ends, registry, permit)),
                Err(e) => return Err(Refused::Failed(e)),
            };
            // Our copies of the child's ends must close, or its output never reaches EOF.
            drop(ends);
            registry.insert(pid, signaller.clone());
            Ok(Process {
                child: Some(Child::Helper(Some(exit))),
                pgid: pid,
                grace,
                signaller,
                registry,
                permit: Some(permit),
                exited: None,
            })
        });
        task.await.map_err(|e| {
            Refused::Failed(std::io::Error::other(format!("spawn task failed: {e}")))
        })?
    }

    /// Spawn from this process, on a blocking thread (see [`SPAWNING`]).
    async fn spawn_direct(
        script: &Script,
        env: &[(String, Vec<u8>)],
        ends: ChildEnds,
        grace: Duration,
        registry: Arc<Registry>,
        permit: OwnedSemaphorePermit,
    ) -> std::io::Result<Process> {
        let mut cmd = Command::new(&script.program);
        cmd.args(&script.args)
            .current_dir(&script.dir)
            .env_clear()
            .stdin(ends.stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(Stdio::from(ends.stdout))
            .stderr(Stdio::from(ends.stderr))
            // Its own group, so timeouts and disconnects stop everything it started. No
            // pre_exec closure: std can then use posix_spawn (vfork) for speed.
            .process_group(0);
        for (name, value) in env {
            cmd.env(name, OsStr::from_bytes(value));
        }
        let slot = SPAWNING
            .acquire()
            .await
            .map_err(|_| std::io::Error::other("spawning closed"))?;
        tokio::task::spawn_blocking(move || {
            // The Command (holding the child's ends) is dropped when this returns.
            let started = Process::start(cmd, grace, registry, permit);
            drop(slot);
            started
        })
        .await
        .map_err(|e| std::io::Error::other(format!("spawn task failed: {e}")))?
    }

    /// The blocking part of [`Process::spawn_direct`].
    fn start(
        mut cmd: Command,
        grace: Duration,
        registry: Arc<Registry>,
        permit: OwnedSemaphorePermit,
    ) -> std::io::Result<Process> {
        let child = cmd.spawn()?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| std::io::Error::other("spawned child has no pid"))?;
        registry.insert(pgid, Signaller::Server);
        Ok(Process {
            child: Some(Child::Direct(child)),
            pgid,
            grace,
            signaller: Signaller::Server,
            registry,
            permit: Some(permit),
            exited: None,
        })
    }

    /// The process group id (the script's pid).
    pub(crate) fn pgid(&self) -> i32 {
        self.pgid
    }

    /// Wait for the script itself to exit (it is reaped). Cancel-safe.
    pub(crate) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        let Some(child) = self.child.as_mut() else {
            return Err(std::io::Error::other("process already stopped"));
        };
        let status = child.wait().await?;
        self.exited = Some(status);
        Ok(status)
    }

    /// End the script and everything in its group: group SIGTERM, up to `kill_grace`, group
    /// SIGKILL; the script is reaped. Quick when everything has exited already.
    pub(crate) async fn stop(mut self) -> Option<ExitStatus> {
        let child = self.child.take();
        let status = stop_group(child, self.exited, self.pgid, self.grace, &self.signaller).await;
        self.registry.remove(self.pgid);
        self.permit.take();
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        // Cancelled (client gone, server stopping): begin at once, finish in the background.
        // Shutdown took its groups out of the registry first, so this counts the requests
        // whose connection ended under them.
        self.registry.count_stop(self.pgid, StopReason::Disconnect);
        self.signaller.signal(self.pgid, Signal::SIGTERM);
        let (pgid, grace, exited) = (self.pgid, self.grace, self.exited);
        let registry = self.registry.clone();
        let permit = self.permit.take();
        let signaller = self.signaller.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    stop_group(Some(child), exited, pgid, grace, &signaller).await;
                    registry.remove(pgid);
                    drop(permit);
                });
            }
            Err(_) => {
                signaller.signal(pgid, Signal::SIGKILL);
                registry.remove(pgid);
            }
        }
    }
}

/// Group SIGTERM, up to `grace`, group SIGKILL; returns once the leader is reaped (by
/// tokio, or by the helper: its Exited message arrived) — or, if the helper died, once the
/// group has been killed, as nothing is left to wait for.
async fn stop_group(
    child: Option<Child>,
    exited: Option<ExitStatus>,
    pgid: i32,
    grace: Duration,
    signaller: &Signaller,
) -> Option<ExitStatus> {
    let mut child = child?;
    let mut status = exited.or_else(|| child.try_wait());
    if status.is_some() && !group_alive(pgid) {
        return status;
    }
    signaller.signal(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    let mut waitable = true;
    if status.is_none() {
        match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(Ok(s)) => status = Some(s),
            Ok(Err(_)) => waitable = false,
            Err(_) => {}
        }
    }
    while group_alive(pgid) && Instant::now() < deadline {
        tokio::time::sleep(GROUP_POLL).await;
    }
    if status.is_none() || group_alive(pgid) {
        debug!(pgid, "process group outlived kill_grace; SIGKILL");
        signaller.signal(pgid, Signal::SIGKILL);
    }
    if status.is_none() && waitable {
        status = child.wait().await.ok();
    }
    status
}

/// Send `sig` to a process group; a group that is already gone is not an error.
pub(crate) fn signal_group(pgid: i32, sig: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
}

/// Whether any process of the group is still there. EPERM says it is, and that it runs as
/// a user the server may not signal.
pub(crate) fn group_alive(pgid: i32) -> bool {
    pgid > 1
        && matches!(
            killpg(Pid::from_raw(pgid), None),
            Ok(()) | Err(Errno::EPERM)
        )
}

/// Raise the soft limit on open descriptors to the hard limit (as Go's runtime and nginx's
/// `worker_rlimit_nofile` do): `max_connections` defaults to 10000, far above the usual
/// soft limit of 1024. Returns the limit now in force.
pub(crate) fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// Mark every descriptor above 2 that the server inherited from whatever started it
/// close-on-exec, so no script ever sees one (SPEC §5.1: only 0, 1 and 2). Descriptors the
/// server opens itself are close-on-exec already. Call once at start-up, before threads.
pub(crate) fn close_inherited_on_exec() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // The directory's own descriptor is closed by now: EBADF, ignored.
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFD) {
            let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
            let _ = fcntl(fd, FcntlArg::F_SETFD(flags));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spawn from the server itself.
    fn direct(
        registry: Arc<Registry>,
        permit: OwnedSemaphorePermit,
        grace: Duration,
    ) -> Launch<'static> {
        Launch {
            grace,
            registry,
            permit,
            spawner: None,
            confined: false,
            foreign: false,
        }
    }
    use std::path::PathBuf;

    fn sleeper() -> Script {
        Script {
            program: PathBuf::from("/bin/sleep"),
            args: vec![PathBuf::from("30")],
            script_filename: PathBuf::from("/bin/sleep"),
            script_name: "/sleep".to_string(),
            path_info: String::new(),
            dir: PathBuf::from("/"),
            nph: false,
        }
    }

    /// Processes whose environment holds `mark`.
    fn marked(mark: &[u8]) -> usize {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0;
        };
        dir.flatten()
            .filter_map(|e| std::fs::read(e.path().join("environ")).ok())
            .filter(|env| env.windows(mark.len()).any(|w| w == mark))
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_spawn_leaves_no_script() {
        let mark = format!("CGIGATE_TEST_MARK={}", std::process::id());
        let env = vec![(
            "CGIGATE_TEST_MARK".to_string(),
            std::process::id().to_string().into_bytes(),
        )];
        let registry = Arc::new(Registry::default());
        let slots = Arc::new(Semaphore::new(1));
        let script = sleeper();
        for _ in 0..5 {
            let permit =
                tokio::time::timeout(Duration::from_secs(5), slots.clone().acquire_owned())
                    .await
                    .expect("the cancelled script was stopped and gave its slot back")
                    .expect("semaphore open");
            let spawn = Process::spawn(
                &script,
                &env,
                Input::Null,
                direct(registry.clone(), permit, Duration::from_millis(100)),
            );
            // Cancelled while the fork/exec is under way on a blocking thread.
            let _ = tokio::time::timeout(Duration::from_micros(1), spawn).await;
        }
        let last = tokio::time::timeout(Duration::from_secs(5), slots.acquire()).await;
        assert!(last.is_ok(), "the last script was stopped");
        assert!(registry.live().is_empty());
        assert_eq!(marked(mark.as_bytes()), 0, "no script left running");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_direct_spawn_waits_while_every_slot_is_taken() {
        let registry = Arc::new(Registry::default());
        let script = Script {
            program: PathBuf::from("/bin/true"),
            args: Vec::new(),
            ..sleeper()
        };
        let spawn = || {
            let permit = Arc::new(Semaphore::new(1))
                .try_acquire_owned()
                .expect("a fresh permit");
            let grace = Duration::from_millis(100);
            Process::spawn(
                &script,
                &[],
                Input::Null,
                direct(registry.clone(), permit, grace),
            )
        };
        let held = SPAWNING
            .acquire_many(SPAWNS_AT_ONCE as u32)
            .await
            .expect("semaphore open");
        let waited = tokio::time::timeout(Duration::from_millis(100), spawn()).await;
        assert!(
            waited.is_err(),
            "all {SPAWNS_AT_ONCE} slots taken: the spawn waits"
        );
        drop(held);
        let (mut process, _pipes) = spawn().await.expect("spawned once a slot is free");
        assert!(process.wait().await.expect("reaped").success());
        process.stop().await;
        assert!(registry.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn running_scripts_and_their_stops_are_counted_once() {
        let metrics = Arc::new(CgiMetrics::default());
        let registry = Arc::new(Registry::new(metrics.clone()));
        let slots = Arc::new(Semaphore::new(2));
        let script = sleeper();
        let spawn = || {
            let permit = slots.clone().try_acquire_owned().expect("a free slot");
            let launch = direct(registry.clone(), permit, Duration::from_millis(100));
            Process::spawn(&script, &[], Input::Null, launch)
        };
        let (cancelled, _pipes_a) = spawn().await.expect("spawned");
        let (running, _pipes_b) = spawn().await.expect("spawned");
        assert_eq!(metrics.running(), 2);
        // A request whose connection ended: its Process is dropped.
        drop(cancelled);
        assert_eq!(metrics.stopped(StopReason::Disconnect), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while metrics.running() != 1 {
            assert!(Instant::now() < deadline, "the cancelled script was reaped");
            tokio::time::sleep(GROUP_POLL).await;
        }
        registry.terminate_all(Duration::from_millis(100)).await;
        assert_eq!(metrics.stopped(StopReason::Shutdown), 1);
        assert_eq!(metrics.running(), 0);
        // Its request is cancelled after shutdown stopped it: not a disconnect as well.
        drop(running);
        assert_eq!(metrics.stopped(StopReason::Disconnect), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spawned_script_runs_and_is_reaped() {
        let registry = Arc::new(Registry::default());
        let permit = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
        let script = Script {
            program: PathBuf::from("/bin/true"),
            args: Vec::new(),
            ..sleeper()
        };
        let (mut process, _pipes) = Process::spawn(
            &script,
            &[],
            Input::Null,
            direct(registry.clone(), permit, Duration::from_millis(100)),
        )
        .await
        .expect("spawned");
        assert!(process.wait().await.expect("reaped").success());
        process.stop().await;
        assert!(registry.live().is_empty());
    }
}
