//! `actions`: none (read-only), every letter, and any subset.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use stratasync_core::__private::ActionKind;
use stratasync_core::SyncModel;

diesel::table! {
    items (id) {
        id -> Int4,
        group_id -> Int4,
        title -> Text,
        archived_at -> Nullable<Timestamptz>,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = items)]
#[sync(group = group_id)]
struct ReadOnly {
    id: i32,
    group_id: i32,
    title: String,
    archived_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = items)]
#[sync(group = group_id, actions(insert, update, delete, archive, unarchive))]
struct Everything {
    id: i32,
    #[sync(insert)]
    group_id: i32,
    #[sync(insert, update)]
    title: String,
    archived_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = items)]
#[sync(group = group_id, actions(delete, unarchive))]
struct DeleteAndUnarchive {
    id: i32,
    group_id: i32,
    title: String,
    archived_at: Option<DateTime<Utc>>,
}

fn main() {
    assert!(ActionKind::ALL.iter().all(|a| !ReadOnly::SPEC.actions.contains(*a)));
    assert!(ActionKind::ALL.iter().all(|a| Everything::SPEC.actions.contains(*a)));
    let set = DeleteAndUnarchive::SPEC.actions;
    assert!(set.contains(ActionKind::Delete) && set.contains(ActionKind::Unarchive));
    assert!(!set.contains(ActionKind::Insert) && !set.contains(ActionKind::Archive));
}
