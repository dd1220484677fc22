//! The per-user mutation rate limit over HTTP: a user over it gets 429
//! with `Retry-After` and nothing of the request is applied; other users
//! are not limited by it.

use actix_web::http::header;
use serde_json::{json, Value};
use std::num::NonZeroU32;
use stratasync_core::engine::MutationRateLimit;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::http_support::{bearer, client, mutate_body, transaction, TestServer};
use stratasync_tests::*;

async fn post(server: &TestServer, user: &str, body: &Value) -> (u16, Option<String>, Value) {
    let mut res = client()
        .post(server.url("/sync/mutate"))
        .insert_header((header::AUTHORIZATION, bearer(user)))
        .send_json(body)
        .await
        .expect("request");
    let retry_after = res.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = serde_json::from_slice(&res.body().await.expect("body")).expect("JSON body");
    (res.status().as_u16(), retry_after, body)
}

fn tasks(ws: &str, n: usize) -> Value {
    mutate_body(
        (0..n)
            .map(|i| transaction("INSERT", "Task", &new_id(), json!({"workspaceId": ws, "title": format!("t{i}")})))
            .collect(),
    )
}

async fn a_user_over_the_limit_gets_429_and_others_are_not_limited(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = stratasync_tests::ws_support::workspace(&db, &["alice", "bob"]).await;
    let one = NonZeroU32::MIN;
    let engine = db
        .engine_builder()
        .mutation_rate_limit(MutationRateLimit { per_second: one, burst: one })
        .start()
        .expect("the engine starts");
    let server = TestServer::start_on(adapter, &db, engine).await;

    // The burst is at least one whole request of 100 transactions.
    let (status, _, body) = post(&server, "alice", &tasks(&ws, 100)).await;
    assert_eq!((status, &body["success"]), (200, &json!(true)), "{body}");
    let before = db.fingerprint().await;
    // Another 100 fit only after 100 s at one per second.
    let (status, retry_after, body) = post(&server, "alice", &tasks(&ws, 100)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body, json!({"statusCode": 429, "error": "Too Many Requests", "message": "Rate limit exceeded"}));
    let seconds: u64 = retry_after.expect("Retry-After").parse().expect("whole seconds");
    assert!((60..=100).contains(&seconds), "Retry-After {seconds}");
    assert_eq!(db.fingerprint().await, before, "a refused request applies nothing");

    let (status, _, body) = post(&server, "bob", &tasks(&ws, 3)).await;
    assert_eq!((status, &body["success"]), (200, &json!(true)), "bob has a bucket of his own: {body}");
    server.stop().await;
}

on_both_adapters!(a_user_over_the_limit_gets_429_and_others_are_not_limited);
