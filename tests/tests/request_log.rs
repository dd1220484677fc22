//! The example's request log, read from a real `taskboard` (and
//! `taskboard-axum`) process: every
//! request gets its line, `token` query values never reach it (however
//! the key is spelled), and what the client chose is clipped.
//!
//! Needs the binaries built (`scripts/test.sh` builds them first).

use serde_json::json;
use stratasync_core::log_text::MAX_LOGGED_CHARS;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::process_support::Taskboard;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

/// alice's token (`TASKBOARD_TOKENS`), and one the server does not know.
const SECRET: &str = "s3cret-7f1d9c";
const WRONG: &str = "wrong-5b2e8a";

async fn the_request_log_never_holds_a_token_and_clips_client_text(adapter: Adapter) {
    let db = TestDb::new().await;
    workspace(&db, &["alice"]).await;
    let tokens = format!("{SECRET}=alice");
    let server = Taskboard::start_on(adapter, &db.url, &[("TASKBOARD_TOKENS", &tokens), ("RUST_LOG", "info")]).await;
    let ws_url = |query: &str| format!("ws://127.0.0.1:{}/sync/ws?{query}", server.port);
    let client = awc::Client::new();

    // WebSocket upgrades: accepted, refused, and with the key percent-encoded.
    let mut socket = WsClient::connect(&ws_url(&format!("token={SECRET}"))).await;
    socket.send_text(json!({"afterSyncId": "0", "token": SECRET, "type": "subscribe"}).to_string()).await;
    socket.until_subscribed().await;
    match WsClient::try_connect(&ws_url(&format!("token={WRONG}"))).await {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => assert_eq!(status, 401),
        _ => panic!("an unknown token must be refused"),
    }
    WsClient::connect(&ws_url(&format!("%74oken={SECRET}&x=1"))).await;
    // HTTP: a token in a query string, a long target, and a long id in a
    // mutation (an update of a missing row).
    let res = client
        .get(server.url(&format!("/sync/bootstrap?type=full&token={SECRET}")))
        .insert_header(("Authorization", format!("Bearer {SECRET}")))
        .send()
        .await
        .expect("bootstrap");
    assert_eq!(res.status(), 200);
    let res = client.get(server.url(&format!("/health?pad={}", "p".repeat(10_000)))).send().await.expect("health");
    assert_eq!(res.status(), 200);
    let long_id = "Z".repeat(5000);
    let body = json!({"batchId": new_id(), "transactions": [{
        "action": "UPDATE", "clientId": "c", "clientTxId": long_id, "modelId": new_id(), "modelName": "Task",
        "payload": {"title": "x"}}]});
    let res = client
        .post(server.url("/sync/mutate"))
        .insert_header(("Authorization", format!("Bearer {SECRET}")))
        .send_json(&body)
        .await
        .expect("mutate");
    assert!(res.status().is_success() || res.status() == 400, "{}", res.status());

    // Every request has its line, the token redacted.
    let line = |target: &str, status: u16| {
        let target = format!("target={target} ");
        let status = format!("status={status} ");
        move |l: &str| l.contains("request") && l.contains(&target) && l.contains(&status)
    };
    server.wait_for_log_line("for the upgrade", line("/sync/ws?token=<redacted>", 101)).await;
    server.wait_for_log_line("for the refused upgrade", line("/sync/ws?token=<redacted>", 401)).await;
    server.wait_for_log_line("for the encoded key", line("/sync/ws?%74oken=<redacted>&x=1", 101)).await;
    server.wait_for_log_line("for the bootstrap", line("/sync/bootstrap?type=full&token=<redacted>", 200)).await;
    server.wait_for_log_line("for the mutation", |l| l.contains("target=/sync/mutate ")).await;
    let health = server.wait_for_log_line("for the long target", |l| l.contains("target=/health?pad=ppp")).await;
    let kept = format!("target=/health?pad={} ", "p".repeat(MAX_LOGGED_CHARS - "/health?pad=".len()));
    assert!(health.contains(&kept.replace(' ', "…(+")), "clipped to {MAX_LOGGED_CHARS} characters: {health}");

    let log = server.log();
    for secret in [SECRET, WRONG] {
        assert!(!log.contains(secret), "the log holds a token:\n{log}");
    }
    assert!(!log.contains(&"Z".repeat(MAX_LOGGED_CHARS + 1)), "the log holds a whole client id");
    for line in log.lines() {
        assert!(line.len() < 2 * 1024, "a log line of {} bytes: {line:.300}", line.len());
    }
}

on_both_adapters!(the_request_log_never_holds_a_token_and_clips_client_text);
