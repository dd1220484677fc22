//! `references = Model`: from a join table's keys, from an optional field
//! that updates may change (to a model with a nullable group field and a
//! text id), from a model to itself, and between global models.

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    projects (id) {
        id -> Text,
        team_id -> Nullable<Int4>,
    }
}

diesel::table! {
    issues (id) {
        id -> Uuid,
        team_id -> Int4,
        project_id -> Nullable<Text>,
        parent_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    issue_links (from_id, to_id) {
        from_id -> Uuid,
        to_id -> Uuid,
        team_id -> Int4,
    }
}

diesel::table! {
    countries (code) {
        code -> Text,
    }
}

diesel::table! {
    cities (id) {
        id -> Int8,
        country -> Text,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = projects)]
#[sync(group = team_id, actions(insert))]
struct Project {
    id: String,
    #[sync(insert)]
    team_id: Option<i32>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = issues)]
#[sync(group = team_id, actions(insert, update))]
struct Issue {
    id: Uuid,
    #[sync(insert)]
    team_id: i32,
    #[sync(insert, update, references = Project)]
    project_id: Option<String>,
    #[sync(insert, update, references = Issue)]
    parent_id: Option<Uuid>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = issue_links)]
#[sync(group = team_id, actions(insert, delete), cursor(from_id, to_id))]
struct IssueLink {
    #[sync(insert, references = Issue)]
    from_id: Uuid,
    #[sync(insert, references = crate::Issue)]
    to_id: Uuid,
    #[sync(insert)]
    team_id: i32,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = countries)]
#[sync(group = global, id = code)]
struct Country {
    code: String,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = cities)]
#[sync(group = global, actions(insert, update))]
struct City {
    id: i64,
    #[sync(insert, update, references = Country)]
    country: String,
}

fn main() {}
