//! The bytes waiting to go to the client: small pieces (heads, chunk headers) are copied
//! into a staging buffer, large bodies are queued as they are, and the whole queue goes out
//! in one vectored write (chunk header, data and CRLF together, no copy of the data).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Pieces smaller than this are copied into the staging buffer (bytes).
const COPY_BELOW: usize = 4 * 1024;
/// At most this many slices per vectored write (Linux IOV_MAX is 1024; few are ever needed).
const MAX_SLICES: usize = 64;

/// An output queue written with `writev`.
#[derive(Debug, Default)]
pub struct OutQueue {
    bufs: VecDeque<Bytes>,
    staging: BytesMut,
    len: usize,
}

impl OutQueue {
    /// An empty queue.
    pub fn new() -> OutQueue {
        OutQueue::default()
    }

    /// Queue a copy of a small piece.
    pub fn push_slice(&mut self, data: &[u8]) {
        self.staging.extend_from_slice(data);
        self.len += data.len();
    }

    /// Queue a piece, copying it only if it is small.
    pub fn push(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            self.push_slice(&data);
            return;
        }
        self.seal();
        self.len += data.len();
        self.bufs.push_back(data);
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Move the staging buffer into the queue so that [`OutQueue::slices`] sees everything.
    pub fn seal(&mut self) {
        if !self.staging.is_empty() {
            let staged = self.staging.split().freeze();
            self.bufs.push_back(staged);
        }
    }

    /// The queued bytes as slices for one vectored write (call [`OutQueue::seal`] first).
    pub fn slices(&self) -> Vec<IoSlice<'_>> {
        self.bufs
            .iter()
            .take(MAX_SLICES)
            .map(|b| IoSlice::new(b))
            .collect()
    }

    /// Drop `n` written bytes from the front.
    pub fn advance(&mut self, mut n: usize) {
        self.len = self.len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.bufs.front_mut() else {
                break;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.bufs.pop_front();
        }
    }

    /// Forget everything queued (the client is gone). Releases the memory.
    pub fn clear(&mut self) {
        self.bufs = VecDeque::new();
        self.staging = BytesMut::new();
        self.len = 0;
    }

    /// Release the staging buffer's memory when idle (an idle keep-alive connection holds nothing).
    pub fn shrink(&mut self) {
        if self.is_empty() {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(q: &mut OutQueue) -> Vec<u8> {
        q.seal();
        q.slices().iter().flat_map(|s| s.to_vec()).collect()
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
        q.seal();
        q.advance(4999);
        assert_eq!(collect(&mut q), b"abc");
        q.advance(3);
        assert!(q.is_empty());
        assert!(q.slices().is_empty());
    }
}
