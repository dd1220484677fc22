#![allow(dead_code)]

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    workspaces (id) {
        id -> Uuid,
        owner_id -> Uuid,
    }
}

diesel::table! {
    tasks (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        assignee_id -> Uuid,
        label_id -> Uuid,
        parent_id -> Uuid,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = workspaces)]
#[sync(group = own, actions(update))]
struct Workspace {
    id: Uuid,
    #[sync(update, references = Task)]
    owner_id: Uuid,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(group = workspace_id, actions(insert, update))]
struct Task {
    #[sync(references = Task)]
    id: Uuid,
    #[sync(insert, references = Workspace)]
    workspace_id: Uuid,
    #[sync(references = Task)]
    assignee_id: Uuid,
    #[sync(skip, references = Task)]
    label_id: Uuid,
    #[sync(insert, update, references = Task)]
    parent_id: Uuid,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(group = workspace_id, actions(insert))]
struct Malformed {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    assignee_id: Uuid,
    label_id: Uuid,
    #[sync(insert, references = "Task")]
    parent_id: Uuid,
}

fn main() {}
