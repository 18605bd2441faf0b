//! What a connection writes to: any `AsyncWrite`, and for a plain TCP socket also
//! sendfile(2), so that a file range in the output ([`FileRange`]) goes from the page cache
//! to the socket without a copy through memory. Other transports (TLS, the tests' in-memory
//! pipes) say they cannot, and the connection reads the range into memory instead.

use std::io;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncWrite, Interest, WriteHalf};
use tokio::net::tcp;
use tokio::net::TcpStream;

use super::outbuf::{shrank, FileRange};

/// Most bytes one sendfile call is asked for: the socket's send buffer takes less than this
/// anyway, and the connection's other events are looked at between calls.
const SENDFILE_MAX: usize = 1024 * 1024;

/// The writing half of a connection.
pub(crate) trait Transport: AsyncWrite + Unpin + Send {
    /// Whether [`Transport::poll_sendfile`] works here.
    fn can_sendfile(&self) -> bool {
        false
    }

    /// Send the front of `range` from its file, as `poll_write` would send bytes: the count
    /// sent, or `Pending` until the socket is writable. Sending nothing because the file
    /// ends before the range does is an `UnexpectedEof` error.
    fn poll_sendfile(
        &mut self,
        _cx: &mut Context<'_>,
        _range: &FileRange,
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }
}

/// A plain connection, split by borrowing (server/listen.rs: no `Arc` per connection).
impl Transport for tcp::WriteHalf<'_> {
    fn can_sendfile(&self) -> bool {
        true
    }

    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        range: &FileRange,
    ) -> Poll<io::Result<usize>> {
        sendfile_to(self.as_ref(), cx, range)
    }
}

/// One sendfile(2) of the front of `range` to `sock`, once it is writable.
fn sendfile_to(
    sock: &TcpStream,
    cx: &mut Context<'_>,
    range: &FileRange,
) -> Poll<io::Result<usize>> {
    let count = usize::try_from(range.len)
        .unwrap_or(usize::MAX)
        .min(SENDFILE_MAX);
    let offset = i64::try_from(range.offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    loop {
        ready!(sock.poll_write_ready(cx))?;
        // try_io clears the readiness on EAGAIN, so the next poll_write_ready waits for
        // the socket to drain.
        let sent = sock.try_io(Interest::WRITABLE, || {
            let mut at = offset;
            nix::sys::sendfile::sendfile64(sock, &*range.file, Some(&mut at), count)
                .map_err(io::Error::from)
        });
        match sent {
            Ok(0) => return Poll::Ready(Err(shrank())),
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// TLS streams and the tests' pipes: bytes only.
impl<T: tokio::io::AsyncRead + AsyncWrite + Send> Transport for WriteHalf<T> {}
