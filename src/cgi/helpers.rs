//! The server's spawn helpers: the supervisor that starts them, a pool for the server's own
//! scripts (row 0 of the supervisor's table), a pool per isolated route, started at
//! start-up so a profile that cannot be applied (a missing user, a kernel without Landlock)
//! stops the start-up; and, on a run-as-owner route, a pool per owner, started at the first
//! requests for scripts of that owner. A helper that has died is started again at the next
//! request that needs it, each restart logged and counted; a start that fails is retried
//! no sooner than a backoff that doubles from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`], so a
//! helper that cannot start does not cost every request a new process. The scripts a dead
//! helper had started are stopped and reaped by the supervisor (their subreaper).
//!
//! Why pools: a vfork holds its caller until the child has called `execve`, so one
//! helper starts one script at a time and sits idle while each loads; with one helper per
//! CPU the spawns of concurrent requests overlap as they do when the server spawns from
//! several threads (measured: docs/isolation.md).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use super::spawner::{Spawner, Table};
use crate::stats::Stats;

/// The wait after a first failed start of a helper, doubled at each further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two starts of a helper that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One helper process that may not be there yet (or not any more).
type Slot = Arc<tokio::sync::Mutex<SlotState>>;

/// A slot's helper, and how its last starts went.
#[derive(Default)]
struct SlotState {
    helper: Option<Arc<Spawner>>,
    /// Starts that failed in a row.
    failures: u32,
    /// No new start before this, after a failure.
    retry_at: Option<Instant>,
}

/// The wait after `failures` failed starts in a row.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// Most helpers one profile gets, however many CPUs there are.
const MAX_POOL: usize = 4;

/// The helpers of one profile (of one owner, on a run-as-owner row), taken in turn.
struct Pool {
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl Pool {
    fn new(size: usize) -> Pool {
        Pool {
            slots: (0..size.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next slot in turn.
    fn pick(&self) -> &Slot {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        &self.slots[i]
    }
}

/// How many helpers serve one profile: one per CPU, at most [`MAX_POOL`].
pub(crate) fn pool_size() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, MAX_POOL)
}

/// Every helper of a server.
pub(crate) struct Helpers {
    supervisor: Spawner,
    /// Where restarts are counted.
    stats: Arc<Stats>,
    table: Table,
    /// Helpers per profile.
    size: usize,
    /// By row of the table: its helpers, once started (run-as-owner rows stay empty).
    fixed: Vec<Pool>,
    /// Run-as-owner helpers, by (row, owner uid).
    owners: Mutex<HashMap<(u32, u32), Arc<Pool>>>,
}

impl Helpers {
    /// Start the supervisor with `table` (row 0: the plain profile). Call it from the
    /// server's main thread, before it drops its privileges.
    pub(crate) fn start(table: Table, stats: Arc<Stats>) -> std::io::Result<Helpers> {
        let supervisor = Spawner::start_supervisor(&table)?;
        let size = pool_size();
        let fixed = table.profiles.iter().map(|_| Pool::new(size)).collect();
        Ok(Helpers {
            supervisor,
            stats,
            table,
            size,
            fixed,
            owners: Mutex::new(HashMap::new()),
        })
    }

    /// Whether these helpers were started for `table`: a reload may keep them only then (the
    /// supervisor cannot learn new profiles once the server has dropped its privileges).
    pub(crate) fn serve(&self, table: &Table) -> bool {
        self.table == *table
    }

    /// Start every helper of row `row` now (at start-up).
    pub(crate) async fn start_row(&self, row: u32) -> Result<(), String> {
        for slot in &self.pool(row)?.slots {
            self.started(slot, row, None).await?;
        }
        Ok(())
    }

    /// A helper of a row that is not run-as-owner, started if it is not running yet.
    pub(crate) async fn row(&self, row: u32) -> Result<Arc<Spawner>, String> {
        self.started(self.pool(row)?.pick(), row, None).await
    }

    fn pool(&self, row: u32) -> Result<&Pool, String> {
        usize::try_from(row)
            .ok()
            .and_then(|i| self.fixed.get(i))
            .ok_or_else(|| format!("no profile {row}"))
    }

    /// A helper for scripts of `owner` on the run-as-owner route of row `row`.
    pub(crate) async fn for_owner(&self, row: u32, owner: u32) -> Result<Arc<Spawner>, String> {
        let pool = {
            let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
            owners
                .entry((row, owner))
                .or_insert_with(|| Arc::new(Pool::new(self.size)))
                .clone()
        };
        self.started(pool.pick(), row, Some(owner)).await
    }

    /// The helper in `slot`, started by the supervisor if there is none or it has died
    /// (once, however many requests ask at the same time: they wait for the one start),
    /// unless a start failed within its backoff.
    async fn started(
        &self,
        slot: &Slot,
        row: u32,
        owner: Option<u32>,
    ) -> Result<Arc<Spawner>, String> {
        let mut held = slot.lock().await;
        if let Some(helper) = held.helper.as_ref().filter(|h| !h.is_dead()) {
            return Ok(helper.clone());
        }
        let name = self.name(row);
        if let Some(at) = held.retry_at.filter(|&at| Instant::now() < at) {
            let wait = at.saturating_duration_since(Instant::now());
            return Err(format!(
                "its last {} starts failed; the next in {} ms",
                held.failures,
                wait.as_millis()
            ));
        }
        if let Some(dead) = held.helper.take() {
            let restarts = self.stats.count_helper_restart();
            warn!(
                helper = name,
                pid = dead.helper_pid(),
                restarts,
                "restarting a CGI spawn helper that died"
            );
        }
        match self.supervisor.start_helper(row, owner, &name).await {
            Ok(helper) => {
                let helper = Arc::new(helper);
                *held = SlotState {
                    helper: Some(helper.clone()),
                    failures: 0,
                    retry_at: None,
                };
                Ok(helper)
            }
            Err(reason) => {
                held.failures = held.failures.saturating_add(1);
                held.retry_at = Some(Instant::now() + backoff(held.failures));
                Err(reason)
            }
        }
    }

    /// The name of row `row` (its route's prefix), for messages.
    pub(crate) fn name(&self, row: u32) -> String {
        usize::try_from(row)
            .ok()
            .and_then(|i| self.table.profiles.get(i))
            .map_or_else(|| format!("profile {row}"), |p| p.name.clone())
    }

    /// The supervisor's pid.
    pub(crate) fn supervisor_pid(&self) -> u32 {
        self.supervisor.helper_pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let waits: Vec<u128> = (1..=8).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
