//! `GET /sync/deltas` (PROTOCOL.md §4.3).

use crate::auth::AuthContext;
use crate::engine::SyncEngine;
use crate::error::ServiceError;
use crate::protocol::{DeltasResponse, SyncId};
use crate::storage::{log, StorageError};

/// The default page size.
pub const DEFAULT_LIMIT: u64 = 1000;
/// The largest page size.
pub const MAX_LIMIT: u64 = 5000;

/// A validated deltas request.
#[derive(Debug, Clone, Default)]
pub struct DeltasParams {
    /// The client's cursor.
    pub after: SyncId,
    /// Page size (`None` or 0: 1000; clamped to 5000).
    pub limit: Option<u64>,
    /// Requested groups (`None` or empty: all authorized).
    pub sync_groups: Option<Vec<String>>,
}

/// The groups a delta request covers: the requested ones the caller holds
/// (possibly none: then only global actions), or all of the caller's.
pub fn delta_groups(user: &AuthContext, requested: Option<&[String]>) -> Vec<String> {
    match requested {
        None | Some([]) => user.groups.clone(),
        Some(requested) => requested.iter().filter(|g| user.has_group(g)).cloned().collect(),
    }
}

impl SyncEngine {
    /// One page of actions after the cursor, or
    /// [`ServiceError::BootstrapRequired`] if the cursor is stale.
    pub async fn deltas(&self, user: &AuthContext, params: &DeltasParams) -> Result<DeltasResponse, ServiceError> {
        let limit = match params.limit {
            None | Some(0) => DEFAULT_LIMIT,
            Some(n) => n.min(MAX_LIMIT),
        };
        let groups = delta_groups(user, params.sync_groups.as_deref());
        let mut conn = self.pool.get().await.map_err(StorageError::from)?;
        if log::is_stale(&mut conn, params.after).await.map_err(StorageError::from)? {
            return Err(ServiceError::BootstrapRequired);
        }
        let mut actions =
            log::page(&mut conn, params.after, &groups, limit as i64 + 1).await.map_err(StorageError::from)?;
        let has_more = actions.len() as u64 > limit;
        actions.truncate(limit as usize);
        let last_sync_id = actions.last().map_or(params.after, |a| a.sync_id);
        Ok(DeltasResponse { actions, has_more, last_sync_id })
    }
}
