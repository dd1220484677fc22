//! `cascade(parent = P, field = f)`, repeatable, also twice from one parent.

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    nodes (id) {
        id -> Uuid,
    }
}

diesel::table! {
    edges (from_id, to_id) {
        from_id -> Uuid,
        to_id -> Uuid,
        note_id -> Nullable<Int4>,
    }
}

diesel::table! {
    notes (id) {
        id -> Int4,
    }
}

mod models {
    use super::{nodes, notes};
    use diesel::prelude::*;
    use stratasync_core::SyncModel;
    use uuid::Uuid;

    #[derive(Queryable, Selectable, SyncModel)]
    #[diesel(table_name = nodes)]
    #[sync(group = global, actions(delete))]
    pub struct Node {
        pub id: Uuid,
    }

    #[derive(Queryable, Selectable, SyncModel)]
    #[diesel(table_name = notes)]
    #[sync(group = global, actions(delete))]
    pub struct Note {
        pub id: i32,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = edges)]
#[sync(
    group = global,
    cursor(from_id, to_id),
    cascade(parent = models::Node, field = from_id),
    cascade(parent = models::Node, field = to_id),
    cascade(parent = crate::models::Note, field = note_id)
)]
struct Edge {
    from_id: Uuid,
    to_id: Uuid,
    note_id: Option<i32>,
}

fn main() {
    let _ = Edge::SPEC;
}
