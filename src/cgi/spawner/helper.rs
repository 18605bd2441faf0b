//! The spawn helper itself: the cgigate binary re-executed with `__cgigate-spawner`, its
//! stdin the helper's end of the socket. Single-threaded and blocking: no runtime, no
//! logging threads — a small process whose fork/exec is cheap. It waits in `poll` for a
//! spawn request or a SIGCHLD; it starts programs with `std::process::Command` (no pre_exec,
//! so std uses posix_spawn) and reaps every child it started, reporting each exit.

use std::ffi::OsStr;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{send, MsgFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};

use super::wire::{Reply, Request, MAX_REQUEST};

/// Why the loop ended.
enum End {
    /// The server closed its end (it exited or stopped the helper): exit 0.
    ServerGone,
    /// Something the helper cannot do without: exit 1.
    Broken(&'static str, Errno),
}

/// Run the helper; returns the process exit code. The socket is stdin (fd 0).
pub(crate) fn helper_main() -> i32 {
    // The server holds the other end of the socket; if it dies we get EOF. PDEATHSIG is the
    // second line of defence (a helper stuck in a blocking send would not see the EOF).
    // It fires when the *thread* that spawned us ends; the server spawns the helper from
    // its main thread, which lives as long as the process.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() == nix::unistd::Pid::from_raw(1) {
        return 0;
    }
    let _ = nix::sys::prctl::set_name(c"cgigate-spawner");
    match serve(std::io::stdin().as_fd()) {
        End::ServerGone => 0,
        End::Broken(what, errno) => {
            eprintln!("cgigate spawner: {what}: {errno}");
            1
        }
    }
}

fn serve(sock: BorrowedFd<'_>) -> End {
    let mut children = SigSet::empty();
    children.add(Signal::SIGCHLD);
    // Ctrl-C in a terminal signals the whole foreground group, helper included; the server
    // then shuts down gracefully and still needs its helper. The helper ends when the server
    // does (EOF), so these are held off. posix_spawn resets the mask for the children.
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
            if let Err(end) = reap(sock) {
                return end;
            }
        }
        if sock_ready {
            if let Err(end) = handle_request(sock, &mut buf) {
                return end;
            }
        }
    }
}

/// Reap every exited child and report it.
fn reap(sock: BorrowedFd<'_>) -> Result<(), End> {
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
            Reply::Exited {
                pid: pid.as_raw(),
                status,
            },
        )?;
    }
}

/// Receive one request and start it.
fn handle_request(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(), End> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    // CMSG_CLOEXEC: the received descriptors reach a child only as its 0, 1 and 2.
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
    let Some(id) = Request::peek_id(data) else {
        // Not even an id to answer: nothing sensible to do but drop it.
        return Ok(());
    };
    let truncated = msg
        .flags
        .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC);
    let answer = match (
        truncated,
        Request::decode(data),
        <[OwnedFd; 3]>::try_from(fds),
    ) {
        (false, Ok(req), Ok(stdio)) => spawn(&req, stdio),
        (true, _, _) => Reply::Failed {
            id,
            errno: Errno::E2BIG as i32,
        },
        _ => Reply::Failed {
            id,
            errno: Errno::EINVAL as i32,
        },
    };
    reply(sock, answer)
}

fn spawn(req: &Request, [stdin, stdout, stderr]: [OwnedFd; 3]) -> Reply {
    let os = |b: &[u8]| OsStr::from_bytes(b).to_owned();
    let mut cmd = Command::new(os(&req.program));
    cmd.args(req.args.iter().map(|a| os(a)))
        .current_dir(os(&req.dir))
        .env_clear()
        .envs(req.env.iter().map(|(k, v)| (os(k), os(v))))
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        // Its own group (the server stops groups); no pre_exec, so std uses posix_spawn.
        .process_group(0);
    let reply = match cmd.spawn() {
        Ok(child) => match i32::try_from(child.id()) {
            Ok(pid) => Reply::Spawned { id: req.id, pid },
            Err(_) => Reply::Failed {
                id: req.id,
                errno: Errno::EOVERFLOW as i32,
            },
        },
        Err(e) => Reply::Failed {
            id: req.id,
            errno: e.raw_os_error().unwrap_or(Errno::EIO as i32),
        },
    };
    // Dropping the Command closes our copies of the child's descriptors (a std Child is
    // neither killed nor waited for on drop: reaping is the SIGCHLD path's job).
    drop(cmd);
    reply
}

/// Send one reply; blocking (the server's reader drains continuously).
fn reply(sock: BorrowedFd<'_>, reply: Reply) -> Result<(), End> {
    let bytes = reply.encode();
    loop {
        match send(sock.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(_) => return Err(End::ServerGone),
        }
    }
}
