//! The four models of docs/example.md, as the example application declares them.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use stratasync_core::SyncModel;
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
        labels (id) {
            id -> Uuid,
            workspace_id -> Uuid,
            name -> Text,
            color -> Text,
        }
    }
    diesel::table! {
        task_labels (task_id, label_id) {
            task_id -> Uuid,
            label_id -> Uuid,
            workspace_id -> Uuid,
            created_at -> Timestamptz,
        }
    }
}

use schema::{labels, task_labels, tasks, workspaces};

#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = workspaces)]
#[sync(name = "Workspace", group = own, actions(update), batch_keys(id))]
pub struct Workspace {
    pub id: Uuid,
    #[sync(update)]
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(
    name = "Task",
    group = workspace_id,
    actions(insert, update, delete, archive, unarchive),
    batch_keys(id, workspace_id)
)]
pub struct Task {
    pub id: Uuid,
    #[sync(insert)]
    pub workspace_id: Uuid,
    #[sync(insert, update)]
    pub title: String,
    #[sync(insert, update, string_null)]
    pub description: Option<String>,
    #[sync(insert, update)]
    pub priority: i32,
    #[sync(insert, update)]
    pub due_date: Option<NaiveDate>,
    #[sync(insert, update)]
    pub completed_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
    #[sync(insert, date_now)]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = labels)]
#[sync(name = "Label", group = workspace_id, actions(insert, update, delete), batch_keys(id, workspace_id))]
pub struct Label {
    pub id: Uuid,
    #[sync(insert)]
    pub workspace_id: Uuid,
    #[sync(insert, update)]
    pub name: String,
    #[sync(insert, update)]
    pub color: String,
}

#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = task_labels)]
#[sync(
    name = "TaskLabel",
    group = workspace_id,
    actions(insert, delete),
    cursor(task_id, label_id),
    batch_keys(task_id, workspace_id),
    cascade(parent = Task, field = task_id),
    cascade(parent = Label, field = label_id)
)]
pub struct TaskLabel {
    #[sync(insert, references = Task)]
    pub task_id: Uuid,
    #[sync(insert, references = Label)]
    pub label_id: Uuid,
    #[sync(insert)]
    pub workspace_id: Uuid,
    #[sync(insert, date_now)]
    pub created_at: DateTime<Utc>,
}

fn main() {
    assert_eq!(<Task as SyncModel>::SPEC.archive_field, Some("archivedAt"));
    assert_eq!(<TaskLabel as SyncModel>::SPEC.key_fields, ["taskId", "labelId"]);
}
