//! `sync_group_memberships`: the groups a user belongs to.

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

/// Adds `user_id` to `group_id` (idempotent).
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
