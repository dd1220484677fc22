//! The app's one sync model: a project, owned by one user.

use diesel::prelude::*;
use stratasync_core::SyncModel;
use uuid::Uuid;

diesel::table! {
    projects (id) {
        id -> Uuid,
        owner_id -> Text,
        name -> Text,
    }
}

/// A project. Its sync group is its owner's user id, and a user's own id
/// is always one of their groups: only the owner sees and changes it, and
/// no membership rows are needed.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = projects)]
#[sync(name = "Project", group = owner_id, actions(insert, update, delete))]
pub struct Project {
    pub id: Uuid,
    #[sync(insert)]
    pub owner_id: String,
    #[sync(insert, update)]
    pub name: String,
}
