//! Support for the integration tests: a fresh PostgreSQL database per test,
//! the example engine on it, and small request builders.
//!
//! The server is the one from `STRATASYNC_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each [`TestDb`] creates
//! its own database there and drops it when the test ends.

pub mod http_support;
pub mod pg_proxy;
pub mod process_support;
pub mod ws_support;

use futures_util::StreamExt;
use serde_json::{json, Value};
use stratasync_core::auth::{AuthContext, AuthUser};
use stratasync_core::engine::SyncEngineBuilder;
use stratasync_core::protocol::{MutateRequest, MutateResponse, MutationAction, TransactionInput};
use stratasync_core::storage::{self, Pool, PoolConfig};
use stratasync_core::SyncEngine;
use taskboard::DevAuth;

/// The administrative connection URL of the test server.
pub fn admin_url() -> String {
    std::env::var("STRATASYNC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test, migrated with the example schema.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Its connection URL.
    pub url: String,
    /// A pool on it.
    pub pool: Pool,
}

/// `url` naming database `name` instead, with `params` added to its query
/// (if any).
fn with_database(url: &str, name: &str, params: &str) -> String {
    let (url, query) = url.split_once('?').unwrap_or((url, ""));
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    let query: Vec<&str> = [query, params].into_iter().filter(|q| !q.is_empty()).collect();
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{}", query.join("&"))
    }
}

async fn admin_execute(sql: &str) {
    use diesel_async::SimpleAsyncConnection;
    let mut conn = storage::establish(&admin_url()).await.expect("connect to the test PostgreSQL");
    conn.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl TestDb {
    /// Creates and migrates a fresh database.
    pub async fn new() -> TestDb {
        TestDb::with_params("").await
    }

    /// [`TestDb::new`] with connection parameters (`sslmode=require`)
    /// added to the URL that the migrations, the pool and [`TestDb::url`]
    /// use.
    pub async fn with_params(params: &str) -> TestDb {
        let name = format!("stratasync_test_{}", uuid::Uuid::new_v4().simple());
        admin_execute(&format!("CREATE DATABASE {name}")).await;
        let url = with_database(&admin_url(), &name, params);
        taskboard::migrate(&url).await.expect("migrations");
        let pool = storage::connect(&url, &PoolConfig::default()).expect("pool");
        TestDb { name, url, pool }
    }

    /// The example engine on this database, started with the default
    /// settings (inside the tokio runtime).
    pub fn engine(&self) -> SyncEngine {
        self.engine_builder().start().expect("the engine starts")
    }

    /// The settings of the example engine on this database, to change
    /// some before [`SyncEngineBuilder::start`].
    pub fn engine_builder(&self) -> SyncEngineBuilder {
        taskboard::engine_builder(self.pool.clone(), DevAuth::default())
    }

    /// Runs `sql` on this database.
    pub async fn execute(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = self.pool.get().await.expect("connection");
        conn.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs `sql` as fixture state that predates the test's log: in one
    /// transaction with `session_replication_role = replica`, so triggers
    /// do not fire and memberships it adds log no `S` actions (tests of
    /// those are in `tests/membership.rs`).
    pub async fn setup(&self, sql: &str) {
        self.execute(&format!("BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT")).await;
    }

    /// The single `bigint` result of `sql`.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use diesel::sql_types::BigInt;
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            v: i64,
        }
        let mut conn = self.pool.get().await.expect("connection");
        let row: Row = diesel::sql_query(format!("SELECT ({sql})::bigint AS v"))
            .get_result(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.v
    }

    /// The single `text` result of `sql` (`""` for NULL).
    pub async fn text(&self, sql: &str) -> String {
        use diesel::sql_types::{Nullable, Text};
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Nullable<Text>)]
            v: Option<String>,
        }
        let mut conn = self.pool.get().await.expect("connection");
        let row: Row = diesel::sql_query(format!("SELECT ({sql})::text AS v"))
            .get_result(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.v.unwrap_or_default()
    }

    /// The log's actions whose row matches `condition` (SQL over
    /// `sync_actions`), ascending, each in its wire shape (`syncId`,
    /// `modelName`, `modelId`, `action`, `data`, `groupId`, `clientId`,
    /// `clientTxId`; absent values are `null`). Read straight from the
    /// table: the engine's own readers are what the tests check.
    pub async fn log(&self, condition: &str) -> Vec<Value> {
        let text = self
            .text(&format!(
                "SELECT coalesce(json_agg(json_build_object('syncId', id::text, 'modelName', model, \
                 'modelId', model_id, 'action', action, 'data', data, 'groupId', group_id, \
                 'clientId', client_id, 'clientTxId', client_tx_id) ORDER BY id), '[]') \
                 FROM sync_actions WHERE {condition}"
            ))
            .await;
        serde_json::from_str(&text).expect("the log as JSON")
    }

    /// Every object of this database's `public` schema (see
    /// [`schema_at`]).
    pub async fn schema(&self) -> String {
        schema_at(&self.url).await
    }

    /// Terminates every server connection to this database (as a restart
    /// or failover would).
    pub async fn terminate_backends(&self) {
        admin_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        ))
        .await;
    }

    /// A fingerprint of every table's contents (to prove nothing changed).
    pub async fn fingerprint(&self) -> i64 {
        self.scalar(
            "SELECT hashtext(coalesce((SELECT string_agg(x::text, '|' ORDER BY x::text) FROM ( \
               SELECT row_to_json(w)::text AS x FROM workspaces w UNION ALL \
               SELECT row_to_json(t)::text FROM tasks t UNION ALL \
               SELECT row_to_json(l)::text FROM labels l UNION ALL \
               SELECT row_to_json(tl)::text FROM task_labels tl UNION ALL \
               SELECT row_to_json(a)::text FROM sync_actions a) s), ''))",
        )
        .await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropping needs async I/O; do it on a thread of its own so it also
        // works while the test's runtime is shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(admin_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")));
        })
        .join();
    }
}

/// Every object of the `public` schema of the database at `url`, one line
/// each, sorted: tables' columns (type, nullability, default), indexes,
/// constraints, triggers, functions, sequences, and the applied migrations.
pub async fn schema_at(url: &str) -> String {
    use diesel::sql_types::{Nullable, Text};
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Text>)]
        v: Option<String>,
    }
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    let row: Row = diesel::sql_query(
        "SELECT string_agg(x, E'\\n' ORDER BY x) AS v FROM ( \
           SELECT format('column %s.%s %s %s %s', table_name, column_name, data_type, is_nullable, \
                         column_default) AS x \
             FROM information_schema.columns WHERE table_schema = 'public' UNION ALL \
           SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public' UNION ALL \
           SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) \
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace UNION ALL \
           SELECT format('trigger %s', pg_get_triggerdef(oid)) FROM pg_trigger \
             WHERE NOT tgisinternal AND tgrelid::regclass::text NOT LIKE 'pg_%' UNION ALL \
           SELECT format('function %s', pg_get_functiondef(p.oid)) FROM pg_proc p \
             WHERE pronamespace = 'public'::regnamespace UNION ALL \
           SELECT format('sequence %s %s %s', sequence_name, data_type, increment) \
             FROM information_schema.sequences WHERE sequence_schema = 'public' UNION ALL \
           SELECT format('migration %s', version) FROM __diesel_schema_migrations) s",
    )
    .get_result(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("reading the schema: {e}"));
    row.v.unwrap_or_default()
}

/// An authenticated caller with these groups (the user id is appended, as
/// the engine does).
pub fn user(id: &str, groups: &[&str]) -> AuthContext {
    let mut all: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    all.push(id.to_owned());
    AuthContext { user: AuthUser::new(id), groups: all, derived_groups: Vec::new() }
}

/// One transaction.
pub fn tx(action: MutationAction, model: &str, model_id: &str, payload: Value) -> TransactionInput {
    TransactionInput {
        action,
        client_id: "client-1".to_owned(),
        client_tx_id: uuid::Uuid::new_v4().to_string(),
        model_id: model_id.to_owned(),
        model_name: model.to_owned(),
        payload: payload.as_object().cloned().expect("payload must be an object"),
    }
}

/// A batch of transactions.
pub fn batch(transactions: Vec<TransactionInput>) -> MutateRequest {
    MutateRequest { batch_id: uuid::Uuid::new_v4().to_string(), transactions }
}

/// Runs a batch and returns its response as JSON.
pub async fn mutate(engine: &SyncEngine, user: &AuthContext, transactions: Vec<TransactionInput>) -> MutateResponse {
    engine.mutate(user, &batch(transactions)).await.expect("mutate")
}

/// The JSON of a response.
pub fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializable")
}

/// Starts an NDJSON stream (a bootstrap or batch load, which must be
/// admitted) and collects it into parsed lines; an `Err` item becomes the
/// error line the transport would write.
pub async fn collect_lines(
    start: impl std::future::Future<Output = Result<stratasync_core::engine::NdjsonStream, stratasync_core::ServiceError>>,
) -> Vec<Value> {
    let mut stream = start.await.expect("the stream is admitted");
    let mut bytes = Vec::new();
    let mut lines = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(e) => {
                lines.extend(parse_lines(&bytes));
                bytes.clear();
                lines.push(json!({"message": e.to_string(), "type": "error"}));
            }
        }
    }
    lines.extend(parse_lines(&bytes));
    lines
}

fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("each NDJSON line is JSON"))
        .collect()
}

/// A workspace id for tests.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs each named `async fn(Adapter)` as two tests, `<name>::actix` and
/// `<name>::axum`: the same assertions against both adapters.
#[macro_export]
macro_rules! on_both_adapters {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[::actix_web::test]
            async fn actix() {
                super::$name($crate::http_support::Adapter::Actix).await
            }

            #[::actix_web::test]
            async fn axum() {
                super::$name($crate::http_support::Adapter::Axum).await
            }
        }
    )*};
}
