//! Mutation hooks: rewriting the typed insert and patch, rejecting (also
//! on the row as stored), running in the transaction, after-mutation
//! warnings, and which hooks run for every action of a standard and of a
//! composite model (global, `group = own` and non-UUID
//! id models: `hooks_model_kinds.rs`).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};
use std::sync::Mutex;
use stratasync_core::model::{HookContext, HookError, JsonObject, ModelHooks, MutationEvent, SyncChanges};
use stratasync_core::protocol::MutationAction::{Archive, Delete, Insert, Unarchive, Update};
use stratasync_core::{Registry, SyncEngine, SyncModel};
use stratasync_tests::*;
use taskboard::schema::{task_labels, tasks};
use uuid::Uuid;

/// Hooks that uppercase titles, refuse "forbidden" titles and deletes of
/// pinned tasks, count calls in the database, and fail after "boom".
#[derive(Default)]
struct TitleHooks;

#[async_trait]
impl ModelHooks<HookedTask> for TitleHooks {
    async fn before_insert(&self, cx: &mut HookContext<'_>, insert: &mut HookedTaskChanges) -> Result<(), HookError> {
        shout(&mut insert.title)?;
        use diesel_async::SimpleAsyncConnection;
        // Runs in the mutation's transaction: rolled back with it.
        cx.conn.batch_execute("INSERT INTO labels (id, workspace_id, name, color) SELECT gen_random_uuid(), id, 'hook', 'x' FROM workspaces LIMIT 1").await.map_err(|e| HookError::Internal(Box::new(e)))?;
        Ok(())
    }

    async fn before_update(
        &self,
        _cx: &mut HookContext<'_>,
        current: &HookedTask,
        patch: &mut HookedTaskChanges,
    ) -> Result<(), HookError> {
        // The stored row, as it is before this update.
        if current.title == "LOCKED" {
            return Err(HookError::Reject(format!("{} is locked", current.id)));
        }
        shout(&mut patch.title)
    }

    async fn before_delete(&self, cx: &mut HookContext<'_>, _current: &HookedTask) -> Result<(), HookError> {
        if cx.payload.get("pinned") == Some(&json!(true)) {
            return Err(HookError::Reject(format!("{} may not delete pinned tasks", cx.user.user_id())));
        }
        Ok(())
    }

    async fn after_mutation(&self, event: &MutationEvent<'_>) -> Result<(), HookError> {
        if event.data.get("title") == Some(&json!("BOOM")) {
            return Err(HookError::Reject("boom".into()));
        }
        Ok(())
    }
}

fn shout(title: &mut Option<String>) -> Result<(), HookError> {
    if let Some(title) = title {
        if title == "forbidden" {
            return Err(HookError::Reject("Title is not allowed".into()));
        }
        if title == "crash" {
            return Err(HookError::Internal("database password is hunter2".into()));
        }
        *title = title.to_uppercase();
    }
    Ok(())
}

/// The example's tasks table under another model name, with hooks.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(name = "HookedTask", group = workspace_id, actions(insert, update, delete), hooks = TitleHooks)]
#[allow(dead_code)]
struct HookedTask {
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

#[tokio::test(flavor = "multi_thread")]
async fn hooks_rewrite_reject_and_warn() {
    let db = TestDb::new().await;
    let engine = SyncEngine::builder(
        db.pool.clone(),
        Registry::builder().model::<HookedTask>().build(),
        taskboard::DevAuth::default(),
    )
    .start()
    .expect("the engine starts");
    let ws = new_id();
    db.execute(&format!("INSERT INTO workspaces (id, name) VALUES ('{ws}', 'W')")).await;
    let alice = user("alice", &[&ws]);
    let id = new_id();

    let res =
        mutate(&engine, &alice, vec![tx(Insert, "HookedTask", &id, json!({"workspaceId": ws, "title": "quiet"}))])
            .await;
    assert!(res.success, "{res:?}");
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM tasks WHERE id = '{id}' AND title = 'QUIET'")).await, 1);
    assert_eq!(db.scalar("SELECT count(*) FROM labels").await, 1, "the hook wrote in the transaction");
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions WHERE data->>'title' = 'QUIET'").await, 1);

    let before = db.fingerprint().await;
    let res = mutate(
        &engine,
        &alice,
        vec![tx(Insert, "HookedTask", &new_id(), json!({"workspaceId": ws, "title": "forbidden"}))],
    )
    .await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Title is not allowed"));
    let res = mutate(
        &engine,
        &alice,
        vec![tx(Insert, "HookedTask", &new_id(), json!({"workspaceId": ws, "title": "crash"}))],
    )
    .await;
    assert_eq!(
        to_json(&res)["results"][0]["error"],
        json!("Mutation rejected by hook"),
        "internal hook errors are not shown"
    );
    let res = mutate(&engine, &alice, vec![tx(Update, "HookedTask", &id, json!({"title": "forbidden"}))]).await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Title is not allowed"));
    let res = mutate(&engine, &alice, vec![tx(Delete, "HookedTask", &id, json!({"pinned": true}))]).await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("alice may not delete pinned tasks"));
    assert_eq!(db.fingerprint().await, before, "rejections roll back the hook's own writes too");

    let res = mutate(&engine, &alice, vec![tx(Update, "HookedTask", &id, json!({"title": "boom"}))]).await;
    let body = to_json(&res);
    assert_eq!(body["results"][0]["success"], json!(true));
    assert_eq!(body["results"][0]["warnings"], json!(["onAfterMutation hook failed: boom"]));
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM tasks WHERE id = '{id}' AND title = 'BOOM'")).await, 1);

    // `before_update` sees the row as stored: once its title is LOCKED,
    // the hook refuses any further update, whatever the patch says.
    let res = mutate(&engine, &alice, vec![tx(Update, "HookedTask", &id, json!({"title": "locked"}))]).await;
    assert!(res.success, "{res:?}");
    let before = db.fingerprint().await;
    let res = mutate(&engine, &alice, vec![tx(Update, "HookedTask", &id, json!({"title": "free"}))]).await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!(format!("{id} is locked")));
    assert_eq!(db.fingerprint().await, before, "the refused update changed nothing");
}

/// Hooks that move a row to the workspace named in the payload's `moveTo`.
#[derive(Default)]
struct MovingHooks;

fn move_to(payload: &JsonObject, workspace_id: &mut Option<Uuid>) {
    if let Some(target) = payload.get("moveTo").and_then(Value::as_str).and_then(|t| Uuid::parse_str(t).ok()) {
        *workspace_id = Some(target);
    }
}

#[async_trait]
impl ModelHooks<MovingTask> for MovingHooks {
    async fn before_insert(&self, cx: &mut HookContext<'_>, insert: &mut MovingTaskChanges) -> Result<(), HookError> {
        move_to(cx.payload, &mut insert.workspace_id);
        Ok(())
    }

    async fn before_update(
        &self,
        cx: &mut HookContext<'_>,
        _current: &MovingTask,
        patch: &mut MovingTaskChanges,
    ) -> Result<(), HookError> {
        move_to(cx.payload, &mut patch.workspace_id);
        Ok(())
    }
}

/// The example's tasks table under another model name, with moving hooks.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(name = "MovingTask", group = workspace_id, actions(insert, update), hooks = MovingHooks)]
#[allow(dead_code)]
struct MovingTask {
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

#[tokio::test(flavor = "multi_thread")]
async fn rows_are_logged_in_the_group_they_are_stored_in() {
    let db = TestDb::new().await;
    let engine = SyncEngine::builder(
        db.pool.clone(),
        Registry::builder().model::<MovingTask>().build(),
        taskboard::DevAuth::default(),
    )
    .start()
    .expect("the engine starts");
    let (home, other, foreign) = (new_id(), new_id(), new_id());
    db.execute(&format!(
        "INSERT INTO workspaces (id, name) VALUES ('{home}', 'H'), ('{other}', 'O'), ('{foreign}', 'F')"
    ))
    .await;
    let alice = user("alice", &[&home, &other]);

    // A before-insert hook moves the row: it is stored and logged in the
    // final group, which the caller must be allowed to write.
    let id = new_id();
    let res = mutate(
        &engine,
        &alice,
        vec![tx(Insert, "MovingTask", &id, json!({"workspaceId": home, "title": "t", "moveTo": other}))],
    )
    .await;
    assert!(res.success, "{res:?}");
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM tasks WHERE id = '{id}' AND workspace_id = '{other}'")).await,
        1
    );
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM sync_actions WHERE model_id = '{id}' AND group_id = '{other}'")).await,
        1,
        "logged under the group it is stored in"
    );

    let before = db.fingerprint().await;
    let res = mutate(
        &engine,
        &alice,
        vec![tx(Insert, "MovingTask", &new_id(), json!({"workspaceId": home, "title": "t", "moveTo": foreign}))],
    )
    .await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Access denied"));

    // An update may not move a row to another group, whoever asks.
    let res = mutate(&engine, &alice, vec![tx(Update, "MovingTask", &id, json!({"title": "u", "moveTo": home}))]).await;
    assert_eq!(
        to_json(&res)["results"][0]["error"],
        json!("Invalid mutation: the group of a record cannot be changed")
    );
    assert_eq!(db.fingerprint().await, before, "refused moves changed the database");

    // Naming the row's own group is no move.
    let res =
        mutate(&engine, &alice, vec![tx(Update, "MovingTask", &id, json!({"title": "u", "moveTo": other}))]).await;
    assert!(res.success, "{res:?}");
}

/// Every call of [`Recording`]'s hooks, in order.
static CALLS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record(call: String) {
    CALLS.lock().unwrap_or_else(|e| e.into_inner()).push(call);
}

/// Hooks that record each call and change nothing.
#[derive(Default)]
struct Recording;

/// The stored row as the hooks see it, in wire form.
fn row<M: SyncModel>(current: &M) -> Value {
    Value::Object(current.to_data())
}

#[async_trait]
impl<M: SyncModel> ModelHooks<M> for Recording {
    async fn before_insert(&self, cx: &mut HookContext<'_>, insert: &mut M::Changes) -> Result<(), HookError> {
        record(format!("before_insert {} {}", cx.model_id, Value::Object(insert.to_data())));
        Ok(())
    }

    async fn before_update(
        &self,
        cx: &mut HookContext<'_>,
        current: &M,
        patch: &mut M::Changes,
    ) -> Result<(), HookError> {
        record(format!("before_update {} {} {}", cx.model_id, row(current), Value::Object(patch.to_data())));
        Ok(())
    }

    async fn before_delete(&self, cx: &mut HookContext<'_>, current: &M) -> Result<(), HookError> {
        record(format!("before_delete {} {}", cx.model_id, row(current)));
        Ok(())
    }

    async fn before_archive(&self, cx: &mut HookContext<'_>, current: &M) -> Result<(), HookError> {
        record(format!("before_archive {} {}", cx.model_id, row(current)));
        Ok(())
    }

    async fn before_unarchive(&self, cx: &mut HookContext<'_>, current: &M) -> Result<(), HookError> {
        record(format!("before_unarchive {} {}", cx.model_id, row(current)));
        Ok(())
    }

    async fn after_mutation(&self, event: &MutationEvent<'_>) -> Result<(), HookError> {
        record(format!(
            "after {} {:?} {} #{} {}",
            event.model_name,
            event.action,
            event.model_id,
            event.sync_id,
            Value::Object(event.data.clone())
        ));
        Ok(())
    }
}

/// A standard model accepting every action, with recording hooks.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(name = "RecordedTask", group = workspace_id, actions(insert, update, delete, archive, unarchive), hooks = Recording)]
#[allow(dead_code)]
struct RecordedTask {
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
    archived_at: Option<DateTime<Utc>>,
    #[sync(skip)]
    created_at: DateTime<Utc>,
}

/// A composite model (both of its actions), with recording hooks.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = task_labels)]
#[sync(name = "RecordedTaskLabel", group = workspace_id, actions(insert, delete), cursor(task_id, label_id), hooks = Recording)]
#[allow(dead_code)]
struct RecordedTaskLabel {
    #[sync(insert)]
    task_id: Uuid,
    #[sync(insert)]
    label_id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(skip)]
    created_at: DateTime<Utc>,
}

/// The contract, for every action of both model kinds: each action runs
/// its `before_*` hook before the write, with the canonical id, the typed
/// insert or patch, and the stored row as it was before the action (the
/// composite model's too); `after_mutation` runs once after every
/// committed action, with its sync id and logged data.
#[tokio::test(flavor = "multi_thread")]
async fn hooks_run_for_every_action_and_model_kind() {
    let db = TestDb::new().await;
    let engine = SyncEngine::builder(
        db.pool.clone(),
        Registry::builder().model::<RecordedTask>().model::<RecordedTaskLabel>().build(),
        taskboard::DevAuth::default(),
    )
    .start()
    .expect("the engine starts");
    let (ws, label) = (new_id(), new_id());
    db.execute(&format!(
        "INSERT INTO workspaces (id, name) VALUES ('{ws}', 'W'); \
         INSERT INTO labels (id, workspace_id, name, color) VALUES ('{label}', '{ws}', 'l', 'c')"
    ))
    .await;
    let alice = user("alice", &[&ws]);
    let task = new_id();
    let link = json!({"taskId": task, "labelId": label, "workspaceId": ws});
    let canonical = stratasync_core::composite_id::composite_id("RecordedTaskLabel", &[&task, &label]);
    let steps = vec![
        tx(Insert, "RecordedTask", &task, json!({"workspaceId": ws, "title": "t"})),
        tx(Update, "RecordedTask", &task, json!({"title": "u"})),
        tx(Archive, "RecordedTask", &task, json!({"archivedAt": 1718452800123i64})),
        tx(Unarchive, "RecordedTask", &task, json!({})),
        tx(Insert, "RecordedTaskLabel", "client-id", link.clone()),
        tx(Delete, "RecordedTaskLabel", &canonical, link),
        tx(Delete, "RecordedTask", &task, json!({})),
    ];
    CALLS.lock().unwrap().clear();
    for step in steps {
        let res = mutate(&engine, &alice, vec![step]).await;
        assert!(res.success, "{}", to_json(&res));
    }
    let calls = std::mem::take(&mut *CALLS.lock().unwrap());
    let inserted = format!(r#"{{"id":"{task}","workspaceId":"{ws}","title":"t"}}"#);
    // The typed insert holds the fields, not the id (the context's `model_id`).
    let typed = format!(r#"{{"workspaceId":"{ws}","title":"t"}}"#);
    let stored = |title: &str, archived: &str| {
        format!(r#"{{"id":"{task}","workspaceId":"{ws}","title":"{title}","archivedAt":{archived}}}"#)
    };
    let row = stored("u", "null");
    let linked = format!(r#"{{"taskId":"{task}","labelId":"{label}","workspaceId":"{ws}"}}"#);
    // A delete logs the row as stored, in wire form: a composite row with
    // its sync id appended.
    let deleted_link = format!(r#"{{"taskId":"{task}","labelId":"{label}","workspaceId":"{ws}","id":"{canonical}"}}"#);
    assert_eq!(
        calls,
        [
            format!("before_insert {task} {typed}"),
            format!("after RecordedTask Insert {task} #1 {inserted}"),
            format!(r#"before_update {task} {} {{"title":"u"}}"#, stored("t", "null")),
            format!(r#"after RecordedTask Update {task} #2 {{"title":"u"}}"#),
            format!("before_archive {task} {row}"),
            format!(r#"after RecordedTask Archive {task} #3 {{"archivedAt":1718452800123}}"#),
            format!("before_unarchive {task} {}", stored("u", "1718452800123")),
            format!(r#"after RecordedTask Unarchive {task} #4 {{"archivedAt":null}}"#),
            format!("before_insert {canonical} {linked}"),
            format!("after RecordedTaskLabel Insert {canonical} #5 {linked}"),
            format!("before_delete {canonical} {deleted_link}"),
            format!("after RecordedTaskLabel Delete {canonical} #6 {deleted_link}"),
            format!("before_delete {task} {row}"),
            format!("after RecordedTask Delete {task} #7 {row}"),
        ]
    );
}
