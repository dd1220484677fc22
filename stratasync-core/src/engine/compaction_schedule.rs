//! The engine's compaction schedule ([`SyncEngineBuilder::compaction_schedule`]).
//!
//! [`SyncEngineBuilder::compaction_schedule`]: super::SyncEngineBuilder::compaction_schedule

use crate::ops::compact::{self, CompactError, Retention};
use crate::storage::Pool;
use std::time::Duration;

/// Runs [`compact::compact_by_age`] every `every` (the first run one
/// period after the start). Every node may run it: a run that finds
/// another one going (on any node) skips its turn.
pub(crate) fn spawn(pool: Pool, every: Duration, retention: Retention) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // A compaction logs and counts its own outcome; a failed turn
            // is tried again at the next.
            match pool.get().await {
                Ok(mut conn) => drop(compact::compact_by_age(&mut conn, retention).await),
                Err(e) => tracing::warn!(error = %CompactError::from(e), "scheduled log compaction skipped"),
            }
        }
    })
}
