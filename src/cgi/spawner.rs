//! Spawning scripts from small helper processes, as Apache's mod_cgid and fcgiwrap do.
//! posix_spawn from the server itself — many threads, a large address space, thousands of
//! descriptors — is about a third slower: vfork shares the big mm (mmap_lock contention,
//! TLB-shootdown IPIs across threads) and the kernel walks the whole descriptor table per
//! spawn. A helper is the cgigate binary re-executed, tiny and single-threaded
//! ([`helper_main`]), confined as its scripts will be ([`super::isolation`]): one for the
//! server's own scripts, one per isolated route (per owner, on a run-as-owner route). The
//! supervisor ([`supervisor_main`]) starts them all, and is the only process that may keep
//! the privilege to start them as other users. This module is the server's client for both.
//!
//! Protocol ([`wire`]): a `SOCK_SEQPACKET` socketpair per process. The server sends a spawn
//! request with the child's stdin, stdout and stderr as SCM_RIGHTS; the helper answers
//! `Spawned` or `Failed`, and later `Exited` with the raw wait status once it has reaped the
//! child. Messages are ordered, so `Spawned` always precedes its `Exited`. The supervisor
//! answers a request to start a helper (with the helper's end of a new socketpair) the same
//! way; the helper's first message on that socket is `Ready` or why it cannot serve.
//!
//! If a helper dies, every pending spawn and exit wait fails (those requests get a 500),
//! with an error in the log; the next request for its route has the supervisor start a new
//! one ([`super::helpers`]). Scripts it had started keep running until their request ends;
//! the server still stops their process groups, but their exit statuses are lost. If the
//! supervisor dies, its helpers die with it and no new one can be started.

mod helper;
mod launch;
mod process_loop;
mod supervisor;
pub(crate) mod wire;

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{
    sendmsg, setsockopt, socketpair, sockopt, AddressFamily, ControlMessage, MsgFlags, SockFlag,
    SockType,
};
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio::sync::oneshot;
use tracing::{debug, error, warn};

pub(crate) use helper::{helper_main, HELPER_ARG};
use process_loop::helper_exe;
pub(crate) use supervisor::{supervisor_main, Table, SUPERVISOR_ARG};
use wire::{Command, Reply, MAX_REPLY, MAX_REQUEST};

/// How long a new helper may take to apply its profile and say `Ready`.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A child the helper started.
pub(crate) struct Spawned {
    /// Its pid, also its process group.
    pub pid: i32,
    /// Resolves when the helper has reaped it; an error if the helper died first.
    pub exit: oneshot::Receiver<ExitStatus>,
}

/// An encoded spawn request.
pub(crate) struct Prepared {
    id: u64,
    bytes: Vec<u8>,
}

/// What the reader task and the senders share.
#[derive(Default)]
struct State {
    /// Requests awaiting `Spawned`/`Failed`, by request id.
    pending: HashMap<u64, oneshot::Sender<io::Result<Spawned>>>,
    /// Started children awaiting `Exited`, by pid.
    exits: HashMap<i32, oneshot::Sender<ExitStatus>>,
    /// The other side is gone: no more requests.
    dead: bool,
}

/// The server's side of one helper process — a spawn helper, or the supervisor, which
/// speaks the same protocol to start helpers.
pub(crate) struct Spawner {
    sock: Arc<UnixDatagram>,
    state: Arc<Mutex<State>>,
    ids: AtomicU64,
    /// Given as stdin to scripts without a request body.
    dev_null: OwnedFd,
    helper_pid: u32,
}

/// A socket pair for a helper: ours non-blocking, theirs blocking (the helper uses plain
/// blocking sends), both close-on-exec.
fn helper_socket() -> io::Result<(OwnedFd, OwnedFd)> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    // Room for large environments; the kernel caps this at wmem_max, and a request that
    // still does not fit fails with EMSGSIZE and is spawned directly.
    let _ = setsockopt(&ours, sockopt::SndBuf, &MAX_REQUEST);
    let flags = OFlag::from_bits_truncate(fcntl(ours.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(
        ours.as_raw_fd(),
        FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK),
    )?;
    Ok((ours, theirs))
}

impl Spawner {
    /// Start the supervisor with `table`, and the task reading its replies. Needs a tokio
    /// runtime; call it from the thread that lives as long as the server (its parent-death
    /// signal is tied to that thread).
    pub(crate) fn start_supervisor(table: &Table) -> io::Result<Spawner> {
        let (ours, theirs) = helper_socket()?;
        let json = serde_json::to_string(table).map_err(io::Error::other)?;
        // Its end becomes its stdin: std dup2s it onto fd 0 in the child, which clears
        // close-on-exec on that copy only. Mapping it to fd 3 would need pre_exec (unsafe),
        // and clearing FD_CLOEXEC on it in the server would let any process spawned
        // meanwhile on another thread inherit it.
        let exe = helper_exe();
        let mut child = tokio::process::Command::new(&exe)
            .arg(SUPERVISOR_ARG)
            .env(process_loop::SETTINGS_VAR, json)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", exe.display())))?;
        let pid = child.id().unwrap_or(0);
        let spawner = Spawner::over(ours, pid)?;
        let (sock, state) = (spawner.sock.clone(), spawner.state.clone());
        tokio::spawn(async move {
            let why = read_replies(&sock, &state).await;
            fail_all(&state);
            let status = child.wait().await;
            error!(
                reason = %why,
                status = ?status.ok(),
                "the CGI supervisor is gone; CGI requests will fail until the server restarts"
            );
        });
        debug!(pid, "CGI supervisor started");
        Ok(spawner)
    }

    /// Have the supervisor start a helper for row `profile` of its table (as `owner`, on a
    /// run-as-owner route), and wait until it has applied its profile. The error is the
    /// helper's own reason when it could not.
    pub(crate) async fn start_helper(
        &self,
        profile: u32,
        owner: Option<u32>,
        name: &str,
    ) -> Result<Spawner, String> {
        let (ours, theirs) = helper_socket().map_err(|e| format!("socketpair: {e}"))?;
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let command = Command::StartHelper { id, profile, owner }.encode();
        let started = self
            .request(id, &command, &[theirs.as_fd()])
            .await
            .map_err(|e| format!("the supervisor cannot start it: {e}"))?;
        drop(theirs);
        let pid = u32::try_from(started.pid).unwrap_or(0);
        let helper = Spawner::over(ours, pid).map_err(|e| e.to_string())?;
        let sandbox = helper.ready().await?;
        helper.read_in_background(name.to_string());
        debug!(pid, helper = name, sandbox, "CGI spawn helper ready");
        Ok(helper)
    }

    /// A client over our end of a connected socket to process `pid`.
    fn over(ours: OwnedFd, pid: u32) -> io::Result<Spawner> {
        let dev_null = OwnedFd::from(std::fs::File::open("/dev/null")?);
        // tokio has no safe registration for an arbitrary descriptor (AsyncFd::register is
        // unsafe); a UnixDatagram is registered safely, and its send/recv and readiness work
        // the same on a SEQPACKET socket, which is a datagram socket with a connection.
        let sock = Arc::new(UnixDatagram::from_std(
            std::os::unix::net::UnixDatagram::from(ours),
        )?);
        Ok(Spawner {
            sock,
            state: Arc::new(Mutex::new(State::default())),
            ids: AtomicU64::new(1),
            dev_null,
            helper_pid: pid,
        })
    }

    /// A new helper's first message: `Ready` (with its sandbox's state) or why not. A
    /// helper applies its profile in milliseconds; one silent for [`READY_TIMEOUT`] is
    /// treated as unable to serve.
    async fn ready(&self) -> Result<u8, String> {
        let mut buf = [0u8; MAX_REPLY];
        let n = tokio::time::timeout(READY_TIMEOUT, self.sock.recv(&mut buf))
            .await
            .map_err(|_| format!("the helper said nothing for {READY_TIMEOUT:?}"))?
            .map_err(|e| format!("reading from the helper: {e}"))?;
        match buf.get(..n).map(Reply::decode) {
            Some(Ok(Reply::Ready { sandbox })) => Ok(sandbox),
            Some(Ok(Reply::Unusable { reason })) => Err(reason),
            _ if n == 0 => Err("the helper exited at once".to_string()),
            _ => Err("the helper said something unexpected".to_string()),
        }
    }

    /// Dispatch a helper's replies in a task of its own, until it goes away.
    fn read_in_background(&self, name: String) {
        let (sock, state) = (self.sock.clone(), self.state.clone());
        tokio::spawn(async move {
            let why = read_replies(&sock, &state).await;
            fail_all(&state);
            warn!(helper = name, reason = %why, "a CGI spawn helper is gone");
        });
    }

    /// Whether the process is known to be gone.
    pub(crate) fn is_dead(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dead
    }

    /// Ask the helper to signal one of the groups it started.
    pub(crate) fn signal(&self, pgid: i32, signal: nix::sys::signal::Signal) {
        let bytes = Command::Signal {
            pgid,
            signal: signal as i32,
        }
        .encode();
        // A full socket buffer drops the signal; the caller falls back on the group's own
        // end, a timeout's SIGKILL, or the helper's.
        let _ = self.sock.try_send(&bytes);
    }

    /// The helper's pid.
    pub(crate) fn helper_pid(&self) -> u32 {
        self.helper_pid
    }

    /// `/dev/null`, for a script's stdin.
    pub(crate) fn dev_null(&self) -> BorrowedFd<'_> {
        self.dev_null.as_fd()
    }

    /// Encode a spawn request, straight from the caller's environment. Fails with
    /// `EMSGSIZE` if it is too large for one message (the caller may spawn directly
    /// instead). Synchronous, so only the encoded bytes move into the spawning task.
    pub(crate) fn prepare(
        &self,
        program: &Path,
        args: &[std::path::PathBuf],
        dir: &Path,
        env: &[(String, Vec<u8>)],
    ) -> io::Result<Prepared> {
        use std::os::unix::ffi::OsStrExt;
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let bytes = wire::encode_request(
            id,
            program.as_os_str().as_bytes(),
            args.iter().map(|a| a.as_os_str().as_bytes()),
            dir.as_os_str().as_bytes(),
            env.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
        );
        if bytes.len() > MAX_REQUEST {
            return Err(Errno::EMSGSIZE.into());
        }
        Ok(Prepared { id, bytes })
    }

    /// Have the helper start a prepared request with `stdio` as its stdin, stdout, stderr.
    /// The descriptors are the caller's; the helper gets copies. `EMSGSIZE` if the socket
    /// cannot carry a message this large.
    pub(crate) async fn spawn(
        &self,
        request: Prepared,
        stdio: [BorrowedFd<'_>; 3],
    ) -> io::Result<Spawned> {
        let Prepared { id, bytes } = request;
        self.request(id, &bytes, &stdio).await
    }

    /// Send one request carrying `fds` and wait for its `Spawned` or `Failed`.
    async fn request(&self, id: u64, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<Spawned> {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.dead {
                return Err(io::Error::other("the CGI spawn helper is not running"));
            }
            state.pending.insert(id, tx);
        }
        if let Err(e) = self.send(bytes, fds).await {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.pending.remove(&id);
            // The helper's end is closed: it died, and the next request may start another
            // without waiting for the reply reader to notice.
            if e.raw_os_error() == Some(Errno::EPIPE as i32)
                || e.raw_os_error() == Some(Errno::ECONNREFUSED as i32)
            {
                state.dead = true;
            }
            return Err(e);
        }
        rx.await
            .map_err(|_| io::Error::other("the CGI spawn helper is gone"))?
    }

    /// One datagram with its descriptors; waits for buffer space without blocking.
    async fn send(&self, request: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let fds: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let iov = [IoSlice::new(request)];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::WRITABLE, || {
                sendmsg::<()>(fd, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
                    .map_err(io::Error::from)
            })
            .await
            .map(|_| ())
    }
}

/// Dispatch replies until the other side goes away; returns why.
async fn read_replies(sock: &UnixDatagram, state: &Mutex<State>) -> String {
    let mut buf = [0u8; MAX_REPLY * 2];
    loop {
        let n = match sock.recv(&mut buf).await {
            Ok(0) => return "it closed the socket".to_string(),
            Ok(n) => n,
            Err(e) => return format!("reading replies: {e}"),
        };
        let Some(bytes) = buf.get(..n) else {
            return "oversized reply".to_string();
        };
        match Reply::decode(bytes) {
            Ok(reply) => dispatch(state, reply),
            Err(e) => return e.to_string(),
        }
    }
}

fn dispatch(state: &Mutex<State>, reply: Reply) {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    match reply {
        Reply::Spawned { id, pid } => {
            let (tx, exit) = oneshot::channel();
            // Registered before the spawner hears of it: the Exited for this pid can only
            // come after this message.
            state.exits.insert(pid, tx);
            if let Some(waiter) = state.pending.remove(&id) {
                // The waiter is a task that always takes the result (see Process::spawn);
                // if it is gone anyway, the receiver is dropped and the exit is ignored.
                let _ = waiter.send(Ok(Spawned { pid, exit }));
            }
        }
        Reply::Failed { id, errno } => {
            if let Some(waiter) = state.pending.remove(&id) {
                let _ = waiter.send(Err(io::Error::from_raw_os_error(errno)));
            }
        }
        Reply::Exited { pid, status } => {
            if let Some(waiter) = state.exits.remove(&pid) {
                let _ = waiter.send(ExitStatus::from_raw(status));
            }
        }
        // Only a new helper's first message, read by `ready`.
        Reply::Ready { .. } | Reply::Unusable { .. } => {}
    }
}

/// The helper is gone: fail every waiter, refuse every later spawn.
fn fail_all(state: &Mutex<State>) {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    state.dead = true;
    for (_, waiter) in state.pending.drain() {
        let _ = waiter.send(Err(io::Error::other("the CGI spawn helper is gone")));
    }
    // Dropping the senders makes every exit wait fail.
    state.exits.clear();
}
