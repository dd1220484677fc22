//! Two server processes (the `taskboard` binary, or `taskboard-axum` for
//! the axum adapter) on two ports, sharing PostgreSQL and a private Redis:
//! a mutation sent to process 1 reaches a WebSocket subscriber of process
//! 2. Both poll the log only every 60 s,
//! so a fast delivery can only have come through the Redis wake-up.
//!
//! Needs the binaries built (`scripts/test.sh` builds them first).

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use stratasync_tests::http_support::Adapter;
use stratasync_tests::process_support::Taskboard;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

async fn start(adapter: Adapter, database_url: &str, redis_url: &str) -> Taskboard {
    let env = [("REDIS_URL", redis_url), ("SYNC_POLL_MS", "60000"), ("RUST_LOG", "warn")];
    Taskboard::start_on(adapter, database_url, &env).await
}

async fn insert_over_http(process: &Taskboard, ws: &str, title: &str) -> u64 {
    let body = json!({"batchId": new_id(), "transactions": [{
        "action": "INSERT", "clientId": "p1", "clientTxId": new_id(), "modelId": new_id(), "modelName": "Task",
        "payload": {"workspaceId": ws, "title": title}}]});
    let mut res = awc::Client::new()
        .post(process.url("/sync/mutate"))
        .insert_header(("Authorization", "Bearer token-alice"))
        .send_json(&body)
        .await
        .expect("mutate request");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("mutate response");
    body["lastSyncId"].as_str().expect("lastSyncId").parse().expect("numeric sync id")
}

async fn a_mutation_on_one_process_reaches_a_subscriber_of_another(adapter: Adapter) {
    let db = TestDb::new().await;
    let redis = RedisServer::start().await;
    let ws = workspace(&db, &["alice"]).await;
    let one = start(adapter, &db.url, &redis.url()).await;
    let two = start(adapter, &db.url, &redis.url()).await;

    let mut socket = WsClient::connect(&format!("ws://127.0.0.1:{}/sync/ws?token=token-alice", two.port)).await;
    let (replayed, _) = socket.subscribe_ok("alice", 0, None).await;
    assert!(replayed.is_empty());

    // Until process 2's Redis subscriber is connected, wake-ups can be lost
    // (delivery would then wait for the 60 s poll): write until one arrives.
    let mut warmed = false;
    for i in 0..50 {
        let id = insert_over_http(&one, &ws, &format!("warm-up {i}")).await;
        if socket.try_deltas_until(id, Duration::from_millis(300)).await.is_ok() {
            warmed = true;
            break;
        }
    }
    assert!(warmed, "process 2 never received a delta through redis");

    let mut latencies = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        let id = insert_over_http(&one, &ws, &format!("task {i}")).await;
        // Far below the 60 s poll: a delivery within it came through Redis.
        let ids = socket.deltas_until(id, Duration::from_secs(20)).await;
        assert_eq!(ids.last(), Some(&id));
        assert_ascending(&ids, "deltas on process 2");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "process 1 mutate → process 2 socket: p50 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}

on_both_adapters!(a_mutation_on_one_process_reaches_a_subscriber_of_another,);
