//! `batch_keys(...)`: the fields allowed as `indexedKey` (any key type).

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    comments (id) {
        id -> Int8,
        task_id -> Uuid,
        author -> Text,
        parent_id -> Nullable<Int8>,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = comments)]
#[sync(group = global, batch_keys(id, task_id, author, parent_id))]
struct Comment {
    id: i64,
    task_id: Uuid,
    author: String,
    parent_id: Option<i64>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = comments)]
#[sync(group = global)]
struct Unindexed {
    id: i64,
    task_id: Uuid,
    author: String,
    parent_id: Option<i64>,
}

fn main() {
    assert_eq!(Comment::SPEC.indexed_keys, ["id", "taskId", "author", "parentId"]);
    assert!(Unindexed::SPEC.indexed_keys.is_empty());
}
