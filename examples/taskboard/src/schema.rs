//! Diesel schema of the example tables (docs/example.md).
#![allow(missing_docs)]

diesel::table! {
    workspaces (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    tasks (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        title -> Text,
        description -> Nullable<Text>,
        priority -> Int4,
        due_date -> Nullable<Date>,
        completed_at -> Nullable<Timestamptz>,
        archived_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    labels (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        color -> Text,
    }
}

diesel::table! {
    task_labels (task_id, label_id) {
        task_id -> Uuid,
        label_id -> Uuid,
        workspace_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(tasks -> workspaces (workspace_id));
diesel::joinable!(labels -> workspaces (workspace_id));
diesel::joinable!(task_labels -> tasks (task_id));
diesel::joinable!(task_labels -> labels (label_id));
diesel::allow_tables_to_appear_in_same_query!(workspaces, tasks, labels, task_labels);
