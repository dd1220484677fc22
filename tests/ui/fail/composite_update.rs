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
#[sync(group = workspace_id, actions(insert, update, delete, archive), cursor(id, workspace_id))]
struct Task {
    #[sync(insert)]
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(update)]
    title: String,
    priority: i32,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn main() {}
