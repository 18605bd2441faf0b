//! The queue from a handler's response writer to its connection loop: head, body pieces,
//! flush, end. Bounded, so a handler that outruns a slow client waits
//! (back-pressure).
//!
//! Why not `tokio::sync::mpsc`: a channel costs two allocations and a semaphore per
//! exchange, and this queue has one producer and one consumer that are almost always polled
//! by the same task (the handler future runs inside the connection's select loop). It lives
//! inside the exchange's shared state, in a fixed ring, so queueing allocates nothing.
//! Wakers are still kept on both sides, so a producer polled elsewhere is woken correctly.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::framer::Head;
use super::outbuf::FileRange;

/// What the handler side tells the connection.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// The head (sent lazily with the first write, flush or the end).
    Head(Head),
    /// A piece of body.
    Data(Bytes),
    /// A piece of body that is a range of a file (sent with sendfile(2) where it can be).
    File(FileRange),
    /// Deliver what is held now (stream and auto modes).
    Flush,
    /// The handler finished; the body is complete.
    End,
    /// The handler failed: this status if nothing was sent, else close without completing
    /// the body.
    Abort(u16),
}

/// Commands queued before the producer waits.
pub(crate) const CAPACITY: usize = 8;

/// A bounded single-producer, single-consumer queue of [`Cmd`]s.
#[derive(Debug, Default)]
pub(crate) struct CmdQueue {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ring: [Option<Cmd>; CAPACITY],
    /// Index of the oldest command.
    head: usize,
    len: usize,
    /// The producer is gone: once empty, the consumer sees the end.
    producer_closed: bool,
    /// The consumer is gone: sending fails.
    consumer_closed: bool,
    /// The consumer, waiting for a command.
    consumer: Option<Waker>,
    /// The producer, waiting for room.
    producer: Option<Waker>,
}

/// Why a send failed: the connection is no longer taking commands.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed;

impl CmdQueue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `cmd`, or wait for room. The command is given back while waiting.
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        cmd: &mut Option<Cmd>,
    ) -> Poll<Result<(), Closed>> {
        let mut q = self.lock();
        if q.consumer_closed {
            return Poll::Ready(Err(Closed));
        }
        if q.len == CAPACITY {
            set_waker(&mut q.producer, cx);
            return Poll::Pending;
        }
        let slot = (q.head + q.len) % CAPACITY;
        q.ring[slot] = cmd.take();
        q.len += 1;
        let consumer = q.consumer.take();
        drop(q);
        if let Some(w) = consumer {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }

    /// Queue `cmd`, waiting for room.
    pub(crate) async fn send(&self, cmd: Cmd) -> Result<(), Closed> {
        let mut cmd = Some(cmd);
        std::future::poll_fn(|cx| self.poll_send(cx, &mut cmd)).await
    }

    /// The next command; `Ready(None)` once the producer is gone and the queue is empty.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Cmd>> {
        match take(self.lock()) {
            Ok(cmd) => Poll::Ready(Some(cmd)),
            Err(q) if q.producer_closed => Poll::Ready(None),
            Err(mut q) => {
                set_waker(&mut q.consumer, cx);
                Poll::Pending
            }
        }
    }

    /// The next command if one is queued.
    pub(crate) fn try_recv(&self) -> Option<Cmd> {
        take(self.lock()).ok()
    }

    /// Wait for the next command (see [`CmdQueue::poll_recv`]).
    pub(crate) async fn recv(&self) -> Option<Cmd> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The producer is done (the response writer was dropped).
    pub(crate) fn close_producer(&self) {
        let mut q = self.lock();
        q.producer_closed = true;
        let consumer = q.consumer.take();
        drop(q);
        if let Some(w) = consumer {
            w.wake();
        }
    }

    /// The consumer is done: later sends fail, queued commands are dropped.
    pub(crate) fn close_consumer(&self) {
        let mut q = self.lock();
        q.consumer_closed = true;
        while pop(&mut q).is_some() {}
        let producer = q.producer.take();
        drop(q);
        if let Some(w) = producer {
            w.wake();
        }
    }
}

/// The oldest command, waking a producer that waits for room; the lock back if empty.
fn take(mut q: MutexGuard<'_, Inner>) -> Result<Cmd, MutexGuard<'_, Inner>> {
    let Some(cmd) = pop(&mut q) else {
        return Err(q);
    };
    let producer = q.producer.take();
    drop(q);
    if let Some(w) = producer {
        w.wake();
    }
    Ok(cmd)
}

fn pop(q: &mut Inner) -> Option<Cmd> {
    if q.len == 0 {
        return None;
    }
    let head = q.head;
    q.head = (head + 1) % CAPACITY;
    q.len -= 1;
    q.ring[head].take()
}

fn set_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;

    fn data(i: u8) -> Cmd {
        Cmd::Data(Bytes::from(vec![i]))
    }

    fn byte(cmd: Option<Cmd>) -> u8 {
        match cmd {
            Some(Cmd::Data(d)) => d[0],
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn keeps_order_across_the_ring_boundary() {
        let q = CmdQueue::default();
        for round in 0..3u8 {
            for i in 0..CAPACITY as u8 {
                q.send(data(round * 10 + i)).await.unwrap();
            }
            for i in 0..CAPACITY as u8 {
                assert_eq!(byte(q.recv().await), round * 10 + i);
            }
        }
        // Partly filled, wrapped: still in order.
        for i in 0..5 {
            q.send(data(i)).await.unwrap();
        }
        assert_eq!(byte(q.recv().await), 0);
        assert_eq!(byte(q.recv().await), 1);
        for i in 5..10 {
            q.send(data(i)).await.unwrap();
        }
        for i in 2..10 {
            assert_eq!(byte(q.recv().await), i);
        }
    }

    /// A full queue (0, 1, …) and a producer task waiting to send 99. The test runtime has
    /// one thread: the producer has run up to its wait when this returns.
    async fn full_with_a_waiting_producer(
    ) -> (Arc<CmdQueue>, tokio::task::JoinHandle<Result<(), Closed>>) {
        let q = Arc::new(CmdQueue::default());
        for i in 0..CAPACITY as u8 {
            q.send(data(i)).await.unwrap();
        }
        let producer = {
            let q = q.clone();
            tokio::spawn(async move { q.send(data(99)).await })
        };
        tokio::task::yield_now().await;
        (q, producer)
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_producer_wait_until_the_consumer_takes_one() {
        let (q, producer) = full_with_a_waiting_producer().await;
        assert!(!producer.is_finished());
        assert_eq!(byte(q.recv().await), 0);
        producer.await.unwrap().unwrap();
        for i in 1..CAPACITY as u8 {
            assert_eq!(byte(q.recv().await), i);
        }
        assert_eq!(byte(q.recv().await), 99);
    }

    #[tokio::test]
    async fn the_consumer_sees_the_end_after_what_was_queued() {
        let q = Arc::new(CmdQueue::default());
        let consumer = {
            let q = q.clone();
            tokio::spawn(async move { (q.recv().await.is_some(), q.recv().await.is_none()) })
        };
        tokio::task::yield_now().await;
        q.send(Cmd::End).await.unwrap();
        q.close_producer();
        assert_eq!(consumer.await.unwrap(), (true, true));
    }

    #[tokio::test]
    async fn sending_to_a_closed_consumer_fails_and_wakes_a_waiting_producer() {
        let (q, producer) = full_with_a_waiting_producer().await;
        q.close_consumer();
        assert_eq!(producer.await.unwrap(), Err(Closed));
        assert_eq!(q.send(Cmd::End).await, Err(Closed));
    }
}
