//! The four sync models of docs/example.md, declared with `#[derive(SyncModel)]`.

use crate::schema::{labels, task_labels, tasks, workspaces};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

/// A workspace: its own id is its sync group.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, SyncModel)]
#[diesel(table_name = workspaces)]
#[sync(name = "Workspace", group = own, actions(update), batch_keys(id))]
pub struct Workspace {
    /// Primary key and sync group.
    pub id: Uuid,
    /// Display name.
    #[sync(update)]
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A task in a workspace.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(
    name = "Task",
    group = workspace_id,
    actions(insert, update, delete, archive, unarchive),
    batch_keys(id, workspace_id)
)]
pub struct Task {
    /// Primary key.
    pub id: Uuid,
    /// The workspace (sync group).
    #[sync(insert)]
    pub workspace_id: Uuid,
    /// Title.
    #[sync(insert, update)]
    pub title: String,
    /// Optional description (`stringNull`).
    #[sync(insert, update)]
    pub description: Option<String>,
    /// Priority (`number`).
    #[sync(insert, update)]
    pub priority: i32,
    /// Due day (`dateOnly`).
    #[sync(insert, update)]
    pub due_date: Option<NaiveDate>,
    /// Completion time (`date`).
    #[sync(insert, update)]
    pub completed_at: Option<DateTime<Utc>>,
    /// Set by archive to the payload's `archivedAt` (required), cleared by
    /// unarchive.
    pub archived_at: Option<DateTime<Utc>>,
    /// Creation time (`dateNow`).
    #[sync(insert, date_now)]
    pub created_at: DateTime<Utc>,
}

/// A label in a workspace.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, SyncModel)]
#[diesel(table_name = labels)]
#[sync(name = "Label", group = workspace_id, actions(insert, update, delete), batch_keys(id, workspace_id))]
pub struct Label {
    /// Primary key.
    pub id: Uuid,
    /// The workspace (sync group).
    #[sync(insert)]
    pub workspace_id: Uuid,
    /// Name.
    #[sync(insert, update)]
    pub name: String,
    /// Color.
    #[sync(insert, update)]
    pub color: String,
}

/// A label on a task: a join table with a composite id.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, SyncModel)]
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
    /// The task (of the same workspace).
    #[sync(insert, references = Task)]
    pub task_id: Uuid,
    /// The label (of the same workspace).
    #[sync(insert, references = Label)]
    pub label_id: Uuid,
    /// The workspace (sync group).
    #[sync(insert)]
    pub workspace_id: Uuid,
    /// Creation time (`dateNow`).
    #[sync(insert, date_now)]
    pub created_at: DateTime<Utc>,
}
