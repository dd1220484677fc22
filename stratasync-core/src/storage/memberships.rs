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
//! # Changes are sync actions
//!
//! Every statement that changes users' rows here, by these functions or by
//! the application's own SQL (`INSERT`, `DELETE`, `UPDATE`), logs in the
//! same transaction one `S` action per affected user (a trigger of the
//! framework's migrations): `modelName` `SyncGroup`, `modelId`
//! `sync-groups`, `groupId` the user's id (so only that user receives it),
//! and `data` `{"subscribedSyncGroups": [...]}`, the user's groups from
//! this table after the statement, as [`groups_of`] orders them, then the
//! user's own id. Groups that [`SyncAuth::resolve_groups`](crate::SyncAuth::resolve_groups)
//! derives are not in that set. A statement that changes nothing (an
//! `ON CONFLICT DO NOTHING` insert of an existing member, a delete that
//! matches no row, an update of `group_type` only) logs nothing;
//! `TRUNCATE` is not caught. The trigger takes the log's insert-order lock,
//! held until the transaction ends: commit such transactions promptly.
//! The live feed finds the actions in the log at its next poll;
//! [`Hub::wake`](crate::realtime::Hub::wake) after the commit delivers them
//! at once.
//!
//! HTTP requests use the new groups at once. The published client applies
//! an `S` action by replacing its group set (bootstrapping added groups,
//! dropping the rows of removed ones); an open WebSocket follows it at its
//! sync id (docs/protocol.md §7.5).

use super::schema::sync_group_memberships as m;
use super::{Conn, Pool, StorageError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// The user's groups from the membership table: at most 10 000, in the
/// order they were added (rows added at the same time by group id).
pub async fn groups_of(pool: &Pool, user_id: &str) -> Result<Vec<String>, StorageError> {
    let mut conn = pool.get().await?;
    Ok(m::table
        .filter(m::user_id.eq(user_id))
        .select(m::group_id)
        .order(m::created_at.asc())
        .then_order_by(m::group_id.asc())
        .limit(10_000)
        .load(&mut conn)
        .await?)
}

/// Adds `user_id` to `group_id`, labelled `group_type` (idempotent: adding
/// an existing member changes nothing, its `group_type` included, and logs
/// nothing). A new membership logs the user's `S` action.
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
    remove_on(&mut conn, user_id, group_id).await
}

/// [`remove`] on a connection the caller holds (say, inside its own
/// transaction).
pub async fn remove_on(conn: &mut Conn, user_id: &str, group_id: &str) -> Result<bool, StorageError> {
    let removed =
        diesel::delete(m::table.filter(m::user_id.eq(user_id)).filter(m::group_id.eq(group_id))).execute(conn).await?;
    Ok(removed > 0)
}
