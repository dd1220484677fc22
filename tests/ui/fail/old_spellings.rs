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
#[sync(group_key = workspace_id, actions = "IUDAV")]
struct Task {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(insert, update)]
    title: String,
    priority: i32,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(own_group, actions = "U")]
struct OwnTask {
    id: Uuid,
    workspace_id: Uuid,
    #[sync(update)]
    title: String,
    priority: i32,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(global, actions = "ID")]
struct GlobalTask {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    title: String,
    priority: i32,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn main() {}
