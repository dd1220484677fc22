#![allow(dead_code)]

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    workspaces (id) {
        id -> Uuid,
    }
}

diesel::table! {
    task_labels (task_id, label_id) {
        task_id -> Uuid,
        label_id -> Uuid,
        workspace_id -> Uuid,
    }
}

diesel::table! {
    comments (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        home_id -> Uuid,
        tag_id -> Uuid,
        other_id -> Uuid,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = workspaces)]
#[sync(group = own)]
struct Workspace {
    id: Uuid,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = task_labels)]
#[sync(group = workspace_id, cursor(task_id, label_id))]
struct TaskLabel {
    task_id: Uuid,
    label_id: Uuid,
    workspace_id: Uuid,
}

struct NotAModel;

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = comments)]
#[sync(group = workspace_id, actions(insert))]
struct Comment {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(insert, references = Workspace)]
    home_id: Uuid,
    #[sync(insert, references = TaskLabel)]
    tag_id: Uuid,
    #[sync(insert, references = NotAModel)]
    other_id: Uuid,
}

fn main() {}
