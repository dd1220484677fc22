//! The work one request may ask for is bounded: a model named many times in
//! `onlyModels` is counted once, identical batch items are streamed once,
//! and `onlyModels`, `syncGroups` and the query string itself have caps
//! answered with a clear 400.

use actix_web::http::{header, StatusCode};
use serde_json::{json, Value};
use stratasync_core::engine::BootstrapParams;
use stratasync_core::engine::{BatchItem, BatchParams};
use stratasync_tests::http_support::Adapter;
use stratasync_tests::http_support::*;
use stratasync_tests::*;
use taskboard::seed::{seed, SeedOptions};

/// Scans PostgreSQL counted on `tasks` so far. Every other connection of
/// the database (the pool's) is ended first, waiting for each, which
/// flushes its statistics; this one scans nothing itself.
async fn task_scans(db: &TestDb) -> i64 {
    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        v: i64,
    }
    let mut conn = AsyncPgConnection::establish(&db.url).await.expect("connect");
    let ended: Row = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) AS v FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .get_result(&mut conn)
    .await
    .expect("end the pool's connections");
    assert!(ended.v >= 0);
    let scans: Row = diesel::sql_query(
        "SELECT (seq_scan + coalesce(idx_scan, 0))::bigint AS v FROM pg_stat_user_tables WHERE relname = 'tasks'",
    )
    .get_result(&mut conn)
    .await
    .expect("scan counters");
    scans.v
}

/// Scans of `tasks` by one bootstrap of `only_models`.
async fn scans_of_bootstrap(db: &TestDb, alice: &stratasync_core::AuthContext, only_models: Vec<String>) -> i64 {
    let engine = db.engine();
    let before = task_scans(db).await;
    let params = BootstrapParams { only_models: Some(only_models), ..BootstrapParams::default() };
    let lines = collect_lines(engine.bootstrap(alice, params)).await;
    assert_eq!(lines[0]["returnedModelsCount"], json!({"Task": 3}));
    assert_eq!(lines.len(), 4, "the rows once: {lines:?}");
    task_scans(db).await - before
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_named_many_times_is_counted_once() {
    let db = TestDb::new().await;
    let opts = SeedOptions::new(&["alice"], 3);
    seed(&db.pool, &opts).await.expect("seed");
    let alice = user("alice", &[&opts.workspace_id.to_string()]);

    let once = scans_of_bootstrap(&db, &alice, vec!["Task".to_owned()]).await;
    assert!(once >= 2, "a count and a page scan tasks: {once}");
    let many = scans_of_bootstrap(&db, &alice, vec!["Task".to_owned(); 100]).await;
    assert_eq!(many, once, "Task named 100 times");
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_batch_items_are_streamed_once() {
    let db = TestDb::new().await;
    let opts = SeedOptions::new(&["alice"], 25);
    seed(&db.pool, &opts).await.expect("seed");
    let ws = opts.workspace_id.to_string();
    let alice = user("alice", &[&ws]);
    let engine = db.engine();
    let group = BatchItem::Group { group_id: ws.clone(), model_name: "Task".into() };
    let label = BatchItem::Group { group_id: ws.clone(), model_name: "Label".into() };
    let by_key =
        BatchItem::Indexed { indexed_key: "workspaceId".into(), key_value: ws.clone(), model_name: "Task".into() };

    let params = BatchParams { first_sync_id: None, requests: vec![group.clone(); 100] };
    let lines = collect_lines(engine.batch(&alice, params)).await;
    assert_eq!(lines.len(), 25);
    let mut ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 25);

    // Distinct items are all answered, in order of first appearance.
    let requests = [group.clone(), label.clone(), by_key.clone()].into_iter().cycle().take(99).collect();
    let lines = collect_lines(engine.batch(&alice, BatchParams { first_sync_id: None, requests })).await;
    let classes: Vec<&str> = lines.iter().map(|l| l["__class"].as_str().unwrap()).collect();
    let expected: Vec<&str> = ["Task"; 25].into_iter().chain(["Label"]).chain(["Task"; 25]).collect();
    assert_eq!(classes, expected);
}

async fn list_and_query_caps_answer_400(adapter: Adapter) {
    let db = TestDb::new().await;
    let opts = SeedOptions::new(&["alice"], 2);
    seed(&db.pool, &opts).await.expect("seed");
    let server = TestServer::start_on(adapter, &db, db.engine()).await;
    let client = client();
    let before = db.fingerprint().await;

    let query_failure = |field: &str, message: &str| json!({"details": [{"field": field, "message": message}], "error": "Validation failed", "source": "query"});
    let groups: Vec<String> = (0..1001).map(|i| format!("g{i}")).collect();
    let many_pairs: Vec<String> = (0..65).map(|i| format!("k{i}=v")).collect();
    for (path, field, message) in [
        (
            format!("/sync/bootstrap?onlyModels={}", "Task%2C".repeat(101)),
            "onlyModels",
            "At most 100 models are allowed",
        ),
        (format!("/sync/bootstrap?syncGroups={}", groups.join("%2C")), "syncGroups", "At most 1000 groups are allowed"),
        (format!("/sync/deltas?syncGroups={}", groups.join(",")), "syncGroups", "At most 1000 groups are allowed"),
        (format!("/sync/bootstrap?{}", many_pairs.join("&")), "root", "At most 64 query parameters are allowed"),
        (format!("/sync/deltas?{}", many_pairs.join("&")), "root", "At most 64 query parameters are allowed"),
    ] {
        let res = client.get(server.url(&path)).insert_header((header::AUTHORIZATION, bearer("alice"))).send();
        let mut res = res.await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{field}");
        let body = without_request_id(json_of(&res.body().await.unwrap()));
        assert_eq!(body, query_failure(field, message));
    }

    // Up to the caps, requests are served.
    let mut res = client
        .get(server.url(&format!(
            "/sync/bootstrap?onlyModels={}Workspace&{}",
            "Task%2C".repeat(99),
            many_pairs[..62].join("&")
        )))
        .insert_header((header::AUTHORIZATION, bearer("alice")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let lines = lines_of(&res.body().await.unwrap());
    assert_eq!(lines[0]["returnedModelsCount"], json!({"Task": 2, "Workspace": 1}));
    assert_eq!(lines.len(), 4);
    let value: Value = lines[1].clone();
    assert_eq!(value["__class"], json!("Task"));
    assert_eq!(db.fingerprint().await, before);
    server.stop().await;
}

on_both_adapters!(list_and_query_caps_answer_400);
