//! The server's spawn helpers: the supervisor that starts them, the plain helper for the
//! server's own scripts (row 0 of the supervisor's table), one per isolated route, started
//! at start-up so a profile that cannot be applied (a missing user, a kernel without
//! Landlock) stops the start-up; and, on a run-as-owner route, one per owner, started at the
//! first request for a script of that owner. A helper that has died is started again at
//! the next request that needs it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::spawner::{Spawner, Table};

/// One helper process that may not be there yet (or not any more).
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Spawner>>>>;

/// Every helper of a server.
pub(crate) struct Helpers {
    supervisor: Spawner,
    table: Table,
    /// By row of the table: the helper, once started (run-as-owner rows stay empty).
    fixed: Vec<Slot>,
    /// Run-as-owner helpers, by (row, owner uid).
    owners: Mutex<HashMap<(u32, u32), Slot>>,
}

impl Helpers {
    /// Start the supervisor with `table` (row 0: the plain profile). Call it from the
    /// server's main thread, before it drops its privileges.
    pub(crate) fn start(table: Table) -> std::io::Result<Helpers> {
        let supervisor = Spawner::start_supervisor(&table)?;
        let fixed = table.profiles.iter().map(|_| Slot::default()).collect();
        Ok(Helpers {
            supervisor,
            table,
            fixed,
            owners: Mutex::new(HashMap::new()),
        })
    }

    /// Start the helper of row `row` now (at start-up).
    pub(crate) async fn start_row(&self, row: u32) -> Result<(), String> {
        self.row(row).await.map(|_| ())
    }

    /// The helper of a row that is not run-as-owner, started if it is not running yet.
    pub(crate) async fn row(&self, row: u32) -> Result<Arc<Spawner>, String> {
        let slot = usize::try_from(row)
            .ok()
            .and_then(|i| self.fixed.get(i))
            .ok_or_else(|| format!("no profile {row}"))?;
        self.started(slot, row, None).await
    }

    /// The helper for scripts of `owner` on the run-as-owner route of row `row`.
    pub(crate) async fn for_owner(&self, row: u32, owner: u32) -> Result<Arc<Spawner>, String> {
        let slot = {
            let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
            owners.entry((row, owner)).or_default().clone()
        };
        self.started(&slot, row, Some(owner)).await
    }

    /// The helper in `slot`, started by the supervisor if there is none or it has died
    /// (once, however many requests ask at the same time: they wait for the one start).
    async fn started(
        &self,
        slot: &Slot,
        row: u32,
        owner: Option<u32>,
    ) -> Result<Arc<Spawner>, String> {
        let mut held = slot.lock().await;
        if let Some(helper) = held.as_ref().filter(|h| !h.is_dead()) {
            return Ok(helper.clone());
        }
        let name = self.name(row);
        let helper = Arc::new(self.supervisor.start_helper(row, owner, &name).await?);
        *held = Some(helper.clone());
        Ok(helper)
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
