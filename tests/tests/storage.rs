//! Storage: migrations under concurrency, pool recovery after PostgreSQL
//! drops connections, and group resolution through the membership table.

use serde_json::json;
use stratasync_core::protocol::MutationAction::Insert;
use stratasync_core::service::deltas::DeltasParams;
use stratasync_core::storage::memberships;
use stratasync_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn migrations_are_idempotent_and_safe_to_run_concurrently_with_writers() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = new_id();
    db.execute(&format!("INSERT INTO workspaces (id, name) VALUES ('{ws}', 'W')")).await;
    let alice = user("alice", &[&ws]);
    let writer = {
        let (engine, alice, ws) = (engine.clone(), alice.clone(), ws.clone());
        tokio::spawn(async move {
            for i in 0..50 {
                let r = mutate(
                    &engine,
                    &alice,
                    vec![tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": format!("{i}")}))],
                )
                .await;
                assert!(r.success, "{r:?}");
            }
        })
    };
    let nodes = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move { taskboard::migrate(&url).await })
    });
    for node in futures_util::future::join_all(nodes).await {
        node.unwrap().expect("a restarting node migrates without error");
    }
    writer.await.unwrap();
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 50);
    // The framework's migration and the example's two, each recorded once.
    assert_eq!(db.scalar("SELECT count(*) FROM __diesel_schema_migrations").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_databases_migrate_concurrently() {
    let db = TestDb::new().await;
    db.execute("DROP TABLE task_labels, labels, tasks, workspaces, sync_actions, sync_group_memberships, __diesel_schema_migrations").await;
    let nodes = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move { taskboard::migrate(&url).await })
    });
    for node in futures_util::future::join_all(nodes).await {
        node.unwrap().expect("concurrent first migration");
    }
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_replaces_connections_postgres_terminated() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let alice = user("alice", &[]);
    // Warm the pool with several connections.
    let params = DeltasParams::default();
    let warm = (0..4).map(|_| engine.deltas(&alice, &params));
    for r in futures_util::future::join_all(warm).await {
        r.unwrap();
    }
    db.terminate_backends().await;
    for _ in 0..8 {
        let page = tokio::time::timeout(std::time::Duration::from_secs(10), engine.deltas(&alice, &params))
            .await
            .expect("no request hangs after the server dropped connections");
        page.expect("requests after the drop succeed without a restart");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_combines_callback_memberships_and_user_id() {
    let db = TestDb::new().await;
    let engine = db.engine();
    memberships::add(&db.pool, "u1", "w2", "workspace").await.unwrap();
    memberships::add(&db.pool, "u1", "w3", "workspace").await.unwrap();
    memberships::add(&db.pool, "u1", "w2", "workspace").await.unwrap();
    memberships::add(&db.pool, "u2", "w9", "workspace").await.unwrap();
    let ctx = engine.authorize("token-u1").await.unwrap();
    assert_eq!(ctx.user.user_id, "u1");
    assert_eq!(ctx.groups, ["w2", "w3", "u1"]);
    assert!(engine.authorize("nope").await.is_err());
}
