//! Bootstrap (PROTOCOL.md §4.1): a consistent snapshot streamed as NDJSON.
//!
//! Unlike the reference (§10 #5, #6), the head, the counts and every page
//! are read in one `REPEATABLE READ, READ ONLY` transaction: the stream is
//! exactly the state at its `lastSyncId`, `returnedModelsCount` matches the
//! streamed rows, and no row is left out as "touched". A client replaying
//! deltas after `lastSyncId` (or, for a partial bootstrap, after its
//! `firstSyncId`) converges on the current state, because every row it got
//! is at least as new as its cursor and deltas apply in order.

use super::ndjson::{Disconnected, NdjsonSink, NdjsonStream};
use crate::auth::AuthContext;
use crate::engine::SyncEngine;
use crate::error::ServiceError;
use crate::model::{DynModel, Registry};
use crate::protocol::{BootstrapMetadata, SyncId};
use crate::scope::ScopeFilter;
use crate::storage::{log, Conn, StorageError};
use diesel_async::{AnsiTransactionManager, TransactionManager};
use std::sync::Arc;

/// Rows per keyset page.
pub const PAGE_SIZE: i64 = 1000;

/// Full or partial bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootstrapKind {
    /// The client's initial state.
    #[default]
    Full,
    /// Rows of newly added groups.
    Partial,
}

/// A validated bootstrap request.
#[derive(Debug, Clone, Default)]
pub struct BootstrapParams {
    /// Full or partial.
    pub kind: BootstrapKind,
    /// The client's floor (required for partial; accepted and not needed
    /// for filtering, see the module docs).
    pub first_sync_id: Option<SyncId>,
    /// Models to stream, in order (`None`: all; `Some([])`: none).
    pub only_models: Option<Vec<String>>,
    /// Requested groups (`None` or empty: all authorized).
    pub sync_groups: Option<Vec<String>>,
    /// Echoed in the metadata.
    pub schema_hash: String,
}

/// The effective groups of a bootstrap: the requested groups the caller
/// holds, in request order (duplicates kept); all of them when none were
/// requested. Unlike the reference, a request naming only foreign groups
/// gets no groups (and so no group-scoped rows), not all of the caller's.
pub fn effective_groups(user: &AuthContext, requested: Option<&[String]>) -> Vec<String> {
    match requested {
        None | Some([]) => user.groups.clone(),
        Some(requested) => requested.iter().filter(|g| user.has_group(g)).cloned().collect(),
    }
}

impl SyncEngine {
    /// Streams a bootstrap. The stream's first item is the metadata line;
    /// an `Err` item ends it (the transport writes it as an error line).
    pub fn bootstrap(&self, user: &AuthContext, params: BootstrapParams) -> NdjsonStream {
        let (sink, stream) = NdjsonSink::channel();
        let groups = effective_groups(user, params.sync_groups.as_deref());
        let scope = ScopeFilter::new(user.user_id(), &groups);
        let models = requested_models(&self.registry, params.only_models.as_deref());
        let job = Snapshot { engine: self.clone(), scope, groups, models, schema_hash: params.schema_hash };
        tokio::spawn(job.run(sink));
        stream
    }
}

/// Model names in request order; `None` means all registered models.
fn requested_models(registry: &Registry, only: Option<&[String]>) -> Vec<String> {
    match only {
        None => registry.models().map(|m| m.spec().name.to_owned()).collect(),
        Some(names) => names.to_vec(),
    }
}

struct Snapshot {
    engine: SyncEngine,
    scope: ScopeFilter,
    groups: Vec<String>,
    models: Vec<String>,
    schema_hash: String,
}

impl Snapshot {
    async fn run(self, mut sink: NdjsonSink) {
        let mut conn = match self.engine.pool.get().await {
            Ok(conn) => conn,
            Err(e) => return fail(sink, StorageError::from(e).into()).await,
        };
        let conn: &mut Conn = &mut conn;
        let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
        if let Err(e) = AnsiTransactionManager::begin_transaction_sql(conn, begin).await {
            return fail(sink, StorageError::from(e).into()).await;
        }
        let result = self.stream(conn, &mut sink).await;
        // Read-only: ending it either way changes nothing.
        let _ = AnsiTransactionManager::rollback_transaction(conn).await;
        match result {
            Ok(Ok(())) => {
                let _ = sink.flush().await;
            }
            Ok(Err(Disconnected)) => tracing::debug!("bootstrap client went away"),
            Err(e) => fail(sink, e).await,
        }
    }

    async fn stream(&self, conn: &mut Conn, sink: &mut NdjsonSink) -> Result<Result<(), Disconnected>, ServiceError> {
        let registry = &self.engine.registry;
        let head = log::head_for(conn, &self.groups).await.map_err(StorageError::from)?;
        let mut counts = serde_json::Map::new();
        let mut streamed: Vec<&Arc<dyn DynModel>> = Vec::new();
        for name in &self.models {
            let count = match registry.get(name) {
                Some(model) => {
                    if !streamed.iter().any(|m| m.spec().name == name) {
                        streamed.push(model);
                    }
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
        if let Err(d) = sink.maybe_flush().await {
            return Ok(Err(d));
        }
        if n < PAGE_SIZE as usize {
            return Ok(Ok(()));
        }
    }
}

async fn fail(sink: NdjsonSink, err: ServiceError) {
    tracing::error!(error = ?err, "bootstrap stream failed");
    sink.fail(err).await;
}
