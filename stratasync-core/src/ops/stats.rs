//! Statistics of the sync log (`sync_actions`), for operators.

use crate::protocol::SyncId;
use crate::storage::{Conn, StorageError};
use chrono::{DateTime, SecondsFormat, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// One end of the log: an action's sync id and commit time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEnd {
    /// The sync id.
    pub sync_id: SyncId,
    /// When it was committed (UTC, ISO-8601 with milliseconds in JSON).
    #[serde(serialize_with = "iso_ms")]
    pub created_at: DateTime<Utc>,
}

/// The actions of one sync group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupCount {
    /// The group (`None`: global actions).
    pub group: Option<String>,
    /// Its actions.
    pub actions: i64,
}

/// What the log holds, read from one snapshot (so the numbers agree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStats {
    /// The largest sync id in the log (`"0"` when it is empty): the head a
    /// client that may see everything would get.
    pub head: SyncId,
    /// The largest sync id the log's sequence has handed out (ids of
    /// rolled-back transactions included; above `head` when some were).
    pub allocated: SyncId,
    /// Rows in the log.
    pub rows: i64,
    /// The oldest action still in the log.
    pub oldest: Option<LogEnd>,
    /// The newest action.
    pub newest: Option<LogEnd>,
    /// Actions per model name.
    pub per_model: BTreeMap<String, i64>,
    /// Actions per action letter (`I`, `U`, `D`, `A`, `V`).
    pub per_action: BTreeMap<String, i64>,
    /// The groups with the most actions, most first (ties by name, global first).
    pub largest_groups: Vec<GroupCount>,
}

#[derive(QueryableByName)]
struct Bounds {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    oldest: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    newest: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    newest_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    allocated: i64,
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Reads the log's statistics in one `REPEATABLE READ, READ ONLY`
/// transaction on `conn`, with the `top_groups` largest groups. Each count
/// scans the log once: on a log of many millions of rows this takes
/// seconds, which is why it is an operator command and not an endpoint.
pub async fn log_stats(conn: &mut Conn, top_groups: i64) -> Result<LogStats, StorageError> {
    let stats = conn
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(async move |conn: &mut Conn| read(conn, top_groups).await)
        .await?;
    Ok(stats)
}

async fn read(conn: &mut Conn, top_groups: i64) -> diesel::QueryResult<LogStats> {
    let bounds: Bounds = diesel::sql_query(
        "SELECT b.rows, b.oldest, b.newest,
                (SELECT created_at FROM sync_actions WHERE id = b.oldest) AS oldest_at,
                (SELECT created_at FROM sync_actions WHERE id = b.newest) AS newest_at,
                (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM sync_actions_id_seq) AS allocated
         FROM (SELECT count(*) AS rows, min(id) AS oldest, max(id) AS newest FROM sync_actions) b",
    )
    .get_result(conn)
    .await?;
    let counts = |sql: &'static str| diesel::sql_query(sql);
    let per_model: Vec<Counted> =
        counts("SELECT model AS key, count(*) AS n FROM sync_actions GROUP BY model ORDER BY model").load(conn).await?;
    let per_action: Vec<Counted> =
        counts("SELECT action AS key, count(*) AS n FROM sync_actions GROUP BY action ORDER BY action")
            .load(conn)
            .await?;
    let groups: Vec<Counted> = diesel::sql_query(
        "SELECT group_id AS key, count(*) AS n FROM sync_actions GROUP BY group_id
         ORDER BY n DESC, group_id ASC NULLS FIRST LIMIT $1",
    )
    .bind::<BigInt, _>(top_groups.max(0))
    .load(conn)
    .await?;
    let end =
        |id: Option<i64>, at: Option<DateTime<Utc>>| Some(LogEnd { sync_id: SyncId::from_i64(id?), created_at: at? });
    let by_key = |rows: Vec<Counted>| rows.into_iter().map(|c| (c.key.unwrap_or_default(), c.n)).collect();
    Ok(LogStats {
        head: SyncId::from_i64(bounds.newest.unwrap_or(0)),
        allocated: SyncId::from_i64(bounds.allocated),
        rows: bounds.rows,
        oldest: end(bounds.oldest, bounds.oldest_at),
        newest: end(bounds.newest, bounds.newest_at),
        per_model: by_key(per_model),
        per_action: by_key(per_action),
        largest_groups: groups.into_iter().map(|c| GroupCount { group: c.key, actions: c.n }).collect(),
    })
}

fn iso(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn iso_ms<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso(at))
}

/// Aligned text: one `name  value` line per figure, then one table per
/// breakdown.
impl fmt::Display for LogStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = |e: &Option<LogEnd>| match e {
            Some(e) => format!("{} at {}", e.sync_id, iso(&e.created_at)),
            None => "-".to_owned(),
        };
        let lines = [
            ("head", self.head.to_string()),
            ("allocated", self.allocated.to_string()),
            ("rows", self.rows.to_string()),
            ("oldest", end(&self.oldest)),
            ("newest", end(&self.newest)),
        ];
        for (name, value) in lines {
            writeln!(f, "{name:<10} {value}")?;
        }
        table(f, "actions per model", self.per_model.iter().map(|(k, n)| (k.clone(), *n)))?;
        table(f, "actions per kind", self.per_action.iter().map(|(k, n)| (k.clone(), *n)))?;
        let groups =
            self.largest_groups.iter().map(|g| (g.group.clone().unwrap_or_else(|| "(global)".into()), g.actions));
        table(f, "largest groups", groups)
    }
}

/// A titled two-column table, names left-aligned, counts right-aligned.
fn table(f: &mut fmt::Formatter<'_>, title: &str, rows: impl Iterator<Item = (String, i64)>) -> fmt::Result {
    let rows: Vec<(String, String)> = rows.map(|(k, n)| (k, n.to_string())).collect();
    writeln!(f, "\n{title}")?;
    if rows.is_empty() {
        return writeln!(f, "  (none)");
    }
    let name_width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let count_width = rows.iter().map(|(_, n)| n.len()).max().unwrap_or(0);
    for (name, count) in rows {
        writeln!(f, "  {name:<name_width$}  {count:>count_width$}")?;
    }
    Ok(())
}
