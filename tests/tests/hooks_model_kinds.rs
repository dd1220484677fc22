//! Mutation hooks on the model kinds `tests/hooks.rs` leaves out, against
//! the real PostgreSQL: a `group = global` model with `bigint` ids, a
//! model whose group is its own (text) id (`group = own`), a model with
//! `integer` ids grouped by a `bigint` field, and a global composite model
//! keyed by a text and an integer. Which hook runs for which action, with
//! which arguments; a hook's refusal fails its own transaction only and
//! leaves nothing behind; a hook's rewrite is what the row and the log
//! hold. The tables exist only in these tests (created by [`tables`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};
use std::sync::Mutex;
use stratasync_core::composite_id::composite_id;
use stratasync_core::model::{HookContext, HookError, JsonObject, ModelHooks, MutationEvent, SyncChanges};
use stratasync_core::protocol::MutationAction::{Archive, Delete, Insert, Unarchive, Update};
use stratasync_core::{Registry, SyncEngine, SyncModel};
use stratasync_tests::*;

/// The test-only tables (`table!` generates items without docs).
#[allow(missing_docs)]
mod schema {
    diesel::table! {
        bulletins (id) {
            id -> Int8,
            message -> Text,
            archived_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        profiles (id) {
            id -> Text,
            bio -> Text,
            archived_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        tallies (id) {
            id -> Int4,
            team_id -> Int8,
            label -> Text,
            archived_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        pins (board, slot) {
            board -> Text,
            slot -> Int4,
            note -> Text,
        }
    }
}
use schema::{bulletins, pins, profiles, tallies};

/// The test-only tables, and `hook_audit`, which the hooks write through
/// their transaction's connection.
async fn tables(db: &TestDb) {
    db.execute(
        "CREATE TABLE bulletins (id bigint PRIMARY KEY, message text NOT NULL, archived_at timestamptz); \
         CREATE TABLE profiles (id text PRIMARY KEY, bio text NOT NULL, archived_at timestamptz); \
         CREATE TABLE tallies (id integer PRIMARY KEY, team_id bigint NOT NULL, label text NOT NULL, \
                               archived_at timestamptz); \
         CREATE TABLE pins (board text NOT NULL, slot integer NOT NULL, note text NOT NULL, \
                            PRIMARY KEY (board, slot)); \
         CREATE TABLE hook_audit (seq bigserial PRIMARY KEY, what text NOT NULL);",
    )
    .await;
}

/// A fingerprint of the test tables, the hooks' audit table and the log.
async fn fingerprint(db: &TestDb) -> i64 {
    db.scalar(
        "SELECT hashtext(coalesce((SELECT string_agg(x, '|' ORDER BY x) FROM ( \
           SELECT row_to_json(b)::text AS x FROM bulletins b UNION ALL \
           SELECT row_to_json(p)::text FROM profiles p UNION ALL \
           SELECT row_to_json(t)::text FROM tallies t UNION ALL \
           SELECT row_to_json(n)::text FROM pins n UNION ALL \
           SELECT row_to_json(h)::text FROM hook_audit h UNION ALL \
           SELECT row_to_json(a)::text FROM sync_actions a) s), ''))",
    )
    .await
}

/// Every hook call so far: the model id it was for, and what it saw.
static CALLS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn record(id: &str, call: String) {
    CALLS.lock().unwrap_or_else(|e| e.into_inner()).push((id.to_owned(), call));
}

/// The calls for these model ids, in order, taken out of [`CALLS`] (the
/// tests of this file run at once; each has its own ids).
fn take_calls(ids: &[&str]) -> Vec<String> {
    let mut calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
    let (mine, others): (Vec<_>, Vec<_>) = calls.drain(..).partition(|(id, _)| ids.contains(&id.as_str()));
    *calls = others;
    mine.into_iter().map(|(_, call)| call).collect()
}

/// Hooks that record each call (with the stored row where there is one),
/// write a line to `hook_audit` through the transaction, and do what the
/// payload's `"hook"` says: `"refuse"` (reject with `refused <id>`) or
/// `"shout"` (upper-case every string of the typed insert or patch) or
/// `"sneak"` (set the archive field, which no insert or update writes).
#[derive(Default)]
struct Probe;

async fn audit(cx: &mut HookContext<'_>, what: String) -> Result<(), HookError> {
    let insert =
        diesel::sql_query("INSERT INTO hook_audit (what) VALUES ($1)").bind::<diesel::sql_types::Text, _>(what);
    diesel_async::RunQueryDsl::execute(insert, cx.conn).await.map(drop).map_err(|e| HookError::Internal(Box::new(e)))
}

/// Does what the payload says to `changes` (through their wire form, so
/// that one hook serves every model).
fn obey<C: SyncChanges>(cx: &HookContext<'_>, changes: Option<&mut C>) -> Result<(), HookError> {
    match (cx.payload.get("hook").and_then(Value::as_str), changes) {
        (Some("refuse"), _) => Err(HookError::Reject(format!("refused {}", cx.model_id))),
        (Some("sneak"), Some(changes)) => {
            // A field no insert or update writes (the archive field).
            let mut data = changes.to_data();
            data.insert("archivedAt".to_owned(), json!(1718452800123i64));
            *changes = C::from_data(&data).map_err(|e| HookError::Internal(Box::new(e)))?;
            Ok(())
        }
        (Some("shout"), Some(changes)) => {
            let mut data = changes.to_data();
            for value in data.values_mut() {
                if let Value::String(s) = value {
                    *s = s.to_uppercase();
                }
            }
            *changes = C::from_data(&data).map_err(|e| HookError::Internal(Box::new(e)))?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The stored row a hook got, in wire form.
fn row<M: SyncModel>(current: &M) -> Value {
    Value::Object(current.to_data())
}

#[async_trait]
impl<M: SyncModel> ModelHooks<M> for Probe {
    async fn before_insert(&self, cx: &mut HookContext<'_>, insert: &mut M::Changes) -> Result<(), HookError> {
        let id = cx.model_id;
        record(id, format!("before_insert {} {id} {}", cx.user.user_id(), Value::Object(insert.to_data())));
        audit(cx, format!("before_insert {id}")).await?;
        obey(cx, Some(insert))
    }

    async fn before_update(
        &self,
        cx: &mut HookContext<'_>,
        current: &M,
        patch: &mut M::Changes,
    ) -> Result<(), HookError> {
        let id = cx.model_id;
        let (user, current, patched) = (cx.user.user_id(), row(current), Value::Object(patch.to_data()));
        record(id, format!("before_update {user} {id} {current} {patched}"));
        audit(cx, format!("before_update {id}")).await?;
        obey(cx, Some(patch))
    }

    async fn before_delete(&self, cx: &mut HookContext<'_>, current: &M) -> Result<(), HookError> {
        let id = cx.model_id;
        let payload = Value::Object(cx.payload.clone());
        record(id, format!("before_delete {} {id} {} {payload}", cx.user.user_id(), row(current)));
        audit(cx, format!("before_delete {id}")).await?;
        obey::<M::Changes>(cx, None)
    }

    async fn before_archive(&self, cx: &mut HookContext<'_>, current: &M) -> Result<(), HookError> {
        let id = cx.model_id;
        record(id, format!("before_archive {} {id} {}", cx.user.user_id(), row(current)));
        audit(cx, format!("before_archive {id}")).await?;
        obey::<M::Changes>(cx, None)
    }

    async fn before_unarchive(&self, cx: &mut HookContext<'_>, current: &M) -> Result<(), HookError> {
        let id = cx.model_id;
        record(id, format!("before_unarchive {} {id} {}", cx.user.user_id(), row(current)));
        audit(cx, format!("before_unarchive {id}")).await?;
        obey::<M::Changes>(cx, None)
    }

    async fn after_mutation(&self, event: &MutationEvent<'_>) -> Result<(), HookError> {
        record(
            event.model_id,
            format!(
                "after {} {:?} {} #{} {}",
                event.model_name,
                event.action,
                event.model_id,
                event.sync_id,
                Value::Object(event.data.clone())
            ),
        );
        Ok(())
    }
}

/// Global rows with `bigint` ids, every action.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = bulletins)]
#[sync(group = global, actions(insert, update, delete, archive, unarchive), hooks = Probe)]
#[allow(dead_code)]
struct Bulletin {
    id: i64,
    #[sync(insert, update)]
    message: String,
    archived_at: Option<DateTime<Utc>>,
}

/// Rows whose group is their own text id, every action.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = profiles)]
#[sync(group = own, actions(insert, update, delete, archive, unarchive), hooks = Probe)]
#[allow(dead_code)]
struct Profile {
    id: String,
    #[sync(insert, update)]
    bio: String,
    archived_at: Option<DateTime<Utc>>,
}

/// `integer` ids grouped by a `bigint` team, every action.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tallies)]
#[sync(group = team_id, actions(insert, update, delete, archive, unarchive), hooks = Probe)]
#[allow(dead_code)]
struct Tally {
    id: i32,
    #[sync(insert)]
    team_id: i64,
    #[sync(insert, update)]
    label: String,
    archived_at: Option<DateTime<Utc>>,
}

/// A global composite model keyed by a text and an integer (both of its
/// actions).
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = pins)]
#[sync(group = global, actions(insert, delete), cursor(board, slot), hooks = Probe)]
#[allow(dead_code)]
struct Pin {
    #[sync(insert)]
    board: String,
    #[sync(insert)]
    slot: i32,
    #[sync(insert)]
    note: String,
}

fn engine(db: &TestDb) -> SyncEngine {
    let registry = Registry::builder().model::<Bulletin>().model::<Profile>().model::<Tally>().model::<Pin>().build();
    SyncEngine::builder(db.pool.clone(), registry, taskboard::DevAuth::default()).start().expect("the engine starts")
}

/// The log: `[syncId, action, model, modelId, groupId, data]` per action.
async fn log(db: &TestDb) -> Vec<Value> {
    let text = db
        .text(
            "SELECT coalesce(json_agg(json_build_array(id::text, action, model, model_id, group_id, data) \
                     ORDER BY id), '[]') FROM sync_actions",
        )
        .await;
    serde_json::from_str(&text).expect("the log as JSON")
}

/// The contract of `tests/hooks.rs` on the other model kinds: every
/// action of a standard model (insert, update, delete, archive,
/// unarchive) and of the composite model (insert, delete) runs its
/// `before_*` hook before the write, with the caller, the canonical id,
/// the typed insert or patch, and the row as stored before the action;
/// `after_mutation` runs once per committed action with its model,
/// action, canonical id, sync id and logged data.
#[tokio::test(flavor = "multi_thread")]
async fn hooks_run_for_every_action_of_global_own_and_non_uuid_models() {
    let db = TestDb::new().await;
    tables(&db).await;
    let engine = engine(&db);
    // Alice is in team 5 and in the group of her profile.
    let alice = user("alice", &["5", "profile-alice"]);
    let pin = composite_id("Pin", &["north", "3"]);
    let archived = 1718452800123i64;
    let mut sync_id = 0;
    let mut expected: Vec<String> = Vec::new();
    for (model, id, inserted, update, row) in [
        (
            "Bulletin",
            "9000000001",
            json!({"message": "hello"}),
            json!({"message": "hello again"}),
            json!({"id": "9000000001", "message": "hello again", "archivedAt": null}),
        ),
        (
            "Profile",
            "profile-alice",
            json!({"bio": "likes tests"}),
            json!({"bio": "likes green tests"}),
            json!({"id": "profile-alice", "bio": "likes green tests", "archivedAt": null}),
        ),
        (
            "Tally",
            "7",
            json!({"teamId": 5, "label": "cups"}),
            json!({"label": "mugs"}),
            json!({"id": "7", "teamId": 5, "label": "mugs", "archivedAt": null}),
        ),
    ] {
        let steps = [
            tx(Insert, model, id, inserted.clone()),
            tx(Update, model, id, update.clone()),
            tx(Archive, model, id, json!({"archivedAt": archived})),
            tx(Unarchive, model, id, json!({})),
            tx(Delete, model, id, json!({"reason": "done"})),
        ];
        for step in steps {
            let res = mutate(&engine, &alice, vec![step]).await;
            assert!(res.success, "{model}: {}", to_json(&res));
        }
        let mut data = json!({"id": id});
        data.as_object_mut().unwrap().extend(inserted.as_object().unwrap().clone());
        // The row as stored before the update: the inserted values.
        let mut stored = row.clone();
        for (key, value) in inserted.as_object().unwrap() {
            stored[key] = value.clone();
        }
        let mut archived_row = row.clone();
        archived_row["archivedAt"] = json!(archived);
        let mut next = || {
            sync_id += 1;
            sync_id
        };
        expected.extend([
            format!("before_insert alice {id} {inserted}"),
            format!("after {model} Insert {id} #{} {data}", next()),
            format!("before_update alice {id} {stored} {update}"),
            format!("after {model} Update {id} #{} {update}", next()),
            format!("before_archive alice {id} {row}"),
            format!(r#"after {model} Archive {id} #{} {{"archivedAt":{archived}}}"#, next()),
            format!("before_unarchive alice {id} {archived_row}"),
            format!(r#"after {model} Unarchive {id} #{} {{"archivedAt":null}}"#, next()),
            format!(r#"before_delete alice {id} {row} {{"reason":"done"}}"#),
            format!("after {model} Delete {id} #{} {row}", next()),
        ]);
    }
    // The composite: sent under any id, its hooks and its log under its
    // composite id.
    let link = json!({"board": "north", "slot": 3, "note": "pinned"});
    for step in [tx(Insert, "Pin", "client-id", link.clone()), tx(Delete, "Pin", &pin, link)] {
        let res = mutate(&engine, &alice, vec![step]).await;
        assert!(res.success, "Pin: {}", to_json(&res));
    }
    let pinned = r#"{"board":"north","slot":3,"note":"pinned"}"#;
    let stored_pin = format!(r#"{{"board":"north","slot":3,"note":"pinned","id":"{pin}"}}"#);
    expected.extend([
        format!("before_insert alice {pin} {pinned}"),
        format!("after Pin Insert {pin} #{} {pinned}", sync_id + 1),
        format!("before_delete alice {pin} {stored_pin} {pinned}"),
        format!("after Pin Delete {pin} #{} {stored_pin}", sync_id + 2),
    ]);
    assert_eq!(take_calls(&["9000000001", "profile-alice", "7", &pin]), expected);

    // The hooks ran inside the committed transactions.
    assert_eq!(
        db.text("SELECT string_agg(what, ',' ORDER BY seq) FROM hook_audit").await,
        format!(
            "before_insert 9000000001,before_update 9000000001,before_archive 9000000001,\
         before_unarchive 9000000001,before_delete 9000000001,\
         before_insert profile-alice,before_update profile-alice,before_archive profile-alice,\
         before_unarchive profile-alice,before_delete profile-alice,\
         before_insert 7,before_update 7,before_archive 7,before_unarchive 7,before_delete 7,\
         before_insert {pin},before_delete {pin}"
        )
    );
    // The log agrees on ids and groups: global actions have no
    // group, `group = own` rows are their own group, the team is a string.
    let groups: Vec<Value> = log(&db).await.iter().map(|a| json!([a[1], a[2], a[3], a[4]])).collect();
    let mut want = Vec::new();
    for (model, id, group) in [
        ("Bulletin", "9000000001", json!(null)),
        ("Profile", "profile-alice", json!("profile-alice")),
        ("Tally", "7", json!("5")),
    ] {
        for action in ["I", "U", "A", "V", "D"] {
            want.push(json!([action, model, id, group]));
        }
    }
    want.extend([json!(["I", "Pin", pin, null]), json!(["D", "Pin", pin, null])]);
    assert_eq!(groups, want);
}

/// A hook's refusal fails its own transaction and nothing else: the other
/// transactions of the request commit (and their hooks' writes with them),
/// the refused one leaves no row, no log entry and no hook write, and runs
/// no `after_mutation`. A hook's rewrite of `data` is what the row, the
/// log and `after_mutation` get. Ids in a non-canonical spelling are
/// refused before any hook runs.
#[tokio::test(flavor = "multi_thread")]
async fn hook_refusals_fail_only_their_transaction_and_rewrites_are_stored() {
    let db = TestDb::new().await;
    tables(&db).await;
    let engine = engine(&db);
    let bob = user("bob", &["6", "profile-bob", "profile-bob-2", "profile-bob-3"]);
    let shout = |mut payload: Value| {
        payload["hook"] = json!("shout");
        payload
    };
    let refuse = |mut payload: Value| {
        payload["hook"] = json!("refuse");
        payload
    };
    let cases = [
        ("Bulletin", ["8000000001", "8000000002", "8000000003"], "message", json!({"message": "news"})),
        ("Profile", ["profile-bob", "profile-bob-2", "profile-bob-3"], "bio", json!({"bio": "quiet"})),
        ("Tally", ["11", "12", "13"], "label", json!({"teamId": 6, "label": "spoons"})),
    ];
    let one = |key: &str, value: &str| Value::Object(JsonObject::from_iter([(key.to_owned(), json!(value))]));
    let ids: Vec<&str> = cases.iter().flat_map(|(_, ids, _, _)| ids.iter().copied()).collect();

    // Inserts: the first shouted, the second refused, the third as sent.
    for (model, [first, second, third], _, payload) in &cases {
        let res = mutate(
            &engine,
            &bob,
            vec![
                tx(Insert, model, first, shout(payload.clone())),
                tx(Insert, model, second, refuse(payload.clone())),
                tx(Insert, model, third, payload.clone()),
            ],
        )
        .await;
        let body = to_json(&res);
        assert_eq!(body["results"][0]["success"], json!(true), "{model}: {body}");
        assert_eq!(body["results"][1]["error"], json!(format!("refused {second}")), "{model}: {body}");
        assert_eq!(body["results"][2]["success"], json!(true), "{model}: {body}");
    }
    assert_eq!(
        db.text(
            "SELECT concat_ws(',', (SELECT string_agg(id || '=' || message, ',' ORDER BY id) FROM bulletins), \
                    (SELECT string_agg(id || '=' || bio, ',' ORDER BY id) FROM profiles), \
                    (SELECT string_agg(id || '=' || label, ',' ORDER BY id) FROM tallies))"
        )
        .await,
        "8000000001=NEWS,8000000003=news,profile-bob=QUIET,profile-bob-3=quiet,11=SPOONS,13=spoons",
        "the rewrite is stored; the refused row is not"
    );

    // Updates: the first shouted, the third refused; deletes: the third
    // refused.
    for (model, [first, _, third], field, _) in &cases {
        let res = mutate(
            &engine,
            &bob,
            vec![
                tx(Update, model, first, shout(one(field, "louder"))),
                tx(Update, model, third, refuse(one(field, "changed"))),
            ],
        )
        .await;
        let body = to_json(&res);
        assert_eq!(body["results"][0]["success"], json!(true), "{model}: {body}");
        assert_eq!(body["results"][1]["error"], json!(format!("refused {third}")), "{model}: {body}");
        let res = mutate(&engine, &bob, vec![tx(Delete, model, third, refuse(json!({})))]).await;
        assert_eq!(to_json(&res)["results"][0]["error"], json!(format!("refused {third}")), "{model}");
    }

    // The log holds what the rows hold: the rewritten values, nothing of
    // the refused transactions.
    let logged: Vec<Value> = log(&db).await.iter().map(|a| json!([a[1], a[2], a[3], a[5]])).collect();
    assert_eq!(
        logged,
        [
            json!(["I", "Bulletin", "8000000001", {"id": "8000000001", "message": "NEWS"}]),
            json!(["I", "Bulletin", "8000000003", {"id": "8000000003", "message": "news"}]),
            json!(["I", "Profile", "profile-bob", {"id": "profile-bob", "bio": "QUIET"}]),
            json!(["I", "Profile", "profile-bob-3", {"id": "profile-bob-3", "bio": "quiet"}]),
            json!(["I", "Tally", "11", {"id": "11", "teamId": 6, "label": "SPOONS"}]),
            json!(["I", "Tally", "13", {"id": "13", "teamId": 6, "label": "spoons"}]),
            json!(["U", "Bulletin", "8000000001", {"message": "LOUDER"}]),
            json!(["U", "Profile", "profile-bob", {"bio": "LOUDER"}]),
            json!(["U", "Tally", "11", {"label": "LOUDER"}]),
        ]
    );
    assert_eq!(
        db.text(
            "SELECT concat_ws(',', (SELECT message FROM bulletins WHERE id = 8000000001), \
                 (SELECT bio FROM profiles WHERE id = 'profile-bob'), (SELECT label FROM tallies WHERE id = 11))"
        )
        .await,
        "LOUDER,LOUDER,LOUDER"
    );
    // Hook writes of refused transactions are rolled back with them; those
    // of committed ones stay (once each, however often a hook ran).
    let committed: Vec<String> = cases
        .iter()
        .flat_map(|(_, [first, _, third], _, _)| {
            [format!("before_insert {first}"), format!("before_insert {third}"), format!("before_update {first}")]
        })
        .collect();
    let mut audited: Vec<String> = db
        .text("SELECT string_agg(what, ',' ORDER BY what) FROM hook_audit")
        .await
        .split(',')
        .map(String::from)
        .collect();
    let mut want = committed.clone();
    want.sort();
    audited.sort();
    assert_eq!(audited, want);

    // Each before-hook saw the caller, the id, the typed insert or patch
    // as sent and the row as stored before the action (a
    // hook may run more than once for one transaction: a refusal rolls its
    // group back and the others are applied again); `after_mutation` ran
    // once per committed action, with the rewritten data, in log order,
    // and never for a refused one.
    let calls = take_calls(&ids);
    let mut before: Vec<&String> = calls.iter().filter(|c| c.starts_with("before_")).collect();
    before.sort();
    before.dedup();
    let mut want_before = vec![
        r#"before_insert bob 8000000001 {"message":"news"}"#,
        r#"before_insert bob 8000000002 {"message":"news"}"#,
        r#"before_insert bob 8000000003 {"message":"news"}"#,
        r#"before_update bob 8000000001 {"id":"8000000001","message":"NEWS","archivedAt":null} {"message":"louder"}"#,
        r#"before_update bob 8000000003 {"id":"8000000003","message":"news","archivedAt":null} {"message":"changed"}"#,
        r#"before_delete bob 8000000003 {"id":"8000000003","message":"news","archivedAt":null} {"hook":"refuse"}"#,
        r#"before_insert bob profile-bob {"bio":"quiet"}"#,
        r#"before_insert bob profile-bob-2 {"bio":"quiet"}"#,
        r#"before_insert bob profile-bob-3 {"bio":"quiet"}"#,
        r#"before_update bob profile-bob {"id":"profile-bob","bio":"QUIET","archivedAt":null} {"bio":"louder"}"#,
        r#"before_update bob profile-bob-3 {"id":"profile-bob-3","bio":"quiet","archivedAt":null} {"bio":"changed"}"#,
        r#"before_delete bob profile-bob-3 {"id":"profile-bob-3","bio":"quiet","archivedAt":null} {"hook":"refuse"}"#,
        r#"before_insert bob 11 {"teamId":6,"label":"spoons"}"#,
        r#"before_insert bob 12 {"teamId":6,"label":"spoons"}"#,
        r#"before_insert bob 13 {"teamId":6,"label":"spoons"}"#,
        r#"before_update bob 11 {"id":"11","teamId":6,"label":"SPOONS","archivedAt":null} {"label":"louder"}"#,
        r#"before_update bob 13 {"id":"13","teamId":6,"label":"spoons","archivedAt":null} {"label":"changed"}"#,
        r#"before_delete bob 13 {"id":"13","teamId":6,"label":"spoons","archivedAt":null} {"hook":"refuse"}"#,
    ];
    want_before.sort();
    assert_eq!(before, want_before);
    let after: Vec<&String> = calls.iter().filter(|c| c.starts_with("after ")).collect();
    assert_eq!(
        after,
        [
            r#"after Bulletin Insert 8000000001 #1 {"id":"8000000001","message":"NEWS"}"#,
            r#"after Bulletin Insert 8000000003 #2 {"id":"8000000003","message":"news"}"#,
            r#"after Profile Insert profile-bob #3 {"id":"profile-bob","bio":"QUIET"}"#,
            r#"after Profile Insert profile-bob-3 #4 {"id":"profile-bob-3","bio":"quiet"}"#,
            r#"after Tally Insert 11 #5 {"id":"11","teamId":6,"label":"SPOONS"}"#,
            r#"after Tally Insert 13 #6 {"id":"13","teamId":6,"label":"spoons"}"#,
            r#"after Bulletin Update 8000000001 #7 {"message":"LOUDER"}"#,
            r#"after Profile Update profile-bob #8 {"bio":"LOUDER"}"#,
            r#"after Tally Update 11 #9 {"label":"LOUDER"}"#,
        ]
    );

    // Non-canonical spellings of an integer id, and refusals only: the
    // database does not change and no hook runs.
    let before = fingerprint(&db).await;
    let res = mutate(
        &engine,
        &bob,
        vec![
            tx(Insert, "Tally", "014", json!({"teamId": 6, "label": "x"})),
            tx(Update, "Bulletin", "08000000001", json!({"message": "x"})),
            tx(Delete, "Tally", "+11", json!({})),
            tx(Insert, "Profile", "profile-bob-2", refuse(json!({"bio": "x"}))),
            tx(Insert, "Bulletin", "8000000009", json!({"message": "x", "hook": "sneak"})),
            tx(Update, "Bulletin", "8000000001", json!({"message": "x", "hook": "sneak"})),
        ],
    )
    .await;
    let body = to_json(&res);
    let errors: Vec<&str> = (0..6).map(|i| body["results"][i]["error"].as_str().unwrap_or("")).collect();
    // A hook may only set the fields its action writes.
    assert_eq!(errors[4..], ["Mutation rejected by hook"; 2], "{body}");
    for error in &errors[..3] {
        assert!(error.starts_with("Invalid mutation: modelId must be in canonical form"), "{body}");
    }
    assert_eq!(errors[3], "refused profile-bob-2");
    assert_eq!(take_calls(&["014", "08000000001", "+11"]), Vec::<String>::new(), "no hook for a non-canonical id");
    assert_eq!(take_calls(&["profile-bob-2"]), [r#"before_insert bob profile-bob-2 {"bio":"x"}"#]);
    assert_eq!(fingerprint(&db).await, before, "refused transactions changed the database");
}
