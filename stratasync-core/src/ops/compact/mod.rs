//! Log compaction: bounds the log's growth without sending clients back
//! to a full bootstrap (docs/protocol.md §2.6).
//!
//! A [`Compaction`] names two sync ids:
//!
//! * `below`: every action at or below it is folded. Each run of actions
//!   on one row in one group keeps one action, at the run's last sync id:
//!   an `I` with the full row as of that action when the log holds the
//!   row's insert, a `U` with the merged fields when it does not, the `D`
//!   when the row was deleted (a tombstone), and a user's last group
//!   change (`S`). See `fold.rs` for why a client applying the folded log
//!   ends where the whole log would have taken it.
//! * `horizon`: every action below it is removed, tombstones and group
//!   changes included. A client whose cursor is at `horizon - 1` or above
//!   resumes without a bootstrap and converges to the state the
//!   uncompacted log gives; below it, `/sync/deltas` and the WebSocket
//!   answer `BOOTSTRAP_REQUIRED` as for a pruned log. The horizon is
//!   recorded (`sync_log_horizon`) and never goes down.
//!
//! Compaction runs in one transaction under an advisory lock, so it is
//! safe beside readers and writers and on several nodes: writers only
//! append above the log's head, which `below` never exceeds; a reader
//! sees the log before or after, and paging across the change reads a
//! compacted rest of the log after a page of the old one, which converges
//! too. A second compaction that starts while one runs (on any node) ends
//! at once with [`CompactError::Busy`].
//!
//! The dedupe keys (`clientId`, `clientTxId`) of removed actions at or
//! above the horizon move to `sync_compacted_keys`, so a retried
//! transaction is still answered from its first commit; keys below the
//! horizon are forgotten with their actions.

pub(crate) mod fold;

use crate::protocol::{ActionKind, SyncId};
use crate::storage::compaction as sql;
use crate::storage::Conn;
use diesel_async::AsyncConnection;
use fold::Folded;
use futures_util::TryStreamExt;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What to compact: fold the actions at or below `below`, remove those
/// below `horizon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// The highest sync id folded (lowered to the log's head).
    pub below: SyncId,
    /// The new retention horizon; `None` keeps the current one (the
    /// recorded horizon, else the lowest id in the log). Never lowers it.
    pub horizon: Option<SyncId>,
}

/// Compaction by age, as a schedule runs it: fold what is older than
/// `compact_after`, remove what is older than `keep_for` (a client that was
/// away longer bootstraps again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Actions older than this are folded.
    pub compact_after: Duration,
    /// Actions older than this are removed (tombstones included); at
    /// least `compact_after` in effect.
    pub keep_for: Duration,
}

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompactionReport {
    /// The highest sync id folded.
    pub below: SyncId,
    /// The retention horizon after the compaction.
    pub horizon: SyncId,
    /// Rows in the log before.
    pub rows_before: i64,
    /// Rows in the log after.
    pub rows_after: i64,
    /// Actions removed.
    pub removed: u64,
    /// Actions rewritten as the fold of their run.
    pub rewritten: u64,
    /// Dedupe keys kept for removed actions.
    pub kept_keys: i64,
    /// How long it took, in milliseconds.
    pub millis: u64,
}

/// Why a compaction did not run. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// Another compaction holds the lock (on this node or another).
    #[error("another compaction is running")]
    Busy,
    /// The horizon would remove actions that are not folded: it must be at
    /// most `below + 1`.
    #[error("horizon {horizon} is above the compacted range (at most below + 1 = {limit})")]
    HorizonAboveCompacted {
        /// The horizon asked for.
        horizon: SyncId,
        /// The highest horizon allowed.
        limit: SyncId,
    },
    /// No database connection could be had.
    #[error("database unavailable")]
    Unavailable(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    /// A query failed.
    #[error("compaction failed: {0}")]
    Storage(#[from] diesel::result::Error),
}

/// How many rewritten actions one `UPDATE` carries.
const REWRITE_CHUNK: usize = 1_000;

/// Compacts the log as `plan` says (see the module docs).
pub async fn compact(conn: &mut Conn, plan: Compaction) -> Result<CompactionReport, CompactError> {
    execute(conn, Plan::Ids(plan)).await
}

/// Compacts the log by age ([`Retention`]); the horizon is lowered to
/// `below + 1` when `keep_for` is shorter than `compact_after`.
pub async fn compact_by_age(conn: &mut Conn, retention: Retention) -> Result<CompactionReport, CompactError> {
    execute(conn, Plan::Age(retention)).await
}

/// Runs `plan` in one transaction, timed, logged and counted.
async fn execute(conn: &mut Conn, plan: Plan) -> Result<CompactionReport, CompactError> {
    let started = Instant::now();
    match conn.transaction(async move |conn| run(conn, plan).await).await {
        Ok(mut report) => {
            report.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            crate::metrics::compaction("done", report.removed, report.rewritten);
            tracing::info!(
                below = %report.below, horizon = %report.horizon, removed = report.removed,
                rewritten = report.rewritten, rows_after = report.rows_after, millis = report.millis,
                "log compacted"
            );
            Ok(report)
        }
        Err(e) => {
            let busy = matches!(e, CompactError::Busy);
            crate::metrics::compaction(if busy { "busy" } else { "failed" }, 0, 0);
            if !busy {
                tracing::warn!(error = %e, "log compaction failed");
            }
            Err(e)
        }
    }
}

enum Plan {
    Ids(Compaction),
    Age(Retention),
}

async fn run(conn: &mut Conn, plan: Plan) -> Result<CompactionReport, CompactError> {
    if !sql::try_lock(conn).await? {
        return Err(CompactError::Busy);
    }
    let before = sql::shape(conn).await?;
    let earliest = SyncId::from_i64(before.earliest);
    let (below, horizon) = match plan {
        Plan::Ids(Compaction { below, horizon: asked }) => {
            let below = below.min(SyncId::from_i64(before.head));
            let limit = SyncId(below.0 + 1);
            match asked {
                Some(horizon) if horizon > limit => {
                    return Err(CompactError::HorizonAboveCompacted { horizon, limit });
                }
                // Never lower than the current one (below it, nothing is left).
                asked => (below, asked.unwrap_or(earliest).max(earliest)),
            }
        }
        Plan::Age(retention) => {
            let (below, horizon) = sql::ids_by_age(conn, retention.compact_after, retention.keep_for).await?;
            (below, horizon.min(SyncId(below.0 + 1)).max(earliest))
        }
    };
    let rewrites = folds(conn, below, horizon).await?;
    sql::mark_removed(conn, below, horizon).await?;
    let removed = sql::remove_marked(conn).await? as u64;
    let mut rewritten = 0;
    for chunk in rewrites.chunks(REWRITE_CHUNK) {
        rewritten += sql::rewrite(conn, chunk).await? as u64;
    }
    if horizon.0 > 0 {
        sql::record_horizon(conn, horizon).await?;
    }
    let after = sql::shape(conn).await?;
    Ok(CompactionReport {
        below,
        horizon,
        rows_before: before.rows,
        rows_after: after.rows,
        removed,
        rewritten,
        kept_keys: sql::kept_keys(conn).await?,
        millis: 0,
    })
}

/// The rewrites of every run that folds to something other than its last
/// action: `(last id, letter, data)`.
async fn folds(
    conn: &mut Conn,
    below: SyncId,
    horizon: SyncId,
) -> Result<Vec<(i64, &'static str, serde_json::Value)>, CompactError> {
    struct Run {
        last: i64,
        /// `None` once a letter this engine does not write appears: such a
        /// run keeps its last action as logged.
        folded: Option<Folded>,
        /// The last action as logged.
        logged: serde_json::Value,
        logged_letter: String,
    }
    fn finish(run: Run, out: &mut Vec<(i64, &'static str, serde_json::Value)>) {
        let Some(folded) = run.folded else { return };
        let (action, data) = folded.into_action();
        let data = serde_json::Value::Object(data);
        if action.as_str() != run.logged_letter || data != run.logged {
            out.push((run.last, action.as_str(), data));
        }
    }
    let mut out = Vec::new();
    let mut current: Option<Run> = None;
    let mut rows = sql::runs(conn, below, horizon).await?;
    while let Some(row) = rows.try_next().await? {
        let action = row.action.chars().next().and_then(ActionKind::from_letter);
        let object = match &row.data {
            serde_json::Value::Object(map) => map.clone(),
            _ => crate::model::JsonObject::new(),
        };
        match current.as_mut() {
            Some(run) if run.last == row.last => {
                run.folded = run.folded.take().zip(action).map(|(folded, action)| folded.then(action, object));
                run.logged = row.data;
                run.logged_letter = row.action;
            }
            _ => {
                if let Some(done) = current.take() {
                    finish(done, &mut out);
                }
                current = Some(Run {
                    last: row.last,
                    folded: action.map(|action| Folded::start(action, object)),
                    logged: row.data,
                    logged_letter: row.action,
                });
            }
        }
    }
    drop(rows);
    if let Some(done) = current.take() {
        finish(done, &mut out);
    }
    Ok(out)
}
