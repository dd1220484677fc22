//! The live feed's hot tail (docs/protocol.md §7.3): a WebSocket replay
//! or a `/sync/deltas` page from a cursor the tail covers is served from
//! memory, frame for frame and byte for byte as one from the log, with the
//! same group filter, page cut and group changes.

use stratasync_core::auth::AuthContext;
use stratasync_core::engine::DeltasParams;
use stratasync_core::protocol::SyncId;
use stratasync_core::realtime::HubConfig;
use stratasync_core::storage::memberships;
use stratasync_core::SyncEngine;
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

/// Two engines on one database, one keeping a hot tail and one not, and a
/// history both fed: alice's workspace, one she is not in, her removal and
/// a grant, and a global action.
struct History {
    db: TestDb,
    hot: SyncEngine,
    cold: SyncEngine,
    ws: String,
    other: String,
    /// The first task's sync id, and the global action's.
    first: u64,
    marker: u64,
}

impl History {
    async fn write() -> History {
        let db = TestDb::new().await;
        let ws = workspace(&db, &["alice", "bob"]).await;
        let other = workspace(&db, &["bob"]).await;
        let hot = db.engine();
        let cold = db
            .engine_builder()
            .hub_config(HubConfig { recent_bytes: 0, ..HubConfig::default() })
            .start()
            .expect("the engine starts");
        let first = insert_task(&hot, "bob", &ws, "before \"quoted\" é").await;
        insert_tasks(&hot, "bob", &ws, 5).await;
        insert_task(&hot, "bob", &other, "not hers").await;
        memberships::remove(&db.pool, "alice", &ws).await.unwrap();
        insert_task(&hot, "bob", &ws, "while she is out").await;
        memberships::add(&db.pool, "alice", &other, "workspace").await.unwrap();
        insert_task(&hot, "bob", &other, "now hers").await;
        let marker = global_marker(&db, &[&hot, &cold]).await;
        hub_reached(&hot, marker).await;
        hub_reached(&cold, marker).await;
        History { db, hot, cold, ws, other, first, marker }
    }
}

async fn a_replay_from_the_hot_tail_equals_one_from_the_log_frame_for_frame(adapter: Adapter) {
    let History { db, hot, cold, first, marker, .. } = History::write().await;
    let hot_server = WsServer::with_engine_on(adapter, &db, hot.clone()).await;
    let cold_server = WsServer::with_engine_on(adapter, &db, cold.clone()).await;

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

/// The body of `GET /sync/deltas` as the engine streams it.
async fn page(engine: &SyncEngine, user: &AuthContext, params: &DeltasParams) -> String {
    use futures_util::StreamExt;
    let mut stream = engine.deltas_stream(user, params).await.expect("the page starts");
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.expect("the page ends"));
    }
    String::from_utf8(body).expect("UTF-8")
}

/// The typed page (`SyncEngine::deltas`, for server code) as JSON.
async fn typed_page(engine: &SyncEngine, user: &AuthContext, params: &DeltasParams) -> String {
    serde_json::to_string(&engine.deltas(user, params).await.expect("the typed page")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn delta_pages_from_the_hot_tail_equal_pages_from_the_log_byte_for_byte() {
    let History { db, hot, cold, ws, other, first, marker } = History::write().await;

    // Alice as the server resolved her: two workspaces and a derived group
    // (her group changes are told with it first).
    let alice = AuthContext {
        user: stratasync_core::auth::AuthUser::new("alice"),
        groups: vec![ws.clone(), other.clone(), "team".into(), "alice".into()],
        derived_groups: vec!["team".into()],
    };
    let mut from_first = String::new();
    for after in [0, first, first + 3, marker - 2, marker] {
        for limit in [1, 2, 1000] {
            for sync_groups in [None, Some(vec![ws.clone()])] {
                let params = DeltasParams { after: SyncId(after), limit: Some(limit), sync_groups };
                let (from_memory, from_log) = (page(&hot, &alice, &params).await, page(&cold, &alice, &params).await);
                assert_eq!(from_memory, from_log, "{params:?}");
                // The typed page is read by the same reader.
                assert_eq!(typed_page(&hot, &alice, &params).await, from_memory, "typed, hot: {params:?}");
                assert_eq!(typed_page(&cold, &alice, &params).await, from_log, "typed, cold: {params:?}");
                if after == first && limit == 1000 && params.sync_groups.is_none() {
                    from_first = from_memory;
                }
            }
        }
    }
    assert!(from_first.contains(r#""subscribedSyncGroups":["team","#), "{from_first}");
    assert_eq!(from_first.matches(r#""modelName":"#).count(), 11, "{from_first}");

    // The memory is where the hot pages came from: with the log's rows
    // gone, it still serves them; the log-only node has none left.
    db.execute(&format!("DELETE FROM sync_actions WHERE id > {first}")).await;
    let params = DeltasParams { after: SyncId(first), limit: Some(1000), sync_groups: None };
    assert_eq!(page(&hot, &alice, &params).await, from_first);
    assert_eq!(typed_page(&hot, &alice, &params).await, from_first, "the typed page reads the hot tail too");
    let empty = format!(r#"{{"actions":[],"hasMore":false,"lastSyncId":"{first}"}}"#);
    assert_eq!(page(&cold, &alice, &params).await, empty);
    assert_eq!(typed_page(&cold, &alice, &params).await, empty);
}

/// A node starting on a log that already holds actions (a restart, a
/// deploy) loads its hot tail with the latest of them, so the clients that
/// all resume at once are served from memory: `warm_actions` of them, and
/// none with `warm_actions: 0`.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_node_serves_the_latest_actions_from_memory_at_once() {
    let History { db, cold, ws, other, first, marker, .. } = History::write().await;
    let alice = AuthContext {
        user: stratasync_core::auth::AuthUser::new("alice"),
        groups: vec![ws.clone(), other.clone(), "alice".into()],
        derived_groups: Vec::new(),
    };
    let after = |id: u64| DeltasParams { after: SyncId(id), limit: Some(1000), sync_groups: None };
    let (from_first, near_head) =
        (page(&cold, &alice, &after(first)).await, page(&cold, &alice, &after(marker - 2)).await);
    assert_eq!(from_first.matches(r#""modelName":"#).count(), 11, "{from_first}");
    assert_eq!(near_head.matches(r#""modelName":"#).count(), 2, "{near_head}");

    let start = |warm_actions: u64| {
        db.engine_builder()
            .hub_config(HubConfig { warm_actions, ..HubConfig::default() })
            .start()
            .expect("the engine starts")
    };
    let (whole, last_two, empty) = (start(1000), start(2), start(0));
    for engine in [&whole, &last_two, &empty] {
        hub_reached(engine, marker).await;
    }
    // Only memory can answer now.
    db.execute(&format!("DELETE FROM sync_actions WHERE id > {first}")).await;
    let nothing_after = |id: u64| format!(r#"{{"actions":[],"hasMore":false,"lastSyncId":"{id}"}}"#);
    assert_eq!(page(&whole, &alice, &after(first)).await, from_first);
    assert_eq!(page(&whole, &alice, &after(marker - 2)).await, near_head);
    assert_eq!(page(&last_two, &alice, &after(marker - 2)).await, near_head);
    assert_eq!(page(&last_two, &alice, &after(first)).await, nothing_after(first));
    assert_eq!(page(&empty, &alice, &after(first)).await, nothing_after(first));
}
