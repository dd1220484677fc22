//! Unread streams cannot hold the pool: one user's bootstraps, batch loads
//! and delta pages that are never read leave other users' bootstraps,
//! delta pages, mutations, live delivery and `/health` working; the
//! excess streams get 429 with `Retry-After`; a stream that stalls past
//! its deadline is aborted and gives its connection back.
//!
//! The hostile clients are raw TCP connections with a tiny receive buffer
//! that read nothing (they only peek at the status line).

use actix_web::http::{header, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use stratasync_core::engine::StreamLimits;
use stratasync_core::storage::{self, PoolConfig};
use stratasync_tests::http_support::Adapter;
use stratasync_tests::http_support::*;
use stratasync_tests::ws_support::{backlog, WsServer, WAIT};
use stratasync_tests::*;
use taskboard::seed::{seed, SeedOptions};

/// The liveness bound of every wait (never a timing assertion).
const LIVENESS: Duration = Duration::from_secs(60);
/// The per-user limit of these tests.
const PER_USER: usize = 4;

/// A workspace of `tasks` tasks (and as many task labels) with `members`.
async fn big_workspace(db: &TestDb, members: &[&str], tasks: i64) -> String {
    let opts = SeedOptions::new(members, tasks);
    seed(&db.pool, &opts).await.expect("seed");
    opts.workspace_id.to_string()
}

fn limits(stall: Duration) -> StreamLimits {
    StreamLimits {
        per_user: PER_USER,
        snapshot_slots: Some(8),
        slot_wait: Duration::from_secs(5),
        stall_timeout: stall,
    }
}

/// Everything an honest user does, against `server`: a bootstrap, a delta
/// page, a mutation delivered live to their WebSocket, and `/health`.
async fn honest_user_is_served(server: &WsServer, ws: &str) {
    let client = client();
    let auth = (header::AUTHORIZATION, bearer("bob"));
    let mut socket = server.connect("bob").await;
    socket.subscribe_ok("bob", 0, None).await;

    let mut res = client.get(server.url("/sync/bootstrap?type=full")).insert_header(auth.clone()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let lines = lines_of(&res.body().limit(64 << 20).await.unwrap());
    assert_eq!(lines[0]["subscribedSyncGroups"], json!([ws, "bob"]));
    assert_eq!(lines[1]["id"], json!(ws));

    let id = new_id();
    let insert = transaction("INSERT", "Task", &id, json!({"workspaceId": ws, "title": "still served", "priority": 1}));
    let res = client.post(server.url("/sync/mutate")).insert_header(auth.clone()).send_json(&mutate_body(vec![insert]));
    let mut res = res.await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = json_of(&res.body().await.unwrap());
    assert_eq!(body["success"], json!(true), "{body}");
    let sync_id: u64 = body["lastSyncId"].as_str().unwrap().parse().unwrap();
    assert_eq!(socket.deltas_until(sync_id, WAIT).await.last(), Some(&sync_id), "live delivery");

    let after = sync_id - 1;
    let mut res =
        client.get(server.url(&format!("/sync/deltas?after={after}"))).insert_header(auth).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = json_of(&res.body().await.unwrap());
    assert_eq!(page["actions"][0]["modelId"], json!(id), "{page}");

    let mut res = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!((res.status(), json_of(&res.body().await.unwrap())), (StatusCode::OK, json!({"status": "ok"})));
    socket.close().await;
}

async fn unread_snapshot_streams_leave_other_users_served(adapter: Adapter) {
    let db = TestDb::new().await;
    let hostile_ws = big_workspace(&db, &["mallory"], 20_000).await;
    let ws = big_workspace(&db, &["bob"], 10).await;
    // No deadline to speak of here: the streams stay unread throughout.
    let engine =
        db.engine_builder().stream_limits(limits(Duration::from_secs(3600))).start().expect("the engine starts");
    let server = WsServer::with_engine_on(adapter, &db, engine).await;
    let pool_size = db.pool.status().max_size;

    // Twice as many unread bootstraps and batch loads as the pool has
    // connections.
    let batch = json!({"requests": [{"groupId": hostile_ws, "modelName": "Task"},
                                    {"groupId": hostile_ws, "modelName": "TaskLabel"}]});
    let mut hostile = Vec::new();
    for i in 0..2 * pool_size {
        let request = if i % 2 == 0 {
            raw_get("/sync/bootstrap?type=full", "mallory")
        } else {
            raw_post("/sync/batch", "mallory", &batch)
        };
        hostile.push(RawHttp::send(server.addr, &request).await);
    }
    let mut statuses = Vec::new();
    for conn in &hostile {
        statuses.push(conn.peek_status(LIVENESS).await);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), PER_USER, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2 * pool_size - PER_USER, "{statuses:?}");
    // The admitted ones hold their snapshots: each backs up into its
    // transaction.
    wait_for(LIVENESS, "the unread streams hold their snapshots", || async {
        backends_in(&db, "idle in transaction").await == PER_USER as i64
    })
    .await;

    honest_user_is_served(&server, &ws).await;

    // The hostile streams were held all along, and the refused ones carry
    // Retry-After.
    assert_eq!(backends_in(&db, "idle in transaction").await, PER_USER as i64);
    for (conn, status) in hostile.iter_mut().zip(&statuses) {
        if *status == 429 {
            let head = conn.head(LIVENESS).await;
            assert_eq!(head.status, 429);
            assert_eq!(head.header("retry-after"), Some("1"), "{head:?}");
        }
    }
    // A client that goes away releases its snapshot at once.
    drop(hostile);
    wait_for(LIVENESS, "closed streams release their snapshots", || async {
        backends_in(&db, "idle in transaction").await == 0
    })
    .await;
    server.stop().await;
}

async fn unread_delta_pages_hold_no_connection(adapter: Adapter) {
    let db = TestDb::new().await;
    let hostile_ws = big_workspace(&db, &["hostile0", "hostile1"], 1).await;
    let ws = big_workspace(&db, &["bob"], 10).await;
    // Pages of 5000 actions of about 1.6 KB (8 MB): more than the socket
    // buffers and the response channel take.
    backlog(&db, Some(&hostile_ws), 5000, 1500).await;
    // A small pool, so that a few pages outnumber its connections.
    let pool = storage::connect(&db.url, &PoolConfig { max_size: 4, ..PoolConfig::default() }).expect("pool");
    let engine = taskboard::engine_builder(pool, taskboard::DevAuth::default())
        .stream_limits(limits(Duration::from_secs(3600)))
        .start()
        .expect("the engine starts");
    let server = WsServer::with_engine_on(adapter, &db, engine).await;

    // More unread pages than the pool has connections, from two users
    // (each within its limit): each page is read to its end at once and
    // holds no connection while unread, so every one is admitted.
    let mut pages = Vec::new();
    for (user, n) in [("hostile0", PER_USER), ("hostile1", 2)] {
        for _ in 0..n {
            pages.push(RawHttp::send(server.addr, &raw_get("/sync/deltas?after=0&limit=5000", user)).await);
        }
    }
    for page in &pages {
        assert_eq!(page.peek_status(LIVENESS).await, 200);
    }
    // The pages stay open unread: one more of the first user is refused.
    let mut refused = RawHttp::send(server.addr, &raw_get("/sync/deltas?after=0", "hostile0")).await;
    let head = refused.head(LIVENESS).await;
    assert_eq!((head.status, head.header("retry-after")), (429, Some("1")));

    honest_user_is_served(&server, &ws).await;
    drop(pages);
    server.stop().await;
}

/// A page of raw chunked bytes ends with the last chunk.
fn ends_with_last_chunk(body: &[u8]) -> bool {
    body.ends_with(b"\r\n0\r\n\r\n")
}

/// Waits until `user` may open a stream again (a one-action delta page is
/// admitted), reading each probe to its end.
async fn admitted_again(server: &WsServer, user: &str) {
    wait_for(LIVENESS, "the user's place is free again", || async {
        let mut probe = RawHttp::send(server.addr, &raw_get("/sync/deltas?after=0&limit=1", user)).await;
        let head = probe.head(LIVENESS).await;
        if head.status != 200 {
            return false;
        }
        let page: Value = serde_json::from_slice(&probe.read_chunked_body(LIVENESS).await).expect("a complete page");
        assert_eq!(page["hasMore"], json!(true));
        true
    })
    .await;
}

async fn a_stalled_stream_is_aborted_and_gives_its_connection_back(adapter: Adapter) {
    let db = TestDb::new().await;
    let hostile_ws = big_workspace(&db, &["mallory", "eve"], 20_000).await;
    backlog(&db, Some(&hostile_ws), 5000, 1500).await;
    // One stream per user: a refused second one shows the first still
    // holds its place.
    let limits = StreamLimits { per_user: 1, ..limits(Duration::from_secs(8)) };
    let server = WsServer::with_engine_on(
        adapter,
        &db,
        db.engine_builder().stream_limits(limits).start().expect("the engine starts"),
    )
    .await;

    let mut bootstrap = RawHttp::send(server.addr, &raw_get("/sync/bootstrap?type=full", "mallory")).await;
    assert_eq!(bootstrap.peek_status(LIVENESS).await, 200);
    let mut deltas = RawHttp::send(server.addr, &raw_get("/sync/deltas?after=0&limit=5000", "eve")).await;
    assert_eq!(deltas.peek_status(LIVENESS).await, 200);
    // The bootstrap backs up into its snapshot; note its backend.
    let holder = "SELECT coalesce((SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                  AND state = 'idle in transaction' LIMIT 1), 0)";
    // (The backend found is kept: until the stream backs up, its state
    // alternates between idle in transaction and active.)
    let found = std::cell::Cell::new(0);
    wait_for(LIVENESS, "the unread bootstrap holds its snapshot", || async {
        found.set(db.scalar(holder).await);
        found.get() != 0
    })
    .await;
    let pid = found.get();
    assert_ne!(pid, 0);
    // Both users' places are taken.
    for user in ["mallory", "eve"] {
        let mut second = RawHttp::send(server.addr, &raw_get("/sync/bootstrap?type=full", user)).await;
        assert_eq!(second.head(LIVENESS).await.status, 429, "{user}");
    }

    // Past the deadline the snapshot ends and its connection is back in
    // the pool: the same backend, idle.
    wait_for(LIVENESS, "the stalled stream's connection returns to the pool", || async {
        db.scalar(&format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} AND state = 'idle'")).await == 1
    })
    .await;
    assert_eq!(backends_in(&db, "idle in transaction").await, 0);
    // Both stalled streams ended (nobody read them), so their users may
    // open streams again.
    admitted_again(&server, "mallory").await;
    admitted_again(&server, "eve").await;
    // They were aborted, not ended: a client reading them now gets what
    // was buffered, then the connection closes without the last chunk (a
    // cut stream never looks complete).
    for (what, conn) in [("bootstrap", &mut bootstrap), ("deltas", &mut deltas)] {
        let body = conn.read_to_close(LIVENESS).await;
        assert!(body.len() > 64 * 1024, "{what}: {} bytes", body.len());
        assert!(!ends_with_last_chunk(&body), "{what} ended as if complete");
    }
    server.stop().await;
}

on_both_adapters!(
    unread_snapshot_streams_leave_other_users_served,
    unread_delta_pages_hold_no_connection,
    a_stalled_stream_is_aborted_and_gives_its_connection_back
);
