//! Bootstrap (docs/protocol.md §4.1): a consistent snapshot streamed as NDJSON.
//!
//! Unlike the reference (§10 #5, #6), the head, the counts and every page
//! are read in one `REPEATABLE READ, READ ONLY` transaction: the stream is
//! exactly the state at its `lastSyncId`, `returnedModelsCount` matches the
//! streamed rows, and no row is left out as "touched". A client replaying
//! deltas after `lastSyncId` (or, for a partial bootstrap, after its
//! `firstSyncId`) converges on the current state, because every row it got
//! is at least as new as its cursor and deltas apply in order.

use super::ndjson::{Disconnected, NdjsonSink};
use super::snapshot::SnapshotJob;
use super::{DynModel, Registry};
use crate::auth::AuthContext;
use crate::error::ServiceError;
use crate::protocol::BootstrapMetadata;
pub use crate::protocol::{BootstrapKind, BootstrapParams};
use crate::scope::ScopeFilter;
use crate::storage::{log, Conn, StorageError};
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// Rows per keyset page.
pub(crate) const PAGE_SIZE: i64 = 1000;

/// The effective groups of a bootstrap: the requested groups the caller
/// holds, in request order (duplicates kept); all of them when none were
/// requested. Unlike the reference, a request naming only foreign groups
/// gets no groups (and so no group-scoped rows), not all of the caller's.
/// The rule is [`crate::scope::requested_groups`], shared with delta pages
/// and WebSocket subscribes.
pub(crate) fn effective_groups(user: &AuthContext, requested: Option<&[String]>) -> Vec<String> {
    crate::scope::requested_groups(&user.groups, requested)
}

/// Model names in request order, each once (a name given twice is
/// counted and streamed once); `None` means all registered models.
fn requested_models(registry: &Registry, only: Option<&[String]>) -> Vec<String> {
    match only {
        None => registry.models().map(|m| m.spec().name.to_owned()).collect(),
        Some(names) => crate::auth::dedupe(names.iter().cloned()),
    }
}

/// A bootstrap: the metadata line, then the rows of every requested model
/// in the caller's effective groups.
pub(crate) struct Snapshot {
    registry: Registry,
    scope: ScopeFilter,
    groups: Vec<String>,
    models: Vec<String>,
    schema_hash: String,
}

impl Snapshot {
    /// The bootstrap `params` asks of `user`, with `schema_hash` in its
    /// metadata.
    pub(crate) fn new(registry: Registry, user: &AuthContext, params: &BootstrapParams, schema_hash: &str) -> Self {
        let groups = effective_groups(user, params.sync_groups.as_deref());
        let scope = ScopeFilter::new(user.user_id(), &groups);
        let models = requested_models(&registry, params.only_models.as_deref());
        Snapshot { registry, scope, groups, models, schema_hash: schema_hash.to_owned() }
    }
}

impl SnapshotJob for Snapshot {
    const NAME: &'static str = "bootstrap";

    fn write<'a>(
        &'a self,
        conn: &'a mut Conn,
        sink: &'a mut NdjsonSink,
    ) -> BoxFuture<'a, Result<Result<(), Disconnected>, ServiceError>> {
        Box::pin(self.stream(conn, sink))
    }
}

impl Snapshot {
    async fn stream(&self, conn: &mut Conn, sink: &mut NdjsonSink) -> Result<Result<(), Disconnected>, ServiceError> {
        let registry = &self.registry;
        let head = log::head_for(conn, &self.groups).await.map_err(StorageError::from)?;
        let mut counts = serde_json::Map::new();
        let mut streamed: Vec<&Arc<dyn DynModel>> = Vec::new();
        // One COUNT per distinct model: the names are deduplicated.
        for name in &self.models {
            let count = match registry.get(name) {
                Some(model) => {
                    streamed.push(model);
                    model.count(conn, &self.scope).await.map_err(StorageError::from)?
                }
                None => 0,
            };
            counts.insert(name.clone(), count.into());
        }
        sink.line(&BootstrapMetadata {
            last_sync_id: head,
            returned_models_count: counts,
            schema_hash: self.schema_hash.clone(),
            subscribed_sync_groups: self.groups.clone(),
        });
        if let Err(d) = sink.flush().await {
            return Ok(Err(d));
        }
        for model in streamed {
            if let Err(d) = stream_model(model.as_ref(), conn, &self.scope, sink).await? {
                return Ok(Err(d));
            }
        }
        Ok(Ok(()))
    }
}

/// Streams every row of `model` in `scope`, page by page, flushing as the
/// buffer fills.
pub(crate) async fn stream_model(
    model: &dyn DynModel,
    conn: &mut Conn,
    scope: &ScopeFilter,
    sink: &mut NdjsonSink,
) -> Result<Result<(), Disconnected>, ServiceError> {
    let mut cursor = None;
    loop {
        let n =
            model.write_page(conn, scope, &mut cursor, PAGE_SIZE, &mut sink.buf).await.map_err(StorageError::from)?;
        sink.rows += n as u64;
        if let Err(d) = sink.maybe_flush().await {
            return Ok(Err(d));
        }
        if n < PAGE_SIZE as usize {
            return Ok(Ok(()));
        }
    }
}
