//! `sync_group_memberships`: which users are in which shared groups.
//!
//! A row `(user_id, group_id, group_type)` puts a user into a group, for
//! instance a workspace: from the next request on, the user reads the
//! group's rows and deltas and may write them (see
//! [`SyncAuth`](crate::SyncAuth) for how a user's groups are assembled; the
//! user's own id is always one of them and needs no row). `group_type` is a
//! free label for the application (`"workspace"`, `"team"`); the engine
//! does not read it. A user has at most one row per group.
//!
//! The table belongs to the framework's migrations. Change it with
//! [`add`] and [`remove`], or with plain SQL in the application's own
//! transactions:
//!
//! ```sql
//! INSERT INTO sync_group_memberships (user_id, group_id, group_type)
//!   VALUES ('alice', '35a3…', 'workspace') ON CONFLICT (user_id, group_id) DO NOTHING;
//! DELETE FROM sync_group_memberships WHERE user_id = 'alice' AND group_id = '35a3…';
//! ```
//!
//! A change is not pushed to clients (no `G`/`S` sync actions yet): HTTP
//! requests use the new groups at once, an open WebSocket keeps the groups
//! of its last `subscribe`, and the published client keeps the group set
//! of its last bootstrap until it bootstraps again without a group filter
//! (for instance after clearing its local data).

use super::schema::sync_group_memberships as m;
use super::{Conn, Pool, StorageError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// The user's groups from the membership table (at most 10 000, in
/// insertion order of the index scan).
pub async fn groups_of(pool: &Pool, user_id: &str) -> Result<Vec<String>, StorageError> {
    let mut conn = pool.get().await?;
    Ok(m::table
        .filter(m::user_id.eq(user_id))
        .select(m::group_id)
        .order(m::created_at.asc())
        .limit(10_000)
        .load(&mut conn)
        .await?)
}

/// Adds `user_id` to `group_id`, labelled `group_type` (idempotent: adding
/// an existing member changes nothing, its `group_type` included).
pub async fn add(pool: &Pool, user_id: &str, group_id: &str, group_type: &str) -> Result<(), StorageError> {
    let mut conn = pool.get().await?;
    add_on(&mut conn, user_id, group_id, group_type).await
}

/// [`add`] on a connection the caller holds (say, inside its own
/// transaction).
pub async fn add_on(conn: &mut Conn, user_id: &str, group_id: &str, group_type: &str) -> Result<(), StorageError> {
    diesel::insert_into(m::table)
        .values((m::user_id.eq(user_id), m::group_id.eq(group_id), m::group_type.eq(group_type)))
        .on_conflict((m::user_id, m::group_id))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes `user_id` from `group_id`. Returns whether the user was a member
/// (removing a non-member changes nothing). The user's own id is always one
/// of their groups, whatever this table holds.
pub async fn remove(pool: &Pool, user_id: &str, group_id: &str) -> Result<bool, StorageError> {
    let mut conn = pool.get().await?;
    let removed = diesel::delete(m::table.filter(m::user_id.eq(user_id)).filter(m::group_id.eq(group_id)))
        .execute(&mut conn)
        .await?;
    Ok(removed > 0)
}
