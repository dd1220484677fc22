#![allow(dead_code)]

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    tasks (id) {
        id -> Uuid,
        workspace_id -> Uuid,
    }
}

diesel::table! {
    countries (id) {
        id -> Uuid,
    }
}

diesel::table! {
    teams (id) {
        id -> Int8,
        org_id -> Int8,
    }
}

diesel::table! {
    comments (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        task_id -> Text,
        country_id -> Uuid,
        team_id -> Int8,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(group = workspace_id)]
struct Task {
    id: Uuid,
    workspace_id: Uuid,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = countries)]
#[sync(group = global)]
struct Country {
    id: Uuid,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = teams)]
#[sync(group = org_id)]
struct Team {
    id: i64,
    org_id: i64,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = comments)]
#[sync(group = workspace_id, actions(insert))]
struct Comment {
    id: Uuid,
    #[sync(insert)]
    workspace_id: Uuid,
    #[sync(insert, references = Task)]
    task_id: String,
    #[sync(insert, references = Country)]
    country_id: Uuid,
    #[sync(insert, references = Team)]
    team_id: i64,
}

fn main() {}
