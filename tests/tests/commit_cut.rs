//! A connection that breaks in the middle of a mutation's commit (through
//! [`PgProxy`], between the server and PostgreSQL): the client gets a
//! retryable 503, never a `success:false`, whether the commit happened or
//! not; the client's retry of the same batch then commits it exactly once,
//! or is answered by deduplication with the original sync id.

use actix_web::http::{header, StatusCode};
use serde_json::{json, Value};
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::storage::{self, PoolConfig};
use stratasync_tests::http_support::*;
use stratasync_tests::pg_proxy::{Cut, PgProxy};
use stratasync_tests::*;

const UNAVAILABLE: &str = r#"{"statusCode":503,"error":"Service Unavailable","message":"Storage unavailable"}"#;

/// Status, `Retry-After` and body of a `POST /sync/mutate` of `body` as
/// alice.
async fn mutate_as_alice(addr: std::net::SocketAddr, body: &Value) -> (StatusCode, Option<String>, Vec<u8>) {
    let mut res = client()
        .post(format!("http://{addr}/sync/mutate"))
        .insert_header((header::AUTHORIZATION, bearer("alice")))
        .send_json(body)
        .await
        .expect("response");
    let retry_after = res.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    (res.status(), retry_after, res.body().await.expect("body").to_vec())
}

async fn a_connection_cut_mid_commit_is_a_retryable_503_and_the_retry_commits_once(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, _) = two_workspaces(&db).await;
    let proxy = PgProxy::start().await;
    let pool = storage::connect(&proxy.url(&db.name), &PoolConfig::default()).expect("pool");
    let engine = taskboard::engine(pool, taskboard::DevAuth::default()).expect("the engine starts");
    let (addr, server) = ServerHandle::start(adapter, SyncEndpoints::new(engine), db.pool.clone(), 1);
    let ok = |tx: &Value, sync_id: i64| {
        json!({"lastSyncId": sync_id.to_string(),
               "results": [{"clientTxId": tx["clientTxId"], "success": true, "syncId": sync_id.to_string()}],
               "success": true})
    };
    let logged = |tx: &Value| {
        format!("SELECT count(*) FROM sync_actions WHERE client_tx_id = '{}'", tx["clientTxId"].as_str().unwrap())
    };

    // 1. PostgreSQL commits, the answer is lost on the way back.
    let first = transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": "committed"}));
    let body = mutate_body(vec![first.clone()]);
    proxy.arm(Cut::AfterCommit);
    let (status, retry_after, answer) = mutate_as_alice(addr, &body).await;
    assert_eq!(proxy.fired(), 1, "the cut happened at the commit");
    assert_eq!((status, retry_after.as_deref()), (StatusCode::SERVICE_UNAVAILABLE, Some("1")));
    assert_eq!(answer, UNAVAILABLE.as_bytes());
    assert_eq!(db.scalar(&logged(&first)).await, 1, "the commit went through");
    let original = db.scalar("SELECT max(id) FROM sync_actions").await;
    // The client sends the same batch again: deduplication answers with
    // the original sync id, and nothing is applied twice.
    let (status, _, answer) = mutate_as_alice(addr, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&answer), ok(&first, original));
    assert_eq!(db.scalar(&logged(&first)).await, 1);
    assert_eq!(db.scalar("SELECT count(*) FROM tasks WHERE title = 'committed'").await, 1);

    // 2. The connection breaks before PostgreSQL gets the `COMMIT`: rolled
    // back; the retry applies it, once.
    let second = transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": "rolled back"}));
    let body = mutate_body(vec![second.clone()]);
    proxy.arm(Cut::BeforeCommit);
    let (status, retry_after, answer) = mutate_as_alice(addr, &body).await;
    assert_eq!(proxy.fired(), 2);
    assert_eq!((status, retry_after.as_deref()), (StatusCode::SERVICE_UNAVAILABLE, Some("1")));
    assert_eq!(answer, UNAVAILABLE.as_bytes());
    assert_eq!(db.scalar(&logged(&second)).await, 0, "nothing of it committed");
    assert_eq!(db.scalar("SELECT count(*) FROM tasks WHERE title = 'rolled back'").await, 0);
    let (status, _, answer) = mutate_as_alice(addr, &body).await;
    assert_eq!(status, StatusCode::OK);
    let next = db.scalar("SELECT max(id) FROM sync_actions").await;
    assert!(next > original);
    assert_eq!(json_of(&answer), ok(&second, next));
    assert_eq!(db.scalar(&logged(&second)).await, 1);
    assert_eq!(db.scalar("SELECT count(*) FROM tasks WHERE title = 'rolled back'").await, 1);
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 2);
    server.stop(false).await;
}

on_both_adapters!(a_connection_cut_mid_commit_is_a_retryable_503_and_the_retry_commits_once);
