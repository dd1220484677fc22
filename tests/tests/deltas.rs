//! `deltas`: paging, group visibility, wire format and stale cursors.

use serde_json::json;
use stratasync_core::auth::AuthContext;
use stratasync_core::engine::DeltasParams;
use stratasync_core::error::ServiceError;
use stratasync_core::protocol::MutationAction::{Insert, Update};
use stratasync_core::protocol::SyncId;
use stratasync_tests::*;

async fn workspace(db: &TestDb) -> String {
    stratasync_tests::ws_support::workspace(db, &[]).await
}

fn after(n: u64) -> DeltasParams {
    DeltasParams { after: SyncId(n), ..DeltasParams::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_and_filters_by_group() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let (ws_a, ws_b) = (workspace(&db).await, workspace(&db).await);
    let both = user("root", &[&ws_a, &ws_b]);
    let mut txs = Vec::new();
    for i in 0..25 {
        let ws = if i % 5 == 0 { &ws_b } else { &ws_a };
        txs.push(tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": format!("t{i}")})));
    }
    assert!(mutate(&engine, &both, txs).await.success);
    db.execute("INSERT INTO sync_actions (model, model_id, action, data) VALUES ('Notice', 'n1', 'I', '{}')").await;

    let alice = user("alice", &[&ws_a]);
    let page = engine.deltas(&alice, &DeltasParams { limit: Some(10), ..after(0) }).await.unwrap();
    assert_eq!(page.actions.len(), 10);
    assert!(page.has_more);
    assert_eq!(page.last_sync_id, page.actions[9].sync_id);
    assert!(page.actions.iter().all(|a| a.group_id.as_deref() == Some(ws_a.as_str())));
    let mut cursor = page.last_sync_id;
    let mut seen = 10;
    loop {
        let page = engine.deltas(&alice, &DeltasParams { limit: Some(10), ..after(cursor.0) }).await.unwrap();
        seen += page.actions.len();
        cursor = page.last_sync_id;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen, 21, "20 actions of alice's workspace and one global action");
    assert_eq!(cursor, SyncId(26));

    let empty = engine.deltas(&alice, &after(26)).await.unwrap();
    assert_eq!(to_json(&empty), json!({"actions": [], "hasMore": false, "lastSyncId": "26"}));

    // Requested groups she does not hold leave only global actions.
    let only_b = DeltasParams { sync_groups: Some(vec![ws_b.clone()]), ..after(0) };
    let page = engine.deltas(&alice, &only_b).await.unwrap();
    assert_eq!(page.actions.len(), 1);
    assert_eq!(page.actions[0].model_name, "Notice");
    // A limit of 0 means the default, and huge limits are clamped.
    assert_eq!(engine.deltas(&alice, &DeltasParams { limit: Some(0), ..after(0) }).await.unwrap().actions.len(), 21);
    assert_eq!(
        engine.deltas(&alice, &DeltasParams { limit: Some(u64::MAX), ..after(0) }).await.unwrap().actions.len(),
        21
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_have_the_wire_shape() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let id = new_id();
    let mut t = tx(Update, "Workspace", &ws, json!({"name": "Renamed"}));
    t.client_tx_id = "tx-1".into();
    assert!(mutate(&engine, &alice, vec![t]).await.success);
    db.execute(&format!(
        "INSERT INTO sync_actions (model, model_id, action, data, created_at) VALUES ('Task', '{id}', 'U', '{{\"title\": \"x\", \"a\": 1}}', '2024-06-15T12:00:00.1236Z')"
    ))
    .await;
    let page = engine.deltas(&alice, &after(0)).await.unwrap();
    let text = serde_json::to_string(&page).unwrap();
    let created = stratasync_core::protocol::iso_millis(&page.actions[0].created_at);
    assert_eq!(
        text,
        format!(
            r#"{{"actions":[{{"action":"U","clientId":"client-1","clientTxId":"tx-1","createdAt":"{created}","data":{{"name":"Renamed"}},"groupId":"{ws}","modelId":"{ws}","modelName":"Workspace","syncId":"1"}},{{"action":"U","createdAt":"2024-06-15T12:00:00.123Z","data":{{"a":1,"title":"x"}},"modelId":"{id}","modelName":"Task","syncId":"2"}}],"hasMore":false,"lastSyncId":"2"}}"#
        )
    );
    assert_eq!(created.len(), 24);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_and_future_cursors_require_a_bootstrap() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let txs =
        (0..10).map(|i| tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": format!("{i}")}))).collect();
    assert!(mutate(&engine, &alice, txs).await.success);
    // Retention removed ids 1..=5: the earliest retained id is 6.
    db.execute("DELETE FROM sync_actions WHERE id <= 5").await;
    assert!(matches!(engine.deltas(&alice, &after(4)).await, Err(ServiceError::BootstrapRequired)));
    // Nothing after 5 is missing: not stale (the reference flags it).
    assert_eq!(engine.deltas(&alice, &after(5)).await.unwrap().actions.len(), 5);
    assert_eq!(engine.deltas(&alice, &after(0)).await.unwrap().actions.len(), 5);
    assert_eq!(engine.deltas(&alice, &after(10)).await.unwrap().actions.len(), 0);
    // A cursor from another database (ahead of every allocated id).
    assert!(matches!(engine.deltas(&alice, &after(11)).await, Err(ServiceError::BootstrapRequired)));
    assert_eq!(ServiceError::BootstrapRequired.to_string(), "A fresh bootstrap is required before fetching deltas");
}

async fn streamed(engine: &stratasync_core::SyncEngine, who: &AuthContext, params: &DeltasParams) -> (usize, String) {
    use futures_util::TryStreamExt;
    let chunks: Vec<bytes::Bytes> = engine.deltas_stream(who, params).await.unwrap().try_collect().await.unwrap();
    (chunks.len(), String::from_utf8(chunks.concat()).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_streamed_page_is_the_page() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    // Enough data for several chunks of the streamed body, with strings
    // that need escaping and jsonb's spacing to undo.
    let title = "q\"uote, back\\slash: tab\t é ".repeat(40);
    let txs = (0..300)
        .map(|i| tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": format!("{title}{i}")})))
        .collect();
    assert!(mutate(&engine, &alice, txs).await.success);
    for params in [after(0), DeltasParams { limit: Some(120), ..after(7) }, after(300), after(1000)] {
        let typed = engine.deltas(&alice, &params).await;
        let Ok(page) = typed else {
            assert!(matches!(typed, Err(ServiceError::BootstrapRequired)));
            assert!(matches!(engine.deltas_stream(&alice, &params).await, Err(ServiceError::BootstrapRequired)));
            continue;
        };
        let (chunks, text) = streamed(&engine, &alice, &params).await;
        assert_eq!(text, serde_json::to_string(&page).unwrap(), "after {:?}", params.after);
        if page.actions.len() == 300 {
            assert!(chunks > 2, "a large page goes out in several chunks ({chunks})");
        }
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["actions"].as_array().unwrap().len(), page.actions.len());
    }
    let (_, text) = streamed(&engine, &alice, &after(0)).await;
    let first: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(first["actions"][0]["data"]["title"], json!(format!("{title}0")));
}
