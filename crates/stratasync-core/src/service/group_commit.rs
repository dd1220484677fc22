//! Group commit: concurrent mutate requests share database transactions.
//!
//! Sync ids must be allocated in commit order, so every commit passes one
//! serialization point (the insert-order lock, held from the log insert to
//! the commit). Committing each request on its own would cap throughput
//! near one request per WAL flush. Instead, requests queue here and a
//! *lane* takes whatever has queued up: one lane applies a whole group in
//! **one** database transaction, each client transaction in its own
//! savepoint (so each still succeeds or fails on its own), logs every
//! successful one with a single multi-row `INSERT`, and commits once. The
//! lock is held only for that `INSERT` and the `COMMIT`. More lanes can be
//! configured, but concurrent groups touching the same rows may deadlock
//! (a deadlock fails the group with a retryable error). Under light load a request runs
//! alone, with no added wait.
//!
//! A connection failure, or a commit whose outcome is unknown, fails the
//! whole group with a retryable error (a 5xx), never `success:false`: the
//! clients retry and deduplication answers for whatever did commit.

use super::mutate::{Applied, TxInput};
use crate::auth::AuthContext;
use crate::bus::DeltaBus;
use crate::error::{hook_message, is_connection_error, MutationError, ServiceError};
use crate::model::{MutationEvent, Registry};
use crate::protocol::{ActionKind, MutateRequest, MutateResponse, SyncAction, SyncId, TransactionInput, TxResult};
use crate::storage::{log, Conn, Pool, StorageError};
use diesel_async::{AnsiTransactionManager, TransactionManager};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Tuning of group commit.
#[derive(Debug, Clone)]
pub struct GroupCommitConfig {
    /// Groups applied concurrently (each on its own connection). The default
    /// is 1: concurrent groups that touch the same rows in different orders
    /// deadlock each other (measured under load); one lane still groups
    /// every request that queued while the previous group committed.
    pub lanes: usize,
    /// The most client transactions one group takes.
    pub max_group: usize,
    /// Requests that may wait for a lane.
    pub queue: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig { lanes: 1, max_group: 1000, queue: 4096 }
    }
}

/// What the lanes need of the engine (not the engine itself, so the lanes
/// end when the last engine handle is dropped).
#[derive(Clone)]
pub(crate) struct Writer {
    pub(crate) pool: Pool,
    pub(crate) registry: Registry,
    pub(crate) bus: DeltaBus,
}

struct Job {
    user: AuthContext,
    request: MutateRequest,
    reply: oneshot::Sender<Result<MutateResponse, ServiceError>>,
}

/// The queue in front of the lanes.
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the lanes (inside the tokio runtime).
    pub(crate) fn start(writer: Writer, config: GroupCommitConfig) -> GroupCommit {
        let (jobs, queue) = mpsc::channel(config.queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..config.lanes.max(1) {
            tokio::spawn(lane(writer.clone(), queue.clone(), config.max_group.max(1)));
        }
        GroupCommit { jobs }
    }

    /// Queues a request and waits for its response.
    pub(crate) async fn submit(
        &self,
        user: &AuthContext,
        request: &MutateRequest,
    ) -> Result<MutateResponse, ServiceError> {
        let (reply, response) = oneshot::channel();
        let job = Job { user: user.clone(), request: request.clone(), reply };
        self.jobs.send(job).await.map_err(|_| ServiceError::Unavailable)?;
        response.await.map_err(|_| ServiceError::Unavailable)?
    }
}

async fn lane(writer: Writer, queue: Arc<Mutex<mpsc::Receiver<Job>>>, max_group: usize) {
    loop {
        let mut group = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else { return };
            let mut size = first.request.transactions.len();
            group.push(first);
            while size < max_group {
                let Ok(next) = queue.try_recv() else { break };
                size += next.request.transactions.len();
                group.push(next);
            }
        }
        let requests: Vec<(&AuthContext, &MutateRequest)> = group.iter().map(|j| (&j.user, &j.request)).collect();
        match writer.commit_group(&requests).await {
            Ok(responses) => {
                for (job, response) in group.into_iter().zip(responses) {
                    let _ = job.reply.send(Ok(response));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, requests = group.len(), "mutation group failed; clients will retry");
                let mut e = Some(e);
                for job in group {
                    let _ = job.reply.send(Err(e.take().unwrap_or(ServiceError::Unavailable)));
                }
            }
        }
    }
}

/// What happened to one client transaction of a group.
enum Outcome {
    /// Committed earlier; the original sync id.
    Duplicate(SyncId),
    /// The same pair appeared earlier in this group, at this index.
    SameAs(usize),
    /// Applied: its entry in the applied list, and (after logging) its
    /// action's index in the logged list.
    Applied { applied: usize, logged: usize },
    /// Rolled back with this client-safe message.
    Failed(String),
}

/// One client transaction of a group, with its caller.
struct Item<'a> {
    user: &'a AuthContext,
    tx: &'a TransactionInput,
}

impl Writer {
    /// Applies, logs and commits a group of requests in one transaction;
    /// answers each request with its own results, then publishes.
    async fn commit_group(
        &self,
        requests: &[(&AuthContext, &MutateRequest)],
    ) -> Result<Vec<MutateResponse>, ServiceError> {
        let items: Vec<Item<'_>> = requests
            .iter()
            .flat_map(|(user, request)| request.transactions.iter().map(move |tx| Item { user, tx }))
            .collect();
        let mut conn = self.pool.get().await.map_err(StorageError::from)?;
        let conn: &mut Conn = &mut conn;
        AnsiTransactionManager::begin_transaction(conn).await.map_err(StorageError::from)?;
        let (outcomes, applied, logged) = match self.apply_all(conn, &items).await {
            Ok(done) => done,
            Err(e) => {
                let _ = AnsiTransactionManager::rollback_transaction(conn).await;
                return Err(e);
            }
        };
        if let Err(e) = AnsiTransactionManager::commit_transaction(conn).await {
            tracing::error!(error = %e, "mutation commit failed; outcome unknown");
            return Err(StorageError::from(e).into());
        }

        let published: Vec<Arc<SyncAction>> = logged.into_iter().map(Arc::new).collect();
        let mut results: Vec<TxResult> = Vec::with_capacity(items.len());
        for (item, outcome) in items.iter().zip(&outcomes) {
            let id = item.tx.client_tx_id.clone();
            let result = match outcome {
                Outcome::Duplicate(sync_id) => TxResult::success(id, *sync_id, Vec::new()),
                Outcome::SameAs(j) => match &results[*j] {
                    TxResult::Success { sync_id, .. } => TxResult::success(id, *sync_id, Vec::new()),
                    TxResult::Failure { error, .. } => TxResult::failure(id, error.clone()),
                },
                Outcome::Applied { applied: a, logged: l } => {
                    let action = &published[*l];
                    let warnings = self.after_mutation(&applied[*a], item.tx, action).await;
                    TxResult::success(id, action.sync_id, warnings)
                }
                Outcome::Failed(error) => TxResult::failure(id, error.clone()),
            };
            results.push(result);
        }
        self.bus.publish(published);

        let mut results = results.into_iter();
        Ok(requests
            .iter()
            .map(|(_, request)| {
                MutateResponse::from_results(results.by_ref().take(request.transactions.len()).collect())
            })
            .collect())
    }

    /// Inside the transaction: dedupe, one savepoint per client
    /// transaction, then one log insert for everything that applied.
    async fn apply_all(
        &self,
        conn: &mut Conn,
        items: &[Item<'_>],
    ) -> Result<(Vec<Outcome>, Vec<Applied>, Vec<SyncAction>), ServiceError> {
        let keys: Vec<(String, String)> =
            items.iter().map(|i| (i.tx.client_id.clone(), i.tx.client_tx_id.clone())).collect();
        log::lock_dedupe_keys(conn, &keys).await.map_err(StorageError::from)?;
        let committed = committed(conn, &keys).await?;

        let mut first_seen: HashMap<(&str, &str), usize> = HashMap::new();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut applied: Vec<Applied> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let tx = item.tx;
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
            let input =
                TxInput { action: tx.action.into(), model_id: &tx.model_id, payload: &tx.payload, user: item.user };
            AnsiTransactionManager::begin_transaction(conn).await.map_err(StorageError::from)?;
            let result = model.apply(&self.registry, conn, &input).await;
            match result {
                Ok(done) => {
                    AnsiTransactionManager::commit_transaction(conn).await.map_err(StorageError::from)?;
                    outcomes.push(Outcome::Applied { applied: applied.len(), logged: 0 });
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

        // Cascaded deletes are logged before the action that caused them,
        // everything in one statement under the insert-order lock.
        let mut actions = Vec::new();
        for (item, outcome) in items.iter().zip(outcomes.iter_mut()) {
            let Outcome::Applied { applied: a, logged } = outcome else { continue };
            let done = &applied[*a];
            for c in &done.cascaded {
                actions.push(log::NewAction {
                    model: c.model,
                    model_id: c.model_id.clone(),
                    action: ActionKind::Delete,
                    data: c.data.clone(),
                    group_id: c.group_id.clone(),
                    client_id: None,
                    client_tx_id: None,
                });
            }
            *logged = actions.len();
            actions.push(log::NewAction {
                model: done.model,
                model_id: done.model_id.clone(),
                action: item.tx.action.into(),
                data: done.data.clone(),
                group_id: done.group_id.clone(),
                client_id: Some(item.tx.client_id.clone()),
                client_tx_id: Some(item.tx.client_tx_id.clone()),
            });
        }
        let logged = log::append(conn, actions).await.map_err(StorageError::from)?;
        Ok((outcomes, applied, logged))
    }

    async fn after_mutation(&self, done: &Applied, tx: &TransactionInput, action: &SyncAction) -> Vec<String> {
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

/// The already committed `(clientId, clientTxId)` pairs among `keys`.
async fn committed(
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
