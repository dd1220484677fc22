//! Group integrity against the real PostgreSQL: declared references
//! (`#[sync(references = ...)]`) are checked inside the row's own group,
//! and ids are accepted in their canonical spelling only, so reads, writes
//! and the log agree on every id.

use diesel::prelude::*;
use diesel_async::{AnsiTransactionManager, TransactionManager};
use serde_json::{json, Value};
use stratasync_core::__private::Referenceable;
use stratasync_core::engine::BootstrapParams;
use stratasync_core::engine::{BatchItem, BatchParams};
use stratasync_core::protocol::MutationAction::{Archive, Delete, Insert, Update};
use stratasync_core::{Registry, SyncEngine, SyncModel};
use stratasync_tests::*;
use taskboard::Task;
use uuid::Uuid;

mod schema {
    diesel::table! {
        notes (id) {
            id -> Uuid,
            workspace_id -> Uuid,
            task_id -> Nullable<Uuid>,
            body -> Text,
        }
    }
}

use schema::notes;

/// A note that may point at a task of its workspace, and be re-pointed by
/// updates (an optional reference on an update field).
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = notes)]
#[sync(name = "Note", group = workspace_id, actions(insert, update))]
struct Note {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(insert, update, references = Task)]
    task_id: Option<Uuid>,
    #[sync(insert, update)]
    body: String,
}

const REFERENCE_NOT_FOUND: &str = "Invalid mutation: referenced record not found";
const NON_CANONICAL_MODEL_ID: &str =
    "Invalid mutation: modelId must be in canonical form (as the server writes it: a UUID in lower case with hyphens, an integer without sign or leading zeros)";

async fn workspace(db: &TestDb) -> String {
    stratasync_tests::ws_support::workspace(db, &[]).await
}

/// A task and a label in `ws`, inserted by a member.
async fn task_and_label(engine: &stratasync_core::SyncEngine, ws: &str) -> (String, String) {
    let (task, label) = (new_id(), new_id());
    let res = mutate(
        engine,
        &user("owner", &[ws]),
        vec![
            tx(Insert, "Task", &task, json!({"workspaceId": ws, "title": "t"})),
            tx(Insert, "Label", &label, json!({"workspaceId": ws, "name": "n", "color": "c"})),
        ],
    )
    .await;
    assert!(res.success, "{res:?}");
    (task, label)
}

fn link(task: &str, label: &str, ws: &str) -> stratasync_core::protocol::TransactionInput {
    tx(Insert, "TaskLabel", "x", json!({"taskId": task, "labelId": label, "workspaceId": ws}))
}

fn error_of(res: &stratasync_core::protocol::MutateResponse) -> Value {
    to_json(res)["results"][0]["error"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn task_labels_link_only_tasks_and_labels_of_their_own_workspace() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let (ws_a, ws_b) = (workspace(&db).await, workspace(&db).await);
    let (task_a, label_a) = task_and_label(&engine, &ws_a).await;
    let (task_b, label_b) = task_and_label(&engine, &ws_b).await;
    let before = db.fingerprint().await;

    // Alice, a member of A only, names B's rows in a link of A; Carol is a
    // member of both and still cannot link across them.
    let alice = user("alice", &[&ws_a]);
    let carol = user("carol", &[&ws_a, &ws_b]);
    let cases = [
        (&alice, link(&task_b, &label_a, &ws_a), "another workspace's task"),
        (&alice, link(&task_a, &label_b, &ws_a), "another workspace's label"),
        (&alice, link(&task_b, &label_b, &ws_a), "another workspace's task and label"),
        (&carol, link(&task_a, &label_b, &ws_a), "a label of another workspace the caller is in"),
        (&carol, link(&task_a, &label_b, &ws_b), "a task of another workspace the caller is in"),
        (&alice, link(&new_id(), &label_a, &ws_a), "a missing task"),
        (&alice, link(&task_a, &new_id(), &ws_a), "a missing label"),
    ];
    for (who, transaction, what) in cases {
        let res = mutate(&engine, who, vec![transaction]).await;
        assert_eq!(error_of(&res), json!(REFERENCE_NOT_FOUND), "{what}: {res:?}");
        assert_eq!(to_json(&res)["lastSyncId"], json!("0"), "{what}");
    }
    assert_eq!(db.fingerprint().await, before, "a refused link wrote something");

    // Within its own workspace the link works, and is logged there.
    let res = mutate(&engine, &alice, vec![link(&task_a, &label_a, &ws_a)]).await;
    assert!(res.success, "{res:?}");
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM task_labels WHERE task_id = '{task_a}' AND label_id = '{label_a}' \
             AND workspace_id = '{ws_a}'"
        ))
        .await,
        1
    );
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM sync_actions WHERE model = 'TaskLabel' AND group_id = '{ws_a}'"))
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_reference_fails_only_its_own_transaction() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let (ws_a, ws_b) = (workspace(&db).await, workspace(&db).await);
    let (task_a, label_a) = task_and_label(&engine, &ws_a).await;
    let (task_b, _) = task_and_label(&engine, &ws_b).await;
    let alice = user("alice", &[&ws_a]);
    let res = mutate(&engine, &alice, vec![link(&task_b, &label_a, &ws_a), link(&task_a, &label_a, &ws_a)]).await;
    let results = &to_json(&res)["results"];
    assert_eq!(results[0]["error"], json!(REFERENCE_NOT_FOUND));
    assert_eq!(results[1]["success"], json!(true), "{res:?}");
    assert_eq!(db.scalar("SELECT count(*) FROM task_labels").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_check_locks_the_referenced_row_until_commit() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let (ws_a, ws_b) = (workspace(&db).await, workspace(&db).await);
    let (task_a, _) = task_and_label(&engine, &ws_a).await;
    let (id, group) = (task_a.parse().unwrap(), ws_a.parse().unwrap());

    let mut checking = db.pool.get().await.unwrap();
    AnsiTransactionManager::begin_transaction(&mut *checking).await.unwrap();
    assert!(Task::lock_in_group(&mut checking, &id, &group).await.unwrap(), "the task is in its workspace");
    assert!(!Task::lock_in_group(&mut checking, &id, &ws_b.parse().unwrap()).await.unwrap(), "not in another");

    // Another session cannot delete or re-key the task while the checking
    // transaction is open (NOWAIT: the lock conflict is the answer).
    let lock_it = format!("BEGIN; SELECT 1 FROM tasks WHERE id = '{task_a}' FOR UPDATE NOWAIT; ROLLBACK");
    let conflict = {
        use diesel_async::SimpleAsyncConnection;
        let mut other = db.pool.get().await.unwrap();
        other.batch_execute(&lock_it).await.map_err(|e| e.to_string())
    };
    assert!(conflict.as_ref().is_err_and(|e| e.contains("could not obtain lock")), "{conflict:?}");
    AnsiTransactionManager::rollback_transaction(&mut *checking).await.unwrap();
    db.execute(&lock_it).await;
}

/// Other spellings of `id`: upper case, braces, URN, without hyphens.
fn other_spellings(id: &str) -> [String; 4] {
    [id.to_uppercase(), format!("{{{id}}}"), format!("urn:uuid:{id}"), id.replace('-', "")]
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_refuse_other_spellings_of_ids_and_keys() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let (task, label) = task_and_label(&engine, &ws).await;
    let alice = user("alice", &[&ws]);
    let before = db.fingerprint().await;
    let fresh = new_id();
    for spelled in other_spellings(&fresh) {
        let res =
            mutate(&engine, &alice, vec![tx(Insert, "Task", &spelled, json!({"workspaceId": ws, "title": "t"}))]).await;
        assert_eq!(error_of(&res), json!(NON_CANONICAL_MODEL_ID), "insert as {spelled}");
    }
    for spelled in other_spellings(&task) {
        for (action, payload) in [
            (Update, json!({"title": "u"})),
            (Archive, json!({"archivedAt": 1_700_000_000_000i64})),
            (Delete, json!({})),
        ] {
            let res = mutate(&engine, &alice, vec![tx(action, "Task", &spelled, payload)]).await;
            assert_eq!(error_of(&res), json!(NON_CANONICAL_MODEL_ID), "{action:?} as {spelled}");
        }
    }
    for spelled in other_spellings(&ws) {
        let res =
            mutate(&engine, &alice, vec![tx(Insert, "Task", &fresh, json!({"workspaceId": spelled, "title": "t"}))])
                .await;
        assert_eq!(error_of(&res), json!("Invalid uuid value for workspaceId"), "{spelled}");
    }
    for spelled in other_spellings(&task) {
        let res = mutate(&engine, &alice, vec![link(&spelled, &label, &ws)]).await;
        assert_eq!(error_of(&res), json!("Invalid uuid value for taskId"), "{spelled}");
    }
    let res = mutate(&engine, &alice, vec![link(&task, &label, &ws)]).await;
    assert!(res.success, "{res:?}");
    let linked = db.fingerprint().await;
    for spelled in other_spellings(&label) {
        let res =
            mutate(&engine, &alice, vec![tx(Delete, "TaskLabel", "x", json!({"taskId": task, "labelId": spelled}))])
                .await;
        assert_eq!(error_of(&res), json!("Invalid uuid value for labelId"), "{spelled}");
    }
    assert_eq!(db.fingerprint().await, linked, "a refused spelling wrote something");
    assert_ne!(linked, before);
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM sync_actions WHERE model_id !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' \
             OR group_id !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"
        )
        .await,
        0,
        "the log holds canonical ids only"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_match_nothing_for_other_spellings() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let (task, label) = task_and_label(&engine, &ws).await;
    assert!(mutate(&engine, &user("owner", &[&ws]), vec![link(&task, &label, &ws)]).await.success);
    let alice = user("alice", &[&ws]);
    let batch = |items: Vec<BatchItem>| engine.batch(&alice, BatchParams { first_sync_id: None, requests: items });
    let indexed = |model: &str, key: &str, value: &str| BatchItem::Indexed {
        indexed_key: key.into(),
        key_value: value.into(),
        model_name: model.into(),
    };

    // The canonical spellings find the rows ...
    let lines = collect_lines(batch(vec![
        indexed("Task", "id", &task),
        indexed("TaskLabel", "taskId", &task),
        indexed("Label", "workspaceId", &ws),
        BatchItem::Group { group_id: ws.clone(), model_name: "Task".into() },
    ]))
    .await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    // ... the others nothing.
    for spelled in other_spellings(&task) {
        let lines =
            collect_lines(batch(vec![indexed("Task", "id", &spelled), indexed("TaskLabel", "taskId", &spelled)])).await;
        assert_eq!(lines, Vec::<Value>::new(), "{spelled}");
    }
    for spelled in other_spellings(&ws) {
        let lines = collect_lines(batch(vec![
            indexed("Label", "workspaceId", &spelled),
            BatchItem::Group { group_id: spelled.clone(), model_name: "Task".into() },
        ]))
        .await;
        assert_eq!(lines, Vec::<Value>::new(), "{spelled}");

        // A caller whose membership is spelled another way sees no rows
        // of the workspace either.
        let odd = user("odd", &[&spelled]);
        let params = BootstrapParams { only_models: Some(vec!["Task".into(), "Label".into()]), ..Default::default() };
        let lines = collect_lines(engine.bootstrap(&odd, params)).await;
        assert_eq!(lines.len(), 1, "only the metadata line: {lines:?}");
        assert_eq!(lines[0]["returnedModelsCount"], json!({"Task": 0, "Label": 0}), "{spelled}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_check_references_in_the_rows_group_and_null_references_nothing() {
    let db = TestDb::new().await;
    db.execute(
        "CREATE TABLE notes (id uuid PRIMARY KEY, workspace_id uuid NOT NULL, task_id uuid, body text NOT NULL DEFAULT '')",
    )
    .await;
    let registry = Registry::builder().model::<Task>().model::<taskboard::Label>().model::<Note>().build();
    let engine = SyncEngine::builder(db.pool.clone(), registry, taskboard::DevAuth::default())
        .start()
        .expect("the engine starts");
    let (ws_a, ws_b) = (workspace(&db).await, workspace(&db).await);
    let (task_a, _) = task_and_label(&engine, &ws_a).await;
    let (other_a, _) = task_and_label(&engine, &ws_a).await;
    let (task_b, _) = task_and_label(&engine, &ws_b).await;
    let alice = user("alice", &[&ws_a]);
    let note = new_id();
    let pointing_at_task_a = format!("SELECT count(*) FROM notes WHERE task_id = '{task_a}'");

    let res =
        mutate(&engine, &alice, vec![tx(Insert, "Note", &new_id(), json!({"workspaceId": ws_a, "taskId": task_b}))])
            .await;
    assert_eq!(error_of(&res), json!(REFERENCE_NOT_FOUND), "insert pointing into another workspace");
    let res =
        mutate(&engine, &alice, vec![tx(Insert, "Note", &note, json!({"workspaceId": ws_a, "taskId": task_a}))]).await;
    assert!(res.success, "{res:?}");
    let res =
        mutate(&engine, &alice, vec![tx(Insert, "Note", &new_id(), json!({"workspaceId": ws_a, "taskId": null}))])
            .await;
    assert!(res.success, "a null reference references nothing: {res:?}");

    let before = db.fingerprint().await;
    for (target, what) in [(task_b.clone(), "another workspace's task"), (new_id(), "a missing task")] {
        let res =
            mutate(&engine, &alice, vec![tx(Update, "Note", &note, json!({"taskId": target, "body": "x"}))]).await;
        assert_eq!(error_of(&res), json!(REFERENCE_NOT_FOUND), "update to {what}");
    }
    assert_eq!(db.fingerprint().await, before, "a refused update wrote something");
    assert_eq!(db.scalar(&pointing_at_task_a).await, 1);

    for (payload, what) in [
        (json!({"body": "only the body"}), "an update that leaves the reference alone"),
        (json!({"taskId": other_a}), "another task of the workspace"),
        (json!({"taskId": null}), "no task"),
    ] {
        let res = mutate(&engine, &alice, vec![tx(Update, "Note", &note, payload)]).await;
        assert!(res.success, "{what}: {res:?}");
    }
    assert_eq!(db.scalar(&pointing_at_task_a).await, 0);
}
