//! The loop the small processes around the server run — the spawn helpers and the
//! supervisor: single-threaded and blocking, no runtime, no logging threads. Each waits in
//! `poll` for a command on its socket (stdin) or a SIGCHLD, hands commands to its
//! [`Service`], and reaps every child it started, reporting each exit.

use std::ffi::CStr;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{send, MsgFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};

use super::wire::{Command, Reply, MAX_REQUEST};

/// What a helper or the supervisor does with what arrives.
pub(crate) trait Service {
    /// A command and the descriptors that came with it; the reply to send, if any.
    fn command(&mut self, command: Command, fds: Vec<OwnedFd>) -> Option<Reply>;
    /// A child was reaped (its exit is reported already).
    fn reaped(&mut self, pid: i32);
}

/// Why the loop ended.
pub(crate) enum End {
    /// The server closed its end (it exited or stopped us): exit 0.
    ServerGone,
    /// Something it cannot do without: exit 1.
    Broken(&'static str, Errno),
}

/// The exit code for an end, saying why on stderr when it is a failure.
pub(crate) fn exit_code(end: End) -> i32 {
    match end {
        End::ServerGone => 0,
        End::Broken(what, errno) => {
            eprintln!("cgigate: {what}: {errno}");
            1
        }
    }
}

/// The environment variable that carries a supervisor's table or a helper's profile (JSON):
/// not an argument, so `ps` shows only the role and the route, and other users cannot read
/// it (`/proc/PID/environ` is private to the process's user). Scripts never see it: a
/// helper starts them with exactly the environment it is sent.
pub(crate) const SETTINGS_VAR: &str = "CGIGATE_SPAWNER_SETTINGS";

/// This process's settings from [`SETTINGS_VAR`].
pub(crate) fn settings<T: serde::de::DeserializeOwned>() -> Result<T, String> {
    let json = std::env::var(SETTINGS_VAR).map_err(|e| format!("{SETTINGS_VAR}: {e}"))?;
    serde_json::from_str(&json).map_err(|e| format!("bad settings: {e}"))
}

/// Before serving: die with the parent, and take a name `ps` shows. False when the parent
/// is gone already (nothing to serve).
pub(crate) fn prepare(name: &CStr) -> bool {
    // The server holds the other end of the socket; if it dies we get EOF. PDEATHSIG is the
    // second line of defence (a process stuck in a blocking send would not see the EOF).
    // It fires when the *thread* that spawned us ends: the server's main thread, or the
    // supervisor's only one, which live as long as their process.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() == nix::unistd::Pid::from_raw(1) {
        return false;
    }
    let _ = nix::sys::prctl::set_name(name);
    true
}

/// Serve `sock` until the server goes away.
pub(crate) fn serve(sock: BorrowedFd<'_>, service: &mut impl Service) -> End {
    let mut children = SigSet::empty();
    children.add(Signal::SIGCHLD);
    // Ctrl-C in a terminal signals the whole foreground group, us included; the server
    // then shuts down gracefully and still needs us. We end when the server does (EOF), so
    // these are held off. posix_spawn resets the mask for the children.
    let mut mask = children;
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        mask.add(sig);
    }
    if let Err(e) = mask.thread_block() {
        return End::Broken("blocking signals", e);
    }
    let sfd = match SignalFd::with_flags(&children, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
    {
        Ok(fd) => fd,
        Err(e) => return End::Broken("signalfd", e),
    };
    let mut buf = vec![0u8; MAX_REQUEST];
    loop {
        let mut fds = [
            PollFd::new(sock, PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return End::Broken("poll", e),
        }
        let sock_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let child_exited = fds[1].revents().is_some_and(|r| !r.is_empty());
        if child_exited {
            // Drain the signalfd (SIGCHLDs coalesce), then reap whatever has exited.
            while let Ok(Some(_)) = sfd.read_signal() {}
            if let Err(end) = reap(sock, service) {
                return end;
            }
        }
        if sock_ready {
            if let Err(end) = receive(sock, &mut buf, service) {
                return end;
            }
        }
    }
}

/// Reap every exited child and report it.
fn reap(sock: BorrowedFd<'_>, service: &mut impl Service) -> Result<(), End> {
    loop {
        let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, (code & 0xff) << 8),
            Ok(WaitStatus::Signaled(pid, sig, core)) => {
                (pid, sig as i32 | if core { 0x80 } else { 0 })
            }
            // Stopped/continued are not reported without WUNTRACED/WCONTINUED.
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(End::Broken("waitpid", e)),
        };
        reply(
            sock,
            &Reply::Exited {
                pid: pid.as_raw(),
                status,
            },
        )?;
        service.reaped(pid.as_raw());
    }
}

/// Receive one command and hand it over.
fn receive(sock: BorrowedFd<'_>, buf: &mut [u8], service: &mut impl Service) -> Result<(), End> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    // CMSG_CLOEXEC: received descriptors reach a child only as its 0, 1 and 2.
    let msg = match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
        Ok(m) => m,
        Err(e) if e == rustix::io::Errno::INTR || e == rustix::io::Errno::AGAIN => return Ok(()),
        // ECONNRESET and friends: the server is gone.
        Err(_) => return Err(End::ServerGone),
    };
    if msg.bytes == 0 {
        return Err(End::ServerGone);
    }
    // Collected before anything can fail, so every descriptor is closed on every path.
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(3);
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    let [buf] = iov;
    let data = &buf[..msg.bytes.min(buf.len())];
    // A message cut short is too big; descriptors cut short are ones this process could
    // not take (the kernel drops them with MSG_CTRUNC when it is at its open-file limit).
    let truncated = if msg.flags.contains(ReturnFlags::TRUNC) {
        Some(Errno::E2BIG)
    } else if msg.flags.contains(ReturnFlags::CTRUNC) {
        Some(Errno::EMFILE)
    } else {
        None
    };
    let answer = match (truncated, Command::decode(data)) {
        (None, Ok(command)) => service.command(command, fds),
        // Answer what can be answered; a message without even an id is dropped.
        (Some(errno), _) => Command::peek_id(data).map(|id| failed(id, errno)),
        (None, Err(_)) => Command::peek_id(data).map(|id| failed(id, Errno::EINVAL)),
    };
    match answer {
        Some(answer) => reply(sock, &answer),
        None => Ok(()),
    }
}

fn failed(id: u64, errno: Errno) -> Reply {
    Reply::Failed {
        id,
        errno: errno as i32,
    }
}

/// Send one reply; blocking (the server's reader drains continuously).
pub(crate) fn reply(sock: BorrowedFd<'_>, reply: &Reply) -> Result<(), End> {
    let bytes = reply.encode();
    loop {
        match send(sock.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(_) => return Err(End::ServerGone),
        }
    }
}

/// The binary to re-execute. `/proc/self/exe` first: it still works after the file was
/// replaced or deleted on disk (an upgrade while running); `current_exe` otherwise, and also
/// when the two are different files: under valgrind `/proc/self/exe` is valgrind's tool while
/// the path it reports (`current_exe` reads the link through valgrind) is the program, so
/// `bench/callgrind.sh` can profile CGI routes with their helpers.
pub(crate) fn helper_exe() -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let proc_exe = Path::new("/proc/self/exe");
    let current = std::env::current_exe().ok();
    let same_file = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        // The named file is gone (replaced on disk): only /proc/self/exe still reaches it.
        _ => true,
    };
    match current {
        Some(current) if !proc_exe.exists() || !same_file(proc_exe, &current) => current,
        _ => proc_exe.to_path_buf(),
    }
}
