//! `cursor(...)`: a composite model of one, two or three key columns.

use diesel::prelude::*;
use stratasync_core::__private::ModelKind;
use stratasync_core::__private::SyncStorage;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    pairs (left_id, right_id) {
        left_id -> Uuid,
        right_id -> Uuid,
        group_id -> Uuid,
    }
}

diesel::table! {
    triples (a, b, c) {
        a -> Text,
        b -> Int4,
        c -> Int8,
        g -> Text,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = pairs)]
#[sync(group = group_id, actions(insert, delete), cursor(left_id, right_id))]
struct Pair {
    #[sync(insert)]
    left_id: Uuid,
    #[sync(insert)]
    right_id: Uuid,
    #[sync(insert)]
    group_id: Uuid,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = triples)]
#[sync(group = global, cursor(a, b, c))]
struct Triple {
    a: String,
    b: i32,
    c: i64,
    g: String,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = triples)]
#[sync(group = g, actions(delete), cursor(a))]
struct Single {
    a: String,
    b: i32,
    c: i64,
    g: String,
}

fn main() {
    assert_eq!(Pair::SPEC.kind, ModelKind::Composite);
    assert_eq!(Pair::SPEC.id_field, None);
    assert_eq!(Triple::SPEC.key_fields, ["a", "b", "c"]);
    let t = Triple { a: "x".into(), b: 1, c: 2, g: "g".into() };
    assert_eq!(t.sync_id(), stratasync_core::composite_id::composite_id("Triple", &["x", "1", "2"]));
    let s = Single { a: "x".into(), b: 1, c: 2, g: "g".into() };
    assert_eq!(s.sync_id(), stratasync_core::composite_id::composite_id("Single", &["x"]));
}
