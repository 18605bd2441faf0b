//! What the probe measures about one response, without I/O: the caller hands over the bytes of
//! each socket read with the time it returned, and [`Reading`] turns them into a head, a body
//! and the list of arrivals — one per read that delivered body bytes.

use std::time::Duration;

use super::error::ProbeError;
use super::response::{parse_final_head, Body, Framing, Head};

/// Body bytes delivered by one socket read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    /// When the read returned, since the request was sent.
    pub at: Duration,
    /// Body bytes it delivered (chunk framing not counted).
    pub bytes: usize,
}

/// What one request measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Measurement {
    /// The final status code.
    pub status: u16,
    /// How the body was delimited.
    pub framing: Framing,
    /// Body bytes (payload, after de-chunking).
    pub body_bytes: u64,
    /// Time to connect, or `None` when the request went on a reused connection.
    pub connect: Option<Duration>,
    /// Time from sending the request to the end of the response head.
    pub head: Duration,
    /// Time from sending the request to the end of the body.
    pub total: Duration,
    /// Each read that delivered body bytes.
    pub pieces: Vec<Piece>,
    /// Whether the connection stays open for another request.
    pub keep_alive: bool,
}

impl Measurement {
    /// Time from sending the request to the first body byte.
    pub(crate) fn first_byte(&self) -> Option<Duration> {
        self.pieces.first().map(|p| p.at)
    }

    /// Whether the request went on a connection that had carried an earlier one.
    pub(crate) fn is_reused(&self) -> bool {
        self.connect.is_none()
    }
}

/// A response being read.
#[derive(Debug)]
pub(super) struct Reading {
    head: Option<(Head, Duration)>,
    body: Body,
    body_bytes: u64,
    pieces: Vec<Piece>,
    received: u64,
}

impl Reading {
    /// Nothing read yet.
    pub(super) fn new() -> Reading {
        Reading {
            head: None,
            body: Body::Done,
            body_bytes: 0,
            pieces: Vec::new(),
            received: 0,
        }
    }

    /// Uses what `buf` holds, bytes that arrived by `at` (`fresh` of them from the latest
    /// read); true when the response is complete. Bytes after it stay in `buf`.
    pub(super) fn feed(
        &mut self,
        buf: &mut Vec<u8>,
        fresh: usize,
        at: Duration,
    ) -> Result<bool, ProbeError> {
        self.received += fresh as u64;
        if self.head.is_none() {
            let Some((head, len)) = parse_final_head(buf)? else {
                return Ok(false);
            };
            buf.drain(..len);
            self.head = Some((head, at));
            self.body = Body::new(head.framing);
        }
        let progress = self.body.decode(buf)?;
        buf.drain(..progress.consumed);
        if progress.payload > 0 {
            self.body_bytes += progress.payload as u64;
            self.pieces.push(Piece {
                at,
                bytes: progress.payload,
            });
        }
        Ok(self.body.is_done())
    }

    /// Body bytes so far.
    pub(super) fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Whether the response head has arrived.
    pub(super) fn has_head(&self) -> bool {
        self.head.is_some()
    }

    /// The connection closed at `at`: the measurement if that ended the response.
    pub(super) fn at_eof(mut self, at: Duration) -> Result<Measurement, ProbeError> {
        match (&self.head, &self.body) {
            (None, _) if self.received == 0 => Err(ProbeError::Closed),
            (None, _) => Err(ProbeError::ClosedInHead {
                received: self.received,
            }),
            (Some(_), Body::Close) => {
                self.body = Body::Done;
                self.finish(at, None)
            }
            (Some(_), _) => Err(ProbeError::ClosedInBody {
                received: self.body_bytes,
            }),
        }
    }

    /// The measurement of a complete response that ended at `at`.
    pub(super) fn finish(
        self,
        at: Duration,
        connect: Option<Duration>,
    ) -> Result<Measurement, ProbeError> {
        let Some((head, head_at)) = self.head.filter(|_| self.body.is_done()) else {
            return Err(ProbeError::Closed);
        };
        Ok(Measurement {
            status: head.status,
            framing: head.framing,
            body_bytes: self.body_bytes,
            connect,
            head: head_at,
            total: at,
            pieces: self.pieces,
            keep_alive: head.keep_alive && !matches!(head.framing, Framing::Close),
        })
    }
}

impl Default for Reading {
    fn default() -> Self {
        Reading::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds each read at its time; the measurement at the end (EOF after the last read).
    fn read_all(reads: &[(u64, &[u8])]) -> Result<Measurement, ProbeError> {
        let mut reading = Reading::new();
        let mut buf = Vec::new();
        for &(at, bytes) in reads {
            buf.extend_from_slice(bytes);
            if reading.feed(&mut buf, bytes.len(), ms(at))? {
                return reading.finish(ms(at), Some(ms(0)));
            }
        }
        reading.at_eof(ms(999))
    }

    #[test]
    fn a_read_with_head_and_body_is_one_arrival() {
        let m = read_all(&[(5, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")]).unwrap();
        assert_eq!(
            (m.status, m.framing, m.body_bytes),
            (200, Framing::Length(3), 3)
        );
        assert_eq!(
            (m.head, m.first_byte(), m.total),
            (ms(5), Some(ms(5)), ms(5))
        );
        assert_eq!(m.pieces.len(), 1);
        assert!(m.keep_alive && !m.is_reused());
    }

    #[test]
    fn chunk_framing_alone_is_not_an_arrival() {
        let m = read_all(&[
            (1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (2, b"7\r\ntick 1\n\r\n"),
            (200, b"7\r\ntick 2\n\r\n"),
            (201, b"0\r\n\r\n"),
        ])
        .unwrap();
        assert_eq!(m.framing, Framing::Chunked);
        assert_eq!(
            m.pieces,
            [
                Piece {
                    at: ms(2),
                    bytes: 7
                },
                Piece {
                    at: ms(200),
                    bytes: 7
                }
            ]
        );
        assert_eq!(
            (m.head, m.first_byte(), m.total),
            (ms(1), Some(ms(2)), ms(201))
        );
    }

    #[test]
    fn a_close_delimited_body_ends_at_eof() {
        let m = read_all(&[(1, b"HTTP/1.0 200 OK\r\n\r\nab"), (3, b"cd")]).unwrap();
        assert_eq!(
            (m.framing, m.body_bytes, m.total),
            (Framing::Close, 4, ms(999))
        );
        assert!(!m.keep_alive);
    }

    #[test]
    fn early_eof_is_an_error() {
        assert!(matches!(read_all(&[]), Err(ProbeError::Closed)));
        assert!(matches!(
            read_all(&[(1, b"HTTP/1.1 200")]),
            Err(ProbeError::ClosedInHead { received: 12 })
        ));
        assert!(matches!(
            read_all(&[(1, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")]),
            Err(ProbeError::ClosedInBody { received: 2 })
        ));
    }

    #[test]
    fn bytes_after_the_response_stay_for_the_next() {
        let mut reading = Reading::new();
        let mut buf = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1".to_vec();
        let fresh = buf.len();
        assert!(reading.feed(&mut buf, fresh, ms(1)).unwrap());
        assert_eq!(buf, b"HTTP/1.1");
        let m = reading.finish(ms(1), None).unwrap();
        assert_eq!((m.framing, m.pieces.len()), (Framing::None, 0));
        assert!(m.is_reused());
    }
}
