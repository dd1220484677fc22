//! The commit path next to misbehaving application code and held locks: a
//! panicking before-hook (also inside a transaction of its own), a panic
//! elsewhere in a transaction's application code (a codec) in a group of
//! honest requests, a before-hook that overruns its time limit, an `after_mutation`
//! hook that takes seconds, a before-hook that puts into its data what the
//! log cannot store, and a row locked by another session past the lock
//! timeout. In each case only the culprit's own transaction or
//! request fails (with the right status), while other clients' mutations
//! succeed and reach a live subscriber.

use actix_web::http::header;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::deserialize::{FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{Output, ToSql};
use diesel::sql_types::Text;
use serde_json::{json, Value};
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use stratasync_core::codec::{kind, Codec};
use stratasync_core::engine::GroupCommitConfig;
use stratasync_core::model::{HookContext, HookError, ModelHooks, MutationEvent};
use stratasync_core::protocol::{MutateRequest, MutateResponse, MutationAction::Insert, TransactionInput};
use stratasync_core::{AuthContext, Registry, ServiceError, SyncEngine, SyncModel};
use stratasync_tests::http_support::{bearer, client, mutate_body, transaction, Adapter};
use stratasync_tests::ws_support::*;
use stratasync_tests::*;
use taskboard::schema::tasks;
use tokio::sync::Notify;
use uuid::Uuid;

/// How long a misbehaving hook would block if nothing stopped it: far
/// longer than any liveness bound below, so a lane that waited for it
/// fails the test.
const STUCK: Duration = Duration::from_secs(60);

/// How long honest traffic may take at most (a liveness bound only).
const LIVENESS: Duration = Duration::from_secs(20);

/// Hooks that misbehave on request, by the task's title: `panic` panics,
/// `panic in a transaction` panics inside a transaction it opened,
/// `overrun` sleeps past the hook time limit, `unloggable` sets a
/// description with a NUL character (which the row stores scrubbed and
/// the log's `jsonb` refuses only at the group's log insert), and the `after_mutation`
/// hook of `slow-after` blocks until the test releases it (then fails, so
/// its warning is on the wire).
#[derive(Default, Clone)]
struct Misbehaving {
    after_started: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait]
impl ModelHooks<HookedTask> for Misbehaving {
    async fn before_insert(&self, cx: &mut HookContext<'_>, insert: &mut HookedTaskChanges) -> Result<(), HookError> {
        match insert.title.as_deref() {
            Some("panic") => panic!("a bug in a before-hook"),
            Some("panic in a transaction") => {
                use diesel_async::{AsyncConnection, SimpleAsyncConnection};
                cx.conn
                    .transaction(async |conn| -> Result<(), diesel::result::Error> {
                        conn.batch_execute("SELECT 1").await?;
                        panic!("a bug in a before-hook's own transaction")
                    })
                    .await
                    .ok();
            }
            Some("overrun") => tokio::time::sleep(STUCK).await,
            Some("unloggable") => {
                // Stored as `?`, logged as written: only the log's `jsonb`
                // refuses it, at the group's log insert.
                insert.description = Some(Some(Scrubbed("\u{0}".to_owned())));
            }
            _ => {}
        }
        Ok(())
    }

    async fn after_mutation(&self, event: &MutationEvent<'_>) -> Result<(), HookError> {
        if event.data.get("title") == Some(&json!("slow-after")) {
            self.after_started.notify_one();
            tokio::select! {
                () = self.release.notified() => {}
                () = tokio::time::sleep(STUCK) => {}
            }
            return Err(HookError::Reject("webhook failed".into()));
        }
        Ok(())
    }
}

/// The example's tasks table under another name, with [`Misbehaving`] hooks.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(name = "HookedTask", group = workspace_id, actions(insert, update), hooks = Misbehaving)]
#[allow(dead_code)]
struct HookedTask {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(insert, update)]
    title: String,
    #[sync(insert, string_null)]
    description: Option<Scrubbed>,
    #[sync(skip)]
    priority: i32,
    #[sync(skip)]
    due_date: Option<NaiveDate>,
    #[sync(skip)]
    completed_at: Option<DateTime<Utc>>,
    #[sync(skip)]
    archived_at: Option<DateTime<Utc>>,
    #[sync(skip)]
    created_at: DateTime<Utc>,
}

/// An application text type stored with its NUL characters replaced by
/// `?` and sent on the wire as it is: a value the row takes and the log's
/// `jsonb` does not.
#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
struct Scrubbed(String);

impl FromSql<Text, Pg> for Scrubbed {
    fn from_sql(bytes: PgValue<'_>) -> diesel::deserialize::Result<Self> {
        <String as FromSql<Text, Pg>>::from_sql(bytes).map(Scrubbed)
    }
}

impl ToSql<Text, Pg> for Scrubbed {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
        out.write_all(self.0.replace('\u{0}', "?").as_bytes())?;
        Ok(diesel::serialize::IsNull::No)
    }
}

impl Codec<kind::Str> for Scrubbed {
    fn write_json(&self, out: &mut Vec<u8>) {
        <String as Codec<kind::Str>>::write_json(&self.0, out)
    }
    fn to_json(&self) -> Value {
        Value::String(self.0.clone())
    }
    fn from_json(value: &Value) -> Option<Self> {
        value.as_str().map(|s| Scrubbed(s.to_owned()))
    }
}

/// An application type whose codec panics on `panic in codec`: a panic on
/// the lane outside any hook.
#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
struct Odd(String);

impl FromSql<Text, Pg> for Odd {
    fn from_sql(bytes: PgValue<'_>) -> diesel::deserialize::Result<Self> {
        <String as FromSql<Text, Pg>>::from_sql(bytes).map(Odd)
    }
}

impl ToSql<Text, Pg> for Odd {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
        <String as ToSql<Text, Pg>>::to_sql(&self.0, out)
    }
}

impl Codec<kind::Str> for Odd {
    fn write_json(&self, out: &mut Vec<u8>) {
        <String as Codec<kind::Str>>::write_json(&self.0, out)
    }
    fn to_json(&self) -> Value {
        Value::String(self.0.clone())
    }
    fn from_json(value: &Value) -> Option<Self> {
        let text = value.as_str()?;
        assert_ne!(text, "panic in codec", "a bug in an application codec");
        Some(Odd(text.to_owned()))
    }
}

/// The tasks table once more, with the [`Odd`] title.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(name = "OddTask", group = workspace_id, actions(insert))]
#[allow(dead_code)]
struct OddTask {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(insert, string)]
    title: Odd,
    #[sync(skip)]
    description: Option<String>,
    #[sync(skip)]
    priority: i32,
    #[sync(skip)]
    due_date: Option<NaiveDate>,
    #[sync(skip)]
    completed_at: Option<DateTime<Utc>>,
    #[sync(skip)]
    archived_at: Option<DateTime<Utc>>,
    #[sync(skip)]
    created_at: DateTime<Utc>,
}

/// A server with short limits, a workspace of alice, bob and dave, and
/// dave's live subscription.
struct Setup {
    db: TestDb,
    server: WsServer,
    ws: String,
    hooks: Misbehaving,
    dave: WsClient,
}

async fn setup(adapter: Adapter) -> Setup {
    setup_with(adapter, Duration::from_millis(300)).await
}

/// [`setup`] with this lock timeout for the lanes' statements.
async fn setup_with(adapter: Adapter, lock_timeout: Duration) -> Setup {
    let db = TestDb::new().await;
    let hooks = Misbehaving::default();
    let registry = Registry::builder()
        .model::<taskboard::Workspace>()
        .model::<taskboard::Task>()
        .model_with_hooks::<HookedTask>(hooks.clone())
        .model::<OddTask>()
        .build();
    let engine = SyncEngine::builder(db.pool.clone(), registry, taskboard::DevAuth::default())
        .group_commit(GroupCommitConfig {
            hook_timeout: Duration::from_millis(300),
            lock_timeout,
            ..GroupCommitConfig::default()
        })
        .start()
        .expect("the engine starts");
    let server = WsServer::with_engine_on(adapter, &db, engine).await;
    let ws = workspace(&db, &["alice", "bob", "dave"]).await;
    let mut dave = server.connect("dave").await;
    dave.subscribe_ok("dave", 0, None).await;
    Setup { db, server, ws, hooks, dave }
}

/// A response: status, `Retry-After`, JSON body.
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn post(server: &WsServer, user: &str, body: &Value) -> Reply {
    let mut res = client()
        .post(server.url("/sync/mutate"))
        .insert_header((header::AUTHORIZATION, bearer(user)))
        .send_json(body)
        .await
        .expect("request");
    let retry_after = res.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = res.body().await.expect("body");
    Reply { status: res.status().as_u16(), retry_after, body: serde_json::from_slice(&bytes).expect("JSON body") }
}

/// A task insert as a transaction of `model`.
fn insert(model: &str, ws: &str, title: &str) -> Value {
    transaction("INSERT", model, &new_id(), json!({"workspaceId": ws, "title": title}))
}

/// `n` honest inserts by `user`, one request each; every one must
/// succeed. Returns their sync ids.
async fn honest(s: &Setup, user: &str, n: usize) -> Vec<u64> {
    let writes = async {
        let mut ids = Vec::new();
        for i in 0..n {
            let reply = post(&s.server, user, &mutate_body(vec![insert("Task", &s.ws, &format!("{user} {i}"))])).await;
            assert_eq!((reply.status, &reply.body["success"]), (200, &json!(true)), "{user}: {}", reply.body);
            ids.push(reply.body["lastSyncId"].as_str().and_then(|id| id.parse().ok()).expect("a sync id"));
        }
        ids
    };
    tokio::time::timeout(LIVENESS, writes).await.expect("honest writes went through in time")
}

/// Every action of the workspace reaches dave (subscribed before any),
/// in order.
async fn all_delivered(s: &mut Setup) {
    let expected = visible_ids(&s.db, std::slice::from_ref(&s.ws)).await;
    let last = *expected.last().expect("something was written");
    assert_eq!(s.dave.deltas_until(last, LIVENESS).await, expected);
}

async fn a_panicking_hook_fails_only_its_transaction(adapter: Adapter) {
    let mut s = setup(adapter).await;
    // The second hook panics inside a transaction of its own: what it
    // opened is rolled back with it.
    let batch = mutate_body(vec![
        insert("Task", &s.ws, "a1"),
        insert("HookedTask", &s.ws, "panic"),
        insert("Task", &s.ws, "a3"),
        insert("HookedTask", &s.ws, "panic in a transaction"),
        insert("Task", &s.ws, "a5"),
    ]);
    let (alice, _) = futures_util::join!(post(&s.server, "alice", &batch), honest(&s, "bob", 5));
    assert_eq!(alice.status, 200, "{}", alice.body);
    let results = &alice.body["results"];
    for i in [1, 3] {
        assert_eq!(
            results[i],
            json!({"clientTxId": batch["transactions"][i]["clientTxId"], "error": "Mutation rejected by hook", "success": false})
        );
    }
    for i in [0, 2, 4] {
        assert_eq!(results[i]["success"], json!(true), "{}", alice.body);
    }
    assert_eq!(s.db.scalar("SELECT count(*) FROM tasks WHERE title IN ('a1', 'a3', 'a5')").await, 3);
    assert_eq!(s.db.scalar("SELECT count(*) FROM tasks WHERE title LIKE 'panic%'").await, 0);
    // The lane carries on.
    honest(&s, "bob", 2).await;
    all_delivered(&mut s).await;
}

/// The log's insert-order lock (taken by every group's log insert).
const INSERT_ORDER_LOCK: &str = "pg_advisory_xact_lock(hashtext('stratasync:sync_actions'), hashtext('sync_actions'))";

/// The answer of a transaction whose application code panicked.
fn panicked(tx: &TransactionInput) -> Value {
    json!({"clientTxId": tx.client_tx_id, "error": "Mutation failed", "success": false})
}

async fn a_panic_elsewhere_on_the_lane_fails_only_its_own_transaction(adapter: Adapter) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    use std::future::Future;
    use std::pin::Pin;
    type Pending = Pin<Box<dyn Future<Output = Result<MutateResponse, ServiceError>>>>;
    // Lock waits long enough for the test to fill the lane's queue.
    let mut s = setup_with(adapter, LIVENESS).await;
    let (alice, bob) = (user("alice", &[&s.ws]), user("bob", &[&s.ws]));
    let task = |model: &str, title: &str| {
        let mut tx = tx(Insert, model, &new_id(), json!({"workspaceId": s.ws, "title": title}));
        tx.client_id = "alice-device".to_owned();
        tx
    };
    let first = batch(vec![task("Task", "first")]);
    let honest_requests: Vec<MutateRequest> =
        (0..6).map(|i| batch(vec![task("Task", &format!("honest {i}"))])).collect();
    // A request of one transaction that panics, and one where it sits
    // between two honest transactions.
    let lone = batch(vec![task("OddTask", "panic in codec")]);
    let mixed = batch(vec![
        task("Task", "beside the panic"),
        task("OddTask", "panic in codec"),
        task("OddTask", "after the panic"),
    ]);
    let submit = |who: &AuthContext, request: &MutateRequest| -> Pending {
        let (engine, who, request) = (s.server.engine.clone(), who.clone(), request.clone());
        Box::pin(async move { engine.mutate(&who, &request).await })
    };

    // Hold the insert-order lock: the first group stops at its log insert,
    // with the lane busy, while the others queue up behind it.
    let mut holder = AsyncPgConnection::establish(&s.db.url).await.expect("connect");
    holder.batch_execute(&format!("BEGIN; SELECT {INSERT_ORDER_LOCK}")).await.expect("lock");
    let mut first_reply = submit(&bob, &first);
    assert!(futures_util::poll!(first_reply.as_mut()).is_pending());
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock' \
         AND wait_event = 'advisory'",
        s.db.name
    );
    let deadline = std::time::Instant::now() + LIVENESS;
    while s.db.scalar(&waiting).await == 0 {
        assert!(std::time::Instant::now() < deadline, "the first group never reached the log insert");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // One poll each puts a request on the lane's queue: these form the next
    // group, the panicking requests among the honest ones.
    let mut queued: Vec<Pending> = Vec::new();
    for (i, request) in honest_requests.iter().enumerate() {
        queued.push(submit(if i % 2 == 0 { &alice } else { &bob }, request));
        if i == 1 {
            queued.push(submit(&alice, &lone));
        }
        if i == 3 {
            queued.push(submit(&alice, &mixed));
        }
    }
    for request in &mut queued {
        assert!(futures_util::poll!(request.as_mut()).is_pending());
    }
    assert!(futures_util::poll!(first_reply.as_mut()).is_pending(), "the first group waits for the lock");
    holder.batch_execute("COMMIT").await.expect("unlock");

    let first_reply = first_reply.await.expect("the first request");
    let mut replies = futures_util::future::join_all(queued).await.into_iter().map(|r| to_json(&r.expect("answered")));
    let mut honest_ids = vec![first.transactions[0].client_tx_id.clone()];
    assert_eq!(to_json(&first_reply)["results"][0]["success"], json!(true));
    for (i, request) in honest_requests.iter().enumerate() {
        let reply = replies.next().expect("a reply");
        assert_eq!(reply["results"][0]["success"], json!(true), "honest {i}: {reply}");
        assert_eq!(reply["results"][0]["clientTxId"], json!(request.transactions[0].client_tx_id));
        honest_ids.push(request.transactions[0].client_tx_id.clone());
        if i == 1 {
            let reply = replies.next().expect("a reply");
            assert_eq!(reply["results"], json!([panicked(&lone.transactions[0])]), "{reply}");
        }
        if i == 3 {
            let reply = replies.next().expect("a reply");
            let results = reply["results"].as_array().expect("results");
            assert_eq!(results[0]["success"], json!(true), "{reply}");
            assert_eq!(results[1], panicked(&mixed.transactions[1]), "{reply}");
            assert_eq!(results[2]["success"], json!(true), "{reply}");
            honest_ids.push(mixed.transactions[0].client_tx_id.clone());
            honest_ids.push(mixed.transactions[2].client_tx_id.clone());
        }
    }
    // Every honest transaction is in the log exactly once; the queued ones
    // committed together, in one group (one transaction id).
    let logged = |ids: &[String]| {
        let ids: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
        format!("FROM sync_actions WHERE client_tx_id IN ({})", ids.join(","))
    };
    assert_eq!(s.db.scalar(&format!("SELECT count(*) {}", logged(&honest_ids))).await, honest_ids.len() as i64);
    assert_eq!(
        s.db.scalar(&format!("SELECT count(DISTINCT client_tx_id) {}", logged(&honest_ids))).await,
        honest_ids.len() as i64
    );
    assert_eq!(s.db.scalar(&format!("SELECT count(DISTINCT xmin::text) {}", logged(&honest_ids[1..]))).await, 1);
    // Nothing of the panicking transactions was written.
    let culprits = [lone.transactions[0].client_tx_id.clone(), mixed.transactions[1].client_tx_id.clone()];
    assert_eq!(s.db.scalar(&format!("SELECT count(*) {}", logged(&culprits))).await, 0);
    assert_eq!(s.db.scalar("SELECT count(*) FROM tasks WHERE title = 'panic in codec'").await, 0);
    assert_eq!(s.db.scalar("SELECT count(*) FROM sync_actions WHERE data->>'title' = 'panic in codec'").await, 0);

    // Over HTTP, alone, the answer is the same; the lane keeps serving
    // writes and live delivery.
    let body = mutate_body(vec![insert("OddTask", &s.ws, "panic in codec")]);
    let reply = post(&s.server, "alice", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["results"][0]["error"], json!("Mutation failed"));
    assert_eq!(reply.body["results"][0]["success"], json!(false));
    assert_eq!(s.db.scalar("SELECT count(*) FROM tasks WHERE title = 'panic in codec'").await, 0);
    honest(&s, "bob", 3).await;
    let reply = post(&s.server, "alice", &mutate_body(vec![insert("OddTask", &s.ws, "fine")])).await;
    assert_eq!((reply.status, &reply.body["success"]), (200, &json!(true)), "{}", reply.body);
    all_delivered(&mut s).await;
}

async fn a_before_hook_that_overruns_fails_only_its_own_request(adapter: Adapter) {
    let mut s = setup(adapter).await;
    let batch = mutate_body(vec![insert("Task", &s.ws, "before the overrun"), insert("HookedTask", &s.ws, "overrun")]);
    let (alice, _) = futures_util::join!(post(&s.server, "alice", &batch), honest(&s, "bob", 5));
    assert_eq!((alice.status, alice.retry_after.as_deref()), (503, Some("1")), "{}", alice.body);
    assert_eq!(alice.body["message"], json!("Mutation could not complete now; retry later"));
    // Nothing of the request was written, not even its first transaction.
    assert_eq!(s.db.scalar("SELECT count(*) FROM tasks WHERE title IN ('before the overrun', 'overrun')").await, 0);
    assert_eq!(s.db.scalar("SELECT count(*) FROM sync_actions WHERE data->>'title' = 'before the overrun'").await, 0);
    honest(&s, "bob", 2).await;
    all_delivered(&mut s).await;
}

async fn a_slow_after_hook_delays_only_its_own_response(adapter: Adapter) {
    let mut s = setup(adapter).await;
    let batch = mutate_body(vec![insert("HookedTask", &s.ws, "slow-after")]);
    let alice = {
        let server_url = s.server.url("/sync/mutate");
        let batch = batch.clone();
        actix_web::rt::spawn(async move {
            let mut res = client()
                .post(server_url)
                .insert_header((header::AUTHORIZATION, bearer("alice")))
                .send_json(&batch)
                .await
                .expect("request");
            let bytes = res.body().await.expect("body");
            (res.status().as_u16(), serde_json::from_slice::<Value>(&bytes).expect("JSON body"))
        })
    };
    tokio::time::timeout(LIVENESS, s.hooks.after_started.notified()).await.expect("the after-hook started");
    // Alice's action is committed and delivered while her hook runs...
    let hers = s.db.scalar("SELECT max(id) FROM sync_actions WHERE data->>'title' = 'slow-after'").await as u64;
    s.dave.deltas_until(hers, LIVENESS).await;
    // ...and other clients' writes commit and are delivered meanwhile.
    let bobs = honest(&s, "bob", 5).await;
    let delivered = s.dave.deltas_until(*bobs.last().expect("ids"), LIVENESS).await;
    assert_eq!(delivered, bobs);
    // Alice waits for her own hook: it is still blocked.
    assert!(!alice.is_finished(), "the response came before its after-hook finished");
    s.hooks.release.notify_one();
    let (status, body) = alice.await.expect("alice's request");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"lastSyncId": hers.to_string(), "results": [{"clientTxId": batch["transactions"][0]["clientTxId"],
               "success": true, "syncId": hers.to_string(), "warnings": ["onAfterMutation hook failed: webhook failed"]}],
               "success": true})
    );
}

async fn a_row_lock_held_elsewhere_fails_only_the_waiting_request(adapter: Adapter) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let mut s = setup(adapter).await;
    let task = new_id();
    let reply = post(
        &s.server,
        "alice",
        &mutate_body(vec![transaction("INSERT", "Task", &task, json!({"workspaceId": s.ws, "title": "locked"}))]),
    )
    .await;
    assert_eq!(reply.status, 200);

    let mut locker = AsyncPgConnection::establish(&s.db.url).await.expect("connect");
    locker
        .batch_execute(&format!("BEGIN; SELECT id FROM tasks WHERE id = '{task}' FOR UPDATE"))
        .await
        .expect("lock the row");
    let update = mutate_body(vec![transaction("UPDATE", "Task", &task, json!({"title": "renamed"}))]);
    let (alice, _) = futures_util::join!(post(&s.server, "alice", &update), honest(&s, "bob", 5));
    assert_eq!((alice.status, alice.retry_after.as_deref()), (503, Some("1")), "{}", alice.body);
    assert_eq!(alice.body["message"], json!("Mutation could not complete now; retry later"));
    assert_eq!(s.db.scalar(&format!("SELECT count(*) FROM tasks WHERE id = '{task}' AND title = 'locked'")).await, 1);

    // Once the lock is gone, the client's retry goes through.
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    let retry = post(&s.server, "alice", &update).await;
    assert_eq!((retry.status, &retry.body["success"]), (200, &json!(true)), "{}", retry.body);
    all_delivered(&mut s).await;
}

async fn a_transaction_the_log_cannot_store_fails_alone(adapter: Adapter) {
    let mut s = setup(adapter).await;
    let batch = mutate_body(vec![
        insert("Task", &s.ws, "first"),
        insert("HookedTask", &s.ws, "unloggable"),
        insert("Task", &s.ws, "third"),
    ]);
    let (alice, _) = futures_util::join!(post(&s.server, "alice", &batch), honest(&s, "bob", 5));
    assert_eq!(alice.status, 200, "{}", alice.body);
    let results = &alice.body["results"];
    assert_eq!(results[0]["success"], json!(true), "{}", alice.body);
    assert_eq!(results[1]["error"], json!("Mutation failed"));
    assert_eq!(results[2]["success"], json!(true));
    assert_eq!(s.db.scalar("SELECT count(*) FROM tasks WHERE title = 'unloggable'").await, 0);
    assert_eq!(s.db.scalar("SELECT count(*) FROM tasks WHERE title IN ('first', 'third')").await, 2);
    all_delivered(&mut s).await;
}

on_both_adapters!(
    a_panicking_hook_fails_only_its_transaction,
    a_panic_elsewhere_on_the_lane_fails_only_its_own_transaction,
    a_before_hook_that_overruns_fails_only_its_own_request,
    a_slow_after_hook_delays_only_its_own_response,
    a_row_lock_held_elsewhere_fails_only_the_waiting_request,
    a_transaction_the_log_cannot_store_fails_alone,
);
