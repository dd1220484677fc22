#![allow(dead_code)]

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    tasks (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        title -> Text,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(group = workspace_id, actions(insert, update))]
struct Task {
    id: Uuid,
    #[sync(insert, update)]
    workspace_id: Uuid,
    #[sync(insert, update)]
    title: String,
}

fn main() {}
