//! The SQL of log compaction ([`crate::ops::compact`]): each statement runs
//! inside the compaction's one transaction.

use super::Conn;
use crate::protocol::SyncId;
use diesel::sql_types::{Array, BigInt, Bool, Interval, Jsonb, Text};
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

/// Takes the compaction lock for the rest of the transaction, without
/// waiting: `false` when another compaction (on any node) holds it.
pub(crate) async fn try_lock(conn: &mut Conn) -> diesel::QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bool)]
        locked: bool,
    }
    let row: Row = diesel::sql_query("SELECT pg_try_advisory_xact_lock(hashtext('stratasync:compaction')) AS locked")
        .get_result(conn)
        .await?;
    Ok(row.locked)
}

/// The log as compaction finds it.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub(crate) struct LogShape {
    /// The highest committed id (0: empty).
    #[diesel(sql_type = BigInt)]
    pub(crate) head: i64,
    /// The lowest id a client may resume after minus one, as the staleness
    /// check reads it: the recorded horizon, else the lowest id (0: empty).
    #[diesel(sql_type = BigInt)]
    pub(crate) earliest: i64,
    /// Rows in the log.
    #[diesel(sql_type = BigInt)]
    pub(crate) rows: i64,
}

/// [`LogShape`], in one statement.
pub(crate) async fn shape(conn: &mut Conn) -> diesel::QueryResult<LogShape> {
    diesel::sql_query(
        "SELECT coalesce((SELECT id FROM sync_actions ORDER BY id DESC LIMIT 1), 0) AS head, \
                coalesce((SELECT horizon FROM sync_log_horizon), \
                         (SELECT id FROM sync_actions ORDER BY id LIMIT 1), 0) AS earliest, \
                (SELECT count(*) FROM sync_actions) AS rows",
    )
    .get_result(conn)
    .await
}

/// The sync ids that bound the actions older than `compact_after` (the
/// highest of them, 0 if none) and the actions younger than `keep_for`
/// (the lowest of them; the head + 1 if none).
pub(crate) async fn ids_by_age(
    conn: &mut Conn,
    compact_after: std::time::Duration,
    keep_for: std::time::Duration,
) -> diesel::QueryResult<(SyncId, SyncId)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        below: i64,
        #[diesel(sql_type = BigInt)]
        horizon: i64,
    }
    let interval = |d: std::time::Duration| diesel::data_types::PgInterval::from_microseconds(micros(d));
    let row: Row = diesel::sql_query(
        "SELECT coalesce((SELECT max(id) FROM sync_actions WHERE created_at <= now() - $1), 0) AS below, \
                coalesce((SELECT min(id) FROM sync_actions WHERE created_at > now() - $2), \
                         (SELECT id + 1 FROM sync_actions ORDER BY id DESC LIMIT 1), 1) AS horizon",
    )
    .bind::<Interval, _>(interval(compact_after))
    .bind::<Interval, _>(interval(keep_for))
    .get_result(conn)
    .await?;
    Ok((SyncId::from_i64(row.below), SyncId::from_i64(row.horizon)))
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// One action of a run that compaction folds.
#[derive(Debug, QueryableByName)]
pub(crate) struct RunAction {
    /// The run's last sync id (the action that stays).
    #[diesel(sql_type = BigInt)]
    pub(crate) last: i64,
    /// The action letter.
    #[diesel(sql_type = Text)]
    pub(crate) action: String,
    /// Its data.
    #[diesel(sql_type = Jsonb)]
    pub(crate) data: serde_json::Value,
}

/// The actions at or below `below` of every run (one row of a model in one
/// group) that has more than one action there and whose last action is at
/// or above `horizon`: a run's actions together, ascending, streamed as
/// PostgreSQL produces them.
pub(crate) async fn runs(
    conn: &mut Conn,
    below: SyncId,
    horizon: SyncId,
) -> diesel::QueryResult<impl futures_util::Stream<Item = diesel::QueryResult<RunAction>> + Send + '_> {
    diesel::sql_query(
        "SELECT last, action, data FROM ( \
           SELECT id, model, model_id, group_id, action, data, \
                  count(*) OVER w AS n, max(id) OVER w AS last \
           FROM sync_actions WHERE id <= $1 \
           WINDOW w AS (PARTITION BY model, model_id, group_id)) AS r \
         WHERE n > 1 AND last >= $2 \
         ORDER BY last, id",
    )
    .bind::<BigInt, _>(below.as_i64())
    .bind::<BigInt, _>(horizon.as_i64())
    .load_stream(conn)
    .await
}

/// Marks what compaction removes, in a table that lives until the
/// transaction ends: every action below `horizon`, and every action at or
/// below `below` that a later one of its run supersedes.
pub(crate) async fn mark_removed(conn: &mut Conn, below: SyncId, horizon: SyncId) -> diesel::QueryResult<()> {
    // Both bounds are integers formatted by Rust, never text from outside;
    // `batch_execute` cannot bind parameters.
    let (below, horizon) = (below.as_i64(), horizon.as_i64());
    conn.batch_execute(&format!(
        "CREATE TEMPORARY TABLE stratasync_removed ON COMMIT DROP AS \
           SELECT id, client_id, client_tx_id FROM ( \
             SELECT id, client_id, client_tx_id, \
                    max(id) OVER (PARTITION BY model, model_id, group_id) AS last \
             FROM sync_actions WHERE id <= {below}) AS r \
           WHERE id < last OR id < {horizon}; \
         INSERT INTO sync_compacted_keys (client_id, client_tx_id, id) \
           SELECT client_id, client_tx_id, id FROM stratasync_removed \
           WHERE id >= {horizon} AND client_id IS NOT NULL AND client_tx_id IS NOT NULL \
           ON CONFLICT DO NOTHING; \
         DELETE FROM sync_compacted_keys WHERE id < {horizon};"
    ))
    .await
}

/// Deletes the actions [`mark_removed`] marked: how many.
pub(crate) async fn remove_marked(conn: &mut Conn) -> diesel::QueryResult<usize> {
    diesel::sql_query("DELETE FROM sync_actions a USING stratasync_removed r WHERE a.id = r.id").execute(conn).await
}

/// Rewrites actions in place: `(id, letter, data)`.
pub(crate) async fn rewrite(
    conn: &mut Conn,
    rows: &[(i64, &'static str, serde_json::Value)],
) -> diesel::QueryResult<usize> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let letters: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let data: Vec<&serde_json::Value> = rows.iter().map(|r| &r.2).collect();
    diesel::sql_query(
        "UPDATE sync_actions a SET action = u.action, data = u.data \
         FROM unnest($1::bigint[], $2::text[], $3::jsonb[]) AS u(id, action, data) WHERE a.id = u.id",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Text>, _>(letters)
    .bind::<Array<Jsonb>, _>(data)
    .execute(conn)
    .await
}

/// Records `horizon` (never lowering one recorded before).
pub(crate) async fn record_horizon(conn: &mut Conn, horizon: SyncId) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO sync_log_horizon (only_row, horizon) VALUES (true, $1) \
         ON CONFLICT (only_row) DO UPDATE SET horizon = greatest(sync_log_horizon.horizon, excluded.horizon)",
    )
    .bind::<BigInt, _>(horizon.as_i64())
    .execute(conn)
    .await
    .map(drop)
}

/// The dedupe keys kept for compacted actions.
pub(crate) async fn kept_keys(conn: &mut Conn) -> diesel::QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let row: Row = diesel::sql_query("SELECT count(*) AS n FROM sync_compacted_keys").get_result(conn).await?;
    Ok(row.n)
}
