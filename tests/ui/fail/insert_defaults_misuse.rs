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
#[sync(group = global, actions(insert))]
struct Task {
    id: Uuid,
    #[sync(date_now)]
    workspace_id: Uuid,
    #[sync(insert, date_now, default = String::new())]
    title: String,
    #[sync(default = 1)]
    priority: i32,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn main() {}
