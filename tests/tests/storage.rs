//! Storage: migrations under concurrency, pool recovery after PostgreSQL
//! drops connections, and group resolution through the membership table.

use serde_json::json;
use stratasync_core::engine::DeltasParams;
use stratasync_core::protocol::MutationAction::Insert;
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
    // The framework's three migrations and the example's two, each recorded once.
    assert_eq!(db.scalar("SELECT count(*) FROM __diesel_schema_migrations").await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_databases_migrate_concurrently() {
    let db = TestDb::new().await;
    db.execute("DROP TABLE task_labels, labels, tasks, workspaces, sync_actions, sync_group_memberships, sync_log_horizon, sync_compacted_keys, __diesel_schema_migrations").await;
    // Each node reads the schema the moment its migration returns: none
    // may return before the schema is complete.
    let nodes = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move {
            taskboard::migrate(&url).await.expect("concurrent first migration");
            schema_at(&url).await
        })
    });
    let seen = futures_util::future::join_all(nodes).await;
    // The same schema, object for object, as one migration alone makes.
    let reference = TestDb::new().await;
    let expected = reference.schema().await;
    for (i, got) in seen.into_iter().enumerate() {
        assert_eq!(got.unwrap(), expected, "node {i} returned before the schema was complete");
    }
    assert_eq!(db.schema().await, expected);
    let tables = db
        .text(
            "SELECT string_agg(table_name::text, ' ' ORDER BY table_name) FROM information_schema.tables \
             WHERE table_schema = 'public'",
        )
        .await;
    assert_eq!(
        tables,
        "__diesel_schema_migrations labels sync_actions sync_compacted_keys sync_group_memberships sync_log_horizon \
         task_labels tasks workspaces"
    );
    assert_eq!(expected.lines().filter(|l| l.starts_with("migration ")).count(), 5, "{expected}");
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

#[tokio::test(flavor = "multi_thread")]
async fn memberships_remove_takes_one_user_out_of_one_group() {
    let db = TestDb::new().await;
    let engine = db.engine();
    memberships::add(&db.pool, "u1", "w2", "workspace").await.unwrap();
    memberships::add(&db.pool, "u1", "w3", "workspace").await.unwrap();
    memberships::add(&db.pool, "u2", "w2", "workspace").await.unwrap();
    assert_eq!(engine.authorize("token-u1").await.unwrap().groups, ["w2", "w3", "u1"]);

    assert!(memberships::remove(&db.pool, "u1", "w2").await.unwrap(), "u1 was a member of w2");
    assert!(!memberships::remove(&db.pool, "u1", "w2").await.unwrap(), "a second removal finds no member");
    assert_eq!(engine.authorize("token-u1").await.unwrap().groups, ["w3", "u1"]);
    // Other members of the group stay.
    assert_eq!(engine.authorize("token-u2").await.unwrap().groups, ["w2", "u2"]);
    // A user's own id is no membership row: it cannot be removed.
    assert!(!memberships::remove(&db.pool, "u1", "u1").await.unwrap());
    assert_eq!(engine.authorize("token-u1").await.unwrap().groups, ["w3", "u1"]);
    assert_eq!(db.scalar("SELECT count(*) FROM sync_group_memberships").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_database_if_missing_creates_once_and_reports_an_unreachable_server() {
    use stratasync_core::storage::migrate::{self, MigrateError};
    let name = format!("stratasync_test_created_{}", uuid::Uuid::new_v4().simple());
    let admin = admin_url();
    let url = format!("{}/{name}", admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base));
    let created = migrate::create_database_if_missing(&url).await;
    let again = migrate::create_database_if_missing(&url).await;
    let migrated = migrate::run(&url, &[]).await;
    let drop = {
        use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
        let mut conn = AsyncPgConnection::establish(&admin).await.expect("connect");
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
    };
    assert!(created.expect("creates the database"), "the first call creates it");
    assert!(!again.expect("finds the database"), "the second call finds it");
    migrated.expect("the created database takes the framework's migrations");
    drop.expect("drop the database");

    // Nothing listens on this port: the connection error is reported.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = migrate::create_database_if_missing(&format!("postgres://postgres@127.0.0.1:{port}/x")).await;
    assert!(matches!(unreachable, Err(MigrateError::Connect(_))), "{unreachable:?}");
}

/// The SQL of the README's "Groups and memberships", run as written.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_membership_sql_adds_and_removes_a_member() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let section = readme.split("\n## Groups and memberships\n").nth(1).expect("the README section");
    let sql = section.split("```sql\n").nth(1).and_then(|rest| rest.split("```").next()).expect("its SQL block");
    let (insert, delete) = sql.split_once(";\n").expect("two statements");
    assert!(insert.starts_with("INSERT") && delete.trim_start().starts_with("DELETE"), "{sql}");
    let db = TestDb::new().await;
    let engine = db.engine();
    db.execute(insert).await;
    db.execute(insert).await;
    assert_eq!(engine.authorize("token-alice").await.unwrap().groups, ["35a3…", "alice"]);
    db.execute(delete).await;
    assert_eq!(engine.authorize("token-alice").await.unwrap().groups, ["alice"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_ask_for_english_messages_where_the_role_may() {
    use diesel::sql_types::Text;
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        lc_messages: String,
    }
    async fn show(conn: &mut stratasync_core::storage::Conn) -> String {
        use diesel_async::RunQueryDsl;
        let row: Setting = diesel::sql_query("SHOW lc_messages").get_result(conn).await.expect("show");
        row.lc_messages
    }
    async fn lc_messages(url: &str) -> String {
        show(&mut stratasync_core::storage::establish(url).await.expect("connects")).await
    }
    let db = TestDb::new().await;
    // The database's default is another spelling; the connection asks for 'C'.
    db.execute(&format!("ALTER DATABASE {} SET lc_messages = 'POSIX'", db.name)).await;
    assert_eq!(lc_messages(&db.url).await, "C");
    let pool = stratasync_core::storage::connect(&db.url, &Default::default()).expect("pool");
    assert_eq!(show(&mut pool.get().await.expect("a pooled connection")).await, "C");
    // A role that may not set it still connects, with the database's default.
    let role = format!("plain_{}", &db.name[db.name.len() - 8..]);
    db.execute(&format!("CREATE ROLE {role} LOGIN")).await;
    let as_role = db.url.replacen("://", &format!("://{role}@"), 1);
    let as_role = match as_role.split_once('@').map(|(a, b)| (a, b.split_once('@'))) {
        // The URL already named a user: keep only the new one.
        Some((head, Some((_, host)))) => format!("{head}@{host}"),
        _ => as_role,
    };
    assert_eq!(lc_messages(&as_role).await, "POSIX");
    db.execute(&format!("DROP ROLE {role}")).await;
}
