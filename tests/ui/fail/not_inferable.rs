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
#[sync(group = global)]
struct Task {
    id: Uuid,
    workspace_id: Uuid,
    title: std::borrow::Cow<'static, str>,
    priority: Priority,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Queryable)]
struct Priority(i32);

fn main() {}
