//! Bootstrap streaming against the real PostgreSQL: format, paging across
//! pages for both cursor kinds, scoping, and snapshot consistency.

use futures_util::StreamExt;
use serde_json::{json, Value};
use stratasync_core::engine::{BootstrapKind, BootstrapParams};
use stratasync_core::protocol::MutationAction::{Delete, Insert, Update};
use stratasync_core::protocol::SyncId;
use stratasync_tests::*;
use taskboard::seed::{seed, SeedOptions};

fn params() -> BootstrapParams {
    BootstrapParams::default()
}

fn rows_of<'a>(lines: &'a [Value], class: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["__class"] == json!(class)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_then_rows_in_wire_format() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = "7d7f6c8e-0f4b-4a4e-9c59-2c3f0d1a2b3c";
    let task = "0a0a0a0a-0000-4000-8000-000000000001";
    let label = "0b0b0b0b-0000-4000-8000-000000000001";
    db.execute(&format!(
        "INSERT INTO workspaces (id, name, created_at) VALUES ('{ws}', 'W', '2024-06-15T12:00:00.123Z');
         INSERT INTO tasks (id, workspace_id, title, description, priority, due_date, completed_at, created_at)
           VALUES ('{task}', '{ws}', 'Hi \"there\"', NULL, 2, '2024-06-20', '2024-06-15T12:00:00Z', '2024-06-15T12:00:00Z');
         INSERT INTO labels (id, workspace_id, name, color) VALUES ('{label}', '{ws}', 'bug', '#f00');
         INSERT INTO task_labels (task_id, label_id, workspace_id, created_at) VALUES ('{task}', '{label}', '{ws}', '2024-06-15T12:00:00Z');"
    ))
    .await;
    let alice = user("alice", &[ws]);
    let mut p = params();
    // The client's hash is not echoed: the metadata carries the server's.
    p.schema_hash = "abc".to_owned();
    let hash = engine.schema_hash().to_owned();
    let mut stream = engine.bootstrap(&alice, p).await.expect("admitted");
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.expect("no error"));
    }
    let text = String::from_utf8(bytes).unwrap();
    let tl = stratasync_core::composite_id::composite_id("TaskLabel", &[task, label]);
    let expected = [
        format!(
            r#"{{"lastSyncId":"0","returnedModelsCount":{{"Workspace":1,"Task":1,"Label":1,"TaskLabel":1}},"schemaHash":"{hash}","subscribedSyncGroups":["{ws}","alice"]}}"#
        ),
        format!(r#"{{"__class":"Workspace","id":"{ws}","name":"W","createdAt":1718452800123}}"#),
        format!(
            r#"{{"__class":"Task","id":"{task}","workspaceId":"{ws}","title":"Hi \"there\"","description":null,"priority":2,"dueDate":1718841600000,"completedAt":1718452800000,"archivedAt":null,"createdAt":1718452800000}}"#
        ),
        format!(r##"{{"__class":"Label","id":"{label}","workspaceId":"{ws}","name":"bug","color":"#f00"}}"##),
        format!(
            r#"{{"__class":"TaskLabel","taskId":"{task}","labelId":"{label}","workspaceId":"{ws}","createdAt":1718452800000,"id":"{tl}"}}"#
        ),
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(text.ends_with('\n'));
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_through_thousands_of_rows_for_both_cursor_kinds() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let opts = SeedOptions::new(&["alice"], 2600);
    seed(&db.pool, &opts).await.unwrap();
    let ws = opts.workspace_id.to_string();
    let lines = collect_lines(engine.bootstrap(&user("alice", &[&ws]), params())).await;
    let tasks = rows_of(&lines, "Task");
    let links = rows_of(&lines, "TaskLabel");
    assert_eq!(tasks.len(), 2600);
    assert_eq!(links.len(), 2600);
    assert_eq!(rows_of(&lines, "Label").len(), 26);
    assert_eq!(lines[0]["returnedModelsCount"], json!({"Workspace": 1, "Task": 2600, "Label": 26, "TaskLabel": 2600}));
    let ids: Vec<&str> = tasks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "tasks stream in id order without repeats");
    let keys: Vec<(&str, &str)> =
        links.iter().map(|t| (t["taskId"].as_str().unwrap(), t["labelId"].as_str().unwrap())).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "task labels stream in (taskId, labelId) order");
    let distinct: std::collections::HashSet<&str> = links.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 2600, "composite ids are unique");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_models_and_groups_scope_the_stream() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let a = SeedOptions::new(&["alice"], 30);
    let b = SeedOptions::new(&["bob"], 20);
    seed(&db.pool, &a).await.unwrap();
    seed(&db.pool, &b).await.unwrap();
    let (ws_a, ws_b) = (a.workspace_id.to_string(), b.workspace_id.to_string());
    let alice = user("alice", &[&ws_a]);

    let lines = collect_lines(engine.bootstrap(&alice, params())).await;
    assert_eq!(rows_of(&lines, "Task").len(), 30, "bob's rows are not visible to alice");
    assert!(lines.iter().skip(1).all(|l| l["workspaceId"] == json!(ws_a) || l["id"] == json!(ws_a)));

    let mut p = params();
    p.only_models = Some(vec!["Label".into(), "Nope".into(), "Task".into()]);
    let lines = collect_lines(engine.bootstrap(&alice, p)).await;
    assert_eq!(lines[0]["returnedModelsCount"], json!({"Label": 1, "Nope": 0, "Task": 30}));
    let classes: Vec<&str> = lines[1..].iter().map(|l| l["__class"].as_str().unwrap()).collect();
    assert_eq!(classes.first(), Some(&"Label"));
    assert_eq!(classes.iter().filter(|c| **c == "Task").count(), 30);

    let mut p = params();
    p.only_models = Some(vec![]);
    let lines = collect_lines(engine.bootstrap(&alice, p)).await;
    assert_eq!(lines.len(), 1, "onlyModels= selects no model");

    // A syncGroups filter naming only groups alice is not in returns nothing.
    let mut p = params();
    p.sync_groups = Some(vec![ws_b.clone()]);
    let lines = collect_lines(engine.bootstrap(&alice, p)).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["subscribedSyncGroups"], json!([]));

    // Requested groups keep the request's order and duplicates.
    let mut p = params();
    p.sync_groups = Some(vec!["alice".into(), ws_a.clone(), ws_a.clone(), ws_b.clone()]);
    let lines = collect_lines(engine.bootstrap(&alice, p)).await;
    assert_eq!(lines[0]["subscribedSyncGroups"], json!(["alice", ws_a, ws_a]));
    assert_eq!(rows_of(&lines, "Task").len(), 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bootstrap_is_a_consistent_snapshot() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let opts = SeedOptions::new(&["alice"], 6000);
    seed(&db.pool, &opts).await.unwrap();
    let ws = opts.workspace_id.to_string();
    let alice = user("alice", &[&ws]);
    let last_task = db.scalar(&format!("SELECT count(*) FROM tasks WHERE workspace_id = '{ws}'")).await;
    assert_eq!(last_task, 6000);
    // Pick the task that streams last and the one that streams first.
    let ids = collect_lines(engine.bootstrap(&alice, {
        let mut p = params();
        p.only_models = Some(vec!["Task".into()]);
        p
    }))
    .await;
    let first_id = ids[1]["id"].as_str().unwrap().to_owned();
    let last_id = ids.last().unwrap()["id"].as_str().unwrap().to_owned();

    let mut stream = engine.bootstrap(&alice, params()).await.expect("admitted");
    let first = stream.next().await.unwrap().unwrap();
    let metadata: Value = serde_json::from_slice(first.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let snapshot: u64 = metadata["lastSyncId"].as_str().unwrap().parse().unwrap();

    // Commit changes while the stream is still being read.
    let new_task = new_id();
    let res = mutate(
        &engine,
        &alice,
        vec![
            tx(Update, "Task", &last_id, json!({"title": "changed during bootstrap"})),
            tx(Delete, "Task", &first_id, json!({})),
            tx(Insert, "Task", &new_task, json!({"workspaceId": ws, "title": "new"})),
        ],
    )
    .await;
    assert!(res.success, "{res:?}");
    for r in &res.results {
        assert!(r.sync_id().unwrap() > SyncId(snapshot), "mutations after the snapshot get later ids");
    }

    let mut bytes = first.to_vec();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    let lines: Vec<Value> =
        bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    let tasks = rows_of(&lines, "Task");
    assert_eq!(tasks.len(), 6000, "the snapshot has exactly the rows at lastSyncId");
    assert!(
        tasks.iter().any(|t| t["id"] == json!(first_id)),
        "a row deleted during the stream is still in the snapshot"
    );
    assert!(!tasks.iter().any(|t| t["id"] == json!(new_task)), "a row inserted after the snapshot is not");
    let last = tasks.iter().find(|t| t["id"] == json!(last_id)).unwrap();
    assert_ne!(last["title"], json!("changed during bootstrap"), "the stream is not half-applied");
    assert_eq!(rows_of(&lines, "TaskLabel").len(), 6000, "cascaded deletes after the snapshot do not show");
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_bootstrap_reports_the_snapshot_head() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let opts = SeedOptions::new(&["alice"], 5);
    seed(&db.pool, &opts).await.unwrap();
    let ws = opts.workspace_id.to_string();
    let alice = user("alice", &[&ws]);
    let res =
        mutate(&engine, &alice, vec![tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": "x"}))]).await;
    assert!(res.success);
    let mut p = params();
    p.kind = BootstrapKind::Partial;
    p.first_sync_id = Some(SyncId(1));
    p.sync_groups = Some(vec![ws.clone()]);
    let lines = collect_lines(engine.bootstrap(&alice, p)).await;
    // The task's action (the seed's membership logged alice's `S` action first).
    assert_eq!(res.last_sync_id, SyncId(2));
    assert_eq!(lines[0]["lastSyncId"], json!("2"));
    assert_eq!(lines[0]["subscribedSyncGroups"], json!([ws]));
    assert_eq!(rows_of(&lines, "Task").len(), 6);
}
