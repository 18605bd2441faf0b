//! The bytes waiting to go to the client: small pieces (heads, chunk headers) are copied
//! into a staging buffer, large bodies are queued as they are, and the whole queue goes out
//! in one vectored write (chunk header, data and CRLF together, no copy of the data).
//!
//! The order is `bufs` then `staging`: a large piece first moves what is staged into `bufs`
//! ([`OutQueue::push`]), so the staging buffer is always the tail and a small response (a
//! head and a short body) is written straight from it, with no allocation but its own.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Pieces smaller than this are copied into the staging buffer (bytes).
const COPY_BELOW: usize = 4 * 1024;
/// At most this many slices per vectored write (Linux IOV_MAX is 1024; few are ever needed).
pub(crate) const MAX_SLICES: usize = 64;
/// The staging buffer's first allocation: a whole response head fits (bytes).
const STAGING_START: usize = 512;

/// An output queue written with `writev`.
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    bufs: VecDeque<Bytes>,
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
        self.bufs.push_back(data);
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
            self.bufs.push_back(staged);
        }
    }

    /// Fill `slices` with the queued bytes for one vectored write; returns how many are set.
    pub(crate) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let staged = (!self.staging.is_empty()).then_some(&self.staging[..]);
        let pieces = self.bufs.iter().map(|b| &b[..]).chain(staged);
        let mut n = 0;
        for (slot, piece) in slices.iter_mut().zip(pieces) {
            *slot = IoSlice::new(piece);
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
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
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
}
