//! The live feed's hot tail (docs/protocol.md §7.3): a WebSocket replay
//! from a cursor the tail covers is served from memory, frame for frame as
//! a replay from the log, with the same group filter and group changes.

use stratasync_core::realtime::HubConfig;
use stratasync_core::storage::memberships;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

/// Every text frame of a subscribe from `cursor` as `user`, up to and
/// including `subscribed`.
async fn replay(server: &WsServer, user: &str, cursor: u64) -> Vec<String> {
    let mut socket = server.connect(user).await;
    socket.subscribe(user, cursor, None).await;
    let mut frames = Vec::new();
    loop {
        let text = socket.recv_text().await;
        let done = text.contains(r#""type":"subscribed""#);
        frames.push(text);
        if done {
            socket.close().await;
            return frames;
        }
    }
}

async fn a_replay_from_the_hot_tail_equals_one_from_the_log_frame_for_frame(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice", "bob"]).await;
    let other = workspace(&db, &["bob"]).await;
    let hot = db.engine();
    let cold = db
        .engine_builder()
        .hub_config(HubConfig { recent_bytes: 0, ..HubConfig::default() })
        .start()
        .expect("the engine starts");
    let hot_server = WsServer::with_engine_on(adapter, &db, hot.clone()).await;
    let cold_server = WsServer::with_engine_on(adapter, &db, cold.clone()).await;

    // Alice's workspace, one she is not in, her removal and a grant, and a
    // global action.
    let first = insert_task(&hot, "bob", &ws, "before").await;
    insert_tasks(&hot, "bob", &ws, 5).await;
    insert_task(&hot, "bob", &other, "not hers").await;
    memberships::remove(&db.pool, "alice", &ws).await.unwrap();
    insert_task(&hot, "bob", &ws, "while she is out").await;
    memberships::add(&db.pool, "alice", &other, "workspace").await.unwrap();
    insert_task(&hot, "bob", &other, "now hers").await;
    let marker = global_marker(&db, &[&hot, &cold]).await;
    hub_reached(&hot, marker).await;
    hub_reached(&cold, marker).await;

    let mut served = Vec::new();
    for cursor in [0, first, first + 3, marker - 2, marker] {
        let from_memory = replay(&hot_server, "alice", cursor).await;
        let from_log = replay(&cold_server, "alice", cursor).await;
        assert_eq!(from_memory, from_log, "replay from {cursor}");
        served.push(from_memory);
    }
    // From 0 (no group change at or before it) she starts with her groups
    // now: "not hers" (7), the removal (8), the grant (10), "now hers" (11),
    // the marker, then `subscribed`.
    let ids: Vec<u64> = served[0]
        .iter()
        .filter_map(|f| serde_json::from_str(f).ok())
        .filter(|f: &serde_json::Value| f["type"] == "delta")
        .map(|f| sync_id(&f))
        .collect();
    assert_eq!(ids, [7, 8, 10, 11, marker]);

    // The memory is where the hot replay came from: with the log's rows
    // gone, it still serves them; the log-only node has nothing to replay.
    db.execute(&format!("DELETE FROM sync_actions WHERE id > {first}")).await;
    assert_eq!(replay(&hot_server, "alice", first).await, served[1]);
    assert_eq!(replay(&cold_server, "alice", first).await.len(), 1, "only `subscribed`");
    hot_server.stop().await;
    cold_server.stop().await;
}

on_both_adapters!(a_replay_from_the_hot_tail_equals_one_from_the_log_frame_for_frame,);
