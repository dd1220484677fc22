//! Readers of the log page by rows, not by actions: rows with a letter
//! this server does not know (written by a newer server, here `X`) are
//! skipped without being taken for the end of the log, by `/sync/deltas`
//! (buffered and streamed), by the WebSocket replay and by the live feed.
//!
//! The log holds 500 known actions, then 1500 rows of letter `X`, then 700
//! known actions: more than a page of skipped rows, in the middle.

use actix_web::http::{header, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use stratasync_core::engine::DeltasParams;
use stratasync_core::realtime::HubConfig;
use stratasync_core::SyncId;
use stratasync_tests::http_support::*;
use stratasync_tests::ws_support::{workspace, WsServer};
use stratasync_tests::*;

const BEFORE: u64 = 500;
const SKIPPED: u64 = 1500;
const AFTER: u64 = 700;
const LAST: u64 = BEFORE + SKIPPED + AFTER;

/// Logs `n` rows of letter `letter` in `group` with SQL.
async fn log_rows(db: &TestDb, group: &str, letter: char, n: u64) {
    db.execute(&format!(
        "INSERT INTO sync_actions (model, model_id, action, data, group_id) \
         SELECT 'Task', gen_random_uuid()::text, '{letter}', jsonb_build_object('title', 't' || i), '{group}' \
         FROM generate_series(1, {n}) AS i"
    ))
    .await;
}

/// The log described in the module docs, in `ws`.
async fn log_with_unknown_rows(db: &TestDb, ws: &str) {
    log_rows(db, ws, 'U', BEFORE).await;
    log_rows(db, ws, 'X', SKIPPED).await;
    log_rows(db, ws, 'U', AFTER).await;
    assert_eq!(db.scalar("SELECT max(id) FROM sync_actions").await as u64, LAST);
}

/// The known ids, ascending.
fn known_ids() -> Vec<u64> {
    (1..=BEFORE).chain(BEFORE + SKIPPED + 1..=LAST).collect()
}

/// One page: its action ids, `hasMore` and `lastSyncId`.
fn page_of(page: &Value) -> (Vec<u64>, bool, u64) {
    let ids = page["actions"].as_array().unwrap().iter().map(|a| a["syncId"].as_str().unwrap().parse().unwrap());
    (ids.collect(), page["hasMore"].as_bool().unwrap(), page["lastSyncId"].as_str().unwrap().parse().unwrap())
}

/// The pages a client reads from cursor 0, with the default limit.
fn expected_pages() -> Vec<(Vec<u64>, bool, u64)> {
    vec![
        ((1..=BEFORE).collect(), true, 1000),
        (Vec::new(), true, 2000),
        ((BEFORE + SKIPPED + 1..=LAST).collect(), false, LAST),
    ]
}

async fn delta_pages_count_skipped_rows(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    log_with_unknown_rows(&db, &ws).await;
    // The pages of the log itself: a hot tail loaded at start-up would cut
    // them by actions, not rows (README, Status).
    let cold = || {
        let feed = HubConfig { warm_actions: 0, ..HubConfig::default() };
        db.engine_builder().hub_config(feed).start().expect("the engine starts")
    };
    let engine = cold();

    // Buffered, through the engine.
    let alice = user("alice", &[&ws]);
    let mut pages = Vec::new();
    let mut after = SyncId(0);
    loop {
        let page = engine.deltas(&alice, &DeltasParams { after, ..DeltasParams::default() }).await.unwrap();
        pages.push(page_of(&to_json(&page)));
        after = page.last_sync_id;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, expected_pages());

    // Streamed, over HTTP, as the client pages.
    let server = TestServer::start_on(adapter, &db, cold()).await;
    let client = client();
    let mut pages = Vec::new();
    let mut after = 0;
    loop {
        let mut res = client
            .get(server.url(&format!("/sync/deltas?after={after}")))
            .insert_header((header::AUTHORIZATION, bearer("alice")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let page = page_of(&json_of(&res.body().limit(64 << 20).await.unwrap()));
        after = page.2;
        let more = page.1;
        pages.push(page);
        if !more {
            break;
        }
    }
    assert_eq!(pages, expected_pages());
    // A page cut right after skipped rows still ends at its last row.
    let mut res = client
        .get(server.url(&format!("/sync/deltas?after={}&limit={}", BEFORE, SKIPPED)))
        .insert_header((header::AUTHORIZATION, bearer("alice")))
        .send()
        .await
        .unwrap();
    assert_eq!(page_of(&json_of(&res.body().await.unwrap())), (Vec::new(), true, BEFORE + SKIPPED));
    server.stop().await;
}

async fn replay_reads_past_skipped_rows(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    log_with_unknown_rows(&db, &ws).await;
    let server = WsServer::with_engine_on(adapter, &db, db.engine()).await;
    let mut socket = server.connect("alice").await;
    let (replayed, subscribed) = socket.subscribe_ok("alice", 0, None).await;
    assert_eq!(replayed, known_ids());
    assert_eq!(subscribed["afterSyncId"], json!(LAST.to_string()));
    socket.close().await;
    server.stop().await;
}

async fn live_feed_reads_past_skipped_rows(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    // The feed reads the log only when woken: no periodic poll to make up
    // for a page taken for the end.
    let feed = HubConfig { poll_interval: Duration::from_secs(3600), ..HubConfig::default() };
    let server = WsServer::with_engine_on(
        adapter,
        &db,
        db.engine_builder().hub_config(feed).start().expect("the engine starts"),
    )
    .await;
    let mut socket = server.connect("alice").await;
    let (replayed, _) = socket.subscribe_ok("alice", 0, None).await;
    assert!(replayed.is_empty());

    log_with_unknown_rows(&db, &ws).await;
    server.engine.hub().wake();
    let live = socket.deltas_until(LAST, Duration::from_secs(60)).await;
    assert_eq!(live, known_ids());
    assert_eq!(server.engine.hub().dispatched(), SyncId(LAST));
    socket.close().await;
    server.stop().await;
}

on_both_adapters!(delta_pages_count_skipped_rows, replay_reads_past_skipped_rows, live_feed_reads_past_skipped_rows,);
