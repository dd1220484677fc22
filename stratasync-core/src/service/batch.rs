//! `POST /sync/batch` (docs/protocol.md §4.2): rows by indexed key or by group,
//! streamed as NDJSON, all read from one consistent snapshot.

use super::bootstrap::stream_model;
use super::ndjson::{Disconnected, NdjsonSink};
use super::snapshot::SnapshotJob;
use super::Registry;
use crate::auth::AuthContext;
use crate::error::ServiceError;
pub use crate::protocol::{BatchItem, BatchParams};
use crate::scope::ScopeFilter;
use crate::storage::{Conn, StorageError};
use futures_util::future::BoxFuture;
use std::collections::HashSet;

/// The most rows one indexed request may return.
pub(crate) const INDEXED_LIMIT: usize = 50_000;

/// The requests in order, each once.
fn distinct(requests: Vec<BatchItem>) -> Vec<BatchItem> {
    let mut seen = HashSet::new();
    requests.into_iter().filter(|item| seen.insert(item.clone())).collect()
}

/// A batch load: the rows of every request, concatenated. Unknown models
/// and foreign groups are skipped silently, and a request identical to an
/// earlier one is answered once; a disallowed key or an oversized result
/// ends the stream with an error line.
pub(crate) struct Load {
    registry: Registry,
    user: AuthContext,
    requests: Vec<BatchItem>,
}

impl Load {
    /// The load of `params` for `user`.
    pub(crate) fn new(registry: Registry, user: AuthContext, params: BatchParams) -> Self {
        Load { registry, user, requests: distinct(params.requests) }
    }
}

impl SnapshotJob for Load {
    const NAME: &'static str = "batch";

    fn write<'a>(
        &'a self,
        conn: &'a mut Conn,
        sink: &'a mut NdjsonSink,
    ) -> BoxFuture<'a, Result<Result<(), Disconnected>, ServiceError>> {
        Box::pin(answer(&self.registry, &self.user, &self.requests, conn, sink))
    }
}

async fn answer(
    registry: &Registry,
    user: &AuthContext,
    requests: &[BatchItem],
    conn: &mut Conn,
    sink: &mut NdjsonSink,
) -> Result<Result<(), Disconnected>, ServiceError> {
    let all_groups = ScopeFilter::new(user.user_id(), &user.groups);
    for item in requests {
        match item {
            BatchItem::Group { group_id, model_name } => {
                let Some(model) = registry.get(model_name) else { continue };
                if !user.has_group(group_id) {
                    continue;
                }
                let scope = ScopeFilter::new(user.user_id(), std::slice::from_ref(group_id));
                if let Err(d) = stream_model(model.as_ref(), conn, &scope, sink).await? {
                    return Ok(Err(d));
                }
            }
            BatchItem::Indexed { indexed_key, key_value, model_name } => {
                let Some(model) = registry.get(model_name) else { continue };
                let mark = sink.buf.len();
                let limit = INDEXED_LIMIT as i64 + 1;
                let n = model
                    .write_by_key(conn, &all_groups, indexed_key, key_value, limit, &mut sink.buf)
                    .await
                    .map_err(StorageError::from)?;
                match n {
                    None => {
                        return Err(ServiceError::IndexedKeyNotAllowed {
                            key: indexed_key.clone(),
                            model: model_name.clone(),
                        })
                    }
                    Some(n) if n > INDEXED_LIMIT => {
                        sink.buf.truncate(mark);
                        return Err(ServiceError::BatchLimitExceeded {
                            limit: INDEXED_LIMIT,
                            model: model_name.clone(),
                        });
                    }
                    Some(n) => {
                        sink.rows += n as u64;
                        if let Err(d) = sink.maybe_flush().await {
                            return Ok(Err(d));
                        }
                    }
                }
            }
        }
    }
    Ok(Ok(()))
}
