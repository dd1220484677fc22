//! The operator's view of a real `taskboard` process: `/metrics` after a
//! short run (exact counts where the run decides them), `/ready` through a
//! PostgreSQL outage (the proxy takes it away) and a Redis outage (a
//! private `redis-server` of this test is killed and restarted), and
//! `X-Request-Id`. Each runs against `taskboard` (actix) and
//! `taskboard-axum`.
//!
//! The Prometheus recorder is global per process, so the server runs as
//! its own process. Needs the binaries built (`scripts/test.sh` builds
//! them first).

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use stratasync_tests::http_support::{bearer, json_of, lines_of, mutate_body, transaction, Adapter, RawHttp};
use stratasync_tests::pg_proxy::{Cut, PgProxy};
use stratasync_tests::process_support::Taskboard;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

/// How long a state change may take to show (the feed's sampler runs every
/// second, the Redis subscriber retries within 5 s).
const SETTLE: Duration = Duration::from_secs(20);

/// The value of series `name` with (at least) `labels` in Prometheus'
/// text format, if it is there.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, number) = line.rsplit_once(' ')?;
        let (series_name, label_text) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        if series_name != name {
            return None;
        }
        let present: Vec<(&str, &str)> = label_text
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        labels.iter().all(|l| present.contains(l)).then(|| number.parse().ok()).flatten()
    })
}

/// [`value`], or 0 for a series not (yet) created.
fn count(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(text, name, labels).unwrap_or(0.0)
}

async fn metrics(server: &Taskboard) -> String {
    let mut res = awc::Client::new().get(server.url("/metrics")).send().await.expect("GET /metrics");
    assert_eq!(res.status(), 200);
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    String::from_utf8(res.body().limit(16 << 20).await.expect("metrics body").to_vec()).expect("UTF-8 metrics")
}

/// Polls `/metrics` (bounded) until `done` holds; returns that text.
async fn metrics_when(server: &Taskboard, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let text = metrics(server).await;
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "/metrics never showed {what}:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post_mutation(server: &Taskboard, request_id: Option<&str>, body: &Value) -> Value {
    let mut req = awc::Client::new().post(server.url("/sync/mutate")).insert_header(("Authorization", bearer("alice")));
    if let Some(id) = request_id {
        req = req.insert_header(("X-Request-Id", id));
    }
    let mut res = req.send_json(body).await.expect("POST /sync/mutate");
    assert_eq!(res.status(), 200);
    if let Some(id) = request_id {
        assert_eq!(res.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some(id));
    }
    json_of(&res.body().await.expect("mutate body"))
}

fn insert(ws: &str, id: &str, tx_id: &str) -> Value {
    let mut tx = transaction("INSERT", "Task", id, json!({"workspaceId": ws, "title": "T", "priority": 1}));
    tx["clientTxId"] = json!(tx_id);
    tx
}

async fn metrics_count_a_short_run(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    for i in 0..4 {
        db.execute(&format!("INSERT INTO tasks (id, workspace_id, title) VALUES ('{}', '{ws}', 'seed {i}')", new_id()))
            .await;
    }
    let server =
        Taskboard::start_on(adapter, &db.url, &[("RUST_LOG", "info,stratasync_core::service::group_commit=debug")])
            .await;
    let client = awc::Client::new();

    // A bootstrap: its rows and bytes are counted exactly.
    let mut res = client
        .get(server.url("/sync/bootstrap?type=full"))
        .insert_header(("Authorization", bearer("alice")))
        .send()
        .await
        .expect("bootstrap");
    assert_eq!(res.status(), 200);
    let body = res.body().limit(16 << 20).await.expect("bootstrap body");
    let rows = lines_of(&body).len() - 1;
    assert_eq!(rows, 5, "the workspace and its four tasks");

    // Mutations: two applied (one request), one deduplicated, one rejected.
    let (a, b) = (new_id(), new_id());
    let res = post_mutation(
        &server,
        Some("obs-batch-1"),
        &mutate_body(vec![insert(&ws, &a, "tx-a"), insert(&ws, &b, "tx-b")]),
    )
    .await;
    assert_eq!(res["success"], json!(true), "{res}");
    let res = post_mutation(&server, None, &mutate_body(vec![insert(&ws, &a, "tx-a")])).await;
    assert_eq!(res["results"][0]["syncId"], json!("1"), "deduplicated: {res}");
    let missing = transaction("UPDATE", "Task", &new_id(), json!({"title": "x"}));
    let res = post_mutation(&server, None, &mutate_body(vec![missing])).await;
    assert_eq!(res["results"][0]["success"], json!(false), "{res}");

    // One WebSocket: a replay of two actions (from the feed's hot tail,
    // once the feed has them), then one live delivery.
    metrics_when(&server, "the feed to deliver both actions", |t| {
        count(t, "stratasync_feed_delivered_sync_id", &[]) == 2.0
    })
    .await;
    let mut socket = WsClient::connect(&format!("ws://127.0.0.1:{}/sync/ws?token=token-alice", server.port)).await;
    let (replayed, _) = socket.subscribe_ok("alice", 0, None).await;
    assert_eq!(replayed, vec![1, 2]);
    let res = post_mutation(&server, None, &mutate_body(vec![insert(&ws, &new_id(), "tx-c")])).await;
    assert_eq!(res["lastSyncId"], json!("3"), "{res}");
    socket.assert_next_delta(3).await;
    socket.close().await;

    // The deltas endpoint serves all three from the database.
    let mut res = client
        .get(server.url("/sync/deltas?after=0"))
        .insert_header(("Authorization", bearer("alice")))
        .send()
        .await
        .expect("deltas");
    assert_eq!(json_of(&res.body().await.expect("deltas body"))["actions"].as_array().map(Vec::len), Some(3));

    let text = metrics_when(&server, "the closed socket and the delivered feed", |t| {
        count(t, "stratasync_ws_closed_total", &[("code", "1000")]) == 1.0
            && count(t, "stratasync_feed_delivered_sync_id", &[]) == 3.0
            && count(t, "stratasync_ws_frames_sent_total", &[]) >= 5.0
    })
    .await;
    let exact = |name: &str, labels: &[(&str, &str)], expected: f64| {
        assert_eq!(value(&text, name, labels), Some(expected), "{name}{labels:?} in\n{text}");
    };
    exact("stratasync_mutations_total", &[("outcome", "applied")], 3.0);
    exact("stratasync_mutations_total", &[("outcome", "deduplicated")], 1.0);
    exact("stratasync_mutations_total", &[("outcome", "rejected")], 1.0);
    exact("stratasync_mutations_rejected_total", &[("reason", "not_found")], 1.0);
    for outcome in ["interrupted", "unavailable", "rate_limited"] {
        assert_eq!(count(&text, "stratasync_mutations_total", &[("outcome", outcome)]), 0.0, "{outcome}");
    }
    exact("stratasync_commit_group_requests_count", &[], 4.0);
    exact("stratasync_commit_group_requests_sum", &[], 4.0);
    exact("stratasync_commit_group_transactions_sum", &[], 5.0);
    exact("stratasync_commit_group_transactions_bucket", &[("le", "1")], 3.0);
    exact("stratasync_commit_duration_seconds_count", &[], 4.0);
    exact("stratasync_commit_duration_seconds_bucket", &[("le", "+Inf")], 4.0);
    assert!(count(&text, "stratasync_commit_duration_seconds_sum", &[]) > 0.0);
    exact("stratasync_bootstrap_rows_total", &[], rows as f64);
    exact("stratasync_bootstrap_bytes_total", &[], body.len() as f64);
    // The feed's hot tail holds the whole run: catch-up and replay both
    // come from memory.
    exact("stratasync_deltas_served_total", &[("source", "memory"), ("via", "http")], 3.0);
    exact("stratasync_deltas_served_total", &[("source", "memory"), ("via", "replay")], 2.0);
    assert_eq!(value(&text, "stratasync_deltas_served_total", &[("source", "database"), ("via", "http")]), None);
    assert_eq!(value(&text, "stratasync_deltas_served_total", &[("source", "database"), ("via", "replay")]), None);
    exact("stratasync_ws_sockets_open", &[], 0.0);
    exact("stratasync_ws_send_queue_bytes", &[], 0.0);
    // Two replayed deltas, `subscribed`, one live delta, the close frame.
    exact("stratasync_ws_frames_sent_total", &[], 5.0);
    assert!(count(&text, "stratasync_ws_sent_bytes_total", &[]) > 5.0 * 2.0);
    exact("stratasync_feed_head_sync_id", &[], 3.0);
    exact("stratasync_feed_lag_actions", &[], 0.0);
    exact("stratasync_db_pool_connections", &[("state", "max")], 16.0);
    let open = count(&text, "stratasync_db_pool_connections", &[("state", "in_use")])
        + count(&text, "stratasync_db_pool_connections", &[("state", "idle")]);
    assert!((1.0..=16.0).contains(&open), "pool connections {open}");
    assert!(text.contains("# HELP stratasync_mutations_total "), "described series carry their help");

    // The commit group's span names the request it carried.
    let line = server
        .wait_for_log_line("of the commit group", |l| {
            l.contains("commit_group{") && l.contains("request_ids=obs-batch-1")
        })
        .await;
    assert!(line.contains("transactions=2"), "{line}");
}

/// `GET /ready` until it answers `status` and `check` holds (bounded);
/// returns the body.
async fn ready_when(server: &Taskboard, status: u16, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + SETTLE;
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    loop {
        let mut res = client.get(server.url("/ready")).send().await.expect("GET /ready");
        let body = json_of(&res.body().await.expect("ready body"));
        if res.status().as_u16() == status && check(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "/ready never became {status} with {what}; last: {} {body}", res.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ready_follows_postgres_and_redis(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    let proxy = PgProxy::start().await;
    let mut redis = RedisServer::start().await;
    let server = Taskboard::start_on(adapter, &proxy.url(&db.name), &[("REDIS_URL", &redis.url())]).await;

    let body = ready_when(&server, 200, "Redis connected", |b| b["redis"] == "connected").await;
    assert_eq!(
        body,
        json!({"status": "ready", "database": "up", "redis": "connected",
               "feed": {"live": true, "head": 0, "delivered": 0, "lag": 0}})
    );

    // A commit cut off on its way: the group fails, its transaction counts
    // as unavailable (503), and the node stays ready.
    proxy.arm(Cut::BeforeCommit);
    let res = awc::Client::new()
        .post(server.url("/sync/mutate"))
        .insert_header(("Authorization", bearer("alice")))
        .send_json(&mutate_body(vec![insert(&ws, &new_id(), "tx-cut")]))
        .await
        .expect("POST /sync/mutate");
    assert_eq!((res.status().as_u16(), proxy.fired()), (503, 1));
    let text = metrics(&server).await;
    assert_eq!(value(&text, "stratasync_mutations_total", &[("outcome", "unavailable")]), Some(1.0), "{text}");
    assert_eq!(count(&text, "stratasync_mutations_total", &[("outcome", "applied")]), 0.0, "{text}");
    ready_when(&server, 200, "ready after the cut", |b| b["database"] == "up").await;

    proxy.set_down(true);
    let body = ready_when(&server, 503, "the database down", |b| b["database"] == "down").await;
    assert_eq!(body["status"], json!("not_ready"));
    assert_eq!(body["feed"]["head"], Value::Null);
    proxy.set_down(false);
    let body = ready_when(&server, 200, "the database back", |b| b["feed"]["live"] == true).await;
    assert_eq!(body["status"], json!("ready"));

    redis.kill();
    let body = ready_when(&server, 503, "Redis down", |b| b["redis"] == "disconnected").await;
    assert_eq!((&body["status"], &body["database"]), (&json!("not_ready"), &json!("up")));
    redis.restart().await;
    ready_when(&server, 200, "Redis back", |b| b["redis"] == "connected").await;

    let text = metrics(&server).await;
    assert_eq!(value(&text, "stratasync_redis_connected", &[("role", "subscriber")]), Some(1.0), "{text}");
    assert!(count(&text, "stratasync_redis_reconnects_total", &[("role", "subscriber")]) >= 1.0, "{text}");
}

/// The `X-Request-Id` a raw `GET /health` with `header` (a whole header
/// line, or nothing) is answered with.
async fn request_id_for(server: &Taskboard, header: &[u8]) -> Option<String> {
    let mut request = b"GET /health HTTP/1.1\r\nHost: test\r\n".to_vec();
    request.extend_from_slice(header);
    request.extend_from_slice(b"\r\n");
    let mut exchange = RawHttp::send(server.addr(), &request).await;
    let head = exchange.head(WAIT).await;
    assert_eq!(head.status, 200);
    head.header("x-request-id").map(str::to_owned)
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn request_ids_are_returned_and_hostile_ones_replaced(adapter: Adapter) {
    let db = TestDb::new().await;
    let server = Taskboard::start_on(adapter, &db.url, &[]).await;

    let first = request_id_for(&server, b"").await.expect("an id without one sent");
    let second = request_id_for(&server, b"").await.expect("an id without one sent");
    assert!(is_generated(&first) && is_generated(&second) && first != second, "{first} {second}");
    let kept = request_id_for(&server, b"X-Request-Id: trace-42.A_b~\r\n").await;
    assert_eq!(kept.as_deref(), Some("trace-42.A_b~"));
    let longest = "a".repeat(64);
    let kept = request_id_for(&server, format!("X-Request-Id: {longest}\r\n").as_bytes()).await;
    assert_eq!(kept.as_deref(), Some(longest.as_str()));

    let too_long = format!("X-Request-Id: {}\r\n", "a".repeat(65));
    for hostile in
        [too_long.as_bytes(), b"X-Request-Id: a b\r\n", b"X-Request-Id: a\tb\r\n", "X-Request-Id: é\r\n".as_bytes()]
    {
        let id = request_id_for(&server, hostile).await.expect("an id in place of a hostile one");
        assert!(is_generated(&id), "{:?} answered with {id:?}", String::from_utf8_lossy(hostile));
    }
    // A control character does not even reach the application: the
    // request is refused, and nothing of it is echoed.
    let mut exchange =
        RawHttp::send(server.addr(), b"GET /health HTTP/1.1\r\nHost: test\r\nX-Request-Id: a\x1b[31m\r\n\r\n").await;
    let head = exchange.head(WAIT).await;
    assert!(
        head.status == 400 || head.header("x-request-id").is_some_and(is_generated),
        "a control character got {} {:?}",
        head.status,
        head.header("x-request-id")
    );
}

/// A validation error body names the request by the id it is answered
/// under (`X-Request-Id`), the client's or a generated one.
async fn validation_errors_carry_the_request_id(adapter: Adapter) {
    let db = TestDb::new().await;
    let server = Taskboard::start_on(adapter, &db.url, &[]).await;
    for sent in [Some("trace-7"), None] {
        let mut req =
            awc::Client::new().post(server.url("/sync/mutate")).insert_header(("Authorization", bearer("alice")));
        if let Some(id) = sent {
            req = req.insert_header(("X-Request-Id", id));
        }
        let mut res = req.send_json(&json!({"batchId": "b", "transactions": []})).await.expect("POST /sync/mutate");
        assert_eq!(res.status(), 400);
        let header = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("an id").to_owned();
        let body = json_of(&res.body().await.expect("error body"));
        assert_eq!(body["error"], json!("Validation failed"), "{body}");
        assert_eq!(body["requestId"], json!(header), "{body}");
        match sent {
            Some(id) => assert_eq!(header, id),
            None => assert!(is_generated(&header), "{header}"),
        }
    }
}

on_both_adapters!(
    metrics_count_a_short_run,
    ready_follows_postgres_and_redis,
    request_ids_are_returned_and_hostile_ones_replaced,
    validation_errors_carry_the_request_id,
);

#[test]
fn every_series_is_documented() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let source = std::fs::read_to_string(format!("{root}/stratasync-core/src/metrics.rs")).expect("metrics.rs");
    let docs = std::fs::read_to_string(format!("{root}/docs/metrics.md")).expect("docs/metrics.md");
    let names = |text: &str| -> Vec<String> {
        let mut names: Vec<String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| {
                w.len() > "stratasync_".len() && w.starts_with("stratasync_") && !w.starts_with("stratasync_core")
            })
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let defined: Vec<String> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_owned)
        .collect();
    assert!(defined.len() >= 20, "{defined:?}");
    let documented = names(&docs);
    for name in &defined {
        assert!(documented.contains(name), "{name} is not in docs/metrics.md");
    }
    for name in &documented {
        assert!(defined.contains(name), "docs/metrics.md names {name}, which the engine does not record");
    }
}
