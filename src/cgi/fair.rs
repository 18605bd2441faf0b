//! Fair CGI slots. Every CGI request takes one of `max_children` slots (the semaphore in
//! [`super::CgiShared`]), waiting up to `queue_timeout`. Two rules here keep one client from
//! taking them all: a client (by address: the PROXY header's or a trusted forwarding
//! header's when there is one) has at most `max_children_per_client` scripts running and
//! waiting together, beyond which it gets 503 at once; and each client has at most one
//! request waiting in the slots' queue at a time, its others waiting behind it, so that
//! when slots free up, the clients waiting take turns instead of the one that queued most.
//! The slots' semaphore is FIFO: with one waiter per client in it, the order is round-robin.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// The clients with scripts running or waiting.
#[derive(Debug, Default)]
pub(crate) struct Fair {
    /// `max_children_per_client`; 0: no bound but `max_children`.
    per_client: AtomicUsize,
    clients: Mutex<HashMap<IpAddr, Client>>,
}

#[derive(Debug)]
struct Client {
    /// Its requests that hold or wait for a slot.
    holding: usize,
    /// Held by the one of them that waits in the slots' queue.
    turn: Arc<Semaphore>,
}

/// One request's place: counted against its client until dropped.
#[derive(Debug)]
pub(crate) struct Entry {
    fair: Arc<Fair>,
    ip: IpAddr,
    turn: Arc<Semaphore>,
}

impl Fair {
    /// Fair slots with `per_client` as the bound (0: none).
    pub(crate) fn new(per_client: usize) -> Fair {
        Fair {
            per_client: AtomicUsize::new(per_client),
            clients: Mutex::default(),
        }
    }

    /// A new bound (a reload); requests already counted stay.
    pub(crate) fn set_per_client(&self, per_client: usize) {
        self.per_client.store(per_client, Ordering::Relaxed);
    }

    /// Count a request of `ip`, or `None` when its client is at its bound.
    pub(crate) fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<Entry> {
        let bound = self.per_client.load(Ordering::Relaxed);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let client = clients.entry(ip).or_insert_with(|| Client {
            holding: 0,
            turn: Arc::new(Semaphore::new(1)),
        });
        if bound != 0 && client.holding >= bound {
            return None;
        }
        client.holding += 1;
        Some(Entry {
            fair: self.clone(),
            ip,
            turn: client.turn.clone(),
        })
    }

    /// Clients with requests counted, for tests and the status.
    #[cfg(test)]
    fn holding(&self, ip: IpAddr) -> usize {
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.get(&ip).map_or(0, |c| c.holding)
    }
}

impl Entry {
    /// Wait for a slot of `slots`, behind this client's other waiting request if any.
    pub(crate) async fn slot(
        &self,
        slots: &Arc<Semaphore>,
    ) -> Result<OwnedSemaphorePermit, AcquireError> {
        let _turn = self.turn.clone().acquire_owned().await?;
        slots.clone().acquire_owned().await
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut clients = self
            .fair
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get_mut(&self.ip) {
            client.holding = client.holding.saturating_sub(1);
            if client.holding == 0 {
                clients.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_client_at_its_bound_is_refused_until_one_of_its_requests_ends() {
        let fair = Arc::new(Fair::new(2));
        let a1 = fair.enter(ip(1)).unwrap();
        let _a2 = fair.enter(ip(1)).unwrap();
        assert!(fair.enter(ip(1)).is_none(), "the third of the same client");
        assert!(
            fair.enter(ip(2)).is_some(),
            "another client is not counted with it"
        );
        drop(a1);
        assert!(fair.enter(ip(1)).is_some());
        assert_eq!(
            fair.holding(ip(1)),
            1,
            "the entry just made was dropped again"
        );
        fair.set_per_client(0);
        let many: Vec<_> = (0..50).map(|_| fair.enter(ip(3)).unwrap()).collect();
        assert_eq!(fair.holding(ip(3)), 50);
        drop(many);
        assert_eq!(fair.holding(ip(3)), 0);
    }

    #[tokio::test]
    async fn clients_take_turns_for_freed_slots() {
        let fair = Arc::new(Fair::new(0));
        let slots = Arc::new(Semaphore::new(1));
        let held = slots.clone().acquire_owned().await.unwrap();
        // Client 1 queues five requests, then client 2 one.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (n, who) in [1, 1, 1, 1, 1, 2].into_iter().enumerate() {
            let entry = fair.enter(ip(who)).unwrap();
            let (slots, tx) = (slots.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let permit = entry.slot(&slots).await.unwrap();
                tx.send((n, who)).unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
                drop(permit);
            }));
            // Each is waiting before the next is made.
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some((_, who)) = rx.recv().await {
            order.push(who);
        }
        // Without turns client 2 would come last, behind all five of client 1.
        assert_eq!(order[..2], [1, 2], "{order:?}");
        assert_eq!(order.len(), 6);
    }
}
