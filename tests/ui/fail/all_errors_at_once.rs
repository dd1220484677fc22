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

// Unknown keys, malformed values, unknown actions, old spellings and the
// checks of the keys that could be read: all in one compile.
#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(gruop = workspace_id, name = Task, actions(insert, udpate), batch_keys(id, nope), own_group)]
struct Task {
    id: Uuid,
    #[sync(inesrt)]
    workspace_id: Uuid,
    #[sync(string, uuid)]
    title: String,
    priority: Vec<u8>,
    archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn main() {}
