//! `hooks = Type`: the model's `ModelHooks` (default: `NoHooks`).

use diesel::prelude::*;
use stratasync_core::__private::JsonObject;
use stratasync_core::{HookContext, HookError, ModelHooks, SyncModel};

diesel::table! {
    posts (id) {
        id -> Int8,
        title -> Text,
    }
}

mod hooks {
    #[derive(Default)]
    pub struct PostHooks;
}

#[derive(Default)]
struct Checked;

#[async_trait::async_trait]
impl ModelHooks for Checked {
    async fn before_insert(
        &self,
        _cx: &mut HookContext<'_>,
        _model_id: &str,
        _payload: &JsonObject,
        data: &mut JsonObject,
    ) -> Result<(), HookError> {
        if data.contains_key("title") {
            Ok(())
        } else {
            Err(HookError::Reject("title required".into()))
        }
    }
}

impl ModelHooks for hooks::PostHooks {}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = posts)]
#[sync(group = global, actions(insert), hooks = hooks::PostHooks)]
struct Post {
    id: i64,
    #[sync(insert)]
    title: String,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = posts)]
#[sync(group = global, actions(insert), hooks = Checked)]
struct CheckedPost {
    id: i64,
    #[sync(insert)]
    title: String,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = posts)]
#[sync(group = global)]
struct PlainPost {
    id: i64,
    title: String,
}

fn main() {
    let _: <Post as SyncModel>::Hooks = hooks::PostHooks;
    let _: <CheckedPost as SyncModel>::Hooks = Checked;
    let _: <PlainPost as SyncModel>::Hooks = stratasync_core::NoHooks;
}
