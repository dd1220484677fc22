//! `sync_actions`: the delta log.
//!
//! Ids are allocated in commit order: every writer takes the insert-order
//! lock (docs/protocol.md §2.3) immediately before inserting its actions and holds
//! it only until its commit, so a reader paging with `id > cursor` never
//! skips an id that commits later.

use super::schema::sync_actions as sa;
use super::Conn;
use crate::protocol::{ActionKind, JsonObject, RawJson, SyncAction, SyncId};
use chrono::{DateTime, Utc};
use diesel::deserialize::FromSql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Text};
use diesel::QueryResult;
use diesel_async::RunQueryDsl;

/// `group_id IS NULL OR group_id = ANY(groups)` (only global actions when
/// `groups` is empty, since `= ANY('{}')` is false).
fn visible_to(
    groups: &[String],
) -> diesel::dsl::Or<diesel::dsl::IsNull<sa::group_id>, diesel::dsl::EqAny<sa::group_id, &[String]>> {
    sa::group_id.is_null().or(sa::group_id.eq_any(groups))
}

/// The highest id visible to `groups`, or 0.
pub(crate) async fn head_for(conn: &mut Conn, groups: &[String]) -> QueryResult<SyncId> {
    let id: Option<i64> =
        sa::table.filter(visible_to(groups)).select(sa::id).order(sa::id.desc()).first(conn).await.optional()?;
    Ok(SyncId::from_i64(id.unwrap_or(0)))
}

/// The log's bounds, in one round trip: the lowest id a client may resume
/// from plus one (the horizon compaction recorded, else the lowest retained
/// id; see [`crate::ops::compact`]), the
/// highest committed id, and the highest id it ever allocated (the
/// sequence's value; a cursor above it comes from another database, after
/// a reset or a restore).
struct Bounds {
    earliest: SyncId,
    latest: SyncId,
    allocated: SyncId,
}

async fn bounds(mut conn: &Conn) -> QueryResult<Bounds> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        earliest: i64,
        #[diesel(sql_type = BigInt)]
        latest: i64,
        #[diesel(sql_type = BigInt)]
        allocated: i64,
    }
    let row: Row = diesel::sql_query(
        "SELECT coalesce((SELECT horizon FROM sync_log_horizon), \
                         (SELECT id FROM sync_actions ORDER BY id LIMIT 1), 0) AS earliest, \
                coalesce((SELECT id FROM sync_actions ORDER BY id DESC LIMIT 1), 0) AS latest, \
                (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM sync_actions_id_seq) AS allocated",
    )
    .get_result(&mut conn)
    .await?;
    Ok(Bounds {
        earliest: SyncId::from_i64(row.earliest),
        latest: SyncId::from_i64(row.latest),
        allocated: SyncId::from_i64(row.allocated),
    })
}

/// Whether a client at `cursor` must bootstrap again: some action after it
/// was pruned from the log, or the cursor is ahead of every id this log ever
/// allocated. Unlike the reference (§10 #10), `cursor = earliest - 1` is
/// not stale: nothing after it is missing.
///
/// Takes a shared connection so that it can be pipelined with the read it
/// guards (diesel-async sends concurrent queries on one connection back to
/// back).
pub(crate) async fn is_stale(conn: &Conn, cursor: SyncId) -> QueryResult<bool> {
    if cursor.0 == 0 {
        return Ok(false);
    }
    Ok(stale_and_span(conn, cursor).await?.0)
}

/// What a replay needs to know of the log besides [`is_stale`]: the
/// lowest retained id and the highest committed one, at the time of the
/// check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// The retention horizon, else the lowest retained id (0: the log is
    /// empty and was never compacted).
    pub(crate) earliest: SyncId,
    /// The highest committed id (0: the log is empty).
    pub(crate) latest: SyncId,
}

/// [`is_stale`], and the log's [`Span`].
pub(crate) async fn stale_and_span(conn: &Conn, cursor: SyncId) -> QueryResult<(bool, Span)> {
    let b = bounds(conn).await?;
    let stale = cursor.0 > 0 && ((b.earliest.0 > 0 && cursor.0 + 1 < b.earliest.0) || cursor > b.allocated);
    Ok((stale, Span { earliest: b.earliest, latest: b.latest }))
}

/// The `data` of `user`'s last group change (`S` action) at or before
/// `at`: their membership set at that point of the log, if it says.
pub(crate) async fn group_change_at(mut conn: &Conn, user: &str, at: SyncId) -> QueryResult<Option<JsonObject>> {
    let data: Option<serde_json::Value> = sa::table
        .filter(sa::group_id.eq(user))
        .filter(sa::id.le(at.as_i64()))
        .filter(sa::action.eq(ActionKind::SyncGroups.as_str()))
        .filter(sa::model.eq(crate::protocol::GROUP_CHANGE_MODEL))
        .order(sa::id.desc())
        .select(sa::data)
        .first(&mut conn)
        .await
        .optional()?;
    Ok(data.map(JsonObject::from_column))
}

/// How an action's `data` column is held in memory: parsed
/// ([`JsonObject`]) or passed through ([`RawJson`]). Data that is not a JSON
/// object reads as `{}`.
pub(crate) trait LogData: Sized + Send + 'static {
    /// The type `data` is read into.
    type Column: FromSql<Jsonb, Pg> + diesel::Queryable<Jsonb, Pg> + Send + 'static;
    /// The data of a column value.
    fn from_column(column: Self::Column) -> Self;
}

impl LogData for JsonObject {
    type Column = serde_json::Value;
    fn from_column(column: serde_json::Value) -> Self {
        match column {
            serde_json::Value::Object(map) => map,
            _ => JsonObject::new(),
        }
    }
}

impl LogData for RawJson {
    type Column = RawJson;
    fn from_column(column: RawJson) -> Self {
        if column.is_object() {
            column
        } else {
            RawJson::empty_object()
        }
    }
}

/// A `sync_actions` row, in column order.
type ActionRow<C> = (i64, String, String, String, C, Option<String>, Option<String>, Option<String>, DateTime<Utc>);

/// Which actions a read of the log covers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Visible<'a> {
    /// Every action (the node's live feed).
    All,
    /// Global actions and those of these groups (only global ones when
    /// empty).
    Groups(&'a [String]),
}

/// One row of the log as read: its id, and its action when the letter is
/// one this server knows (a row written by a newer server, say a `G` or
/// `C`, has none).
///
/// Readers page by rows, not by actions: a page whose rows were partly
/// skipped is not the end of the log, and the cursor moves past skipped
/// rows too.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogRow<D = JsonObject> {
    /// The row's id.
    pub id: SyncId,
    /// Its action, `None` for a letter this server does not know.
    pub action: Option<SyncAction<D>>,
}

/// A page of the log: the known actions of the rows read, and how far the
/// read got.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogPage<D = JsonObject> {
    /// The actions this server knows, ascending.
    pub actions: Vec<SyncAction<D>>,
    /// Rows read, known or not.
    pub rows: usize,
    /// The id of the last row read, known or not.
    pub last_id: Option<SyncId>,
}

impl<D> LogPage<D> {
    /// The cursor after this page: the last row read, or `after` when the
    /// page is empty.
    pub(crate) fn cursor(&self, after: SyncId) -> SyncId {
        self.last_id.unwrap_or(after)
    }

    /// Whether the read returned `limit` rows, so more may follow.
    pub(crate) fn is_full(&self, limit: i64) -> bool {
        self.rows as i64 >= limit
    }
}

/// The row read, with its action if the letter is known.
fn into_row<D: LogData>(row: ActionRow<D::Column>) -> LogRow<D> {
    let (id, model, model_id, action, data, group_id, client_id, client_tx_id, created_at) = row;
    let id = SyncId::from_i64(id);
    let action = action.chars().next().and_then(ActionKind::from_letter).map(|action| SyncAction {
        action,
        client_id,
        client_tx_id,
        created_at,
        data: D::from_column(data),
        group_id,
        model_id,
        model_name: model,
        sync_id: id,
    });
    LogRow { id, action }
}

/// The rows after `after` that `visible` covers, ascending, at most
/// `limit`, each as it arrives from PostgreSQL (so the caller can write it
/// out while the next ones are produced). This is the one query every
/// reader of the log runs (replay, the live feed, `/sync/deltas`).
///
/// Takes a shared connection so that it can be pipelined with
/// [`is_stale`].
pub(crate) async fn read_stream<'a, D: LogData>(
    mut conn: &'a Conn,
    after: SyncId,
    visible: Visible<'a>,
    limit: i64,
) -> QueryResult<impl futures_util::Stream<Item = QueryResult<LogRow<D>>> + Send + 'a> {
    use futures_util::future::Either;
    let after = sa::id.gt(after.as_i64());
    let rows = match visible {
        Visible::All => Either::Left(
            sa::table
                .filter(after)
                .order(sa::id.asc())
                .limit(limit)
                .load_stream::<ActionRow<D::Column>>(&mut conn)
                .await?,
        ),
        Visible::Groups(groups) => Either::Right(
            sa::table
                .filter(after)
                .filter(visible_to(groups))
                .order(sa::id.asc())
                .limit(limit)
                .load_stream::<ActionRow<D::Column>>(&mut conn)
                .await?,
        ),
    };
    Ok(futures_util::StreamExt::map(rows, |row| row.map(into_row)))
}

/// [`read_stream`] collected into a page.
pub(crate) async fn read<D: LogData>(
    conn: &Conn,
    after: SyncId,
    visible: Visible<'_>,
    limit: i64,
) -> QueryResult<LogPage<D>> {
    use futures_util::TryStreamExt;
    let rows = read_stream::<D>(conn, after, visible, limit).await?;
    rows.try_fold(LogPage { actions: Vec::new(), rows: 0, last_id: None }, |mut page, row| {
        page.rows += 1;
        page.last_id = Some(row.id);
        page.actions.extend(row.action);
        std::future::ready(Ok(page))
    })
    .await
}

/// Every action after `*at` (all groups) up to `until` (inclusive; `None`:
/// the end of the log), read in pages of `limit` rows and handed to `each`
/// in id order. `*at` moves past each page once its actions are handed
/// over, so after an error it tells how far the read got. Rows, not
/// actions, tell the end of the log: rows with a letter this server does
/// not know are skipped and still counted. The live feed's catch-up and
/// the start-up load of its hot tail both read this way.
pub(crate) async fn read_pages<D: LogData>(
    conn: &Conn,
    at: &mut SyncId,
    until: Option<SyncId>,
    limit: i64,
    mut each: impl FnMut(SyncAction<D>),
) -> QueryResult<()> {
    loop {
        if until.is_some_and(|until| *at >= until) {
            return Ok(());
        }
        let page = read::<D>(conn, *at, Visible::All, limit).await?;
        let next = page.cursor(*at);
        let full = page.is_full(limit);
        for action in page.actions {
            if until.is_none_or(|until| action.sync_id <= until) {
                each(action);
            }
        }
        *at = until.map_or(next, |until| next.min(until));
        if !full {
            return Ok(());
        }
    }
}

/// The highest committed id of the whole log, or 0.
pub(crate) async fn head(conn: &mut Conn) -> QueryResult<SyncId> {
    let id: Option<i64> = sa::table.select(sa::id).order(sa::id.desc()).first(conn).await.optional()?;
    Ok(SyncId::from_i64(id.unwrap_or(0)))
}

/// Which of `ids` are committed in the log (as this connection sees it),
/// ascending.
pub(crate) async fn committed_ids(conn: &mut Conn, ids: &[i64]) -> QueryResult<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sa::table.filter(sa::id.eq_any(ids)).select(sa::id).order(sa::id.asc()).load(conn).await
}

/// The committed actions of one client's transactions: `(clientTxId, id)`
/// (keys of compacted actions included, see [`crate::ops::compact`]).
pub(crate) async fn find_committed(
    conn: &mut Conn,
    client_id: &str,
    tx_ids: &[&str],
) -> QueryResult<Vec<(String, SyncId)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        client_tx_id: String,
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT client_tx_id, id FROM ( \
           SELECT client_tx_id, id FROM sync_actions WHERE client_id = $1 AND client_tx_id = ANY($2) \
           UNION ALL \
           SELECT client_tx_id, id FROM sync_compacted_keys WHERE client_id = $1 AND client_tx_id = ANY($2)) AS k \
         ORDER BY id",
    )
    .bind::<Text, _>(client_id)
    .bind::<diesel::sql_types::Array<Text>, _>(tx_ids)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.client_tx_id, SyncId::from_i64(r.id))).collect())
}

/// A committed `(clientId, clientTxId)` pair and its sync id.
#[derive(QueryableByName)]
struct CommittedRow {
    #[diesel(sql_type = Text)]
    client_id: String,
    #[diesel(sql_type = Text)]
    client_tx_id: String,
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The already committed pairs among `keys` (any clients), in one
/// statement: `((clientId, clientTxId), id)`.
pub(crate) async fn find_committed_pairs(
    conn: &mut Conn,
    keys: &[(String, String)],
) -> QueryResult<Vec<((String, String), SyncId)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (clients, txs): (Vec<&str>, Vec<&str>) = keys.iter().map(|(c, t)| (c.as_str(), t.as_str())).unzip();
    let rows: Vec<CommittedRow> = diesel_async::RunQueryDsl::load(
        super::prepared::Prepared(
            diesel::sql_query(
                "WITH k AS MATERIALIZED (SELECT DISTINCT c, t FROM unnest($1::text[], $2::text[]) AS u(c, t)) \
         SELECT a.client_id, a.client_tx_id, a.id FROM sync_actions a \
           JOIN k ON a.client_id = k.c AND a.client_tx_id = k.t \
         UNION ALL \
         SELECT a.client_id, a.client_tx_id, a.id FROM sync_compacted_keys a \
           JOIN k ON a.client_id = k.c AND a.client_tx_id = k.t",
            )
            .bind::<diesel::sql_types::Array<Text>, _>(clients)
            .bind::<diesel::sql_types::Array<Text>, _>(txs),
        ),
        conn,
    )
    .await?;
    Ok(rows.into_iter().map(|r| ((r.client_id, r.client_tx_id), SyncId::from_i64(r.id))).collect())
}

/// Serializes concurrent submissions of the same `(clientId, clientTxId)`
/// pairs until the holder's transaction ends, so a duplicate waits for the
/// original's commit and then finds it instead of failing on the unique
/// index. Locks are taken in sorted order, so batches cannot deadlock.
pub(crate) async fn lock_dedupe_keys(conn: &mut Conn, keys: &[(String, String)]) -> QueryResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let (clients, txs): (Vec<&str>, Vec<&str>) = keys.iter().map(|(c, t)| (c.as_str(), t.as_str())).unzip();
    diesel_async::RunQueryDsl::execute(
        super::prepared::Prepared(
            diesel::sql_query(
                "SELECT count(pg_advisory_xact_lock(k)) FROM ( \
           SELECT DISTINCT hashtextextended(c || chr(31) || t, 7274) AS k \
           FROM unnest($1::text[], $2::text[]) AS u(c, t) ORDER BY k) AS keys",
            )
            .bind::<diesel::sql_types::Array<Text>, _>(clients)
            .bind::<diesel::sql_types::Array<Text>, _>(txs),
        ),
        conn,
    )
    .await?;
    Ok(())
}

/// The fast path of deduplication, one statement: tries to take the
/// dedupe locks of `keys` (the same locks as [`lock_dedupe_keys`]) without
/// waiting and reads the committed pairs among them. `None` when some lock
/// is held by another transaction: the caller must then wait with
/// [`lock_dedupe_keys`] and read again with [`find_committed_pairs`] (a
/// new statement, whose snapshot sees the holder's commit).
///
/// With `Some`, the read used the statement's snapshot, taken just before
/// the locks: an original that committed (and released its lock) in
/// between is not in the answer. The log insert of the duplicate then
/// fails on the unique `(client_id, client_tx_id)` index, and the caller
/// must roll back and take the slow path.
pub(crate) async fn try_lock_and_find_committed(
    conn: &mut Conn,
    keys: &[(String, String)],
) -> QueryResult<Option<Vec<((String, String), SyncId)>>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        client_id: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        client_tx_id: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
        id: Option<i64>,
    }
    if keys.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let (clients, txs): (Vec<&str>, Vec<&str>) = keys.iter().map(|(c, t)| (c.as_str(), t.as_str())).unzip();
    // `bool_and` evaluates every row (no short cut), so each lock that is
    // free is taken; the sorted order keeps to the order of the slow path.
    let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
        super::prepared::Prepared(
            diesel::sql_query(
                "WITH k AS MATERIALIZED (SELECT DISTINCT c, t FROM unnest($1::text[], $2::text[]) AS u(c, t)), \
              l AS MATERIALIZED (SELECT bool_and(pg_try_advisory_xact_lock(h)) AS locked FROM ( \
                SELECT DISTINCT hashtextextended(c || chr(31) || t, 7274) AS h FROM k ORDER BY h) AS hs) \
         SELECT l.locked, f.client_id, f.client_tx_id, f.id FROM l LEFT JOIN ( \
           SELECT a.client_id, a.client_tx_id, a.id FROM sync_actions a \
           JOIN k ON a.client_id = k.c AND a.client_tx_id = k.t \
           UNION ALL \
           SELECT a.client_id, a.client_tx_id, a.id FROM sync_compacted_keys a \
           JOIN k ON a.client_id = k.c AND a.client_tx_id = k.t) AS f ON l.locked",
            )
            .bind::<diesel::sql_types::Array<Text>, _>(clients)
            .bind::<diesel::sql_types::Array<Text>, _>(txs),
        ),
        conn,
    )
    .await?;
    if !<[Row]>::first(&rows).is_some_and(|r| r.locked) {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter().filter_map(|r| Some(((r.client_id?, r.client_tx_id?), SyncId::from_i64(r.id?)))).collect(),
    ))
}

/// Whether `err` is the unique `(client_id, client_tx_id)` index of the
/// log refusing a pair that committed meanwhile (see
/// [`try_lock_and_find_committed`]).
pub(crate) fn is_duplicate_pair(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(err, Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
        if info.constraint_name() == Some("sync_actions_client_id_client_tx_id_unique"))
}

/// A sync action about to be logged.
#[derive(Debug, Clone)]
pub(crate) struct NewAction {
    /// The model's wire name.
    pub model: &'static str,
    /// The canonical model id.
    pub model_id: String,
    /// The action letter.
    pub action: ActionKind,
    /// The action's data.
    pub data: JsonObject,
    /// The sync group.
    pub group_id: Option<String>,
    /// The originating client.
    pub client_id: Option<String>,
    /// The originating transaction.
    pub client_tx_id: Option<String>,
}

/// The log insert: the rows of `$1`… in input order, ids drawn in that
/// order. `LOCKED` takes the insert-order lock first, in a materialized CTE
/// that the rows are joined with and sorted after, so it is held before
/// the first id is drawn.
const INSERT_LOCKED: &str = "WITH l AS MATERIALIZED ( \
   SELECT pg_advisory_xact_lock(hashtext('stratasync:sync_actions'), hashtext('sync_actions')) AS locked) \
 INSERT INTO sync_actions (model, model_id, action, data, group_id, client_id, client_tx_id) \
 SELECT u.model, u.model_id, u.action, u.data, u.group_id, u.client_id, u.client_tx_id \
 FROM l CROSS JOIN unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::text[]) \
   WITH ORDINALITY AS u(model, model_id, action, data, group_id, client_id, client_tx_id, n) \
 ORDER BY u.n \
 RETURNING id, created_at";

/// [`INSERT_LOCKED`] without the lock (for [`probe`], whose rows never
/// commit).
const INSERT_UNLOCKED: &str =
    "INSERT INTO sync_actions (model, model_id, action, data, group_id, client_id, client_tx_id) \
 SELECT u.model, u.model_id, u.action, u.data, u.group_id, u.client_id, u.client_tx_id \
 FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::text[]) \
   WITH ORDINALITY AS u(model, model_id, action, data, group_id, client_id, client_tx_id, n) \
 ORDER BY u.n \
 RETURNING id, created_at";

/// A row the log insert returned.
#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: DateTime<Utc>,
}

/// Inserts `actions` with `sql` ([`INSERT_LOCKED`] or [`INSERT_UNLOCKED`]).
async fn insert(conn: &mut Conn, sql: &'static str, actions: &[NewAction]) -> QueryResult<Vec<Inserted>> {
    use diesel::sql_types::{Array, Jsonb, Nullable};
    let n = actions.len();
    let (mut models, mut model_ids, mut letters, mut datas) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut groups, mut clients, mut txs) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for a in actions {
        models.push(a.model);
        model_ids.push(a.model_id.as_str());
        letters.push(a.action.as_str());
        datas.push(serde_json::Value::Object(a.data.clone()));
        groups.push(a.group_id.as_deref());
        clients.push(a.client_id.as_deref());
        txs.push(a.client_tx_id.as_deref());
    }
    diesel_async::RunQueryDsl::load(
        super::prepared::Prepared(
            diesel::sql_query(sql)
                .bind::<Array<Text>, _>(models)
                .bind::<Array<Text>, _>(model_ids)
                .bind::<Array<Text>, _>(letters)
                .bind::<Array<Jsonb>, _>(datas)
                .bind::<Array<Nullable<Text>>, _>(groups)
                .bind::<Array<Nullable<Text>>, _>(clients)
                .bind::<Array<Nullable<Text>>, _>(txs),
        ),
        conn,
    )
    .await
}

/// Takes the insert-order lock and logs `actions` in order with one
/// statement; returns the committed form of each. Call it last in the
/// transaction, right before commit, so the lock is held briefly.
///
/// The lock is taken by the same statement, in a materialized CTE that the
/// rows are joined with and sorted after, so it is held before the first
/// id is drawn; ids are drawn in input order (the sort), and the returned
/// rows are matched to the input by that order.
pub(crate) async fn append(conn: &mut Conn, actions: Vec<NewAction>) -> QueryResult<Vec<SyncAction>> {
    if actions.is_empty() {
        return Ok(Vec::new());
    }
    let n = actions.len();
    let mut inserted = insert(conn, INSERT_LOCKED, &actions).await?;
    if inserted.len() != n {
        return Err(diesel::result::Error::DeserializationError(
            format!("the log insert returned {} rows for {n} actions", inserted.len()).into(),
        ));
    }
    // Ids were drawn in input order: sorting by id restores it whatever the
    // order RETURNING used.
    inserted.sort_unstable_by_key(|r| r.id);
    Ok(actions
        .into_iter()
        .zip(inserted)
        .map(|(a, r)| SyncAction {
            action: a.action,
            client_id: a.client_id,
            client_tx_id: a.client_tx_id,
            created_at: r.created_at,
            data: jsonb_order(a.data),
            group_id: a.group_id,
            model_id: a.model_id,
            model_name: a.model.to_owned(),
            sync_id: SyncId::from_i64(r.id),
        })
        .collect())
}

/// Whether the log can store `actions`: inserts them without the
/// insert-order lock inside a savepoint of its own, and rolls them back.
/// `Err` is the failure the real insert would meet (text it cannot store,
/// an index entry too large, a constraint); the rows never commit (their
/// ids are skipped, as any rolled-back insert's are).
pub(crate) async fn probe(conn: &mut Conn, actions: Vec<NewAction>) -> QueryResult<()> {
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    if actions.is_empty() {
        return Ok(());
    }
    AnsiTransactionManager::begin_transaction(conn).await?;
    let tried = insert(conn, INSERT_UNLOCKED, &actions).await;
    AnsiTransactionManager::rollback_transaction(conn).await?;
    tried.map(|_| ())
}

/// Reorders object keys as PostgreSQL's `jsonb` returns them (shorter keys
/// first, then bytewise), so an action published from memory has the same
/// bytes as the same action read back from the log.
pub(crate) fn jsonb_order(map: JsonObject) -> JsonObject {
    let mut entries: Vec<(String, serde_json::Value)> =
        map.into_iter().map(|(k, v)| (k, jsonb_order_value(v))).collect();
    entries.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes())));
    entries.into_iter().collect()
}

fn jsonb_order_value(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(jsonb_order(map)),
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(jsonb_order_value).collect()),
        other => other,
    }
}
