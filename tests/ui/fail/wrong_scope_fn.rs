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

fn by_title(_scope: &stratasync_core::ScopeFilter) -> bool {
    true
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(group = workspace_id, scope = by_title)]
struct Task {
    id: Uuid,
    workspace_id: Uuid,
    title: String,
    priority: i32,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn main() {}
