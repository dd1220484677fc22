//! Writes from server code (`stratasync_core::write`): inside the
//! application's own transaction, through the codecs, group checks, hooks
//! and log of client mutations, and on to live subscribers.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use serde_json::{json, Value};
use std::sync::Mutex;
use stratasync_core::model::{HookContext, HookError, JsonObject, ModelHooks, MutationEvent};
use stratasync_core::protocol::{ActionKind, MutationAction};
use stratasync_core::write::{Actor, Written};
use stratasync_core::{MutationError, Registry, SyncEngine, SyncModel};
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;
use taskboard::models::Task;
use taskboard::schema::tasks;
use uuid::Uuid;

fn object(value: Value) -> JsonObject {
    value.as_object().cloned().expect("an object")
}

/// What [`AuditHooks`] saw, in order.
static AUDIT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records each call, with whether the server itself wrote.
#[derive(Default)]
struct AuditHooks;

#[async_trait]
impl ModelHooks<AuditedTask> for AuditHooks {
    async fn before_insert(&self, cx: &mut HookContext<'_>, insert: &mut AuditedTaskChanges) -> Result<(), HookError> {
        let id = cx.model_id;
        AUDIT.lock().unwrap().push(format!("before_insert {id} system={} user={:?}", cx.system, cx.user.user_id()));
        if let Some(title) = &mut insert.title {
            *title = title.to_uppercase();
        }
        Ok(())
    }

    async fn after_mutation(&self, event: &MutationEvent<'_>) -> Result<(), HookError> {
        AUDIT.lock().unwrap().push(format!(
            "after_mutation {} {} {}",
            event.action.as_str(),
            event.model_id,
            event.sync_id
        ));
        if event.data.get("title") == Some(&json!("BOOM")) {
            return Err(HookError::Reject("boom".into()));
        }
        Ok(())
    }
}

/// The example's tasks under another model name, with [`AuditHooks`].
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(name = "AuditedTask", group = workspace_id, actions(insert, update, delete), hooks = AuditHooks)]
#[allow(dead_code)]
struct AuditedTask {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(insert, update)]
    title: String,
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

/// Why a test transaction was rolled back (its fields are shown through
/// `Debug` when an assertion fails).
#[derive(Debug)]
#[allow(dead_code)]
enum AppError {
    Write(MutationError),
    Db(diesel::result::Error),
    RolledBack,
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Db(e)
    }
}

impl From<MutationError> for AppError {
    fn from(e: MutationError) -> Self {
        AppError::Write(e)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_transaction_leaves_no_row_and_no_action() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let writer = engine.writer();
    let ws = workspace(&db, &[]).await;
    let mut bus = engine.subscribe_committed();
    let id = new_id();
    let mut conn = db.pool.get().await.unwrap();
    let mut receipts: Vec<Written> = Vec::new();
    let result: Result<(), AppError> = conn
        .transaction(async |conn| {
            conn.batch_execute(&format!("UPDATE workspaces SET name = 'renamed' WHERE id = '{ws}'")).await?;
            receipts.push(
                writer
                    .insert::<Task>(conn, Actor::System, &id, object(json!({"workspaceId": ws, "title": "t"})))
                    .await?,
            );
            Err(AppError::RolledBack)
        })
        .await;
    assert!(matches!(result, Err(AppError::RolledBack)), "{result:?}");
    assert_eq!(receipts.len(), 1, "the write itself succeeded inside the transaction");
    drop(conn);
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 0);
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 0);
    assert_eq!(db.text(&format!("SELECT name FROM workspaces WHERE id = '{ws}'")).await, "W");
    // Its receipt is ignored: nothing is published.
    assert_eq!(writer.committed(receipts).await.unwrap(), Vec::<String>::new());
    assert!(matches!(bus.try_recv(), Err(tokio::sync::broadcast::error::TryRecvError::Empty)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_write_is_logged_once_runs_hooks_and_is_published() {
    let db = TestDb::new().await;
    let engine = SyncEngine::builder(
        db.pool.clone(),
        Registry::builder().model::<AuditedTask>().build(),
        taskboard::DevAuth::default(),
    )
    .start()
    .expect("the engine starts");
    let writer = engine.writer();
    let ws = workspace(&db, &["alice"]).await;
    let mut bus = engine.subscribe_committed();
    let (id, boom) = (new_id(), new_id());
    let mut conn = db.pool.get().await.unwrap();
    let receipts: Vec<Written> = conn
        .transaction(async |conn| {
            // The application's own table and synced rows, atomically.
            conn.batch_execute(&format!("UPDATE workspaces SET name = 'busy' WHERE id = '{ws}'")).await?;
            let a = writer
                .insert::<AuditedTask>(conn, Actor::System, &id, object(json!({"workspaceId": ws, "title": "hi"})))
                .await?;
            let b = writer
                .insert::<AuditedTask>(conn, Actor::System, &boom, object(json!({"workspaceId": ws, "title": "boom"})))
                .await?;
            Ok::<_, AppError>(vec![a, b])
        })
        .await
        .unwrap();
    drop(conn);
    let warnings = writer.committed(receipts.clone()).await.unwrap();
    assert_eq!(warnings, ["onAfterMutation hook failed: boom"]);

    let (first, second) = (receipts[0].sync_id().0, receipts[1].sync_id().0);
    assert_eq!((first, second), (1, 2));
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 2);
    assert_eq!(
        db.text("SELECT string_agg(concat_ws(' ', action, model, model_id, group_id, data->>'title', client_id), ',' ORDER BY id) FROM sync_actions").await,
        format!("I AuditedTask {id} {ws} HI,I AuditedTask {boom} {ws} BOOM")
    );
    assert_eq!(db.text(&format!("SELECT title FROM tasks WHERE id = '{id}'")).await, "HI");
    assert_eq!(db.text(&format!("SELECT name FROM workspaces WHERE id = '{ws}'")).await, "busy");
    let audit: Vec<String> = AUDIT.lock().unwrap().clone();
    assert_eq!(
        audit,
        [
            format!("before_insert {id} system=true user=\"\""),
            format!("before_insert {boom} system=true user=\"\""),
            format!("after_mutation I {id} 1"),
            format!("after_mutation I {boom} 2"),
        ]
    );
    // Published on the bus once each, in order.
    assert_eq!(bus.try_recv().unwrap().sync_id.0, 1);
    assert_eq!(bus.try_recv().unwrap().sync_id.0, 2);
    assert!(bus.try_recv().is_err());
}

async fn a_committed_system_write_reaches_a_live_subscriber(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    let mut alice = server.connect("alice").await;
    alice.subscribe_ok("alice", 0, None).await;

    let writer = engine.writer();
    let id = new_id();
    let mut conn = db.pool.get().await.unwrap();
    let written = conn
        .transaction(async |conn| {
            writer
                .insert::<Task>(
                    conn,
                    Actor::System,
                    &id,
                    object(json!({"workspaceId": ws, "title": "from the server"})),
                )
                .await
        })
        .await
        .unwrap();
    drop(conn);
    writer.committed([written.clone()]).await.unwrap();
    let frame = alice.deltas(1, WAIT).await.remove(0);
    let action = &frame["packet"]["actions"][0];
    assert_eq!(sync_id(&frame), written.sync_id().0);
    assert_eq!((action["action"].as_str(), action["modelId"].as_str()), (Some("I"), Some(id.as_str())));
    assert_eq!(action["data"]["title"], "from the server");
    assert_eq!(action["groupId"], json!(ws));
    assert!(action.get("clientId").is_none(), "{action}");

    // Without `committed`, the feed's poll of the log still delivers.
    let mut conn = db.pool.get().await.unwrap();
    let updated =
        writer.update::<Task>(&mut conn, Actor::System, &id, object(json!({"title": "polled"}))).await.unwrap();
    drop(conn);
    let frame = alice.deltas(1, WAIT).await.remove(0);
    assert_eq!(sync_id(&frame), updated.sync_id().0);
    assert_eq!(frame["packet"]["actions"][0]["data"], json!({"title": "polled"}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_action_and_its_log_row() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let writer = engine.writer();
    let ws = workspace(&db, &[]).await;
    let id = new_id();
    let mut conn = db.pool.get().await.unwrap();
    let payload = object(json!({"workspaceId": ws, "title": "t", "priority": 2}));
    let steps = [
        writer.insert::<Task>(&mut conn, Actor::System, &id, payload).await.unwrap(),
        writer.update::<Task>(&mut conn, Actor::System, &id, object(json!({"priority": 3}))).await.unwrap(),
        writer
            .archive::<Task>(&mut conn, Actor::System, &id, DateTime::from_timestamp_millis(1_700_000_000_123).unwrap())
            .await
            .unwrap(),
        writer.unarchive::<Task>(&mut conn, Actor::System, &id).await.unwrap(),
        writer.delete::<Task>(&mut conn, Actor::System, &id).await.unwrap(),
    ];
    let letters: Vec<ActionKind> = steps.iter().map(|w| w.action().unwrap().action).collect();
    assert_eq!(
        letters,
        [ActionKind::Insert, ActionKind::Update, ActionKind::Archive, ActionKind::Unarchive, ActionKind::Delete]
    );
    assert_eq!(steps[2].action().unwrap().data, object(json!({"archivedAt": 1_700_000_000_123_i64})));
    assert_eq!(
        db.text("SELECT string_agg(action, '' ORDER BY id) FROM sync_actions").await,
        "IUAVD",
        "each write committed on its own (no transaction was open)"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 0);
}

/// A bad write gets the error a client mutation gets, and leaves the
/// application's transaction usable (the write ran in a savepoint).
#[tokio::test(flavor = "multi_thread")]
async fn bad_writes_get_the_client_mutations_typed_errors() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let writer = engine.writer();
    let (ws, foreign) = (workspace(&db, &["alice"]).await, workspace(&db, &[]).await);
    let alice = engine.authorize("token-alice").await.unwrap();
    let id = new_id();
    let cases: Vec<(MutationAction, &str, String, Value)> = vec![
        (MutationAction::Insert, "Task", id.clone(), json!({"workspaceId": ws, "title": 7})),
        (MutationAction::Insert, "Task", id.clone(), json!({"workspaceId": ws, "title": "t", "priority": 1.5})),
        (MutationAction::Insert, "Task", "NOT-A-UUID".into(), json!({"workspaceId": ws, "title": "t"})),
        (MutationAction::Insert, "Task", id.clone(), json!({"title": "t"})),
        (MutationAction::Insert, "Task", id.clone(), json!({"workspaceId": foreign, "title": "t"})),
        (MutationAction::Update, "Task", new_id(), json!({"title": "t"})),
        (MutationAction::Archive, "Task", id.clone(), json!({})),
        (MutationAction::Update, "Workspace", ws.clone(), json!({"name": "\u{0}"})),
        (MutationAction::Insert, "Nope", id.clone(), json!({})),
    ];
    let mut conn = db.pool.get().await.unwrap();
    let mut compared = 0;
    conn.transaction(async |conn| {
        for (action, model, model_id, payload) in &cases {
            let client = mutate(&engine, &alice, vec![tx(*action, model, model_id, payload.clone())]).await;
            let expected = to_json(&client.results[0]);
            assert_eq!(expected["success"], false, "{expected}");
            let got = writer
                .write(conn, Actor::User(&alice), (*action).into(), model, model_id, object(payload.clone()))
                .await
                .expect_err("the write fails like the client's");
            assert_eq!(json!(got.to_string()), expected["error"], "{action:?} {model} {payload}");
            compared += 1;
        }
        // As the system, the foreign workspace may be written; the
        // transaction is still usable after every failure above.
        writer.insert::<Task>(conn, Actor::System, &id, object(json!({"workspaceId": foreign, "title": "ok"}))).await?;
        Ok::<_, AppError>(())
    })
    .await
    .unwrap();
    assert_eq!(compared, cases.len());
    assert_eq!(
        db.text("SELECT string_agg(concat_ws(' ', action, group_id), ',') FROM sync_actions").await,
        format!("I {foreign}")
    );
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 1);
}

/// The README's "Writes from server code" example is the example app's
/// code, word for word (so it compiles, and `tasks create` runs it).
#[test]
fn the_readme_example_is_the_example_apps_code() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let section = readme.split("\n## Writes from server code\n").nth(1).expect("the README section");
    let code = section.split("```rust\n").nth(1).and_then(|rest| rest.split("```").next()).expect("its Rust block");
    let admin = std::fs::read_to_string(format!("{root}/examples/taskboard/src/admin.rs")).expect("admin.rs");
    assert!(code.lines().count() > 10 && admin.contains(code), "README block differs from admin.rs:\n{code}");
}

/// `taskboard::admin::create_task`, the code the README shows: a task
/// inserted as the system, logged once, and an unknown workspace refused
/// by the application's own check with nothing written.
#[tokio::test(flavor = "multi_thread")]
async fn the_examples_create_task_writes_as_the_system() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &[]).await;
    let written = taskboard::admin::create_task(&engine, ws.parse().unwrap(), "From the server").await.unwrap();
    let action = written.action().unwrap();
    assert_eq!((action.model_name.as_str(), action.group_id.as_deref()), ("Task", Some(ws.as_str())));
    assert_eq!(db.text("SELECT string_agg(title, ',') FROM tasks").await, "From the server");
    let missing = Uuid::new_v4();
    let err = taskboard::admin::create_task(&engine, missing, "x").await.unwrap_err();
    assert_eq!(err.to_string(), format!("no workspace {missing}"));
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 1);
}

on_both_adapters!(a_committed_system_write_reaches_a_live_subscriber,);
