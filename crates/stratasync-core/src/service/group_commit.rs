//! Group commit: concurrent mutate requests share database transactions.
//!
//! Sync ids must be allocated in commit order, so every commit passes one
//! serialization point (the insert-order lock, held from the log insert to
//! the commit). Committing each request on its own would cap throughput
//! near one request per WAL flush. Instead, requests queue here and a
//! *lane* takes whatever has queued up: one lane applies a whole group in
//! **one** database transaction, logs every successful client transaction
//! with a single multi-row `INSERT` (which takes the insert-order lock
//! itself), and commits once. The lock is held only for that `INSERT` and
//! the `COMMIT`. Under light load a request runs alone, with no added wait.
//!
//! Round trips are what a lane spends its time on, so a group first runs
//! *optimistically*: deduplication in one statement that tries the dedupe
//! locks without waiting, and the client transactions back to back with no
//! savepoints. If anything goes differently (a dedupe lock is held by a
//! concurrent duplicate, a client transaction fails, or a duplicate
//! committed meanwhile), the group's transaction is rolled back and the
//! group runs again *carefully*: waiting for the dedupe locks, and each
//! client transaction in its own savepoint, so each still succeeds or fails
//! on its own. A client transaction then sees exactly what it would have
//! seen in the careful run alone; its before-hooks may have run once more
//! in the rolled-back attempt (as for any retried transaction: whatever
//! they wrote to the database was rolled back with it).
//!
//! Several lanes may run groups concurrently, each on its own connection
//! (the lane keeps it between groups). Requests are routed to lanes by
//! client id, so one client's requests are committed in the order they
//! arrived, as with a single lane. Groups that lock the same rows in
//! different orders can deadlock; PostgreSQL then aborts one of them,
//! which rolls back entirely, and its lane runs it again alone (the other
//! lanes wait), so a deadlock costs time but fails no request.
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
use crate::storage::{log, Conn, Pool, PooledConn, StorageError};
use diesel_async::{AnsiTransactionManager, TransactionManager};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, RwLock};

/// Tuning of group commit.
#[derive(Debug, Clone)]
pub struct GroupCommitConfig {
    /// Groups applied concurrently (each on its own connection, kept
    /// between groups; at most half the pool's connections are used so). A
    /// group that deadlocks with another lane's group is run again alone, so
    /// more lanes never fail a request; one lane still groups every request
    /// that queued while the previous group committed.
    pub lanes: usize,
    /// The most client transactions one group takes.
    pub max_group: usize,
    /// Requests that may wait for a lane (split between the lanes).
    pub queue: usize,
}

/// Lanes of [`GroupCommitConfig::default`].
pub const DEFAULT_LANES: usize = 1;

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig { lanes: DEFAULT_LANES, max_group: 1000, queue: 4096 }
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

/// The queues in front of the lanes, one each.
pub(crate) struct GroupCommit {
    lanes: Vec<mpsc::Sender<Job>>,
}

impl GroupCommit {
    /// Starts the lanes (inside the tokio runtime).
    pub(crate) fn start(writer: Writer, config: GroupCommitConfig) -> GroupCommit {
        let gate = Arc::new(RwLock::new(()));
        // Each lane keeps a connection: leave the other half of the pool to
        // the reads.
        let lanes = config.lanes.min(writer.pool.status().max_size / 2).max(1);
        let queue = (config.queue / lanes).max(1);
        let lanes = (0..lanes)
            .map(|_| {
                let (jobs, queue) = mpsc::channel(queue);
                tokio::spawn(lane(writer.clone(), queue, gate.clone(), config.max_group.max(1)));
                jobs
            })
            .collect();
        GroupCommit { lanes }
    }

    /// Queues a request and waits for its response.
    pub(crate) async fn submit(
        &self,
        user: &AuthContext,
        request: &MutateRequest,
    ) -> Result<MutateResponse, ServiceError> {
        let (reply, response) = oneshot::channel();
        let job = Job { user: user.clone(), request: request.clone(), reply };
        // One client's requests always go to the same lane, which commits
        // them in the order they arrived.
        let client = request.transactions.first().map_or("", |tx| tx.client_id.as_str());
        let mut hash = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(client, &mut hash);
        let lane = (std::hash::Hasher::finish(&hash) % self.lanes.len().max(1) as u64) as usize;
        let jobs = self.lanes.get(lane).ok_or(ServiceError::Unavailable)?;
        jobs.send(job).await.map_err(|_| ServiceError::Unavailable)?;
        response.await.map_err(|_| ServiceError::Unavailable)?
    }
}

/// One lane: takes what has queued, commits it as a group, answers.
///
/// `gate` is read-locked while a group runs; a group that deadlocked runs
/// again under the write lock, alone, so it cannot deadlock again with
/// another lane.
async fn lane(writer: Writer, mut queue: mpsc::Receiver<Job>, gate: Arc<RwLock<()>>, max_group: usize) {
    let mut conn: Option<PooledConn> = None;
    loop {
        let mut group = Vec::new();
        let Some(first) = queue.recv().await else { return };
        let mut size = first.request.transactions.len();
        group.push(first);
        while size < max_group {
            let Ok(next) = queue.try_recv() else { break };
            size += next.request.transactions.len();
            group.push(next);
        }
        let requests: Vec<(&AuthContext, &MutateRequest)> = group.iter().map(|j| (&j.user, &j.request)).collect();
        let mut result = {
            let _shared = gate.read().await;
            writer.commit_group(&mut conn, &requests).await
        };
        if matches!(&result, Err(e) if e.is_deadlock()) {
            tracing::warn!(requests = group.len(), "mutation group deadlocked with another lane; running it alone");
            let _alone = gate.write().await;
            result = writer.commit_group(&mut conn, &requests).await;
        }
        match result {
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

/// How a group runs (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Dedupe locks tried without waiting, no savepoints; any surprise
    /// rolls the group back to run it [`Mode::Careful`]ly.
    Optimistic,
    /// Dedupe locks waited for, one savepoint per client transaction.
    Careful,
}

/// Why a group's attempt ended without committing.
enum Abort {
    /// The optimistic attempt met a surprise: run the group carefully.
    Retry,
    /// The group fails.
    Fail(ServiceError),
}

impl From<ServiceError> for Abort {
    fn from(e: ServiceError) -> Self {
        Abort::Fail(e)
    }
}

impl From<StorageError> for Abort {
    fn from(e: StorageError) -> Self {
        Abort::Fail(e.into())
    }
}

/// What a group's attempt produced: each transaction's outcome, the
/// mutations that applied, and the actions logged for them.
type Attempted = (Vec<Outcome>, Vec<Applied>, Vec<SyncAction>);

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
    /// answers each request with its own results, then publishes. `held`
    /// is the lane's connection (taken from the pool when there is none,
    /// dropped after a failure).
    async fn commit_group(
        &self,
        held: &mut Option<PooledConn>,
        requests: &[(&AuthContext, &MutateRequest)],
    ) -> Result<Vec<MutateResponse>, ServiceError> {
        let items: Vec<Item<'_>> = requests
            .iter()
            .flat_map(|(user, request)| request.transactions.iter().map(move |tx| Item { user, tx }))
            .collect();
        let result = self.run(held, &items).await;
        if result.is_err() {
            // Whatever state it is in, a connection that failed goes back to
            // the pool (which checks it) and the next group takes another.
            *held = None;
        }
        let (outcomes, applied, logged) = result?;

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

    /// Runs the group's transaction to its commit: optimistically first,
    /// then carefully if that attempt met a surprise.
    async fn run(&self, held: &mut Option<PooledConn>, items: &[Item<'_>]) -> Result<Attempted, ServiceError> {
        let conn = begin(&self.pool, held).await?;
        match self.attempt(conn, items, Mode::Optimistic).await {
            Ok(done) => return Ok(done),
            Err(Abort::Fail(e)) => return Err(e),
            Err(Abort::Retry) => {}
        }
        AnsiTransactionManager::begin_transaction(conn).await.map_err(StorageError::from)?;
        match self.attempt(conn, items, Mode::Careful).await {
            Ok(done) => Ok(done),
            Err(Abort::Fail(e)) => Err(e),
            // A careful attempt never asks for another.
            Err(Abort::Retry) => Err(ServiceError::Unavailable),
        }
    }

    /// One attempt inside the open transaction, ending it: committed
    /// (`Ok`), or rolled back (`Err`).
    async fn attempt(&self, conn: &mut Conn, items: &[Item<'_>], mode: Mode) -> Result<Attempted, Abort> {
        let (outcomes, applied, logged) = match self.apply_all(conn, items, mode).await {
            Ok(done) => done,
            Err(abort) => {
                if let Err(e) = AnsiTransactionManager::rollback_transaction(conn).await {
                    // The connection is unusable: fail the group.
                    tracing::warn!(error = %e, "rollback of a mutation group failed");
                    return Err(Abort::Fail(StorageError::from(e).into()));
                }
                return Err(abort);
            }
        };
        if let Err(e) = AnsiTransactionManager::commit_transaction(conn).await {
            tracing::error!(error = %e, "mutation commit failed; outcome unknown");
            return Err(Abort::Fail(StorageError::from(e).into()));
        }
        Ok((outcomes, applied, logged))
    }

    /// Inside the transaction: dedupe, apply every client transaction
    /// (each in its own savepoint when careful), then one log insert for
    /// everything that applied.
    async fn apply_all(&self, conn: &mut Conn, items: &[Item<'_>], mode: Mode) -> Result<Attempted, Abort> {
        let keys: Vec<(String, String)> =
            items.iter().map(|i| (i.tx.client_id.clone(), i.tx.client_tx_id.clone())).collect();
        let found = match mode {
            Mode::Optimistic => log::try_lock_and_find_committed(conn, &keys).await.map_err(StorageError::from)?,
            Mode::Careful => None,
        };
        let found = match found {
            Some(found) => found,
            None => {
                log::lock_dedupe_keys(conn, &keys).await.map_err(StorageError::from)?;
                log::find_committed_pairs(conn, &keys).await.map_err(StorageError::from)?
            }
        };
        let mut committed: HashMap<(String, String), SyncId> = HashMap::with_capacity(found.len());
        for (key, id) in found {
            committed.entry(key).or_insert(id);
        }

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
                if mode == Mode::Optimistic {
                    return Err(Abort::Retry);
                }
                outcomes.push(Outcome::Failed(MutationError::UnknownModel(tx.model_name.clone()).to_string()));
                continue;
            };
            let input =
                TxInput { action: tx.action.into(), model_id: &tx.model_id, payload: &tx.payload, user: item.user };
            let careful = mode == Mode::Careful;
            if careful {
                AnsiTransactionManager::begin_transaction(conn).await.map_err(StorageError::from)?;
            }
            let result = model.apply(&self.registry, conn, &input).await;
            match result {
                Ok(done) => {
                    if careful {
                        AnsiTransactionManager::commit_transaction(conn).await.map_err(StorageError::from)?;
                    }
                    outcomes.push(Outcome::Applied { applied: applied.len(), logged: 0 });
                    applied.push(done);
                }
                Err(e) => {
                    if careful {
                        AnsiTransactionManager::rollback_transaction(conn).await.map_err(StorageError::from)?;
                    }
                    match e {
                        MutationError::Database(db) if is_connection_error(&db) => {
                            return Err(Abort::Fail(StorageError::Query(db).into()));
                        }
                        // The transaction may have written, or failed a
                        // statement: undo the whole attempt.
                        _ if !careful => return Err(Abort::Retry),
                        e => {
                            tracing::info!(model = %crate::log_text::clip(&tx.model_name), client_tx_id = %crate::log_text::clip(&tx.client_tx_id), error = ?crate::log_text::clip(&e), "mutation rejected");
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
        let logged = match log::append(conn, actions).await {
            Ok(logged) => logged,
            // A duplicate committed between the optimistic dedupe read and
            // its lock: the careful run finds it.
            // Anything else unexpected there (a statement a hook failed and
            // hid, say) is also left to the careful run to attribute.
            Err(e) if mode == Mode::Optimistic && !is_connection_error(&e) => {
                if !log::is_duplicate_pair(&e) {
                    tracing::warn!(error = %e, "optimistic log insert failed; running the group carefully");
                }
                return Err(Abort::Retry);
            }
            Err(e) => return Err(StorageError::from(e).into()),
        };
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

/// Opens the group's transaction on the lane's connection, taking one from
/// the pool if the lane has none. A kept connection that fails to begin
/// (it broke while idle) is replaced once: nothing ran on it yet.
async fn begin<'c>(pool: &Pool, held: &'c mut Option<PooledConn>) -> Result<&'c mut Conn, ServiceError> {
    if let Some(conn) = held.as_mut() {
        match AnsiTransactionManager::begin_transaction(&mut **conn).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, "a kept mutation connection failed; taking another");
                *held = None;
            }
        }
    }
    if held.is_none() {
        let mut conn = pool.get().await.map_err(StorageError::from)?;
        AnsiTransactionManager::begin_transaction(&mut *conn).await.map_err(StorageError::from)?;
        *held = Some(conn);
    }
    match held.as_mut() {
        Some(conn) => Ok(&mut **conn),
        None => Err(ServiceError::Unavailable),
    }
}
