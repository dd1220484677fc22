//! `hooks = Type`: the model's `ModelHooks<Model>` (default: `NoHooks`),
//! with the generated `<Model>Changes` as the typed insert and patch, on
//! standard and composite models.

use diesel::prelude::*;
use stratasync_core::{HookContext, HookError, ModelHooks, SyncChanges, SyncModel};

diesel::table! {
    posts (id) {
        id -> Int8,
        title -> Text,
        subtitle -> Nullable<Text>,
    }
}

diesel::table! {
    post_tags (post_id, tag) {
        post_id -> Int8,
        tag -> Text,
    }
}

mod hooks {
    #[derive(Default)]
    pub struct PostHooks;
}

#[derive(Default)]
struct Checked;

#[async_trait::async_trait]
impl ModelHooks<CheckedPost> for Checked {
    async fn before_insert(&self, cx: &mut HookContext<'_>, insert: &mut CheckedPostChanges) -> Result<(), HookError> {
        let _: (&str, &stratasync_core::model::JsonObject) = (cx.model_id, cx.payload);
        match &insert.title {
            Some(title) if !title.is_empty() => {
                // Nullable fields are `Option<Option<T>>`: `Some(None)` writes NULL.
                insert.subtitle = Some(None);
                Ok(())
            }
            _ => Err(HookError::Reject("title required".into())),
        }
    }

    async fn before_update(
        &self,
        _cx: &mut HookContext<'_>,
        current: &CheckedPost,
        patch: &mut CheckedPostChanges,
    ) -> Result<(), HookError> {
        if current.title == "frozen" {
            return Err(HookError::Reject("frozen".into()));
        }
        patch.subtitle = Some(Some(current.title.clone()));
        Ok(())
    }

    async fn before_delete(&self, _cx: &mut HookContext<'_>, current: &CheckedPost) -> Result<(), HookError> {
        let _: i64 = current.id;
        Ok(())
    }
}

impl ModelHooks<Post> for hooks::PostHooks {}

#[derive(Default)]
struct TagHooks;

#[async_trait::async_trait]
impl ModelHooks<PostTag> for TagHooks {
    async fn before_insert(&self, _cx: &mut HookContext<'_>, insert: &mut PostTagChanges) -> Result<(), HookError> {
        if let Some(tag) = &mut insert.tag {
            *tag = tag.to_lowercase();
        }
        let _: Option<i64> = insert.post_id;
        Ok(())
    }

    async fn before_delete(&self, _cx: &mut HookContext<'_>, current: &PostTag) -> Result<(), HookError> {
        let _: &str = &current.tag;
        Ok(())
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = posts)]
#[sync(group = global, actions(insert), hooks = hooks::PostHooks)]
struct Post {
    id: i64,
    #[sync(insert)]
    title: String,
    #[sync(insert)]
    subtitle: Option<String>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = posts)]
#[sync(group = global, actions(insert, update, delete), hooks = Checked)]
struct CheckedPost {
    id: i64,
    #[sync(insert, update)]
    title: String,
    #[sync(insert, update)]
    subtitle: Option<String>,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = post_tags)]
#[sync(group = global, actions(insert, delete), cursor(post_id, tag), hooks = TagHooks)]
struct PostTag {
    #[sync(insert)]
    post_id: i64,
    #[sync(insert)]
    tag: String,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = posts)]
#[sync(group = global)]
struct PlainPost {
    id: i64,
    title: String,
    subtitle: Option<String>,
}

fn main() {
    let _: <Post as SyncModel>::Hooks = hooks::PostHooks;
    let _: <CheckedPost as SyncModel>::Hooks = Checked;
    let _: <PostTag as SyncModel>::Hooks = TagHooks;
    let _: <PlainPost as SyncModel>::Hooks = stratasync_core::NoHooks;
    // Every model gets its `Changes`; the standard model's id is not one.
    let changes: <PlainPost as SyncModel>::Changes = PlainPostChanges { title: None, subtitle: Some(None) };
    let data = changes.to_data();
    assert_eq!(serde_json::Value::Object(data.clone()), serde_json::json!({"subtitle": null}));
    let back = PlainPostChanges::from_data(&data).map(|c| c.subtitle);
    assert!(matches!(back, Ok(Some(None))));
    let _ = format!("{:?}", PostTagChanges::default().clone());
}
