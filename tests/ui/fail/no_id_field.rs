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

#[derive(Queryable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(group = global)]
struct Task {
    workspace_id: Uuid,
    title: String,
}

fn main() {}
