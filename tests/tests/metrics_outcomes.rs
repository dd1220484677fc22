//! Mutation outcomes in the metrics, counted by the engine itself: this
//! test binary installs a Prometheus recorder for its process (one test
//! only: the recorder is global) and drives the engine directly through
//! every outcome a short HTTP run does not reach: a request over the rate
//! limit, one interrupted by a row lock held elsewhere, and rejections of
//! each reason class.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::json;
use std::num::NonZeroU32;
use std::time::Duration;
use stratasync_core::engine::GroupCommitConfig;
use stratasync_core::engine::MutationRateLimit;
use stratasync_core::protocol::MutationAction;
use stratasync_core::request::MAX_TRANSACTIONS;
use stratasync_core::ServiceError;
use stratasync_tests::ws_support::workspace;
use stratasync_tests::*;

/// The value of `name` with `label` (`key`, `value`) in `text`, 0 when absent.
fn count(text: &str, name: &str, label: (&str, &str)) -> f64 {
    let series = format!("{name}{{{}=\"{}\"}} ", label.0, label.1);
    text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

#[tokio::test]
async fn every_outcome_is_counted() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this process");

    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    let other = workspace(&db, &["bob"]).await;
    let limit = MutationRateLimit { per_second: NonZeroU32::MIN, burst: NonZeroU32::MIN };
    let config = GroupCommitConfig { lock_timeout: Duration::from_millis(200), ..GroupCommitConfig::default() };
    let engine =
        db.engine_builder().mutation_rate_limit(limit).group_commit(config).start().expect("the engine starts");
    let alice = user("alice", &[&ws]);
    let task = new_id();
    let insert = |id: &str, ws: &str| tx(MutationAction::Insert, "Task", id, json!({"workspaceId": ws, "title": "T"}));

    // Applied, then each reason class of rejection in one request.
    let res = mutate(&engine, &alice, vec![insert(&task, &ws)]).await;
    assert!(res.success, "{res:?}");
    let rejected = vec![
        insert(&new_id(), &other),
        tx(MutationAction::Insert, "Nope", &new_id(), json!({})),
        insert(&task, &ws),
        tx(MutationAction::Update, "Task", &new_id(), json!({"title": "x"})),
    ];
    let res = to_json(&mutate(&engine, &alice, rejected).await);
    let errors: Vec<&str> =
        res["results"].as_array().expect("results").iter().map(|r| r["error"].as_str().unwrap_or("")).collect();
    assert_eq!(
        errors,
        [
            "Access denied",
            "Unknown model: Nope",
            "Invalid mutation: record already exists",
            "Invalid mutation: record not found"
        ]
    );

    // Over the limit: more transactions than the bucket can ever hold.
    let many: Vec<_> = (0..=MAX_TRANSACTIONS).map(|_| insert(&new_id(), &ws)).collect();
    let refused = engine.mutate(&alice, &batch(many)).await;
    assert!(matches!(refused, Err(ServiceError::RateLimited { .. })), "{refused:?}");

    // Interrupted: the row is locked elsewhere beyond the lock timeout.
    let mut locker = AsyncPgConnection::establish(&db.url).await.expect("connect");
    locker.batch_execute(&format!("BEGIN; SELECT id FROM tasks WHERE id = '{task}' FOR UPDATE")).await.expect("lock");
    let update = tx(MutationAction::Update, "Task", &task, json!({"title": "renamed"}));
    let interrupted = engine.mutate(&alice, &batch(vec![update])).await;
    assert!(matches!(interrupted, Err(ServiceError::Interrupted)), "{interrupted:?}");
    locker.batch_execute("ROLLBACK").await.expect("unlock");

    let text = handle.render();
    let outcome = |o: &str| count(&text, "stratasync_mutations_total", ("outcome", o));
    let reason = |r: &str| count(&text, "stratasync_mutations_rejected_total", ("reason", r));
    assert_eq!(outcome("applied"), 1.0, "{text}");
    assert_eq!(outcome("rejected"), 4.0, "{text}");
    assert_eq!(outcome("rate_limited"), (MAX_TRANSACTIONS + 1) as f64, "{text}");
    assert_eq!(outcome("interrupted"), 1.0, "{text}");
    assert_eq!(outcome("unavailable"), 0.0, "{text}");
    assert_eq!(outcome("deduplicated"), 0.0, "{text}");
    for class in ["access_denied", "invalid", "conflict", "not_found"] {
        assert_eq!(reason(class), 1.0, "{class}: {text}");
    }
}
