//! [`SyncWriter`]: applies and logs one write on the caller's connection.

use super::Actor;
use crate::bus::DeltaBus;
use crate::error::MutationError;
use crate::model::{JsonObject, MutationEvent, SyncModel};
use crate::protocol::{ActionKind, SyncAction, SyncId};
use crate::service::group_commit::after::after_mutation;
use crate::service::mutate::TxInput;
use crate::service::Registry;
use crate::storage::{log, Conn, Pool, StorageError};
use chrono::{DateTime, Utc};
use diesel_async::{AnsiTransactionManager, TransactionManager};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Writes synced rows from server code (see the [module docs](super)).
/// Cheap to clone.
#[derive(Clone)]
pub struct SyncWriter {
    pool: Pool,
    registry: Registry,
    bus: DeltaBus,
    hook_timeout: Duration,
}

impl std::fmt::Debug for SyncWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncWriter").field("registry", &self.registry).finish_non_exhaustive()
    }
}

/// The receipt of one write: its logged actions (cascaded deletes first,
/// its own last), not yet committed while the caller's transaction is
/// open. Hand it to [`SyncWriter::committed`] after the commit.
#[derive(Debug, Clone)]
pub struct Written {
    actions: Vec<SyncAction>,
    payload: JsonObject,
}

impl Written {
    /// The logged actions: cascaded deletes, then the write's own (last).
    pub fn actions(&self) -> &[SyncAction] {
        &self.actions
    }

    /// The write's own action.
    pub fn action(&self) -> Option<&SyncAction> {
        self.actions.last()
    }

    /// The sync id of the write's own action (0 if none, which does not
    /// happen for a successful write).
    pub fn sync_id(&self) -> SyncId {
        self.action().map_or(SyncId(0), |a| a.sync_id)
    }
}

impl SyncWriter {
    /// A writer for `registry`'s models; `hook_timeout` bounds each
    /// before-hook (zero: unbounded).
    pub(crate) fn new(pool: Pool, registry: Registry, bus: DeltaBus, hook_timeout: Duration) -> Self {
        SyncWriter { pool, registry, bus, hook_timeout }
    }

    /// Applies `action` to the row `model_id` of the model named `model`
    /// with `payload` (as in a client transaction of `/sync/mutate`) and
    /// logs it, on `conn`, inside a savepoint (or, when `conn` has no
    /// transaction open, a transaction of its own that commits at once).
    ///
    /// Errors are the ones a client mutation gets ([`MutationError`]:
    /// unknown model, invalid value, access denied, record not found,
    /// rejected by a hook…); the savepoint is then rolled back and `conn`'s
    /// transaction remains usable.
    pub async fn write(
        &self,
        conn: &mut Conn,
        actor: Actor<'_>,
        action: ActionKind,
        model: &str,
        model_id: &str,
        payload: JsonObject,
    ) -> Result<Written, MutationError> {
        let entry = self.registry.get(model).ok_or_else(|| MutationError::UnknownModel(model.to_owned()))?;
        let (user, system) = actor.context();
        let input = TxInput { action, model_id, payload: &payload, user, system, hook_timeout: self.hook_timeout };
        AnsiTransactionManager::begin_transaction(conn).await.map_err(MutationError::from)?;
        let done = async {
            let applied = entry.apply(&self.registry, conn, &input).await?;
            Ok::<_, MutationError>(log::append(conn, applied.log_rows(action, None)).await?)
        }
        .await;
        match done {
            Ok(actions) => {
                AnsiTransactionManager::commit_transaction(conn).await.map_err(MutationError::from)?;
                Ok(Written { actions, payload })
            }
            Err(e) => {
                if let Err(rollback) = AnsiTransactionManager::rollback_transaction(conn).await {
                    tracing::warn!(error = %rollback, cause = ?e, "rolling back a failed server write failed");
                }
                Err(e)
            }
        }
    }

    /// Inserts the row `model_id` of `M` from `payload` (wire field names,
    /// as a client's `INSERT`).
    pub async fn insert<M: SyncModel>(
        &self,
        conn: &mut Conn,
        actor: Actor<'_>,
        model_id: &str,
        payload: JsonObject,
    ) -> Result<Written, MutationError> {
        self.write(conn, actor, ActionKind::Insert, M::SPEC.name, model_id, payload).await
    }

    /// Updates the row `model_id` of `M` with the fields of `payload` (as a
    /// client's `UPDATE`).
    pub async fn update<M: SyncModel>(
        &self,
        conn: &mut Conn,
        actor: Actor<'_>,
        model_id: &str,
        payload: JsonObject,
    ) -> Result<Written, MutationError> {
        self.write(conn, actor, ActionKind::Update, M::SPEC.name, model_id, payload).await
    }

    /// Archives the row `model_id` of `M` as of `at`.
    pub async fn archive<M: SyncModel>(
        &self,
        conn: &mut Conn,
        actor: Actor<'_>,
        model_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Written, MutationError> {
        let mut payload = JsonObject::new();
        if let Some(field) = M::SPEC.archive_field {
            payload.insert(field.to_owned(), at.timestamp_millis().into());
        }
        self.write(conn, actor, ActionKind::Archive, M::SPEC.name, model_id, payload).await
    }

    /// Unarchives the row `model_id` of `M`.
    pub async fn unarchive<M: SyncModel>(
        &self,
        conn: &mut Conn,
        actor: Actor<'_>,
        model_id: &str,
    ) -> Result<Written, MutationError> {
        self.write(conn, actor, ActionKind::Unarchive, M::SPEC.name, model_id, JsonObject::new()).await
    }

    /// Deletes the row `model_id` of `M` (and, logged first, the rows its
    /// declared cascades remove).
    pub async fn delete<M: SyncModel>(
        &self,
        conn: &mut Conn,
        actor: Actor<'_>,
        model_id: &str,
    ) -> Result<Written, MutationError> {
        self.write(conn, actor, ActionKind::Delete, M::SPEC.name, model_id, JsonObject::new()).await
    }

    /// After the caller's transaction ended: publishes the actions of the
    /// writes that committed (the ones the log holds; a rolled-back
    /// transaction's are ignored) on the delta bus, in sync-id order, then
    /// runs their models' `after_mutation` hooks one after another.
    /// Returns the hooks' warnings (`onAfterMutation hook failed: …`), as a
    /// client mutation's result would carry them.
    pub async fn committed(&self, written: impl IntoIterator<Item = Written>) -> Result<Vec<String>, StorageError> {
        let written: Vec<Written> = written.into_iter().collect();
        let ids: Vec<i64> = written.iter().flat_map(|w| w.actions.iter().map(|a| a.sync_id.as_i64())).collect();
        let committed: HashSet<i64> = {
            let mut conn = self.pool.get().await?;
            log::committed_ids(&mut conn, &ids).await?.into_iter().collect()
        };
        let written: Vec<Written> = written.into_iter().filter(|w| committed.contains(&w.sync_id().as_i64())).collect();
        let mut published: Vec<Arc<SyncAction>> =
            written.iter().flat_map(|w| w.actions.iter().cloned().map(Arc::new)).collect();
        published.sort_by_key(|a| a.sync_id);
        self.bus.publish(published);

        let mut warnings = Vec::new();
        for w in &written {
            let Some(action) = w.action() else { continue };
            let Some(model) = self.registry.get(&action.model_name) else { continue };
            let event = MutationEvent {
                model_name: &action.model_name,
                model_id: &action.model_id,
                action: action.action,
                payload: &w.payload,
                data: &action.data,
                sync_id: action.sync_id.0,
            };
            if let Some(warning) = after_mutation(model.as_ref(), &event).await {
                warnings.push(format!("onAfterMutation hook failed: {warning}"));
            }
        }
        Ok(warnings)
    }
}
