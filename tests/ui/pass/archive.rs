//! Archive fields: the default (`archivedAt`), an explicit one, and one
//! stored as epoch milliseconds in a `bigint`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use stratasync_core::SyncModel;

diesel::table! {
    docs (id) {
        id -> Int4,
        archived_at -> Nullable<Timestamptz>,
        hidden_at -> Nullable<Timestamptz>,
        gone_ms -> Nullable<Int8>,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = docs)]
#[sync(group = global, actions(archive, unarchive))]
struct ByDefault {
    id: i32,
    archived_at: Option<DateTime<Utc>>,
    hidden_at: Option<DateTime<Utc>>,
    gone_ms: Option<i64>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = docs)]
#[sync(group = global, actions(archive), archive_field = hidden_at)]
struct Explicit {
    id: i32,
    archived_at: Option<DateTime<Utc>>,
    hidden_at: Option<DateTime<Utc>>,
    gone_ms: Option<i64>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = docs)]
#[sync(group = global, actions(unarchive), archive_field = gone_ms)]
struct Millis {
    id: i32,
    #[sync(skip)]
    archived_at: Option<DateTime<Utc>>,
    hidden_at: Option<DateTime<Utc>>,
    #[sync(instant)]
    gone_ms: Option<i64>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = docs)]
#[sync(group = global)]
struct NotArchivable {
    id: i32,
    #[sync(rename = "archived")]
    archived_at: Option<DateTime<Utc>>,
    hidden_at: Option<DateTime<Utc>>,
    gone_ms: Option<i64>,
}

fn main() {
    assert_eq!(ByDefault::SPEC.archive_field, Some("archivedAt"));
    assert_eq!(Explicit::SPEC.archive_field, Some("hiddenAt"));
    assert_eq!(Millis::SPEC.archive_field, Some("goneMs"));
    assert_eq!(NotArchivable::SPEC.archive_field, None);
}
