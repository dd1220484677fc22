//! Batch loads by indexed key and by group.

use serde_json::json;
use stratasync_core::engine::{BatchItem, BatchParams};
use stratasync_tests::*;
use taskboard::seed::{seed, SeedOptions};

fn indexed(model: &str, key: &str, value: &str) -> BatchItem {
    BatchItem::Indexed { indexed_key: key.into(), key_value: value.into(), model_name: model.into() }
}

fn group(model: &str, group_id: &str) -> BatchItem {
    BatchItem::Group { group_id: group_id.into(), model_name: model.into() }
}

fn requests(items: Vec<BatchItem>) -> BatchParams {
    BatchParams { first_sync_id: None, requests: items }
}

#[tokio::test(flavor = "multi_thread")]
async fn loads_by_key_and_group_within_the_callers_groups() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let a = SeedOptions::new(&["alice"], 40);
    let b = SeedOptions::new(&["bob"], 10);
    seed(&db.pool, &a).await.unwrap();
    seed(&db.pool, &b).await.unwrap();
    let (ws_a, ws_b) = (a.workspace_id.to_string(), b.workspace_id.to_string());
    let alice = user("alice", &[&ws_a]);
    let some_task = db.scalar(&format!("SELECT count(*) FROM tasks WHERE workspace_id = '{ws_a}'")).await;
    assert_eq!(some_task, 40);

    let lines = collect_lines(engine.batch(&alice, requests(vec![indexed("Task", "workspaceId", &ws_a)]))).await;
    assert_eq!(lines.len(), 40);
    assert!(lines.iter().all(|l| l["__class"] == json!("Task")), "no metadata line in batch loads");
    let task_id = lines[0]["id"].as_str().unwrap().to_owned();

    let lines = collect_lines(engine.batch(
        &alice,
        requests(vec![
            indexed("Task", "id", &task_id),
            indexed("Task", "workspaceId", &ws_b), // foreign: no rows
            indexed("Task", "id", "not-a-uuid"),   // cannot match: no rows, no error
            indexed("Nope", "id", &task_id),       // unknown model: skipped
            group("Label", &ws_a),
            group("Label", &ws_b), // foreign group: skipped
            indexed("TaskLabel", "taskId", &task_id),
        ]),
    ))
    .await;
    let classes: Vec<&str> = lines.iter().map(|l| l["__class"].as_str().unwrap()).collect();
    assert_eq!(classes, ["Task", "Label", "TaskLabel"]);
    assert_eq!(lines[0]["id"], json!(task_id));

    let lines = collect_lines(
        engine.batch(&alice, requests(vec![indexed("Task", "id", &task_id), indexed("Task", "title", "x")])),
    )
    .await;
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1],
        json!({"message": "Indexed key \"title\" is not allowed for model \"Task\"", "type": "error"})
    );

    let empty = collect_lines(engine.batch(&alice, requests(vec![group("Task", &ws_b)]))).await;
    assert!(empty.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn indexed_loads_stop_at_the_row_limit() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let opts = SeedOptions { labels: 1, task_labels: 0, ..SeedOptions::new(&["alice"], 50_001) };
    seed(&db.pool, &opts).await.unwrap();
    let ws = opts.workspace_id.to_string();
    let alice = user("alice", &[&ws]);
    let lines = collect_lines(engine.batch(&alice, requests(vec![indexed("Task", "workspaceId", &ws)]))).await;
    assert_eq!(
        lines,
        vec![json!({"message": "Indexed batch load exceeded 50000 rows for model \"Task\"", "type": "error"})]
    );
    // Group loads page through any number of rows.
    let lines = collect_lines(engine.batch(&alice, requests(vec![group("Task", &ws)]))).await;
    assert_eq!(lines.len(), 50_001);
}
