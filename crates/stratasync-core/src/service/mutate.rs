//! Mutations (PROTOCOL.md §5), with group commit per batch.
//!
//! A batch runs in **one** database transaction. Each client transaction
//! runs in its own savepoint, so it succeeds or fails on its own; the
//! successful ones are logged together at the end, right before the single
//! commit. The insert-order lock is therefore held for one multi-row
//! `INSERT` and one `COMMIT`, however many transactions the batch holds.
//!
//! Differences from the reference, on purpose:
//! * a foreign-group row and a missing row both answer `record not found`
//!   (§10 #13); inserts into a foreign group answer `Access denied`;
//! * errors carry stable messages, the cause is logged (§10 #14);
//! * codecs check JSON types (§10 #15); a `D` logs the deleted row as the
//!   server stored it, not whatever the client sent;
//! * a concurrent duplicate waits for the original and returns its sync id
//!   (§10 #12);
//! * a composite delete uses the stored row's group, and a missing row is
//!   `record not found`;
//! * rows removed by `ON DELETE CASCADE` get their own `D` actions.

use crate::auth::AuthContext;
use crate::codec::{normalize_insert, normalize_update, time::instant_ms_from_json};
use crate::engine::SyncEngine;
use crate::error::{hook_message, is_connection_error, MutationError, ServiceError};
use crate::model::{
    CodecKind, GroupKey, HookContext, JsonObject, ModelHooks, ModelKind, MutationEvent, Registry, SyncModel,
};
use crate::protocol::{ActionKind, MutateRequest, MutateResponse, SyncAction, SyncId, TxResult};
use crate::storage::{log, Conn, StorageError};
use diesel_async::{AnsiTransactionManager, TransactionManager};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One client transaction as a model sees it.
#[derive(Debug)]
pub struct TxInput<'a> {
    /// The action.
    pub action: ActionKind,
    /// The client's model id.
    pub model_id: &'a str,
    /// The payload.
    pub payload: &'a JsonObject,
    /// The caller.
    pub user: &'a AuthContext,
}

/// A row deleted by the database as a consequence of another delete.
#[derive(Debug, Clone)]
pub struct Cascaded {
    /// The dependent model.
    pub model: &'static str,
    /// Its sync id.
    pub model_id: String,
    /// Its group.
    pub group_id: Option<String>,
    /// The row as it was.
    pub data: JsonObject,
}

impl Cascaded {
    /// The cascaded delete of `row`.
    pub fn of<M: SyncModel>(row: &M) -> Self {
        Cascaded { model: M::SPEC.name, model_id: row.sync_id(), group_id: row.group_id(), data: row.to_data() }
    }
}

/// A mutation applied inside the transaction, waiting to be logged.
#[derive(Debug)]
pub struct Applied {
    /// The model.
    pub model: &'static str,
    /// The canonical model id.
    pub model_id: String,
    /// The group of the action.
    pub group_id: Option<String>,
    /// The action's data.
    pub data: JsonObject,
    /// Dependent rows the database deleted with it.
    pub cascaded: Vec<Cascaded>,
}

fn group_of<M: SyncModel>(row: &M) -> Result<Option<String>, MutationError> {
    match M::SPEC.group {
        GroupKey::Global => Ok(None),
        GroupKey::OwnId => Ok(Some(row.sync_id())),
        GroupKey::Field(_) => match row.group_id() {
            Some(g) if !g.is_empty() => Ok(Some(g)),
            _ => Err(MutationError::MissingGroup),
        },
    }
}

/// The target of a non-insert action, visible to the caller. A row in a
/// group the caller cannot see is reported exactly like a missing row.
async fn target<M: SyncModel>(conn: &mut Conn, tx: &TxInput<'_>) -> Result<(M, Option<String>), MutationError> {
    let row = M::find(conn, tx.model_id, tx.payload).await?.ok_or(MutationError::RecordNotFound)?;
    let group = group_of(&row)?;
    match &group {
        Some(g) if !tx.user.has_group(g) => Err(MutationError::RecordNotFound),
        _ => Ok((row, group)),
    }
}

fn insert_group(spec_group: GroupKey, canonical: &str, data: &JsonObject) -> Result<Option<String>, MutationError> {
    match spec_group {
        GroupKey::Global => Ok(None),
        GroupKey::OwnId => Ok(Some(canonical.to_owned())),
        GroupKey::Field(k) => match data.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            _ => Err(MutationError::MissingGroup),
        },
    }
}

fn check_access(user: &AuthContext, group: &Option<String>) -> Result<(), MutationError> {
    match group {
        Some(g) if !user.has_group(g) => Err(MutationError::AccessDenied),
        _ => Ok(()),
    }
}

fn ensure_changed(n: usize) -> Result<(), MutationError> {
    if n == 0 {
        Err(MutationError::RecordNotFound)
    } else {
        Ok(())
    }
}

/// Applies one transaction of model `M` inside the current savepoint.
pub async fn apply<M: SyncModel>(
    hooks: &M::Hooks,
    registry: &Registry,
    conn: &mut Conn,
    tx: &TxInput<'_>,
) -> Result<Applied, MutationError> {
    let spec = M::SPEC;
    if !spec.actions.contains(tx.action) {
        return Err(MutationError::UnsupportedAction(tx.action));
    }
    let standard = spec.kind == ModelKind::Standard;
    let applied = |model_id: String, group_id: Option<String>, data: JsonObject| Applied {
        model: spec.name,
        model_id,
        group_id,
        data,
        cascaded: Vec::new(),
    };
    match tx.action {
        ActionKind::Insert => {
            let mut data = normalize_insert(spec, tx.model_id, tx.payload)?;
            let canonical = M::canonical_id(tx.model_id, &data)?;
            let group = insert_group(spec.group, &canonical, &data)?;
            check_access(tx.user, &group)?;
            if standard {
                let mut cx = HookContext { conn: &mut *conn, user: tx.user };
                hooks.before_insert(&mut cx, &canonical, tx.payload, &mut data).await?;
                // The hook may have rewritten the group: check it again.
                let rewritten = insert_group(spec.group, &canonical, &data)?;
                check_access(tx.user, &rewritten)?;
            }
            M::insert(conn, &canonical, &data).await?;
            Ok(applied(canonical, group, data))
        }
        ActionKind::Update => {
            if !standard || !spec.fields.iter().any(|f| f.update) {
                return Err(MutationError::UpdateNotConfigured);
            }
            let (row, group) = target::<M>(conn, tx).await?;
            let id = row.sync_id();
            let mut data = normalize_update(spec, tx.payload)?;
            let mut cx = HookContext { conn: &mut *conn, user: tx.user };
            hooks.before_update(&mut cx, &id, tx.payload, &mut data).await?;
            if !data.is_empty() {
                ensure_changed(M::update(conn, &row, &data).await?)?;
            }
            Ok(applied(id, group, data))
        }
        ActionKind::Delete => {
            let (row, group) = target::<M>(conn, tx).await?;
            let id = row.sync_id();
            if standard {
                let mut cx = HookContext { conn: &mut *conn, user: tx.user };
                hooks.before_delete(&mut cx, &id, tx.payload).await?;
            }
            let cascaded = cascade(registry, conn, spec.name, &id).await?;
            ensure_changed(M::delete(conn, &row).await?)?;
            let mut done = applied(id, group, row.to_data());
            done.cascaded = cascaded;
            Ok(done)
        }
        ActionKind::Archive | ActionKind::Unarchive => {
            let archive = tx.action == ActionKind::Archive;
            let field = match spec.archive_field {
                Some(f) if standard => f,
                _ if archive => return Err(MutationError::ArchiveNotConfigured),
                _ => return Err(MutationError::UnarchiveNotConfigured),
            };
            let at = if archive {
                let value = tx.payload.get(field).filter(|v| !v.is_null()).ok_or(MutationError::ArchivedAtRequired)?;
                let invalid = || MutationError::InvalidValue { kind: CodecKind::Instant, field: field.to_owned() };
                let ms = instant_ms_from_json(value).ok_or_else(invalid)?;
                Some((ms, crate::codec::time::instant_from_ms(ms).ok_or_else(invalid)?))
            } else {
                None
            };
            let (row, group) = target::<M>(conn, tx).await?;
            ensure_changed(M::set_archived(conn, &row, at.map(|(_, t)| t)).await?)?;
            let mut data = JsonObject::new();
            data.insert(field.to_owned(), at.map_or(Value::Null, |(ms, _)| Value::from(ms)));
            Ok(applied(row.sync_id(), group, data))
        }
    }
}

/// Collects, depth first, every synced row the database will delete with
/// `parent_id` of model `parent`.
fn cascade<'a>(
    registry: &'a Registry,
    conn: &'a mut Conn,
    parent: &'a str,
    parent_id: &'a str,
) -> futures_util::future::BoxFuture<'a, Result<Vec<Cascaded>, MutationError>> {
    Box::pin(async move {
        let mut all = Vec::new();
        for model in registry.models() {
            for row in model.cascade(conn, parent, parent_id).await? {
                all.extend(cascade(registry, conn, row.model, &row.model_id).await?);
                all.push(row);
            }
        }
        Ok(all)
    })
}

/// What happened to one transaction of a batch.
enum Outcome {
    /// Committed earlier; the original sync id.
    Duplicate(SyncId),
    /// The same pair appeared earlier in this batch.
    SameAs(usize),
    /// Applied; logged as the action at this index of the logged list.
    Applied { logged: usize, payload_index: usize },
    /// Rolled back.
    Failed(String),
}

impl SyncEngine {
    /// Processes a batch (PROTOCOL.md §4.4, §5) and publishes the committed
    /// actions on the bus.
    ///
    /// Errors are retryable failures of the database; a batch whose commit
    /// outcome is unknown is reported as an error (a 5xx), never as
    /// `success:false`, so the client retries and deduplication answers.
    pub async fn mutate(&self, user: &AuthContext, request: &MutateRequest) -> Result<MutateResponse, ServiceError> {
        let mut conn = self.pool.get().await.map_err(StorageError::from)?;
        let conn: &mut Conn = &mut conn;
        let txs = &request.transactions;

        AnsiTransactionManager::begin_transaction(conn).await.map_err(StorageError::from)?;
        let outcome = self.mutate_in_transaction(conn, user, request).await;
        let (mut outcomes, pending, logged) = match outcome {
            Ok(done) => done,
            Err(e) => {
                let _ = AnsiTransactionManager::rollback_transaction(conn).await;
                return Err(e);
            }
        };
        if let Err(e) = AnsiTransactionManager::commit_transaction(conn).await {
            tracing::error!(error = %e, "mutation batch commit failed; outcome unknown, client will retry");
            return Err(StorageError::from(e).into());
        }

        let published: Vec<Arc<SyncAction>> = logged.into_iter().map(Arc::new).collect();
        let mut results = Vec::with_capacity(txs.len());
        for (i, tx) in txs.iter().enumerate() {
            let result = match &outcomes[i] {
                Outcome::Duplicate(id) => TxResult::success(tx.client_tx_id.clone(), *id, Vec::new()),
                Outcome::SameAs(j) => match &results[*j] {
                    TxResult::Success { sync_id, .. } => {
                        TxResult::success(tx.client_tx_id.clone(), *sync_id, Vec::new())
                    }
                    TxResult::Failure { error, .. } => TxResult::failure(tx.client_tx_id.clone(), error.clone()),
                },
                Outcome::Applied { logged, payload_index } => {
                    let action = &published[*logged];
                    let warnings = self.after_mutation(&pending[*payload_index], tx, action).await;
                    TxResult::success(tx.client_tx_id.clone(), action.sync_id, warnings)
                }
                Outcome::Failed(error) => TxResult::failure(tx.client_tx_id.clone(), error.clone()),
            };
            results.push(result);
        }
        outcomes.clear();
        self.bus.publish(published);
        Ok(MutateResponse::from_results(results))
    }

    #[allow(clippy::type_complexity)]
    async fn mutate_in_transaction(
        &self,
        conn: &mut Conn,
        user: &AuthContext,
        request: &MutateRequest,
    ) -> Result<(Vec<Outcome>, Vec<Applied>, Vec<SyncAction>), ServiceError> {
        let txs = &request.transactions;
        let keys: Vec<(String, String)> = txs.iter().map(|t| (t.client_id.clone(), t.client_tx_id.clone())).collect();
        log::lock_dedupe_keys(conn, &keys).await.map_err(StorageError::from)?;
        let committed = self.committed(conn, &keys).await?;

        let mut first_seen: HashMap<(&str, &str), usize> = HashMap::new();
        let mut outcomes = Vec::with_capacity(txs.len());
        let mut applied: Vec<Applied> = Vec::new();
        for (i, tx) in txs.iter().enumerate() {
            let key = (tx.client_id.as_str(), tx.client_tx_id.as_str());
            if let Some(id) = committed.get(&(tx.client_id.clone(), tx.client_tx_id.clone())) {
                outcomes.push(Outcome::Duplicate(*id));
                continue;
            }
            if let Some(&j) = first_seen.get(&key) {
                outcomes.push(Outcome::SameAs(j));
                continue;
            }
            first_seen.insert(key, i);
            let Some(model) = self.registry.get(&tx.model_name) else {
                outcomes.push(Outcome::Failed(MutationError::UnknownModel(tx.model_name.clone()).to_string()));
                continue;
            };
            let input = TxInput { action: tx.action.into(), model_id: &tx.model_id, payload: &tx.payload, user };
            AnsiTransactionManager::begin_transaction(conn).await.map_err(StorageError::from)?;
            match model.apply(&self.registry, conn, &input).await {
                Ok(done) => {
                    AnsiTransactionManager::commit_transaction(conn).await.map_err(StorageError::from)?;
                    outcomes.push(Outcome::Applied { logged: 0, payload_index: applied.len() });
                    applied.push(done);
                }
                Err(e) => {
                    AnsiTransactionManager::rollback_transaction(conn).await.map_err(StorageError::from)?;
                    match e {
                        MutationError::Database(db) if is_connection_error(&db) => {
                            return Err(StorageError::Query(db).into());
                        }
                        e => {
                            tracing::info!(model = %tx.model_name, client_tx_id = %tx.client_tx_id, error = ?e, "mutation rejected");
                            outcomes.push(Outcome::Failed(e.to_string()));
                        }
                    }
                }
            }
        }

        // Log cascaded deletes before the action that caused them, all in
        // one statement under the insert-order lock.
        let mut new_actions = Vec::new();
        let mut main_index = Vec::with_capacity(applied.len());
        let mut applied_iter = applied.iter();
        for (i, outcome) in outcomes.iter_mut().enumerate() {
            let Outcome::Applied { logged, .. } = outcome else { continue };
            let done = applied_iter.next().expect("one applied entry per applied outcome");
            let tx = &txs[i];
            for c in &done.cascaded {
                new_actions.push(log::NewAction {
                    model: c.model,
                    model_id: c.model_id.clone(),
                    action: ActionKind::Delete,
                    data: c.data.clone(),
                    group_id: c.group_id.clone(),
                    client_id: None,
                    client_tx_id: None,
                });
            }
            *logged = new_actions.len();
            main_index.push(new_actions.len());
            new_actions.push(log::NewAction {
                model: done.model,
                model_id: done.model_id.clone(),
                action: tx.action.into(),
                data: done.data.clone(),
                group_id: done.group_id.clone(),
                client_id: Some(tx.client_id.clone()),
                client_tx_id: Some(tx.client_tx_id.clone()),
            });
        }
        let logged = log::append(conn, new_actions).await.map_err(StorageError::from)?;
        Ok((outcomes, applied, logged))
    }

    async fn committed(
        &self,
        conn: &mut Conn,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), SyncId>, ServiceError> {
        let mut by_client: HashMap<&str, Vec<&str>> = HashMap::new();
        for (c, t) in keys {
            by_client.entry(c).or_default().push(t);
        }
        let mut found = HashMap::new();
        for (client, txs) in by_client {
            for (tx, id) in log::find_committed(conn, client, &txs).await.map_err(StorageError::from)? {
                found.entry((client.to_owned(), tx)).or_insert(id);
            }
        }
        Ok(found)
    }

    async fn after_mutation(
        &self,
        done: &Applied,
        tx: &crate::protocol::TransactionInput,
        action: &SyncAction,
    ) -> Vec<String> {
        let Some(model) = self.registry.get(done.model) else { return Vec::new() };
        let event = MutationEvent {
            model_name: done.model,
            model_id: &done.model_id,
            action: action.action,
            payload: &tx.payload,
            data: &done.data,
            sync_id: action.sync_id.0,
        };
        match model.hooks().after_mutation(&event).await {
            Ok(()) => Vec::new(),
            Err(e) => {
                tracing::warn!(model = done.model, error = ?e, "after-mutation hook failed");
                vec![format!("onAfterMutation hook failed: {}", hook_message(&e))]
            }
        }
    }
}
