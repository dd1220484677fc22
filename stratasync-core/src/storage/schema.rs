//! Diesel schema of the framework tables.
#![allow(missing_docs)]

diesel::table! {
    sync_actions (id) {
        id -> Int8,
        model -> Text,
        model_id -> Text,
        action -> Text,
        data -> Jsonb,
        group_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        client_tx_id -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sync_group_memberships (id) {
        id -> Uuid,
        user_id -> Text,
        group_id -> Text,
        group_type -> Text,
        created_at -> Timestamptz,
    }
}
