#![allow(dead_code)]

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    tasks (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        title -> Text,
        priority -> Int4,
        archived_at -> Nullable<Timestamptz>,
        parent_id -> Nullable<Uuid>,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(group = global, cursor(id, parent_id))]
struct Task {
    id: Uuid,
    workspace_id: Uuid,
    title: String,
    priority: i32,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
    parent_id: Option<Uuid>,
}

fn main() {}
