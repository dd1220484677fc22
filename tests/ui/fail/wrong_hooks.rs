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
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(group = global, hooks = String, cascade(parent = Uuid, field = workspace_id))]
struct Task {
    id: Uuid,
    workspace_id: Uuid,
    title: String,
    priority: i32,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn main() {}
