//! Models the example application does not have, against the real
//! PostgreSQL: a custom `scope =` filter, a global model, and ids that are
//! not UUIDs (text and integers), through bootstrap, batch loads,
//! mutations and deltas. The tables exist only in these tests (created by
//! [`tables`]).

use diesel::prelude::*;
use serde_json::{json, Value};
use stratasync_core::engine::BootstrapParams;
use stratasync_core::engine::DeltasParams;
use stratasync_core::engine::{BatchItem, BatchParams};
use stratasync_core::protocol::MutationAction::{Delete, Insert, Update};
use stratasync_core::protocol::SyncId;
use stratasync_core::{Registry, ScopeFilter, SyncEngine, SyncModel};
use stratasync_tests::*;

/// The test-only tables (`table!` generates items without docs).
#[allow(missing_docs)]
mod schema {
    diesel::table! {
        notes (id) {
            id -> Text,
            owner -> Text,
            shared -> Bool,
            body -> Text,
        }
    }

    diesel::table! {
        counters (id) {
            id -> Int4,
            team_id -> Nullable<Int8>,
            label -> Text,
        }
    }

    diesel::table! {
        announcements (id) {
            id -> Int8,
            message -> Text,
        }
    }
}
use schema::{announcements, counters, notes};

/// The test-only tables.
async fn tables(db: &TestDb) {
    db.execute(
        "CREATE TABLE notes (id text PRIMARY KEY, owner text NOT NULL, shared boolean NOT NULL DEFAULT false, \
                             body text NOT NULL); \
         CREATE TABLE counters (id integer PRIMARY KEY, team_id bigint, label text NOT NULL); \
         CREATE TABLE announcements (id bigint PRIMARY KEY, message text NOT NULL);",
    )
    .await;
}

/// A note is visible to its owner's group, and to everyone once shared.
fn mine_or_shared(
    scope: &ScopeFilter,
) -> Box<dyn BoxableExpression<notes::table, diesel::pg::Pg, SqlType = diesel::sql_types::Bool> + '_> {
    Box::new(notes::owner.eq_any(&scope.authorized_group_ids).or(notes::shared.eq(true)))
}

/// Text ids, a text group key, and a custom scope.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = notes)]
#[sync(group = owner, scope = mine_or_shared, actions(insert, update, delete), batch_keys(id, owner))]
#[allow(dead_code)]
struct Note {
    id: String,
    #[sync(insert)]
    owner: String,
    #[sync(insert, update)]
    shared: bool,
    #[sync(insert, update)]
    body: String,
}

/// Integer ids and a nullable integer group key.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = counters)]
#[sync(group = team_id, actions(insert, update, delete), batch_keys(id))]
#[allow(dead_code)]
struct Counter {
    id: i32,
    #[sync(insert)]
    team_id: Option<i64>,
    #[sync(insert, update)]
    label: String,
}

/// A global model (every user sees every row) with `bigint` ids.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = announcements)]
#[sync(group = global, actions(insert, update, delete), batch_keys(id))]
#[allow(dead_code)]
struct Announcement {
    id: i64,
    #[sync(insert, update)]
    message: String,
}

fn engine(db: &TestDb) -> SyncEngine {
    let registry = Registry::builder().model::<Note>().model::<Counter>().model::<Announcement>().build();
    SyncEngine::builder(db.pool.clone(), registry, taskboard::DevAuth::default()).start().expect("the engine starts")
}

async fn bootstrap(engine: &SyncEngine, who: &stratasync_core::auth::AuthContext) -> Vec<Value> {
    collect_lines(engine.bootstrap(who, BootstrapParams::default())).await
}

fn indexed(model: &str, key: &str, value: &str) -> BatchItem {
    BatchItem::Indexed { indexed_key: key.into(), key_value: value.into(), model_name: model.into() }
}

fn group(model: &str, group_id: &str) -> BatchItem {
    BatchItem::Group { group_id: group_id.into(), model_name: model.into() }
}

async fn batch(engine: &SyncEngine, who: &stratasync_core::auth::AuthContext, items: Vec<BatchItem>) -> Vec<Value> {
    collect_lines(engine.batch(who, BatchParams { first_sync_id: None, requests: items })).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_scope_filters_bootstrap_and_batch_loads() {
    let db = TestDb::new().await;
    tables(&db).await;
    db.execute(
        "INSERT INTO notes (id, owner, shared, body) VALUES \
           ('a-1', 'alice', false, 'alice private'), ('b-1', 'bob', false, 'bob private'), \
           ('b-2', 'bob', true, 'bob shared'), ('c-1', 'carol', true, 'carol shared')",
    )
    .await;
    let engine = engine(&db);
    let alice = user("alice", &[]);
    let note = |id: &str, owner: &str, shared: bool, body: &str| json!({"__class": "Note", "id": id, "owner": owner, "shared": shared, "body": body});

    // Bootstrap: her own notes and everyone's shared ones, in id order;
    // not bob's private one (the default group filter would show only
    // her own).
    let lines = bootstrap(&engine, &alice).await;
    assert_eq!(
        lines,
        [
            json!({"lastSyncId": "0", "returnedModelsCount": {"Note": 3, "Counter": 0, "Announcement": 0},
                   "schemaHash": engine.schema_hash(), "subscribedSyncGroups": ["alice"]}),
            note("a-1", "alice", false, "alice private"),
            note("b-2", "bob", true, "bob shared"),
            note("c-1", "carol", true, "carol shared"),
        ]
    );
    let bob = user("bob", &[]);
    let ids: Vec<Value> = bootstrap(&engine, &bob).await[1..].iter().map(|l| l["id"].clone()).collect();
    assert_eq!(ids, [json!("b-1"), json!("b-2"), json!("c-1")]);

    // Batch loads go through the same scope: by a key, bob's notes as
    // alice sees them are his shared ones; by id, a private note of his
    // is not there; by her own group, her notes and the shared ones.
    let lines = batch(&engine, &alice, vec![indexed("Note", "owner", "bob")]).await;
    assert_eq!(lines, [note("b-2", "bob", true, "bob shared")]);
    let lines = batch(&engine, &alice, vec![indexed("Note", "id", "b-1"), indexed("Note", "id", "b-2")]).await;
    assert_eq!(lines, [note("b-2", "bob", true, "bob shared")]);
    let lines = batch(&engine, &alice, vec![group("Note", "alice")]).await;
    let ids: Vec<Value> = lines.iter().map(|l| l["id"].clone()).collect();
    assert_eq!(ids, [json!("a-1"), json!("b-2"), json!("c-1")]);
    assert!(batch(&engine, &alice, vec![group("Note", "bob")]).await.is_empty(), "a foreign group is skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_and_integer_ids_and_global_rows_meet_postgres() {
    let db = TestDb::new().await;
    tables(&db).await;
    let engine = engine(&db);
    // Alice is in team 7 (groups are strings on the wire).
    let alice = user("alice", &["7"]);
    let bob = user("bob", &[]);

    let res = mutate(
        &engine,
        &alice,
        vec![
            tx(Insert, "Note", "note-1", json!({"owner": "alice", "shared": false, "body": "text id"})),
            tx(Insert, "Counter", "42", json!({"teamId": 7, "label": "integer id"})),
            tx(Insert, "Announcement", "9000000000", json!({"message": "to everyone"})),
        ],
    )
    .await;
    assert!(res.success, "{}", to_json(&res));
    let res = mutate(
        &engine,
        &alice,
        vec![
            tx(Update, "Note", "note-1", json!({"body": "edited"})),
            tx(Update, "Counter", "42", json!({"label": "edited"})),
            tx(Update, "Announcement", "9000000000", json!({"message": "edited"})),
        ],
    )
    .await;
    assert!(res.success, "{}", to_json(&res));
    assert_eq!(db.scalar("SELECT count(*) FROM notes WHERE id = 'note-1' AND body = 'edited'").await, 1);
    assert_eq!(db.scalar("SELECT count(*) FROM counters WHERE id = 42 AND team_id = 7 AND label = 'edited'").await, 1);
    assert_eq!(db.scalar("SELECT count(*) FROM announcements WHERE id = 9000000000 AND message = 'edited'").await, 1);

    // Ids the column cannot hold, and a team alice is not in.
    let before = db.scalar("SELECT count(*) FROM sync_actions").await;
    for (t, error) in [
        (tx(Update, "Counter", "not-a-number", json!({"label": "x"})), "Invalid mutation: record not found"),
        (tx(Update, "Counter", "43", json!({"label": "x"})), "Invalid mutation: record not found"),
        (tx(Insert, "Counter", "44", json!({"teamId": 8, "label": "x"})), "Access denied"),
        (
            tx(Update, "Announcement", "99999999999999999999", json!({"message": "x"})),
            "Invalid mutation: record not found",
        ),
    ] {
        let res = mutate(&engine, &alice, vec![t]).await;
        assert_eq!(to_json(&res)["results"][0]["error"], json!(error));
    }
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, before);

    // The log: ids as strings, the integer group as a string, global
    // actions without a group.
    let all = DeltasParams { after: SyncId(0), ..DeltasParams::default() };
    let page = to_json(&engine.deltas(&alice, &all).await.unwrap());
    let actions: Vec<Value> = page["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!([a["syncId"], a["action"], a["modelName"], a["modelId"], a.get("groupId"), a["data"]]))
        .collect();
    assert_eq!(
        actions,
        [
            json!(["1", "I", "Note", "note-1", "alice", {"id": "note-1", "owner": "alice", "shared": false, "body": "text id"}]),
            json!(["2", "I", "Counter", "42", "7", {"id": "42", "teamId": 7, "label": "integer id"}]),
            json!(["3", "I", "Announcement", "9000000000", null, {"id": "9000000000", "message": "to everyone"}]),
            json!(["4", "U", "Note", "note-1", "alice", {"body": "edited"}]),
            json!(["5", "U", "Counter", "42", "7", {"label": "edited"}]),
            json!(["6", "U", "Announcement", "9000000000", null, {"message": "edited"}]),
        ]
    );
    // Bob sees only the global actions.
    let page = to_json(&engine.deltas(&bob, &all).await.unwrap());
    let ids: Vec<Value> = page["actions"].as_array().unwrap().iter().map(|a| a["syncId"].clone()).collect();
    assert_eq!(ids, [json!("3"), json!("6")]);

    // Bootstrap: the rows in wire form; bob gets the global row only.
    let lines = bootstrap(&engine, &alice).await;
    assert_eq!(
        lines[1..],
        [
            json!({"__class": "Note", "id": "note-1", "owner": "alice", "shared": false, "body": "edited"}),
            json!({"__class": "Counter", "id": "42", "teamId": 7, "label": "edited"}),
            json!({"__class": "Announcement", "id": "9000000000", "message": "edited"}),
        ]
    );
    let lines = bootstrap(&engine, &bob).await;
    assert_eq!(lines[0]["returnedModelsCount"], json!({"Note": 0, "Counter": 0, "Announcement": 1}));
    assert_eq!(lines[1..], [json!({"__class": "Announcement", "id": "9000000000", "message": "edited"})]);
    // Batch loads by integer id, for a member and for anyone (global).
    let lines = batch(&engine, &alice, vec![indexed("Counter", "id", "42"), group("Counter", "7")]).await;
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["id"] == json!("42")));
    assert!(batch(&engine, &bob, vec![indexed("Counter", "id", "42")]).await.is_empty());
    let lines = batch(&engine, &bob, vec![indexed("Announcement", "id", "9000000000")]).await;
    assert_eq!(lines, [json!({"__class": "Announcement", "id": "9000000000", "message": "edited"})]);

    // Deletes: each logs the row as stored, with its id as a string.
    let res = mutate(
        &engine,
        &alice,
        vec![
            tx(Delete, "Note", "note-1", json!({})),
            tx(Delete, "Counter", "42", json!({})),
            tx(Delete, "Announcement", "9000000000", json!({})),
        ],
    )
    .await;
    assert!(res.success, "{}", to_json(&res));
    let rest = DeltasParams { after: SyncId(6), ..DeltasParams::default() };
    let page = to_json(&engine.deltas(&alice, &rest).await.unwrap());
    let deletes: Vec<Value> =
        page["actions"].as_array().unwrap().iter().map(|a| json!([a["action"], a["modelId"], a["data"]])).collect();
    assert_eq!(
        deletes,
        [
            json!(["D", "note-1", {"id": "note-1", "owner": "alice", "shared": false, "body": "edited"}]),
            json!(["D", "42", {"id": "42", "teamId": 7, "label": "edited"}]),
            json!(["D", "9000000000", {"id": "9000000000", "message": "edited"}]),
        ]
    );
    assert_eq!(db.scalar("SELECT (SELECT count(*) FROM notes) + (SELECT count(*) FROM counters) + (SELECT count(*) FROM announcements)").await, 0);
}
