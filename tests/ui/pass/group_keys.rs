//! The three kinds of sync group: a field (also a nullable one, or one with
//! an integer or text type), the row's own id, and everyone.

use diesel::prelude::*;
use stratasync_core::__private::GroupKey;
use stratasync_core::__private::SyncStorage;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    by_field (id) {
        id -> Uuid,
        workspace_id -> Uuid,
    }
}

diesel::table! {
    by_nullable_field (id) {
        id -> Int8,
        team_id -> Nullable<Int4>,
    }
}

diesel::table! {
    by_text_field (id) {
        id -> Text,
        org -> Text,
    }
}

diesel::table! {
    own (id) {
        id -> Uuid,
    }
}

diesel::table! {
    everyone (id) {
        id -> Int4,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = by_field)]
#[sync(group = workspace_id)]
struct ByField {
    id: Uuid,
    workspace_id: Uuid,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = by_nullable_field)]
#[sync(group = team_id)]
struct ByNullableField {
    id: i64,
    team_id: Option<i32>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = by_text_field)]
#[sync(group = org, actions(insert))]
struct ByTextField {
    id: String,
    #[sync(insert)]
    org: String,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = own)]
#[sync(group = own)]
struct Own {
    id: Uuid,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = everyone)]
#[sync(group = global)]
struct Everyone {
    id: i32,
}

fn main() {
    assert_eq!(ByField::SPEC.group, GroupKey::Field("workspaceId"));
    assert_eq!(ByNullableField::SPEC.group, GroupKey::Field("teamId"));
    assert_eq!(ByTextField::SPEC.group, GroupKey::Field("org"));
    assert_eq!(Own::SPEC.group, GroupKey::OwnId);
    assert_eq!(Everyone::SPEC.group, GroupKey::Global);

    let row = ByNullableField { id: 1, team_id: None };
    assert_eq!(row.group_id(), None);
    let row = ByNullableField { id: 1, team_id: Some(7) };
    assert_eq!(row.group_id().as_deref(), Some("7"));
    let row = Own { id: Uuid::nil() };
    assert_eq!(row.group_id().as_deref(), Some("00000000-0000-0000-0000-000000000000"));
    assert_eq!(Everyone { id: 3 }.group_id(), None);
}
