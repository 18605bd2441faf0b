//! Spawning scripts from a small helper process (`[cgi] spawn = "helper"`), as Apache's
//! mod_cgid and fcgiwrap do. posix_spawn from the server itself — many threads, a large
//! address space, thousands of descriptors — is about a third slower: vfork shares the big
//! mm (mmap_lock contention, TLB-shootdown IPIs across threads) and the kernel walks the
//! whole descriptor table per spawn. The helper is the cgigate binary re-executed, tiny and
//! single-threaded ([`helper_main`]); this module is the server's client for it.
//!
//! Protocol ([`wire`]): a `SOCK_SEQPACKET` socketpair. The server sends a spawn request
//! with the child's stdin, stdout and stderr as SCM_RIGHTS; the helper answers `Spawned`
//! or `Failed`, and later `Exited` with the raw wait status once it has reaped the child.
//! Messages are ordered, so `Spawned` always precedes its `Exited`.
//!
//! If the helper dies, every pending spawn and exit wait fails, and later spawns fail (the
//! request gets a 500) with an error in the log; it is not restarted — a helper that dies is
//! a bug or an OOM kill worth noticing, and restarting from a runtime thread would make
//! its parent-death signal fire when that thread ends. Scripts it had started keep running
//! until their request ends; the server still stops their process groups, but their exit
//! statuses are lost.

mod helper;
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
use tracing::{debug, error};

pub(crate) use helper::helper_main;
use wire::{Reply, MAX_REPLY, MAX_REQUEST};

/// The hidden first argument that makes the cgigate binary run as the helper.
pub(crate) const HELPER_ARG: &str = "__cgigate-spawner";

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
    /// Spawn requests awaiting `Spawned`/`Failed`, by request id.
    pending: HashMap<u64, oneshot::Sender<io::Result<Spawned>>>,
    /// Started children awaiting `Exited`, by pid.
    exits: HashMap<i32, oneshot::Sender<ExitStatus>>,
    /// The helper is gone: no more spawns.
    dead: bool,
}

/// The server's side of the helper: one per server, shared by every CGI route.
pub(crate) struct Spawner {
    sock: Arc<UnixDatagram>,
    state: Arc<Mutex<State>>,
    ids: AtomicU64,
    /// Given as stdin to scripts without a request body.
    dev_null: OwnedFd,
    helper_pid: u32,
}

impl Spawner {
    /// Start the helper and the task reading its replies. Needs a tokio runtime.
    pub(crate) fn start() -> io::Result<Spawner> {
        // Blocking socketpair; only the server's end is made non-blocking (below), so the
        // helper can use plain blocking sends.
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
        // The helper's end becomes its stdin: std dup2s it onto fd 0 in the child, which
        // clears close-on-exec on that copy only. Mapping it to fd 3 would need pre_exec
        // (unsafe), and clearing FD_CLOEXEC on it in the server would let any process
        // spawned meanwhile on another thread inherit it. The helper's children get their
        // own stdin, so the socket never reaches a script.
        let exe = helper_exe();
        let mut child = tokio::process::Command::new(&exe)
            .arg(HELPER_ARG)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", exe.display())))?;
        let helper_pid = child.id().unwrap_or(0);
        let dev_null = OwnedFd::from(std::fs::File::open("/dev/null")?);
        // tokio has no safe registration for an arbitrary descriptor (AsyncFd::register is
        // unsafe); a UnixDatagram is registered safely, and its send/recv and readiness work
        // the same on a SEQPACKET socket, which is a datagram socket with a connection.
        let sock = Arc::new(UnixDatagram::from_std(
            std::os::unix::net::UnixDatagram::from(ours),
        )?);
        let state = Arc::new(Mutex::new(State::default()));
        let (reader_sock, reader_state) = (sock.clone(), state.clone());
        tokio::spawn(async move {
            let why = read_replies(&reader_sock, &reader_state).await;
            fail_all(&reader_state);
            let status = child.wait().await;
            error!(
                reason = %why,
                status = ?status.ok(),
                "the CGI spawn helper is gone; CGI requests will fail until the server restarts"
            );
        });
        debug!(pid = helper_pid, "CGI spawn helper started");
        Ok(Spawner {
            sock,
            state,
            ids: AtomicU64::new(1),
            dev_null,
            helper_pid,
        })
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
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.dead {
                return Err(io::Error::other("the CGI spawn helper is not running"));
            }
            state.pending.insert(id, tx);
        }
        if let Err(e) = self.send(&bytes, stdio).await {
            self.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pending
                .remove(&id);
            return Err(e);
        }
        rx.await
            .map_err(|_| io::Error::other("the CGI spawn helper is gone"))?
    }

    /// One datagram with the three descriptors; waits for buffer space without blocking.
    async fn send(&self, request: &[u8], stdio: [BorrowedFd<'_>; 3]) -> io::Result<()> {
        let fds = stdio.map(|fd| fd.as_raw_fd());
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

/// The binary to re-execute. `/proc/self/exe` first: it still works after the file was
/// replaced or deleted on disk (an upgrade while running); `current_exe` otherwise.
fn helper_exe() -> std::path::PathBuf {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return proc_exe.to_path_buf();
    }
    std::env::current_exe().unwrap_or_else(|_| proc_exe.to_path_buf())
}

/// Dispatch replies until the helper goes away; returns why.
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
