//! The bytes waiting to go to the client: small pieces (heads, chunk headers) are copied
//! into a staging buffer, large bodies are queued as they are, and the whole queue goes out
//! in one vectored write (chunk header, data and CRLF together, no copy of the data).
//!
//! The order is `bufs` then `staging`: a large piece first moves what is staged into `bufs`
//! ([`OutQueue::push`]), so the staging buffer is always the tail and a small response (a
//! head and a short body) is written straight from it, with no allocation but its own.
//!
//! A piece may also be a range of an open file ([`FileRange`]): the connection sends it with
//! sendfile(2) where its transport can (plain TCP), so a large static file never passes
//! through memory; elsewhere (TLS) it is read into memory a piece at a time as it goes
//! ([`OutQueue::fill_front`]). A vectored write stops at a file range.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

/// Pieces smaller than this are copied into the staging buffer (bytes).
const COPY_BELOW: usize = 4 * 1024;
/// At most this many slices per vectored write (Linux IOV_MAX is 1024; few are ever needed).
pub(crate) const MAX_SLICES: usize = 64;
/// The staging buffer's first allocation: a whole response head fits (bytes).
const STAGING_START: usize = 512;

/// `len` bytes of an open file from `offset`: a body piece that is sent, not copied. The
/// bytes are the file's when they are sent; a file that has shrunk by then ends the
/// connection (the response cannot be completed).
#[derive(Debug, Clone)]
pub(crate) struct FileRange {
    /// The open file (shared: a cache may hold it for other requests).
    pub(crate) file: Arc<File>,
    /// Where the range starts.
    pub(crate) offset: u64,
    /// Bytes in the range.
    pub(crate) len: u64,
}

impl FileRange {
    /// Drop `n` bytes from the front.
    fn advance(&mut self, n: u64) {
        let n = n.min(self.len);
        self.offset += n;
        self.len -= n;
    }
}

/// The error for a file that ends before the range being sent from it.
pub(crate) fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file shrank while being sent",
    )
}

/// A piece of output: bytes in memory, or a range of a file.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A range of an open file.
    File(FileRange),
}

impl Piece {
    /// Bytes in the piece.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::File(f) => f.len,
        }
    }

    /// Whether the piece has no bytes.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keep the first `n` bytes at most.
    pub(crate) fn truncate(&mut self, n: u64) {
        match self {
            Piece::Bytes(b) => b.truncate(usize::try_from(n).unwrap_or(usize::MAX)),
            Piece::File(f) => f.len = f.len.min(n),
        }
    }
}

impl From<Bytes> for Piece {
    fn from(b: Bytes) -> Piece {
        Piece::Bytes(b)
    }
}

/// An output queue written with `writev` (and sendfile(2) for file ranges).
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    bufs: VecDeque<Piece>,
    staging: BytesMut,
    len: usize,
}

impl OutQueue {
    /// An empty queue.
    pub(crate) fn new() -> OutQueue {
        OutQueue::default()
    }

    /// Queue a copy of a small piece.
    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        if self.staging.capacity() - self.staging.len() < data.len() {
            // One allocation for a head's many small pieces, not a regrowth per piece.
            self.staging.reserve(data.len().max(STAGING_START));
        }
        self.staging.extend_from_slice(data);
        self.len += data.len();
    }

    /// Queue a piece, copying it only if it is small.
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            self.push_slice(&data);
            return;
        }
        self.seal();
        self.len += data.len();
        self.bufs.push_back(Piece::Bytes(data));
    }

    /// Queue a piece: bytes as [`OutQueue::push`] does, a file range as it is.
    pub(crate) fn push_piece(&mut self, piece: Piece) {
        match piece {
            Piece::Bytes(b) => self.push(b),
            Piece::File(f) if f.len == 0 => {}
            Piece::File(f) => {
                self.seal();
                self.len = self
                    .len
                    .saturating_add(usize::try_from(f.len).unwrap_or(usize::MAX));
                self.bufs.push_back(Piece::File(f));
            }
        }
    }

    /// The file range at the front, when the next bytes to go are a file's.
    pub(crate) fn front_file(&self) -> Option<&FileRange> {
        match self.bufs.front() {
            Some(Piece::File(f)) => Some(f),
            _ => None,
        }
    }

    /// Read up to `max` bytes of the file range at the front into memory, in its place (for a
    /// transport without sendfile). An error if the file has shrunk below the range.
    pub(crate) fn fill_front(&mut self, max: usize) -> io::Result<()> {
        let Some(Piece::File(range)) = self.bufs.front_mut() else {
            return Ok(());
        };
        let want = usize::try_from(range.len).unwrap_or(usize::MAX).min(max);
        let mut buf = BytesMut::zeroed(want);
        let n = range.file.read_at(&mut buf, range.offset)?;
        if n == 0 {
            return Err(shrank());
        }
        buf.truncate(n);
        range.advance(n as u64);
        if range.len == 0 {
            self.bufs.pop_front();
        }
        self.bufs.push_front(Piece::Bytes(buf.freeze()));
        Ok(())
    }

    /// Bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Move the staging buffer behind the queued pieces (before a large piece is queued).
    fn seal(&mut self) {
        if !self.staging.is_empty() {
            let staged = self.staging.split().freeze();
            self.bufs.push_back(Piece::Bytes(staged));
        }
    }

    /// Fill `slices` with the queued bytes for one vectored write, up to the first file
    /// range; returns how many are set (0 when a file range is at the front).
    pub(crate) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut slots = slices.iter_mut();
        for piece in &self.bufs {
            let (Piece::Bytes(b), Some(slot)) = (piece, slots.next()) else {
                return n;
            };
            *slot = IoSlice::new(b);
            n += 1;
        }
        if let (false, Some(slot)) = (self.staging.is_empty(), slots.next()) {
            *slot = IoSlice::new(&self.staging);
            n += 1;
        }
        n
    }

    /// Drop `n` written bytes from the front.
    pub(crate) fn advance(&mut self, mut n: usize) {
        self.len = self.len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.bufs.front_mut() else {
                // What is left is staged.
                let n = n.min(self.staging.len());
                self.staging.advance(n);
                break;
            };
            let len = usize::try_from(front.len()).unwrap_or(usize::MAX);
            if n < len {
                match front {
                    Piece::Bytes(b) => b.advance(n),
                    Piece::File(f) => f.advance(n as u64),
                }
                return;
            }
            n -= len;
            self.bufs.pop_front();
        }
        if self.staging.is_empty() && self.bufs.is_empty() {
            // Reuse the staging buffer from its start.
            self.staging.clear();
        }
    }

    /// Forget everything queued (the client is gone). Releases the memory.
    pub(crate) fn clear(&mut self) {
        self.bufs = VecDeque::new();
        self.staging = BytesMut::new();
        self.len = 0;
    }

    /// Release the staging buffer's memory when idle (an idle keep-alive connection holds nothing).
    pub(crate) fn shrink(&mut self) {
        if self.is_empty() {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(q: &mut OutQueue) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = q.slices(&mut slices);
        slices[..n].iter().flat_map(|s| s.to_vec()).collect()
    }

    #[test]
    fn keeps_order_across_small_and_large_pieces() {
        let mut q = OutQueue::new();
        q.push_slice(b"head");
        q.push(Bytes::from(vec![b'x'; 5000]));
        q.push_slice(b"\r\n");
        q.push(Bytes::from_static(b"tail"));
        let all = collect(&mut q);
        assert_eq!(all.len(), 4 + 5000 + 2 + 4);
        assert!(all.starts_with(b"headxx"));
        assert!(all.ends_with(b"x\r\ntail"));
        assert_eq!(q.len(), all.len());
    }

    #[test]
    fn advance_across_buffers() {
        let mut q = OutQueue::new();
        q.push(Bytes::from(vec![b'a'; 5000]));
        q.push_slice(b"bc");
        q.advance(4999);
        assert_eq!(collect(&mut q), b"abc");
        q.advance(2);
        assert_eq!(collect(&mut q), b"c");
        q.advance(1);
        assert!(q.is_empty());
        assert!(collect(&mut q).is_empty());
        q.push_slice(b"again");
        assert_eq!(collect(&mut q), b"again");
    }

    #[test]
    fn a_small_response_is_written_from_the_staging_buffer_at_every_split() {
        let mut q = OutQueue::new();
        q.push_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        q.push(Bytes::from_static(b"hello"));
        let all = collect(&mut q);
        assert_eq!(all, b"HTTP/1.1 200 OK\r\n\r\nhello");
        for step in 1..all.len() {
            let mut q = OutQueue::new();
            q.push_slice(&all[..20]);
            q.push(Bytes::copy_from_slice(&all[20..]));
            let mut seen = Vec::new();
            while !q.is_empty() {
                let left = collect(&mut q);
                let n = step.min(left.len());
                seen.extend_from_slice(&left[..n]);
                q.advance(n);
            }
            assert_eq!(seen, all, "written {step} bytes at a time");
        }
    }

    fn file_range(content: &[u8], offset: u64, len: u64) -> (tempfile::TempDir, FileRange) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let file = Arc::new(File::open(path).unwrap());
        (dir, FileRange { file, offset, len })
    }

    /// Everything queued, file ranges read as a transport without sendfile reads them,
    /// `step` bytes of memory at a time.
    fn drain(q: &mut OutQueue, step: usize) -> io::Result<Vec<u8>> {
        let mut seen = Vec::new();
        while !q.is_empty() {
            q.fill_front(step)?;
            let left = collect(q);
            assert!(!left.is_empty(), "a filled front is bytes");
            seen.extend_from_slice(&left[..step.min(left.len())]);
            q.advance(step.min(left.len()));
        }
        Ok(seen)
    }

    #[test]
    fn a_vectored_write_stops_at_a_file_range() {
        let (_d, range) = file_range(b"0123456789", 2, 5);
        let mut q = OutQueue::new();
        q.push_slice(b"head|");
        q.push_piece(Piece::File(range));
        q.push_slice(b"|tail");
        assert_eq!(q.len(), 5 + 5 + 5);
        assert_eq!(collect(&mut q), b"head|");
        q.advance(5);
        assert!(collect(&mut q).is_empty(), "the file range is at the front");
        let front = q.front_file().expect("a file range").clone();
        assert_eq!((front.offset, front.len), (2, 5));
        q.advance(3);
        let front = q.front_file().expect("what is left of it");
        assert_eq!((front.offset, front.len), (5, 2));
        q.advance(2);
        assert_eq!(collect(&mut q), b"|tail");
    }

    #[test]
    fn a_file_range_read_into_memory_keeps_the_order_at_every_step() {
        let (_d, range) = file_range(b"0123456789", 1, 8);
        for step in 1..12 {
            let mut q = OutQueue::new();
            q.push_slice(b"<");
            q.push_piece(Piece::File(range.clone()));
            q.push(Bytes::from_static(b">"));
            assert_eq!(drain(&mut q, step).unwrap(), b"<12345678>", "step {step}");
        }
    }

    #[test]
    fn a_file_shorter_than_its_range_is_an_error() {
        let (_d, range) = file_range(b"0123", 0, 10);
        let mut q = OutQueue::new();
        q.push_piece(Piece::File(range));
        let err = drain(&mut q, 3).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn pieces_truncate_to_a_length() {
        let (_d, range) = file_range(b"0123", 0, 4);
        let mut file = Piece::File(range);
        file.truncate(2);
        assert_eq!(file.len(), 2);
        let mut bytes = Piece::from(Bytes::from_static(b"abcd"));
        bytes.truncate(10);
        assert_eq!(bytes.len(), 4);
        bytes.truncate(0);
        assert!(bytes.is_empty());
    }
}
