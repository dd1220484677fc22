//! What `#[derive(SyncModel)]` generates, checked without a database: the
//! spec, the NDJSON row, ids, groups, `to_data` and `canonical_id`.
//!
//! The models here also exercise every attribute, so `cargo clippy
//! --all-targets` lints the generated code as a user crate would.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};
use stratasync_core::__private::{ActionKind, CodecKind, GroupKey, JsonObject, ModelKind, SyncStorage};
use stratasync_core::{ModelHooks, MutationError, ScopeFilter, SyncChanges, SyncModel};
use uuid::Uuid;

mod schema {
    diesel::table! {
        workspaces (id) {
            id -> Uuid,
            name -> Text,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        tasks (id) {
            id -> Uuid,
            workspace_id -> Uuid,
            title -> Text,
            description -> Nullable<Text>,
            priority -> Int4,
            due_date -> Nullable<Date>,
            completed_at -> Nullable<Timestamptz>,
            archived_at -> Nullable<Timestamptz>,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        task_labels (task_id, label_id) {
            task_id -> Text,
            label_id -> Text,
            workspace_id -> Uuid,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        settings (key) {
            key -> Int8,
            label -> Text,
            enabled -> Bool,
            payload -> Jsonb,
            level -> Int2,
            ratio -> Float8,
            secret -> Text,
            kind -> Text,
        }
    }

    diesel::table! {
        notes (id) {
            id -> Text,
            owner -> Text,
            body -> Nullable<Text>,
            done_on -> Date,
            deleted_at -> Nullable<Int8>,
        }
    }
}

use schema::{notes, settings, task_labels, tasks, workspaces};

/// docs/example.md's `Workspace`.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = workspaces)]
#[sync(name = "Workspace", group = own, actions(update), batch_keys(id))]
struct Workspace {
    id: Uuid,
    #[sync(update)]
    name: String,
    created_at: DateTime<Utc>,
}

/// docs/example.md's `Task`.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(name = "Task", group = workspace_id, actions(insert, update, delete, archive, unarchive), batch_keys(id, workspace_id))]
struct Task {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(insert, update)]
    title: String,
    #[sync(insert, update, string_null)]
    description: Option<String>,
    #[sync(insert, update)]
    priority: i32,
    #[sync(insert, update)]
    due_date: Option<NaiveDate>,
    #[sync(insert, update)]
    completed_at: Option<DateTime<Utc>>,
    archived_at: Option<DateTime<Utc>>,
    #[sync(insert, date_now)]
    created_at: DateTime<Utc>,
}

/// docs/example.md's `TaskLabel`, with text keys (for the PROTOCOL test vector).
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = task_labels)]
#[sync(
    name = "TaskLabel",
    group = workspace_id,
    actions(insert, delete),
    cursor(task_id, label_id),
    batch_keys(task_id, workspace_id),
    cascade(parent = Task, field = task_id),
    cascade(parent = Task, field = label_id)
)]
struct TaskLabel {
    #[sync(insert)]
    task_id: String,
    #[sync(insert)]
    label_id: String,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(insert, date_now)]
    created_at: DateTime<Utc>,
}

/// Hooks of [`Setting`].
#[derive(Debug, Default)]
struct SettingHooks;

impl ModelHooks<Setting> for SettingHooks {}

/// A global model with an integer id, overrides, renames, defaults and a
/// skipped field.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = settings)]
#[sync(group = global, id = key, actions(insert, update), hooks = SettingHooks)]
struct Setting {
    key: i64,
    #[sync(insert, update, rename = "displayName", default = String::from("untitled"))]
    label: String,
    #[sync(insert, update, default = true)]
    enabled: bool,
    #[sync(insert, json)]
    payload: Value,
    #[sync(insert, number)]
    level: i16,
    ratio: f64,
    #[sync(skip)]
    secret: String,
    #[diesel(column_name = kind)]
    #[sync(string)]
    category: String,
}

/// The rows of `notes` the caller owns.
fn own_notes(scope: &ScopeFilter) -> stratasync_core::__private::Scope<'_, notes::table> {
    Box::new(notes::owner.eq(scope.user_id.clone()))
}

/// A model with a custom scope, text ids, a date-only field and an archive
/// field stored as epoch milliseconds.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = notes)]
#[sync(group = owner, scope = own_notes, actions(insert, delete, archive, unarchive), archive_field = deleted_at)]
struct Note {
    id: String,
    #[sync(insert)]
    owner: String,
    #[sync(insert)]
    body: Option<String>,
    #[sync(insert, date_now)]
    done_on: NaiveDate,
    #[sync(instant)]
    deleted_at: Option<i64>,
}

const TASK_ID: &str = "11111111-1111-4111-8111-111111111111";
const WORKSPACE_ID: &str = "22222222-2222-4222-8222-222222222222";

fn task() -> Task {
    Task {
        id: Uuid::parse_str(TASK_ID).unwrap(),
        workspace_id: Uuid::parse_str(WORKSPACE_ID).unwrap(),
        title: "Write \"docs\"".to_owned(),
        description: None,
        priority: 2,
        due_date: NaiveDate::from_ymd_opt(2024, 3, 1),
        completed_at: None,
        archived_at: None,
        created_at: Utc.timestamp_millis_opt(1_704_164_645_678).unwrap(),
    }
}

fn task_label() -> TaskLabel {
    TaskLabel {
        task_id: "task-1".to_owned(),
        label_id: "label-1".to_owned(),
        workspace_id: Uuid::parse_str(WORKSPACE_ID).unwrap(),
        created_at: Utc.timestamp_millis_opt(1_704_164_645_678).unwrap(),
    }
}

fn row<M: SyncModel>(model: &M) -> String {
    let mut out = Vec::new();
    model.write_row(&mut out);
    String::from_utf8(out).unwrap()
}

fn object(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

fn keys(data: &JsonObject) -> Vec<&str> {
    data.keys().map(String::as_str).collect()
}

#[test]
fn task_spec() {
    let spec = Task::SPEC;
    assert_eq!(spec.name, "Task");
    assert_eq!(spec.kind, ModelKind::Standard);
    for action in ActionKind::ALL {
        assert!(spec.actions.contains(action), "{action:?}");
    }
    assert_eq!(spec.group, GroupKey::Field("workspaceId"));
    let wires: Vec<&str> = spec.fields.iter().map(|f| f.wire).collect();
    assert_eq!(
        wires,
        ["id", "workspaceId", "title", "description", "priority", "dueDate", "completedAt", "archivedAt", "createdAt"]
    );
    let codecs: Vec<CodecKind> = spec.fields.iter().map(|f| f.codec).collect();
    use CodecKind::*;
    assert_eq!(codecs, [Uuid, Uuid, String, String, Number, DateOnly, Instant, Instant, Instant]);
    let nullable: Vec<&str> = spec.fields.iter().filter(|f| f.nullable).map(|f| f.wire).collect();
    assert_eq!(nullable, ["description", "dueDate", "completedAt", "archivedAt"]);
    let insert: Vec<&str> = spec.fields.iter().filter(|f| f.insert).map(|f| f.wire).collect();
    assert_eq!(insert, ["workspaceId", "title", "description", "priority", "dueDate", "completedAt", "createdAt"]);
    let update: Vec<&str> = spec.fields.iter().filter(|f| f.update).map(|f| f.wire).collect();
    assert_eq!(update, ["title", "description", "priority", "dueDate", "completedAt"]);
    let date_now: Vec<&str> = spec.fields.iter().filter(|f| f.date_now).map(|f| f.wire).collect();
    assert_eq!(date_now, ["createdAt"]);
    assert!(spec.fields.iter().all(|f| f.default.is_none()));
    assert_eq!(spec.indexed_keys, ["id", "workspaceId"]);
    assert_eq!(spec.id_field, Some("id"));
    assert!(spec.key_fields.is_empty());
    assert_eq!(spec.archive_field, Some("archivedAt"));
}

#[test]
fn task_row() {
    let task = task();
    assert_eq!(
        row(&task),
        format!(
            r#"{{"__class":"Task","id":"{TASK_ID}","workspaceId":"{WORKSPACE_ID}","title":"Write \"docs\"","description":null,"priority":2,"dueDate":1709251200000,"completedAt":null,"archivedAt":null,"createdAt":1704164645678}}"#
        )
    );
    assert_eq!(task.sync_id(), TASK_ID);
    assert_eq!(task.group_id().as_deref(), Some(WORKSPACE_ID));
}

#[test]
fn task_to_data() {
    let data = task().to_data();
    assert_eq!(
        Value::Object(data.clone()),
        json!({
            "id": TASK_ID,
            "workspaceId": WORKSPACE_ID,
            "title": "Write \"docs\"",
            "description": null,
            "priority": 2,
            "dueDate": 1_709_251_200_000_i64,
            "completedAt": null,
            "archivedAt": null,
            "createdAt": 1_704_164_645_678_i64,
        })
    );
    assert_eq!(
        keys(&data),
        ["id", "workspaceId", "title", "description", "priority", "dueDate", "completedAt", "archivedAt", "createdAt"]
    );
}

/// `TaskChanges`: one `Option` per synced field but the id, nullable
/// fields as `Option<Option<T>>`, read from and written to wire `data`
/// through the codecs (an unchanged value keeps its wire form).
#[test]
fn task_changes() {
    let data = object(json!({
        "id": TASK_ID,
        "workspaceId": WORKSPACE_ID,
        "title": "t",
        "description": null,
        "dueDate": 1_709_251_200_000_i64,
        "createdAt": 1_704_164_645_678_i64,
    }));
    let changes = TaskChanges::from_data(&data).expect("decodes");
    assert_eq!(changes.workspace_id, Some(Uuid::parse_str(WORKSPACE_ID).unwrap()));
    assert_eq!(changes.title.as_deref(), Some("t"));
    assert_eq!(changes.description, Some(None), "null is Some(None)");
    assert_eq!(changes.priority, None, "absent is None");
    assert_eq!(changes.due_date, Some(NaiveDate::from_ymd_opt(2024, 3, 1)));
    assert_eq!(changes.created_at, Some(Utc.timestamp_millis_opt(1_704_164_645_678).unwrap()));
    let mut without_id = data.clone();
    without_id.shift_remove("id");
    assert_eq!(changes.to_data(), without_id, "the same wire form, in field order, without the id");
    let patch = TaskChanges { priority: Some(3), completed_at: Some(None), ..TaskChanges::default() };
    assert_eq!(Value::Object(patch.to_data()), json!({"priority": 3, "completedAt": null}));
    let err = TaskChanges::from_data(&object(json!({"priority": "high"}))).unwrap_err();
    assert_eq!(err.to_string(), "Invalid number value for priority");
    let _: <Task as SyncModel>::Changes = patch.clone();
    assert!(format!("{patch:?}").starts_with("TaskChanges {"));
    // A composite model's key fields are changes too; its id is computed.
    let label = TaskLabelChanges::from_data(&object(json!({"taskId": "a", "labelId": "b"}))).expect("decodes");
    assert_eq!((label.task_id.as_deref(), label.label_id.as_deref(), label.workspace_id), (Some("a"), Some("b"), None));
    assert!(!Task::SPEC.hooks && Setting::SPEC.hooks, "only `hooks = …` turns the typed hooks on");
}

#[test]
fn task_canonical_id() {
    let data = JsonObject::new();
    assert_eq!(Task::canonical_id(TASK_ID, &data).unwrap(), TASK_ID);
    let err = Task::canonical_id("not-a-uuid", &data).unwrap_err();
    assert!(matches!(&err, MutationError::InvalidValue { kind: CodecKind::Uuid, field } if field == "id"));
    assert_eq!(err.to_string(), "Invalid uuid value for id");
}

#[test]
fn task_label_spec() {
    let spec = TaskLabel::SPEC;
    assert_eq!(spec.name, "TaskLabel");
    assert_eq!(spec.kind, ModelKind::Composite);
    assert!(spec.actions.contains(ActionKind::Insert));
    assert!(spec.actions.contains(ActionKind::Delete));
    assert!(!spec.actions.contains(ActionKind::Update));
    assert!(!spec.actions.contains(ActionKind::Archive));
    assert!(!spec.actions.contains(ActionKind::Unarchive));
    assert_eq!(spec.group, GroupKey::Field("workspaceId"));
    let wires: Vec<&str> = spec.fields.iter().map(|f| f.wire).collect();
    assert_eq!(wires, ["taskId", "labelId", "workspaceId", "createdAt"]);
    assert!(spec.fields.iter().all(|f| f.insert && !f.update && !f.nullable));
    assert_eq!(spec.indexed_keys, ["taskId", "workspaceId"]);
    assert_eq!(spec.id_field, None);
    assert_eq!(spec.key_fields, ["taskId", "labelId"]);
    assert_eq!(spec.archive_field, None);
}

#[test]
fn task_label_row_and_ids() {
    let label = task_label();
    let id = "2d4e0cc0-a17b-5cf4-b540-db93f7f26b62";
    assert_eq!(label.sync_id(), id);
    assert_eq!(label.group_id().as_deref(), Some(WORKSPACE_ID));
    assert_eq!(
        row(&label),
        format!(
            r#"{{"__class":"TaskLabel","taskId":"task-1","labelId":"label-1","workspaceId":"{WORKSPACE_ID}","createdAt":1704164645678,"id":"{id}"}}"#
        )
    );
    let data = label.to_data();
    assert_eq!(keys(&data), ["taskId", "labelId", "workspaceId", "createdAt", "id"]);
    assert_eq!(data["id"], id);

    let insert = object(json!({"taskId": "task-1", "labelId": "label-1", "workspaceId": WORKSPACE_ID}));
    assert_eq!(TaskLabel::canonical_id("whatever-the-client-sent", &insert).unwrap(), id);
    let missing = object(json!({"taskId": "task-1"}));
    let err = TaskLabel::canonical_id("x", &missing).unwrap_err();
    assert_eq!(err.to_string(), "Invalid string value for labelId");
    let wrong = object(json!({"taskId": 7, "labelId": "label-1"}));
    assert_eq!(TaskLabel::canonical_id("x", &wrong).unwrap_err().to_string(), "Invalid string value for taskId");
}

#[test]
fn workspace_is_its_own_group() {
    let spec = Workspace::SPEC;
    assert_eq!(spec.group, GroupKey::OwnId);
    assert!(spec.actions.contains(ActionKind::Update));
    assert!(!spec.actions.contains(ActionKind::Insert));
    assert_eq!(spec.archive_field, None);
    let workspace = Workspace {
        id: Uuid::parse_str(WORKSPACE_ID).unwrap(),
        name: "Home".to_owned(),
        created_at: Utc.timestamp_millis_opt(0).unwrap(),
    };
    assert_eq!(workspace.group_id().as_deref(), Some(WORKSPACE_ID));
    assert_eq!(
        row(&workspace),
        format!(r#"{{"__class":"Workspace","id":"{WORKSPACE_ID}","name":"Home","createdAt":0}}"#)
    );
}

#[test]
fn setting_overrides_renames_defaults_and_skips() {
    let spec = Setting::SPEC;
    assert_eq!(spec.name, "Setting");
    assert_eq!(spec.group, GroupKey::Global);
    assert_eq!(spec.id_field, Some("key"));
    let wires: Vec<&str> = spec.fields.iter().map(|f| f.wire).collect();
    assert_eq!(wires, ["key", "displayName", "enabled", "payload", "level", "ratio", "kind"]);
    let codecs: Vec<CodecKind> = spec.fields.iter().map(|f| f.codec).collect();
    use CodecKind::*;
    assert_eq!(codecs, [Number, String, Bool, Json, Number, Number, String]);
    let default = |wire: &str| spec.field(wire).and_then(|f| f.default).map(|f| f());
    assert_eq!(default("displayName"), Some(json!("untitled")));
    assert_eq!(default("enabled"), Some(json!(true)));
    assert_eq!(default("payload"), None);

    let setting = Setting {
        key: 42,
        label: "Dark mode".to_owned(),
        enabled: false,
        payload: json!({"a": [1, "b"]}),
        level: -3,
        ratio: 0.5,
        secret: "hunter2".to_owned(),
        category: "ui".to_owned(),
    };
    assert_eq!(setting.sync_id(), "42");
    assert_eq!(setting.group_id(), None);
    assert_eq!(
        row(&setting),
        r#"{"__class":"Setting","key":42,"displayName":"Dark mode","enabled":false,"payload":{"a":[1,"b"]},"level":-3,"ratio":0.5,"kind":"ui","id":"42"}"#
    );
    assert!(!row(&setting).contains(&setting.secret), "a skipped field is not synced");
    assert_eq!(keys(&setting.to_data()), ["key", "displayName", "enabled", "payload", "level", "ratio", "kind", "id"]);
    assert_eq!(Setting::canonical_id("42", &JsonObject::new()).unwrap(), "42");
    assert_eq!(Setting::canonical_id("4x", &JsonObject::new()).unwrap_err().to_string(), "Invalid number value for id");
}

#[test]
fn note_with_custom_scope_and_millisecond_archive() {
    let spec = Note::SPEC;
    assert_eq!(spec.archive_field, Some("deletedAt"));
    assert_eq!(spec.field("deletedAt").map(|f| f.codec), Some(CodecKind::Instant));
    assert_eq!(spec.field("doneOn").map(|f| (f.codec, f.date_now)), Some((CodecKind::DateOnly, true)));
    let note = Note {
        id: "n-1".to_owned(),
        owner: "u-1".to_owned(),
        body: Some("ok".to_owned()),
        done_on: NaiveDate::from_ymd_opt(1970, 1, 2).unwrap(),
        deleted_at: Some(5),
    };
    assert_eq!(note.group_id().as_deref(), Some("u-1"));
    assert_eq!(
        row(&note),
        r#"{"__class":"Note","id":"n-1","owner":"u-1","body":"ok","doneOn":86400000,"deletedAt":5}"#
    );
}
