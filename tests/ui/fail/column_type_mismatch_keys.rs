//! A type mismatch on a key, the group, a written field and a nullable
//! field: one error per field, at its type, and none from the generated
//! queries that compare or write these columns.
#![allow(dead_code)]

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    tasks (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        title -> Text,
        archived_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    notes (id) {
        id -> Uuid,
        workspace_id -> Nullable<Uuid>,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(group = workspace_id, actions(insert, update, delete), batch_keys(id, workspace_id))]
struct Task {
    id: String,
    #[sync(insert)]
    workspace_id: i64,
    #[sync(insert, update)]
    title: i32,
    archived_at: Option<String>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = notes)]
#[sync(group = workspace_id, actions(insert))]
struct Note {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Option<String>,
}

fn main() {}
