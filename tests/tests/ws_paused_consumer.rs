//! A WebSocket consumer that stops reading while far more deltas are owed
//! to it than its send buffer holds, against a real `taskboard` process:
//! the server's memory grows by at most the configured byte bounds (its send
//! buffer and the feed's hot tail, plus a stated slack), the socket is closed with 4008, another subscriber gets
//! every delta meanwhile, and the paused client, reconnecting, resumes
//! from the log and receives every action.
//!
//! Needs the binary built (`scripts/test.sh` builds it first).

use serde_json::{json, Value};
use std::time::Instant;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::process_support::Taskboard;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

/// The send buffer the server is started with (`SYNC_WS_SEND_BUFFER_BYTES`).
const SEND_BUFFER: u64 = 4 * 1024 * 1024;
/// The feed's hot tail the server is started with (`SYNC_HOT_TAIL_BYTES`):
/// it fills with the same deltas, and its accounting must hold too.
const HOT_TAIL: u64 = 4 * 1024 * 1024;
/// What the server may grow by beyond the send buffer and the hot tail: the request and
/// frames in flight (one 512 KiB request at a time, about 3 MiB with its
/// parsed form) and the allocator's own slack.
const SLACK: u64 = 12 * 1024 * 1024;
/// The deltas owed to the paused consumer: 768 of 64 KiB, 48 MiB (the
/// kernel's socket buffers take some 8 MiB of it).
const ACTIONS: usize = 768;
const TITLE_BYTES: usize = 64 * 1024;
/// Transactions per mutate request (512 KiB bodies).
const PER_REQUEST: usize = 8;

/// Inserts `n` tasks with titles of `TITLE_BYTES` in one request; returns
/// their sync ids.
async fn insert_large_tasks(server: &Taskboard, ws: &str, n: usize) -> Vec<u64> {
    let transactions: Vec<Value> = (0..n)
        .map(|i| {
            json!({"action": "INSERT", "clientId": "writer", "clientTxId": new_id(), "modelId": new_id(),
                   "modelName": "Task", "payload": {"workspaceId": ws, "title": format!("{i}{}", "x".repeat(TITLE_BYTES))}})
        })
        .collect();
    let body = json!({"batchId": new_id(), "transactions": transactions});
    let mut res = awc::Client::new()
        .post(server.url("/sync/mutate"))
        .insert_header(("Authorization", "Bearer token-alice"))
        .send_json(&body)
        .await
        .expect("mutate request");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("mutate response");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            assert_eq!(r["success"], json!(true), "{r}");
            r["syncId"].as_str().expect("syncId").parse().expect("numeric sync id")
        })
        .collect()
}

async fn a_paused_consumer_costs_at_most_its_send_buffer_and_resumes_from_the_log(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    let (buffer, tail) = (SEND_BUFFER.to_string(), HOT_TAIL.to_string());
    let server = Taskboard::start_on(
        adapter,
        &db.url,
        &[
            ("SYNC_WS_SEND_BUFFER_BYTES", &buffer),
            ("SYNC_HOT_TAIL_BYTES", &tail),
            ("SYNC_HEARTBEAT_SECS", "300"),
            ("RUST_LOG", "warn"),
        ],
    )
    .await;
    let ws_url = format!("ws://127.0.0.1:{}/sync/ws?token=token-alice", server.port);

    let mut healthy = WsClient::connect(&ws_url).await;
    healthy.subscribe_ok("alice", 0, None).await;
    let mut paused = WsClient::connect(&ws_url).await;
    paused.subscribe_ok("alice", 0, None).await;

    // Warm up both paths (requests, frames, both sockets), then measure.
    let warm = insert_large_tasks(&server, &ws, PER_REQUEST).await;
    let last_warm = *warm.last().expect("ids");
    assert_eq!(healthy.deltas_until(last_warm, WAIT).await, warm);
    assert_eq!(paused.deltas_until(last_warm, WAIT).await, warm);
    let baseline = server.rss_bytes();

    // `paused` reads nothing from here on; `healthy` reads as deltas come.
    let started = Instant::now();
    let mut peak = baseline;
    let mut owed = Vec::new();
    for _ in 0..ACTIONS / PER_REQUEST {
        let ids = insert_large_tasks(&server, &ws, PER_REQUEST).await;
        let last = *ids.last().expect("ids");
        assert_eq!(healthy.deltas_until(last, WAIT).await, ids, "the healthy consumer gets every delta, in order");
        owed.extend(ids);
        peak = peak.max(server.rss_bytes());
    }
    let growth = peak.saturating_sub(baseline);
    println!("writes done in {:?}", started.elapsed());
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "paused consumer owed {:.1} MiB: server RSS {:.1} MiB → peak {:.1} MiB, growth {:.1} MiB \
         (bounds {:.1} MiB + {:.1} MiB + slack {:.1} MiB)",
        mib((ACTIONS * TITLE_BYTES) as u64),
        mib(baseline),
        mib(peak),
        mib(growth),
        mib(SEND_BUFFER),
        mib(HOT_TAIL),
        mib(SLACK)
    );
    assert!(
        growth <= SEND_BUFFER + HOT_TAIL + SLACK,
        "the server grew by {:.1} MiB for one paused consumer",
        mib(growth)
    );

    // Reading again, the paused consumer finds what was in flight, then
    // the close: 4008, as the bound was exceeded.
    let mut received = Vec::new();
    let (code, reason) = loop {
        match paused.recv().await {
            Incoming::Text(text) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                received.push(sync_id(&frame));
            }
            Incoming::Close(code, reason) => break (code, reason),
            other => panic!("expected deltas then a close frame, got {other:?} after {} deltas", received.len()),
        }
    };
    assert_eq!((code, reason.as_str()), (Some(4008), "Send buffer limit exceeded"));
    assert!(received.len() < owed.len(), "it was closed before everything reached it");
    assert_eq!(received[..], owed[..received.len()], "what reached it is a prefix, in order");
    println!("the paused consumer read {} of {} deltas, then 4008", received.len(), owed.len());

    // Reconnecting from the last delta it saw, it gets the rest from the log.
    let started = Instant::now();
    let cursor = received.last().copied().unwrap_or(last_warm);
    let mut again = WsClient::connect(&ws_url).await;
    again.subscribe("alice", cursor, None).await;
    let (replayed, subscribed) = again.until_subscribed().await;
    let replayed: Vec<u64> = replayed.iter().map(sync_id).collect();
    assert_eq!([received, replayed].concat(), owed, "every action, once, in order");
    assert_eq!(subscribed["afterSyncId"], json!(owed.last().expect("ids").to_string()));
    println!("replayed in {:?}", started.elapsed());
    // And it is live again.
    let next = insert_large_tasks(&server, &ws, 1).await;
    assert_eq!(again.deltas_until(next[0], WAIT).await, next);
}

on_both_adapters!(a_paused_consumer_costs_at_most_its_send_buffer_and_resumes_from_the_log);
