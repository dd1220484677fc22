//! The operator commands and the APIs behind them, against the real
//! PostgreSQL: `taskboard migrate` on a fresh database, `log stats`
//! against what the test wrote, `explain` for rows and mutations (allowed
//! and refused, with the same answer the server gives), and the client
//! schema export (stable, order-independent, sensitive to field changes).
//!
//! The commands run as the `taskboard` binary of this target directory.

use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use stratasync_core::model::client_schema::ClientSchema;
use stratasync_core::ops::explain::{explain_mutation, explain_row, Explanation, Rule};
use stratasync_core::ops::stats;
use stratasync_core::protocol::MutationAction::{Delete, Insert, Update};
use stratasync_core::protocol::{MutateResponse, TransactionInput};
use stratasync_core::{Registry, SyncModel};
use stratasync_tests::process_support::binary;
use stratasync_tests::ws_support::workspace;
use stratasync_tests::*;

/// Runs `taskboard <args>` on `database_url` with `stdin`; panics unless it succeeds.
fn taskboard(database_url: &str, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start taskboard");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let Output { status, stdout, stderr } = child.wait_with_output().expect("taskboard runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    assert!(status.success(), "taskboard {args:?} failed ({status}):\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// Drops a database this test created (when it exists), at the end of the test.
struct DropDatabase(String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                use diesel_async::SimpleAsyncConnection;
                let mut conn = stratasync_core::storage::establish(&admin_url()).await.expect("connect");
                conn.batch_execute(&sql).await.expect("drop the database");
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_creates_and_migrates_a_fresh_database() {
    let name = format!("stratasync_test_{}", uuid::Uuid::new_v4().simple());
    let _cleanup = DropDatabase(name.clone());
    let admin = admin_url();
    let url = format!("{}/{name}", admin.rsplit_once('/').expect("a database URL").0);

    let first = taskboard(&url, &["migrate"], "");
    assert_eq!(
        first,
        "created the database\n\
         applied 00000000000001_stratasync_framework\n\
         applied 00000000000002_membership_changes\n\
         applied 00000000000003_log_compaction\n\
         applied 2024-01-01-000000_taskboard\n\
         applied 2024-06-01-000000_task_labels_by_label\n"
    );
    let schema = schema_at(&url).await;
    for expected in [
        "migration 20240601000000",
        "column sync_actions.id bigint",
        "column tasks.workspace_id uuid",
        "column sync_group_memberships.user_id text",
    ] {
        assert!(schema.contains(expected), "{expected:?} missing from the migrated schema:\n{schema}");
    }
    assert_eq!(taskboard(&url, &["migrate"], ""), "nothing to apply: the database is up to date\n");
    assert_eq!(schema_at(&url).await, schema, "a second run changes nothing");
}

fn results(res: &MutateResponse) -> Value {
    to_json(res)["results"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn log_stats_count_what_was_written() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let empty = stats::log_stats(&mut db.pool.get().await.unwrap(), 10).await.unwrap();
    assert_eq!((empty.rows, empty.head.to_string(), empty.oldest.clone()), (0, "0".to_owned(), None));

    let (ws1, ws2) = (workspace(&db, &["alice"]).await, workspace(&db, &["alice"]).await);
    let alice = user("alice", &[&ws1, &ws2]);
    let (t1, t2, t3, l1) = (new_id(), new_id(), new_id(), new_id());
    let task = |id: &str, ws: &str| tx(Insert, "Task", id, json!({"workspaceId": ws, "title": "t", "priority": 1}));
    let res = mutate(
        &engine,
        &alice,
        vec![
            task(&t1, &ws1),
            task(&t2, &ws1),
            task(&t3, &ws2),
            tx(Update, "Task", &t1, json!({"title": "renamed"})),
            tx(Delete, "Task", &t2, json!({})),
            tx(Insert, "Label", &l1, json!({"workspaceId": ws1, "name": "bug", "color": "red"})),
        ],
    )
    .await;
    assert!(res.success, "{:?}", results(&res));

    let got = stats::log_stats(&mut db.pool.get().await.unwrap(), 10).await.unwrap();
    let (first, last) =
        (db.scalar("SELECT min(id) FROM sync_actions").await, db.scalar("SELECT max(id) FROM sync_actions").await);
    assert_eq!(got.rows, 6);
    assert_eq!(last - first, 5);
    assert_eq!(got.head.as_i64(), last);
    assert_eq!(got.allocated.as_i64(), last);
    assert_eq!(got.oldest.as_ref().map(|e| e.sync_id.as_i64()), Some(first));
    assert_eq!(got.newest.as_ref().map(|e| e.sync_id.as_i64()), Some(last));
    let stored_at = |id: i64| {
        format!("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM sync_actions WHERE id = {id}")
    };
    let as_json = to_json(&got);
    assert_eq!(as_json["oldest"]["createdAt"], json!(db.text(&stored_at(first)).await));
    assert_eq!(as_json["newest"]["createdAt"], json!(db.text(&stored_at(last)).await));
    assert_eq!(as_json["perModel"], json!({"Label": 1, "Task": 5}));
    assert_eq!(as_json["perAction"], json!({"D": 1, "I": 4, "U": 1}));
    assert_eq!(as_json["largestGroups"], json!([{"group": ws1, "actions": 5}, {"group": ws2, "actions": 1}]));
    let top_one = stats::log_stats(&mut db.pool.get().await.unwrap(), 1).await.unwrap();
    assert_eq!(top_one.largest_groups.len(), 1);

    // The command prints the same numbers, as JSON and as aligned text.
    let printed: Value = serde_json::from_str(&taskboard(&db.url, &["log", "stats", "--json"], "")).unwrap();
    assert_eq!(printed, as_json);
    let text = taskboard(&db.url, &["log", "stats"], "");
    for line in [
        format!("head       {last}"),
        "rows       6".to_owned(),
        format!("oldest     {first} at {}", as_json["oldest"]["createdAt"].as_str().unwrap()),
        "  Label  1".to_owned(),
        "  Task   5".to_owned(),
        "  I  4".to_owned(),
        format!("  {ws1}  5"),
        format!("  {ws2}  1"),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn log_compact_folds_rows_and_trims_below_the_horizon() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    let alice = user("alice", &[&ws]);
    let (t1, t2, l1) = (new_id(), new_id(), new_id());
    let task = |id: &str| tx(Insert, "Task", id, json!({"workspaceId": ws, "title": "t", "priority": 1}));
    for batch in [
        vec![task(&t1), task(&t2)],
        vec![tx(Update, "Task", &t1, json!({"title": "renamed"}))],
        vec![tx(Delete, "Task", &t2, json!({}))],
        vec![tx(Insert, "Label", &l1, json!({"workspaceId": ws, "name": "bug", "color": "red"}))],
    ] {
        let res = mutate(&engine, &alice, batch).await;
        assert!(res.success, "{:?}", results(&res));
    }
    let log = "SELECT coalesce(string_agg(id || action, ' ' ORDER BY id), '') AS v FROM sync_actions";
    assert_eq!(db.text(log).await, "1I 2I 3U 4D 5I");

    // Each row keeps its last action: t1 as the full row at 3, t2's tombstone.
    let report: Value = serde_json::from_str(&taskboard(&db.url, &["log", "compact", "--json"], "")).unwrap();
    assert_eq!(
        (&report["below"], &report["horizon"], &report["rowsBefore"], &report["rowsAfter"]),
        (&json!("5"), &json!("1"), &json!(5), &json!(3))
    );
    assert_eq!((&report["removed"], &report["rewritten"], &report["keptKeys"]), (&json!(2), &json!(1), &json!(2)));
    assert_eq!(db.text(log).await, "3I 4D 5I");
    let row = db.text("SELECT data->>'title' || ' ' || (data->>'workspaceId') FROM sync_actions WHERE id = 3").await;
    assert_eq!(row, format!("renamed {ws}"));

    // A horizon removes what is below it; cursors behind it must bootstrap.
    let text = taskboard(&db.url, &["log", "compact", "--horizon", "5"], "");
    assert!(
        text.starts_with("folded up to 5, horizon 5: 3 rows -> 1 (2 removed, 0 rewritten, 0 dedupe keys kept) in "),
        "{text}"
    );
    assert_eq!(db.text(log).await, "5I");
    // Folding below the horizon finds nothing to do; the horizon stays.
    let again: Value =
        serde_json::from_str(&taskboard(&db.url, &["log", "compact", "--below", "2", "--json"], "")).unwrap();
    assert_eq!((&again["below"], &again["horizon"], &again["removed"]), (&json!("2"), &json!("5"), &json!(0)));
    let after = |n: u64| stratasync_core::engine::DeltasParams {
        after: stratasync_core::protocol::SyncId(n),
        ..Default::default()
    };
    assert!(matches!(
        engine.deltas(&alice, &after(3)).await,
        Err(stratasync_core::error::ServiceError::BootstrapRequired)
    ));
    let page = to_json(&engine.deltas(&alice, &after(4)).await.expect("a cursor at the horizon - 1 resumes"));
    assert_eq!(page["actions"].as_array().map(Vec::len), Some(1), "{page}");
}

/// Explains `transaction` for `who`, then sends it for real, and checks the
/// explanation quoted the server's answer; returns the explanation.
async fn explain_then_mutate(db: &TestDb, who: &str, groups: &[&str], transaction: TransactionInput) -> Explanation {
    let engine = db.engine();
    let before = db.fingerprint().await;
    let explained = explain_mutation(&engine, who, to_json(&transaction)).await.expect("explain");
    assert_eq!(db.fingerprint().await, before, "explain changed the database");
    let res = mutate(&engine, &user(who, groups), vec![transaction]).await;
    let result = &results(&res)[0];
    assert_eq!(explained.allowed, result["success"] == json!(true), "{explained:#?} vs {result}");
    assert_eq!(explained.error.as_ref().map(|e| json!(e)), result.get("error").cloned(), "{explained:#?}");
    explained
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_rows_and_mutations_with_the_servers_answers() {
    let db = TestDb::new().await;
    let engine = db.engine();
    let (ws, other) = (workspace(&db, &["alice"]).await, workspace(&db, &["bob"]).await);
    let alice = user("alice", &[&ws]);
    let (task, foreign_task, label) = (new_id(), new_id(), new_id());
    let ins = |id: &str, w: &str| tx(Insert, "Task", id, json!({"workspaceId": w, "title": "t", "priority": 1}));
    assert!(mutate(&engine, &alice, vec![ins(&task, &ws)]).await.success);
    assert!(mutate(&engine, &user("bob", &[&other]), vec![ins(&foreign_task, &other)]).await.success);
    let label_tx = tx(Insert, "Label", &label, json!({"workspaceId": ws, "name": "n", "color": "c"}));
    assert!(mutate(&engine, &alice, vec![label_tx]).await.success);

    // A row: seen through a membership, refused without one.
    let seen = explain_row(&engine, "alice", "Task", &task).await.unwrap();
    assert!(seen.allowed);
    assert_eq!((seen.rule, seen.group.as_deref()), (Rule::Membership, Some(ws.as_str())));
    assert_eq!(seen.reason, format!("alice holds group {ws} (membership)"));
    let groups: Vec<(String, &str)> = seen.groups.iter().map(|g| (g.group.clone(), g.source.as_str())).collect();
    assert_eq!(groups, [(ws.clone(), "membership"), ("alice".to_owned(), "own id")]);
    assert!(seen.notes.contains(&"update fields: title, description, priority, dueDate, completedAt".to_owned()));
    let hidden = explain_row(&engine, "bob", "Task", &task).await.unwrap();
    assert!(!hidden.allowed);
    assert_eq!(hidden.rule, Rule::Membership);
    assert_eq!(
        hidden.reason,
        format!("bob does not hold group {ws}: the row is not visible to them, and a mutation of it is refused")
    );
    assert_eq!(hidden.error.as_deref(), Some("Invalid mutation: record not found"));
    let missing = explain_row(&engine, "alice", "Task", &new_id()).await.unwrap();
    assert_eq!((missing.allowed, missing.rule), (false, Rule::Existence));

    // Mutations: allowed, and refused by each rule, each with the server's own answer.
    let allowed =
        explain_then_mutate(&db, "alice", &[&ws], tx(Update, "Task", &task, json!({"title": "x", "bogus": 1}))).await;
    assert_eq!(
        (allowed.rule, allowed.reason.clone()),
        (Rule::Membership, format!("alice holds group {ws} (membership)"))
    );
    assert!(
        allowed.notes.contains(&"ignored payload keys (not update fields of Task): bogus".to_owned()),
        "{allowed:#?}"
    );

    let denied = explain_then_mutate(&db, "bob", &[&other], ins(&new_id(), &ws)).await;
    assert_eq!((denied.rule, denied.error.as_deref()), (Rule::Membership, Some("Access denied")));
    assert_eq!(denied.reason, format!("bob does not hold group {ws}"));
    assert_eq!(denied.group.as_deref(), Some(ws.as_str()));

    let not_found = explain_then_mutate(&db, "bob", &[&other], tx(Update, "Task", &task, json!({"title": "y"}))).await;
    assert_eq!((not_found.rule, not_found.reason.clone()), (Rule::Membership, format!("bob does not hold group {ws}")));

    let invalid =
        explain_then_mutate(&db, "alice", &[&ws], tx(Update, "Task", &task, json!({"priority": "high"}))).await;
    assert_eq!((invalid.rule, invalid.field.as_deref()), (Rule::Validation, Some("priority")));
    assert_eq!(invalid.error.as_deref(), Some("Invalid number value for priority"));

    let action = explain_then_mutate(&db, "alice", &[&ws], tx(Update, "TaskLabel", "x", json!({}))).await;
    assert_eq!((action.rule, action.reason.as_str()), (Rule::ModelActions, "TaskLabel allows the actions I D, not U"));
    assert_eq!(action.error.as_deref(), Some("Unsupported action \"U\" for this model"));

    // The group key is no update field: the update is applied, and changes nothing.
    let moved =
        explain_then_mutate(&db, "alice", &[&ws], tx(Update, "Task", &task, json!({"workspaceId": other}))).await;
    assert!(moved.allowed);
    assert_eq!(moved.rule, Rule::UpdatableFields);
    assert_eq!(
        moved.reason,
        "no key of the payload is an update field of Task (title, description, priority, dueDate, completedAt): \
         the update changes nothing, and is still logged"
    );

    let link = json!({"taskId": foreign_task, "labelId": label, "workspaceId": ws});
    let foreign = explain_then_mutate(&db, "alice", &[&ws], tx(Insert, "TaskLabel", "x", link)).await;
    assert_eq!(foreign.rule, Rule::References);
    assert_eq!(foreign.error.as_deref(), Some("Invalid mutation: referenced record not found"));

    // A transaction the request validation refuses: the 400's message.
    let bad = explain_mutation(
        &engine,
        "alice",
        json!({"action": "UPDATE", "clientId": "", "clientTxId": "t",
        "modelId": task, "modelName": "Task", "payload": {}}),
    )
    .await
    .unwrap();
    assert_eq!(
        (bad.allowed, bad.rule, bad.error.as_deref()),
        (false, Rule::RequestValidation, Some("Client ID is required"))
    );

    // The command: the same explanation as text, the transaction read from stdin.
    let refused = json!({"action": "INSERT", "clientId": "c", "clientTxId": "cli-1", "modelId": new_id(),
                         "modelName": "Task", "payload": {"workspaceId": ws, "title": "t"}});
    let text = taskboard(&db.url, &["explain", "--user", "bob", "--mutation", "-"], &refused.to_string());
    assert!(text.contains(&format!("verdict  refused by membership: bob does not hold group {ws}\n")), "{text}");
    assert!(text.contains("answer   Access denied\n"), "{text}");
    let row: Value = serde_json::from_str(&taskboard(
        &db.url,
        &["explain", "--user", "alice", "--model", "Task", "--id", &task, "--json"],
        "",
    ))
    .unwrap();
    assert_eq!((row["allowed"].clone(), row["rule"].clone()), (json!(true), json!("membership")));
}

/// Test-only tables for the schema export: the same model declared twice
/// with its fields in another order, and once with a field changed.
#[allow(missing_docs)]
mod notes {
    diesel::table! {
        notes (id) {
            id -> Text,
            owner -> Text,
            body -> Text,
        }
    }

    diesel::table! {
        notes_nullable (id) {
            id -> Text,
            owner -> Text,
            body -> Nullable<Text>,
        }
    }
}

mod note_a {
    use super::notes::notes;
    use diesel::prelude::*;
    use stratasync_core::SyncModel;

    /// Fields in one order.
    #[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
    #[diesel(table_name = notes)]
    #[sync(name = "Note", group = owner, actions(insert, update, delete), batch_keys(id, owner))]
    pub struct Note {
        pub id: String,
        #[sync(insert)]
        pub owner: String,
        #[sync(insert, update)]
        pub body: String,
    }
}

mod note_b {
    use super::notes::notes;
    use diesel::prelude::*;
    use stratasync_core::SyncModel;

    /// The same fields in another order.
    #[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
    #[diesel(table_name = notes)]
    #[sync(name = "Note", group = owner, actions(insert, update, delete), batch_keys(owner, id))]
    pub struct Note {
        #[sync(insert, update)]
        pub body: String,
        pub id: String,
        #[sync(insert)]
        pub owner: String,
    }
}

mod note_c {
    use super::notes::notes_nullable;
    use diesel::prelude::*;
    use stratasync_core::SyncModel;

    /// `body` became nullable.
    #[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
    #[diesel(table_name = notes_nullable)]
    #[sync(name = "Note", group = owner, actions(insert, update, delete), batch_keys(id, owner))]
    pub struct Note {
        pub id: String,
        #[sync(insert)]
        pub owner: String,
        #[sync(insert, update)]
        pub body: Option<String>,
    }
}

/// `note_a` with one change each: another index, another group key.
mod note_changed {
    use super::notes::notes;
    use diesel::prelude::*;
    use stratasync_core::SyncModel;

    /// `body` is a batch key too, so the client indexes it.
    #[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
    #[diesel(table_name = notes)]
    #[sync(name = "Note", group = owner, actions(insert, update, delete), batch_keys(id, owner, body))]
    pub struct IndexedBody {
        pub id: String,
        #[sync(insert)]
        pub owner: String,
        #[sync(insert, update)]
        pub body: String,
    }

    /// Grouped by `body` instead of `owner`: the same fields indexed as in
    /// `IndexedBody`, another group key.
    #[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
    #[diesel(table_name = notes)]
    #[sync(name = "Note", group = body, actions(insert, delete), batch_keys(id, owner))]
    pub struct GroupedByBody {
        pub id: String,
        #[sync(insert)]
        pub owner: String,
        #[sync(insert)]
        pub body: String,
    }

    /// Its own group (`group = own`).
    #[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
    #[diesel(table_name = notes)]
    #[sync(name = "Note", group = own, actions(insert, update, delete), batch_keys(id, owner))]
    pub struct OwnGroup {
        pub id: String,
        #[sync(insert)]
        pub owner: String,
        #[sync(insert, update)]
        pub body: String,
    }

    /// Global (no group key).
    #[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
    #[diesel(table_name = notes)]
    #[sync(name = "Note", group = global, actions(insert, update, delete), batch_keys(id, owner))]
    pub struct Global {
        pub id: String,
        #[sync(insert)]
        pub owner: String,
        #[sync(insert, update)]
        pub body: String,
    }
}

fn schema_of<M: SyncModel>() -> ClientSchema {
    ClientSchema::from_registry(&Registry::builder().model::<M>().build())
}

#[test]
fn schema_hash_ignores_order_and_follows_fields() {
    let (a, b, c) = (schema_of::<note_a::Note>(), schema_of::<note_b::Note>(), schema_of::<note_c::Note>());
    assert_eq!(a.hash(), b.hash(), "declaration order does not count");
    assert_ne!(a.hash(), c.hash(), "a field that became nullable changes the hash");
    assert_eq!(
        a.to_json(),
        json!({"models": {"Note": {"loadStrategy": "instant", "groupKey": "owner",
                                   "fields": {"id": {}, "owner": {"indexed": true}, "body": {}}}}})
    );
    assert_eq!(c.to_json()["models"]["Note"]["fields"]["body"], json!({"nullable": true}));
    // Two models: their registration order does not count either.
    let ab =
        ClientSchema::from_registry(&Registry::builder().model::<note_a::Note>().model::<taskboard::Task>().build());
    let ba =
        ClientSchema::from_registry(&Registry::builder().model::<taskboard::Task>().model::<note_b::Note>().build());
    assert_eq!(ab.hash(), ba.hash());
}

#[test]
fn schema_hash_follows_indexes_and_group_keys() {
    let base = schema_of::<note_a::Note>();
    let changed = [
        ("an index added", schema_of::<note_changed::IndexedBody>()),
        ("another group field", schema_of::<note_changed::GroupedByBody>()),
        ("group = own", schema_of::<note_changed::OwnGroup>()),
        ("group = global", schema_of::<note_changed::Global>()),
    ];
    let mut hashes = vec![base.hash()];
    for (what, schema) in &changed {
        assert_ne!(schema.to_json(), base.to_json(), "{what}: the schema differs");
        hashes.push(schema.hash());
    }
    let distinct: std::collections::BTreeSet<&String> = hashes.iter().collect();
    assert_eq!(distinct.len(), hashes.len(), "each change has its own hash: {hashes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_command_is_stable_and_matches_the_server() {
    let db = TestDb::new().await;
    let first = taskboard(&db.url, &["schema", "--format", "json"], "");
    assert_eq!(taskboard(&db.url, &["schema", "--format", "json"], ""), first, "two runs, one schema");
    let document: Value = serde_json::from_str(&first).unwrap();
    let schema = ClientSchema::from_registry(&taskboard::registry());
    assert_eq!(document["schemaHash"], json!(schema.hash()));
    assert_eq!(document["models"], schema.to_json()["models"]);
    assert_eq!(document["models"]["TaskLabel"]["fields"]["id"], json!({}), "the composite id is a field");
    let ts = taskboard(&db.url, &["schema", "--format", "ts"], "");
    assert!(ts.contains(&format!("export const schemaHash = \"{}\";\n", schema.hash())), "{ts}");
    assert!(ts.contains("export const schema = {\n  \"models\": {"), "{ts}");
    assert!(ts.ends_with("} as const;\n"), "{ts}");
    let out = std::env::temp_dir().join(format!("stratasync-schema-{}.ts", uuid::Uuid::new_v4().simple()));
    let path = out.to_str().expect("a UTF-8 temp path");
    assert_eq!(
        taskboard(&db.url, &["schema", "--format", "ts", "--out", path], ""),
        "",
        "--out writes nothing to stdout"
    );
    let written = std::fs::read_to_string(&out).expect("the --out file");
    let _ = std::fs::remove_file(&out);
    assert_eq!(written, ts);
    // Bootstrap metadata carries the same hash, whatever the client sent.
    let engine = db.engine();
    let params =
        stratasync_core::engine::BootstrapParams { schema_hash: "client-hash".to_owned(), ..Default::default() };
    let lines = collect_lines(engine.bootstrap(&user("alice", &[]), params)).await;
    assert_eq!(lines[0]["schemaHash"], json!(schema.hash()));
    assert_eq!(engine.schema_hash(), schema.hash());
}
