//! Mutations against the real PostgreSQL: every action on standard and
//! composite models, access control, dedupe, savepoints and cascades.

use serde_json::{json, Value};
use stratasync_core::protocol::MutateRequest;
use stratasync_core::protocol::MutationAction::{Archive, Delete, Insert, Unarchive, Update};
use stratasync_tests::*;

async fn workspace(db: &TestDb) -> String {
    stratasync_tests::ws_support::workspace(db, &[]).await
}

async fn actions(db: &TestDb) -> Vec<Value> {
    db.log("true").await
}

#[tokio::test(flavor = "multi_thread")]
async fn task_lifecycle_through_every_action() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let id = new_id();

    let res = mutate(
        &engine,
        &alice,
        vec![tx(
            Insert,
            "Task",
            &id,
            json!({"workspaceId": ws, "title": "Write docs", "description": null, "priority": 2,
                   "dueDate": 1718841600000i64, "completedAt": null, "createdAt": 1718452800000i64,
                   "ignored": "not an insert field"}),
        )],
    )
    .await;
    assert_eq!(to_json(&res)["success"], json!(true), "{res:?}");
    assert_eq!(to_json(&res)["lastSyncId"], json!("1"));

    let res =
        mutate(&engine, &alice, vec![tx(Update, "Task", &id, json!({"title": "Write more docs", "priority": 3}))])
            .await;
    assert_eq!(to_json(&res)["results"][0]["syncId"], json!("2"));
    let res = mutate(&engine, &alice, vec![tx(Archive, "Task", &id, json!({"archivedAt": 1718452800123i64}))]).await;
    assert!(res.success, "{res:?}");
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM tasks WHERE id = '{id}' AND archived_at IS NOT NULL")).await,
        1
    );
    let res = mutate(&engine, &alice, vec![tx(Unarchive, "Task", &id, json!({}))]).await;
    assert!(res.success, "{res:?}");
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM tasks WHERE id = '{id}' AND archived_at IS NULL")).await, 1);
    let res =
        mutate(&engine, &alice, vec![tx(Delete, "Task", &id, json!({"id": id, "title": "whatever the client had"}))])
            .await;
    assert!(res.success, "{res:?}");
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 0);

    let log = actions(&db).await;
    let letters: Vec<&str> = log.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(letters, ["I", "U", "A", "V", "D"]);
    // jsonb key order: shorter keys first, then bytewise.
    assert_eq!(
        serde_json::to_string(&log[0]["data"]).unwrap(),
        format!(
            r#"{{"id":"{id}","title":"Write docs","dueDate":1718841600000,"priority":2,"createdAt":1718452800000,"completedAt":null,"description":null,"workspaceId":"{ws}"}}"#
        )
    );
    assert_eq!(log[1]["data"], json!({"title": "Write more docs", "priority": 3}));
    assert_eq!(log[2]["data"], json!({"archivedAt": 1718452800123i64}));
    assert_eq!(log[3]["data"], json!({"archivedAt": null}));
    // A delete logs the row as the server had it, not the client's payload.
    assert_eq!(log[4]["data"]["title"], json!("Write more docs"));
    for a in &log {
        assert_eq!(a["groupId"], json!(ws));
        assert_eq!(a["modelId"], json!(id));
        assert_eq!(a["clientId"], json!("client-1"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn insert_defaults_follow_the_codecs() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let id = new_id();
    let before = chrono::Utc::now().timestamp_millis();
    let res = mutate(&engine, &alice, vec![tx(Insert, "Task", &id, json!({"workspaceId": ws, "title": "t"}))]).await;
    assert!(res.success, "{res:?}");
    let data = &actions(&db).await[0]["data"];
    assert_eq!(data["priority"], json!(0), "number defaults to 0");
    assert_eq!(data["description"], json!(null), "stringNull defaults to null");
    assert_eq!(data["dueDate"], json!(null));
    assert_eq!(data["completedAt"], json!(null));
    let created = data["createdAt"].as_i64().expect("dateNow fills in now");
    assert!(created >= before - 1000 && created <= chrono::Utc::now().timestamp_millis() + 1000);
    assert_eq!(
        db.scalar(&format!("SELECT (extract(epoch FROM created_at) * 1000)::bigint FROM tasks WHERE id = '{id}'"))
            .await,
        created
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn codecs_reject_bad_input_with_clear_errors_and_write_nothing() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let before = db.fingerprint().await;
    let cases = [
        (json!({"workspaceId": ws, "title": true}), "Invalid string value for title"),
        (json!({"workspaceId": ws, "title": 5}), "Invalid string value for title"),
        (json!({"workspaceId": ws, "title": "t", "description": ["x"]}), "Invalid string value for description"),
        (json!({"workspaceId": ws, "title": "t", "priority": "high"}), "Invalid number value for priority"),
        (json!({"workspaceId": ws, "title": "t", "priority": 1.5}), "Invalid number value for priority"),
        (json!({"workspaceId": ws, "title": "t", "priority": 4294967296i64}), "Invalid number value for priority"),
        (json!({"workspaceId": ws, "title": "t", "dueDate": 1718841600001i64}), "Invalid dateOnly value for dueDate"),
        (json!({"workspaceId": ws, "title": "t", "dueDate": "2024-06-20"}), "Invalid dateOnly value for dueDate"),
        (
            json!({"workspaceId": ws, "title": "t", "completedAt": "2024-06-20T00:00:00Z"}),
            "Invalid instant value for completedAt",
        ),
        (
            json!({"workspaceId": ws, "title": "t", "completedAt": 8.64e15 + 1.0}),
            "Invalid instant value for completedAt",
        ),
        (json!({"workspaceId": ws, "title": "t", "createdAt": false}), "Invalid instant value for createdAt"),
        (json!({"workspaceId": "not-a-uuid", "title": "t"}), "Invalid uuid value for workspaceId"),
        (json!({"title": "t"}), "Invalid mutation: missing required group identifier"),
    ];
    for (payload, error) in cases {
        let res = mutate(&engine, &alice, vec![tx(Insert, "Task", &new_id(), payload.clone())]).await;
        assert_eq!(to_json(&res)["results"][0]["error"], json!(error), "payload {payload}");
        assert_eq!(to_json(&res)["lastSyncId"], json!("0"));
    }
    let res =
        mutate(&engine, &alice, vec![tx(Insert, "Task", "not-a-uuid", json!({"workspaceId": ws, "title": "t"}))]).await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Invalid uuid value for id"));
    assert_eq!(db.fingerprint().await, before, "rejected mutations changed the database");
}

#[tokio::test(flavor = "multi_thread")]
async fn instants_truncate_fractions_and_updates_keep_null() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let id = new_id();
    let res = mutate(
        &engine,
        &alice,
        vec![tx(
            Insert,
            "Task",
            &id,
            json!({"workspaceId": ws, "title": "t", "completedAt": 1700000000000.7, "description": "d"}),
        )],
    )
    .await;
    assert!(res.success, "{res:?}");
    assert_eq!(actions(&db).await[0]["data"]["completedAt"], json!(1700000000000i64));
    let res = mutate(
        &engine,
        &alice,
        vec![tx(Update, "Task", &id, json!({"description": null, "completedAt": null, "dueDate": null}))],
    )
    .await;
    assert!(res.success, "{res:?}");
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM tasks WHERE id = '{id}' AND description IS NULL AND completed_at IS NULL"
        ))
        .await,
        1
    );
    let res = mutate(&engine, &alice, vec![tx(Update, "Task", &id, json!({"title": null}))]).await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Invalid string value for title"));
    // Keys that are not update fields are ignored; nothing left logs `{}`.
    let res =
        mutate(&engine, &alice, vec![tx(Update, "Task", &id, json!({"workspaceId": new_id(), "archivedAt": 5}))]).await;
    assert!(res.success, "{res:?}");
    assert_eq!(actions(&db).await.last().unwrap()["data"], json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn composite_insert_and_delete_use_the_canonical_id() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let (task, label) = (new_id(), new_id());
    let res = mutate(
        &engine,
        &alice,
        vec![
            tx(Insert, "Task", &task, json!({"workspaceId": ws, "title": "t"})),
            tx(Insert, "Label", &label, json!({"workspaceId": ws, "name": "bug", "color": "red"})),
            tx(Insert, "TaskLabel", "client-computed-id", json!({"taskId": task, "labelId": label, "workspaceId": ws})),
        ],
    )
    .await;
    assert!(res.success, "{res:?}");
    let canonical = stratasync_core::composite_id::composite_id("TaskLabel", &[&task, &label]);
    let log = actions(&db).await;
    assert_eq!(log[2]["modelId"], json!(canonical));
    assert_eq!(log[2]["data"]["taskId"], json!(task));
    assert!(log[2]["data"].get("id").is_none(), "composite data has no id");

    // Deleting a row that does not exist is an error, not a success.
    let res = mutate(
        &engine,
        &alice,
        vec![tx(Delete, "TaskLabel", &canonical, json!({"taskId": task, "labelId": new_id()}))],
    )
    .await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Invalid mutation: record not found"));
    let res =
        mutate(&engine, &alice, vec![tx(Delete, "TaskLabel", &canonical, json!({"taskId": task, "labelId": label}))])
            .await;
    assert!(res.success, "{res:?}");
    assert_eq!(db.scalar("SELECT count(*) FROM task_labels").await, 0);
    let log = actions(&db).await;
    assert_eq!((log[3]["action"].clone(), log[3]["modelId"].clone()), (json!("D"), json!(canonical)));

    for (action, error) in
        [(Update, "Unsupported action \"U\" for this model"), (Archive, "Unsupported action \"A\" for this model")]
    {
        let res = mutate(&engine, &alice, vec![tx(action, "TaskLabel", &canonical, json!({}))]).await;
        assert_eq!(to_json(&res)["results"][0]["error"], json!(error));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn composite_delete_checks_the_stored_group_not_the_payload() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let (ws_a, ws_b) = (workspace(&db).await, workspace(&db).await);
    let bob = user("bob", &[&ws_b]);
    let (task, label) = (new_id(), new_id());
    let res = mutate(
        &engine,
        &bob,
        vec![
            tx(Insert, "Task", &task, json!({"workspaceId": ws_b, "title": "t"})),
            tx(Insert, "Label", &label, json!({"workspaceId": ws_b, "name": "n", "color": "c"})),
            tx(Insert, "TaskLabel", "x", json!({"taskId": task, "labelId": label, "workspaceId": ws_b})),
        ],
    )
    .await;
    assert!(res.success, "{res:?}");
    let before = db.fingerprint().await;
    // Alice names her own workspace in the payload; the row is in Bob's.
    let alice = user("alice", &[&ws_a]);
    let res = mutate(
        &engine,
        &alice,
        vec![tx(Delete, "TaskLabel", "x", json!({"taskId": task, "labelId": label, "workspaceId": ws_a}))],
    )
    .await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Invalid mutation: record not found"));
    assert_eq!(db.fingerprint().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_groups_are_denied_and_indistinguishable_from_missing_rows() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let (ws_a, ws_b) = (workspace(&db).await, workspace(&db).await);
    let bob = user("bob", &[&ws_b]);
    let bobs_task = new_id();
    assert!(
        mutate(&engine, &bob, vec![tx(Insert, "Task", &bobs_task, json!({"workspaceId": ws_b, "title": "b"}))])
            .await
            .success
    );
    let alice = user("alice", &[&ws_a]);
    let before = db.fingerprint().await;

    let res =
        mutate(&engine, &alice, vec![tx(Insert, "Task", &new_id(), json!({"workspaceId": ws_b, "title": "x"}))]).await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Access denied"));
    for action in [Update, Delete, Archive, Unarchive] {
        let payload = json!({"title": "stolen", "archivedAt": 1});
        let foreign = mutate(&engine, &alice, vec![tx(action, "Task", &bobs_task, payload.clone())]).await;
        let missing = mutate(&engine, &alice, vec![tx(action, "Task", &new_id(), payload)]).await;
        assert_eq!(to_json(&foreign)["results"][0]["error"], json!("Invalid mutation: record not found"), "{action:?}");
        assert_eq!(to_json(&foreign)["results"][0]["error"], to_json(&missing)["results"][0]["error"]);
    }
    // Workspace: its own id is its group.
    let res = mutate(&engine, &alice, vec![tx(Update, "Workspace", &ws_b, json!({"name": "mine now"}))]).await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Invalid mutation: record not found"));
    assert_eq!(db.fingerprint().await, before, "denied mutations changed the database");

    let res = mutate(&engine, &alice, vec![tx(Update, "Workspace", &ws_a, json!({"name": "Renamed"}))]).await;
    assert!(res.success, "{res:?}");
    assert_eq!(actions(&db).await.last().unwrap()["groupId"], json!(ws_a));
}

#[tokio::test(flavor = "multi_thread")]
async fn model_and_action_errors() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let label = new_id();
    let cases = vec![
        (tx(Insert, "Nope", &new_id(), json!({})), "Unknown model: Nope"),
        (tx(Archive, "Label", &label, json!({"archivedAt": 1})), "Unsupported action \"A\" for this model"),
        (tx(Insert, "Workspace", &new_id(), json!({"name": "w"})), "Unsupported action \"I\" for this model"),
        (tx(Archive, "Task", &new_id(), json!({})), "archivedAt is required"),
        (tx(Archive, "Task", &new_id(), json!({"archivedAt": null})), "archivedAt is required"),
        (tx(Archive, "Task", &new_id(), json!({"archivedAt": "2024-01-01"})), "Invalid instant value for archivedAt"),
        (tx(Update, "Task", &new_id(), json!({"title": "x"})), "Invalid mutation: record not found"),
        (tx(Update, "Task", "not-a-uuid", json!({"title": "x"})), "Invalid mutation: record not found"),
    ];
    for (t, error) in cases {
        let res = mutate(&engine, &alice, vec![t]).await;
        assert_eq!(to_json(&res)["results"][0]["error"], json!(error));
    }
    // A duplicate primary key is a stable message, not database text.
    let id = new_id();
    let ins = || tx(Insert, "Label", &id, json!({"workspaceId": ws, "name": "n", "color": "c"}));
    assert!(mutate(&engine, &alice, vec![ins()]).await.success);
    let res = mutate(&engine, &alice, vec![ins()]).await;
    assert_eq!(to_json(&res)["results"][0]["error"], json!("Invalid mutation: record already exists"));
}

#[tokio::test(flavor = "multi_thread")]
async fn savepoints_isolate_failures_inside_one_batch() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let (a, b, c) = (new_id(), new_id(), new_id());
    let res = mutate(
        &engine,
        &alice,
        vec![
            tx(Insert, "Task", &a, json!({"workspaceId": ws, "title": "a"})),
            // Fails in the database (duplicate key) after its savepoint began.
            tx(Insert, "Task", &a, json!({"workspaceId": ws, "title": "a again"})),
            tx(Insert, "Task", &b, json!({"workspaceId": ws, "title": true})),
            tx(Insert, "Task", &c, json!({"workspaceId": ws, "title": "c"})),
        ],
    )
    .await;
    let body = to_json(&res);
    assert_eq!(body["success"], json!(false));
    assert_eq!(body["results"][0]["success"], json!(true));
    assert_eq!(body["results"][0]["syncId"], json!("1"));
    assert!(body["results"][0].get("warnings").is_none());
    assert_eq!(body["results"][1]["error"], json!("Invalid mutation: record already exists"));
    assert_eq!(body["results"][2]["error"], json!("Invalid string value for title"));
    assert_eq!(body["results"][3]["syncId"], json!("2"));
    assert_eq!(body["lastSyncId"], json!("2"));
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 2);
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_return_the_original_sync_id() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let t = tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": "once"}));
    let first = mutate(&engine, &alice, vec![t.clone()]).await;
    let again = mutate(&engine, &alice, vec![t.clone(), t.clone()]).await;
    assert_eq!(to_json(&first)["results"][0]["syncId"], json!("1"));
    assert_eq!(to_json(&again)["results"][0]["syncId"], json!("1"));
    assert_eq!(to_json(&again)["results"][1]["syncId"], json!("1"));
    assert_eq!(to_json(&again)["lastSyncId"], json!("1"));
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 1);

    // The same pair twice inside one new batch: applied once.
    let u = tx(Update, "Task", t.model_id.as_str(), json!({"title": "twice"}));
    let res = mutate(&engine, &alice, vec![u.clone(), u]).await;
    assert_eq!(to_json(&res)["results"][0]["syncId"], json!("2"));
    assert_eq!(to_json(&res)["results"][1]["syncId"], json!("2"));
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_duplicates_commit_once() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    for round in 0..5 {
        let t = tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": format!("race {round}")}));
        let request = batch(vec![t]);
        let runs = (0..4).map(|_| {
            let (engine, alice, request) = (engine.clone(), alice.clone(), request.clone());
            tokio::spawn(async move { engine.mutate(&alice, &request).await.expect("mutate") })
        });
        let results = futures_util::future::join_all(runs).await;
        let ids: Vec<Value> = results.into_iter().map(|r| to_json(&r.unwrap())["results"][0].clone()).collect();
        for r in &ids {
            assert_eq!(r["success"], json!(true), "{ids:?}");
            assert_eq!(r["syncId"], ids[0]["syncId"], "{ids:?}");
        }
    }
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 5);
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_log_rows_removed_by_cascade() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let (task, l1, l2) = (new_id(), new_id(), new_id());
    let res = mutate(
        &engine,
        &alice,
        vec![
            tx(Insert, "Task", &task, json!({"workspaceId": ws, "title": "t"})),
            tx(Insert, "Label", &l1, json!({"workspaceId": ws, "name": "1", "color": "c"})),
            tx(Insert, "Label", &l2, json!({"workspaceId": ws, "name": "2", "color": "c"})),
            tx(Insert, "TaskLabel", "a", json!({"taskId": task, "labelId": l1, "workspaceId": ws})),
            tx(Insert, "TaskLabel", "b", json!({"taskId": task, "labelId": l2, "workspaceId": ws})),
        ],
    )
    .await;
    assert!(res.success, "{res:?}");
    let res = mutate(&engine, &alice, vec![tx(Delete, "Task", &task, json!({}))]).await;
    assert_eq!(to_json(&res)["results"][0]["syncId"], json!("8"), "the task's own action comes last");
    let log = actions(&db).await;
    let tail: Vec<(Value, Value, Value)> =
        log[5..].iter().map(|a| (a["action"].clone(), a["modelName"].clone(), a["modelId"].clone())).collect();
    let tl = |l: &str| json!(stratasync_core::composite_id::composite_id("TaskLabel", &[&task, l]));
    let mut expected_labels = vec![tl(&l1), tl(&l2)];
    expected_labels.sort_by_key(|v| v.to_string());
    let mut got_labels: Vec<Value> = tail[..2].iter().map(|t| t.2.clone()).collect();
    got_labels.sort_by_key(|v| v.to_string());
    assert_eq!(got_labels, expected_labels);
    assert!(tail[..2].iter().all(|t| t.0 == json!("D") && t.1 == json!("TaskLabel")));
    assert_eq!(tail[2], (json!("D"), json!("Task"), json!(task)));
    assert!(log[5]["clientId"].is_null(), "cascaded deletes are server-originated");
    assert_eq!(log[5]["groupId"], json!(ws));
    assert_eq!(db.scalar("SELECT count(*) FROM task_labels").await, 0);
}

/// The log's insert-order lock (taken by every group's log insert).
const INSERT_ORDER_LOCK: &str = "pg_advisory_xact_lock(hashtext('stratasync:sync_actions'), hashtext('sync_actions'))";

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_batches_share_commits_and_keep_their_own_results() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    use std::future::Future;
    use std::pin::Pin;
    use stratasync_core::engine::GroupCommitConfig;
    type Pending = Pin<Box<dyn Future<Output = (stratasync_core::protocol::MutateResponse, MutateRequest)> + Send>>;
    let db = TestDb::new().await;
    let engine = db
        .engine_builder()
        .group_commit(GroupCommitConfig { lanes: 1, ..GroupCommitConfig::default() })
        .start()
        .expect("the engine starts");
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let requests: Vec<_> = (0..40)
        .map(|i| {
            batch(vec![
                tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": format!("ok {i}")})),
                tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": i})),
            ])
        })
        .collect();
    let submit = |request: MutateRequest| -> Pending {
        let (engine, alice) = (engine.clone(), alice.clone());
        Box::pin(async move { (engine.mutate(&alice, &request).await.expect("mutate"), request) })
    };

    // Hold the insert-order lock: the first request's group stops at its
    // log insert, with the lane busy.
    let mut holder = AsyncPgConnection::establish(&db.url).await.expect("connect");
    holder.batch_execute(&format!("BEGIN; SELECT {INSERT_ORDER_LOCK}")).await.expect("lock");
    let mut first = tokio::spawn(submit(requests[0].clone()));
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock' \
         AND wait_event = 'advisory'",
        db.name
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while db.scalar(&waiting).await == 0 {
        assert!(std::time::Instant::now() < deadline, "the first group never reached the log insert");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The other 39 queue behind it: one poll each puts a request on the
    // lane's queue (and it waits there).
    let mut rest: Vec<Pending> = requests[1..].iter().cloned().map(submit).collect();
    tokio::task::yield_now().await;
    for request in &mut rest {
        assert!(futures_util::poll!(request.as_mut()).is_pending());
    }
    assert!(futures_util::poll!(&mut first).is_pending(), "the first group waits for the lock");
    holder.batch_execute("COMMIT").await.expect("unlock");

    let mut responses = vec![first.await.unwrap()];
    responses.extend(futures_util::future::join_all(rest).await);
    let mut ids = Vec::new();
    for (response, request) in responses {
        let body = to_json(&response);
        assert_eq!(body["results"].as_array().unwrap().len(), 2, "each request gets its own results");
        assert_eq!(body["results"][0]["clientTxId"], json!(request.transactions[0].client_tx_id));
        assert_eq!(body["results"][1]["clientTxId"], json!(request.transactions[1].client_tx_id));
        assert_eq!(body["results"][1]["error"], json!("Invalid string value for title"));
        assert_eq!(body["lastSyncId"], body["results"][0]["syncId"]);
        ids.push(response.last_sync_id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "sync ids are unique");
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 40);
    // Two commits (each row's `xmin` is the transaction that wrote it): the
    // first request alone, then the 39 that queued meanwhile, together.
    assert_eq!(db.scalar("SELECT count(DISTINCT xmin::text) FROM sync_actions").await, 2);
    assert_eq!(
        db.scalar("SELECT count(*) FROM sync_actions WHERE xmin = (SELECT xmin FROM sync_actions WHERE id = 1)").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_commits_what_was_queued_and_refuses_the_rest() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    use std::future::Future;
    use std::pin::Pin;
    use std::time::Duration;
    use stratasync_core::engine::GroupCommitConfig;
    use stratasync_core::ServiceError;
    type Pending =
        Pin<Box<dyn Future<Output = Result<stratasync_core::protocol::MutateResponse, ServiceError>> + Send>>;
    let db = TestDb::new().await;
    let engine = db
        .engine_builder()
        .group_commit(GroupCommitConfig { lock_timeout: Duration::from_secs(60), ..GroupCommitConfig::default() })
        .start()
        .expect("the engine starts");
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let insert = |title: String| batch(vec![tx(Insert, "Task", &new_id(), json!({"workspaceId": ws, "title": title}))]);
    let submit = |request: MutateRequest| -> Pending {
        let (engine, alice) = (engine.clone(), alice.clone());
        Box::pin(async move { engine.mutate(&alice, &request).await })
    };

    // Hold the insert-order lock: the first group stops at its log
    // insert, and five requests queue behind it.
    let mut holder = AsyncPgConnection::establish(&db.url).await.expect("connect");
    holder.batch_execute(&format!("BEGIN; SELECT {INSERT_ORDER_LOCK}")).await.expect("lock");
    let first = tokio::spawn(submit(insert("first".into())));
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock' \
         AND wait_event = 'advisory'",
        db.name
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while db.scalar(&waiting).await == 0 {
        assert!(std::time::Instant::now() < deadline, "the first group never reached the log insert");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut queued: Vec<Pending> = (0..5).map(|i| submit(insert(format!("queued {i}")))).collect();
    for request in &mut queued {
        assert!(futures_util::poll!(request.as_mut()).is_pending());
    }

    // Shutting down closes the queues at once and waits for the lane.
    let mut shutdown = Box::pin(engine.shutdown());
    assert!(futures_util::poll!(shutdown.as_mut()).is_pending(), "the lane is still busy");
    let late = submit(insert("late".into())).await;
    assert!(matches!(late, Err(ServiceError::Unavailable)), "{late:?}");
    holder.batch_execute("COMMIT").await.expect("unlock");
    tokio::time::timeout(Duration::from_secs(30), shutdown).await.expect("the lanes finished");

    // Everything queued before committed and was answered.
    assert!(first.await.unwrap().expect("first").success);
    for response in futures_util::future::join_all(queued).await {
        assert!(response.expect("queued").success);
    }
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 6);
    assert_eq!(db.scalar("SELECT count(*) FROM tasks WHERE title = 'late'").await, 0);
    assert!(!engine.readiness().await.feed.live, "the feed stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_lanes_on_the_same_rows_neither_deadlock_nor_fail() {
    use stratasync_core::engine::GroupCommitConfig;
    let db = TestDb::new().await;
    let engine = db
        .engine_builder()
        .group_commit(GroupCommitConfig { lanes: 4, ..GroupCommitConfig::default() })
        .start()
        .expect("the engine starts");
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let tasks: Vec<String> = (0..6).map(|_| new_id()).collect();
    let inserts = tasks.iter().map(|t| tx(Insert, "Task", t, json!({"workspaceId": ws, "title": "t"}))).collect();
    assert!(mutate(&engine, &alice, inserts).await.success);
    // Every request locks the same rows, half of them in the opposite
    // order: concurrent groups on several lanes would deadlock.
    let requests: Vec<_> = (0..60)
        .map(|i| {
            let mut order: Vec<&String> = tasks.iter().collect();
            if i % 2 == 1 {
                order.reverse();
            }
            batch(
                order
                    .into_iter()
                    .map(|t| tx(Update, "Task", t, json!({"title": format!("r{i}"), "priority": i})))
                    .collect(),
            )
        })
        .collect();
    let runs = requests.iter().cloned().map(|request| {
        let (engine, alice) = (engine.clone(), alice.clone());
        tokio::spawn(async move { engine.mutate(&alice, &request).await })
    });
    let mut ids = Vec::new();
    for run in futures_util::future::join_all(runs).await {
        let response = run.unwrap().expect("no request fails");
        assert!(response.success, "{}", to_json(&response));
        ids.push(response.last_sync_id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60, "sync ids are unique");
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions WHERE action = 'U'").await, 360);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_mid_group_rolls_back_only_its_own_transaction() {
    use stratasync_core::engine::GroupCommitConfig;
    let db = TestDb::new().await;
    let engine = db
        .engine_builder()
        .group_commit(GroupCommitConfig { lanes: 1, ..GroupCommitConfig::default() })
        .start()
        .expect("the engine starts");
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let tasks: Vec<String> = (0..30).map(|_| new_id()).collect();
    let inserts = tasks.iter().map(|t| tx(Insert, "Task", t, json!({"workspaceId": ws, "title": "t"}))).collect();
    assert!(mutate(&engine, &alice, inserts).await.success);
    // Concurrent requests share groups; every third one fails in the
    // database (a duplicate insert) between two updates that succeed.
    let requests: Vec<_> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut txs = vec![tx(Update, "Task", t, json!({"title": format!("before {i}")}))];
            if i % 3 == 0 {
                txs.push(tx(Insert, "Task", t, json!({"workspaceId": ws, "title": "again"})));
            } else {
                txs.push(tx(Update, "Task", &new_id(), json!({"title": "missing"})));
            }
            txs.push(tx(Update, "Task", t, json!({"priority": i})));
            batch(txs)
        })
        .collect();
    let runs = requests.iter().cloned().map(|request| {
        let (engine, alice) = (engine.clone(), alice.clone());
        tokio::spawn(async move { engine.mutate(&alice, &request).await.expect("mutate") })
    });
    for (i, run) in futures_util::future::join_all(runs).await.into_iter().enumerate() {
        let body = to_json(&run.unwrap());
        assert_eq!(body["results"][0]["success"], json!(true), "{body}");
        let error =
            if i % 3 == 0 { "Invalid mutation: record already exists" } else { "Invalid mutation: record not found" };
        assert_eq!(body["results"][1]["error"], json!(error), "{body}");
        assert_eq!(body["results"][2]["success"], json!(true), "{body}");
    }
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 30);
    assert_eq!(db.scalar("SELECT count(*) FROM tasks WHERE title LIKE 'before %' AND priority > 0").await, 29);
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions WHERE action = 'U'").await, 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deferred_constraint_fails_only_the_transaction_that_broke_it() {
    let db = TestDb::new().await;
    // Checked at COMMIT, after the whole group ran.
    db.execute("ALTER TABLE labels ADD CONSTRAINT labels_name_unique UNIQUE (name) DEFERRABLE INITIALLY DEFERRED")
        .await;
    let engine = db.engine();
    let ws = workspace(&db).await;
    let alice = user("alice", &[&ws]);
    let label = |name: &str| tx(Insert, "Label", &new_id(), json!({"workspaceId": ws, "name": name, "color": "c"}));
    let (first, second) = futures_util::join!(
        mutate(&engine, &alice, vec![label("a"), label("twice"), label("b")]),
        mutate(&engine, &alice, vec![label("twice"), label("c")]),
    );
    let results: Vec<Value> = to_json(&first)["results"]
        .as_array()
        .into_iter()
        .chain(to_json(&second)["results"].as_array())
        .flatten()
        .cloned()
        .collect();
    let failed: Vec<&Value> = results.iter().filter(|r| r["success"] == json!(false)).collect();
    assert_eq!(failed.len(), 1, "exactly one of the two `twice` fails: {results:?}");
    assert_eq!(failed[0]["error"], json!("Invalid mutation: record already exists"));
    assert_eq!(db.scalar("SELECT count(*) FROM labels").await, 4);
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, 4);
}
