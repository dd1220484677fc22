//! Membership changes are sync actions: every change of a user's rows of
//! `sync_group_memberships`, through `storage::memberships` or plain SQL,
//! logs an `S` action for that user in the same transaction, in commit
//! order among concurrent writes, delivered by `/sync/deltas` and live
//! over the WebSocket to that user only.

use serde_json::{json, Value};
use stratasync_core::engine::DeltasParams;
use stratasync_core::protocol::SyncId;
use stratasync_core::storage::memberships;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

/// Every `S` action of the log, ascending: `(groupId, subscribedSyncGroups)`.
async fn s_actions(db: &TestDb) -> Vec<(String, Value)> {
    db.log("action = 'S'")
        .await
        .iter()
        .map(|a| {
            assert_eq!((&a["modelName"], &a["modelId"]), (&json!("SyncGroup"), &json!("sync-groups")));
            assert_eq!((&a["clientId"], &a["clientTxId"]), (&Value::Null, &Value::Null));
            let group = a["groupId"].as_str().expect("an S action has the user's group").to_owned();
            (group, a["data"]["subscribedSyncGroups"].clone())
        })
        .collect()
}

fn s(user: &str, groups: &[&str]) -> (String, Value) {
    (user.to_owned(), json!(groups))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_logs_one_s_action_per_change_with_the_bootstrap_group_set() {
    let db = TestDb::new().await;
    let engine = db.engine();
    memberships::add(&db.pool, "alice", "w1", "workspace").await.unwrap();
    memberships::add(&db.pool, "alice", "w2", "workspace").await.unwrap();
    memberships::add(&db.pool, "alice", "w1", "workspace").await.unwrap(); // already a member: no change
    memberships::add(&db.pool, "bob", "w1", "workspace").await.unwrap();
    assert!(memberships::remove(&db.pool, "alice", "w1").await.unwrap());
    assert!(!memberships::remove(&db.pool, "alice", "w1").await.unwrap()); // not a member: no change
    assert_eq!(
        s_actions(&db).await,
        [
            s("alice", &["w1", "alice"]),
            s("alice", &["w1", "w2", "alice"]),
            s("bob", &["w1", "bob"]),
            s("alice", &["w2", "alice"])
        ]
    );
    // The last set is exactly what bootstrap metadata lists.
    let alice = engine.authorize("token-alice").await.unwrap();
    assert_eq!(alice.groups, ["w2", "alice"]);
    let lines = collect_lines(engine.bootstrap(&alice, Default::default())).await;
    assert_eq!(lines[0]["subscribedSyncGroups"], json!(["w2", "alice"]), "{}", lines[0]);
    // Alice's own `S` actions are hers: the bootstrap's head is the last.
    assert_eq!(lines[0]["lastSyncId"], json!("4"));
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_sql_in_the_apps_transactions_logs_the_final_set_last() {
    let db = TestDb::new().await;
    // One transaction, several statements; a multi-row insert for two users.
    db.execute(
        "BEGIN;
         INSERT INTO sync_group_memberships (user_id, group_id, group_type) VALUES ('alice', 'w1', 'ws'), ('bob', 'w1', 'ws');
         INSERT INTO sync_group_memberships (user_id, group_id, group_type) VALUES ('alice', 'w2', 'ws');
         UPDATE sync_group_memberships SET group_type = 'team';
         UPDATE sync_group_memberships SET group_id = 'w3' WHERE user_id = 'bob';
         DELETE FROM sync_group_memberships WHERE user_id = 'alice' AND group_id = 'w1';
         DELETE FROM sync_group_memberships WHERE user_id = 'nobody';
         COMMIT;",
    )
    .await;
    assert_eq!(
        s_actions(&db).await,
        [
            s("alice", &["w1", "alice"]),
            s("bob", &["w1", "bob"]),
            // Rows added in one transaction share `created_at`: group id
            // order, as bootstrap reads them.
            s("alice", &["w1", "w2", "alice"]),
            // Relabelling `group_type` changes no set: nothing logged.
            s("bob", &["w3", "bob"]),
            s("alice", &["w2", "alice"]),
        ]
    );
    let engine = db.engine();
    assert_eq!(engine.authorize("token-alice").await.unwrap().groups, ["w2", "alice"]);
    assert_eq!(engine.authorize("token-bob").await.unwrap().groups, ["w3", "bob"]);

    // A membership of the user's own id does not repeat it.
    db.execute("INSERT INTO sync_group_memberships (user_id, group_id, group_type) VALUES ('carol', 'carol', 'self')")
        .await;
    assert_eq!(s_actions(&db).await.last(), Some(&s("carol", &["carol"])));

    // A transaction that rolls back logs nothing.
    let before = db.scalar("SELECT count(*) FROM sync_actions").await;
    db.execute(
        "BEGIN; INSERT INTO sync_group_memberships (user_id, group_id, group_type) VALUES ('alice', 'w9', 'ws'); ROLLBACK;",
    )
    .await;
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, before);
}

/// A reader that tails the log with `id > cursor`, as the live feed does,
/// while membership transactions that hold their lock for a while race
/// with group commits, misses no id: the trigger takes the insert-order
/// lock before drawing ids, so ids are visible in commit order.
#[tokio::test(flavor = "multi_thread")]
async fn s_actions_keep_commit_order_among_concurrent_writes() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &[]).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tailer = {
        let (pool, stop) = (db.pool.clone(), stop.clone());
        tokio::spawn(async move {
            use diesel_async::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                id: i64,
            }
            let mut cursor = 0;
            let mut seen = Vec::new();
            loop {
                let done = std::sync::atomic::AtomicBool::load(&stop, std::sync::atomic::Ordering::SeqCst);
                let mut conn = pool.get().await.unwrap();
                let page: Vec<Row> =
                    diesel::sql_query("SELECT id FROM sync_actions WHERE id > $1 ORDER BY id LIMIT 1000")
                        .bind::<diesel::sql_types::BigInt, _>(cursor)
                        .load(&mut conn)
                        .await
                        .unwrap();
                seen.extend(page.iter().map(|r| r.id as u64));
                cursor = page.last().map_or(cursor, |r| r.id);
                if done && page.is_empty() {
                    return seen;
                }
            }
        })
    };
    let writers = (0..4).map(|w| {
        let (engine, ws) = (engine.clone(), ws.clone());
        tokio::spawn(async move {
            for _ in 0..15 {
                insert_task(&engine, &format!("writer{w}"), &ws, "t").await;
            }
        })
    });
    let members = (0..3).map(|m| {
        let pool = db.pool.clone();
        tokio::spawn(async move {
            use diesel_async::SimpleAsyncConnection;
            let mut conn = pool.get().await.unwrap();
            for i in 0..8 {
                // The insert draws its id, then the transaction stays open
                // while group commits run.
                conn.batch_execute(&format!(
                    "BEGIN; INSERT INTO sync_group_memberships (user_id, group_id, group_type) \
                     VALUES ('m{m}', 'g{i}', 'ws'); SELECT pg_sleep(0.02); COMMIT;"
                ))
                .await
                .unwrap();
            }
        })
    });
    for done in futures_util::future::join_all(writers.chain(members)).await {
        done.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = tailer.await.unwrap();
    let all: Vec<u64> = db.log("true").await.iter().map(|a| a["syncId"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(all.len(), 4 * 15 + 3 * 8);
    assert_eq!(seen, all, "the tailer saw every id, in order");
    assert_eq!(s_actions(&db).await.iter().filter(|(user, _)| user == "m0").count(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn delta_pages_spanning_a_change_carry_it_to_that_user_only() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let (w1, w2) = (workspace(&db, &["alice", "bob"]).await, workspace(&db, &[]).await);
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(insert_task(&engine, "bob", &w1, &format!("before {i}")).await);
    }
    memberships::add(&db.pool, "alice", &w2, "workspace").await.unwrap();
    let change = db.scalar("SELECT max(id) FROM sync_actions").await as u64;
    expected.push(change);
    for i in 0..5 {
        expected.push(insert_task(&engine, "bob", &w1, &format!("after {i}")).await);
    }

    // Pages of 3 for alice: the change is among them, once, as the client
    // expects it.
    let alice = engine.authorize("token-alice").await.unwrap();
    let (mut cursor, mut ids, mut changes) = (SyncId(0), Vec::new(), Vec::new());
    loop {
        let page =
            engine.deltas(&alice, &DeltasParams { after: cursor, limit: Some(3), sync_groups: None }).await.unwrap();
        let json = to_json(&page);
        for action in json["actions"].as_array().unwrap() {
            ids.push(action["syncId"].as_str().unwrap().parse::<u64>().unwrap());
            if action["action"] == "S" {
                changes.push(action.clone());
            }
        }
        cursor = page.last_sync_id;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(ids, expected);
    assert_eq!(changes.len(), 1);
    let mut change_json = changes.remove(0);
    assert!(change_json.as_object_mut().unwrap().remove("createdAt").is_some());
    assert_eq!(
        change_json,
        json!({"action": "S", "data": {"subscribedSyncGroups": [w1, w2, "alice"]}, "groupId": "alice",
               "modelId": "sync-groups", "modelName": "SyncGroup", "syncId": change.to_string()})
    );

    // Bob's pages have every task and no `S` action.
    let bob = engine.authorize("token-bob").await.unwrap();
    let page = engine.deltas(&bob, &DeltasParams { after: SyncId(0), limit: None, sync_groups: None }).await.unwrap();
    let bob_ids: Vec<u64> = page.actions.iter().map(|a| a.sync_id.0).collect();
    assert_eq!(bob_ids, expected.iter().copied().filter(|id| *id != change).collect::<Vec<_>>());
}

async fn a_websocket_subscriber_receives_its_s_action_live_and_in_replay(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice", "bob"]).await;
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    let mut alice = server.connect("alice").await;
    let mut bob = server.connect("bob").await;
    alice.subscribe_ok("alice", 0, None).await;
    bob.subscribe_ok("bob", 0, None).await;

    // A grant through plain SQL, as an admin tool would run it.
    let other = new_id();
    db.execute(&format!(
        "INSERT INTO sync_group_memberships (user_id, group_id, group_type) VALUES ('alice', '{other}', 'workspace')"
    ))
    .await;
    engine.hub().wake();
    let change = db.scalar("SELECT max(id) FROM sync_actions").await as u64;
    let frame = alice.deltas(1, WAIT).await.remove(0);
    let action = &frame["packet"]["actions"][0];
    assert_eq!(sync_id(&frame), change);
    assert_eq!(action["action"], "S");
    assert_eq!(action["modelName"], "SyncGroup");
    assert_eq!(action["groupId"], "alice");
    assert_eq!(action["data"], json!({"subscribedSyncGroups": [ws, other, "alice"]}));

    // Bob's next frame is a later marker: the change never reached him.
    let marker = global_marker(&db, &[&engine]).await;
    bob.assert_next_delta(marker).await;
    alice.assert_next_delta(marker).await;

    // A revocation through the API; then a new socket replays both.
    memberships::remove(&db.pool, "alice", &other).await.unwrap();
    engine.hub().wake();
    let revoked = db.scalar("SELECT max(id) FROM sync_actions").await as u64;
    let frame = alice.deltas(1, WAIT).await.remove(0);
    assert_eq!(sync_id(&frame), revoked);
    assert_eq!(frame["packet"]["actions"][0]["data"], json!({"subscribedSyncGroups": [ws, "alice"]}));
    let mut again = server.connect("alice").await;
    let (replayed, _) = again.subscribe_ok("alice", 0, None).await;
    assert_eq!(replayed, [change, marker, revoked]);
    server.stop().await;
}

/// The SQL of the README's "Group changes", run as written, logs what the
/// README says.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_group_changes_sql_logs_what_it_shows() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let section = readme.split("\n## Group changes\n").nth(1).expect("the README section");
    let sql = section.split("```sql\n").nth(1).and_then(|rest| rest.split("```").next()).expect("its SQL block");
    let shown = section.split("```json\n").nth(1).and_then(|rest| rest.split("```").next()).expect("its JSON block");
    let mut shown: Value = serde_json::from_str(shown.trim()).expect("JSON");
    let db = TestDb::new().await;
    db.execute(sql).await;
    let sets = s_actions(&db).await;
    assert_eq!(
        sets,
        [
            s("carol", &["team-1", "carol"]),
            s("carol", &["team-1", "team-2", "carol"]),
            s("carol", &["team-2", "carol"])
        ]
    );
    let carol = db.engine().authorize("token-carol").await.unwrap();
    let page = db.engine().deltas(&carol, &DeltasParams::default()).await.unwrap();
    let mut last = to_json(&page)["actions"][2].clone();
    last.as_object_mut().unwrap().remove("createdAt");
    shown.as_object_mut().unwrap().remove("createdAt");
    assert_eq!(last, shown);
}

on_both_adapters!(a_websocket_subscriber_receives_its_s_action_live_and_in_replay,);
