//! Group commit: concurrent mutate requests share database transactions
//! (how, and what isolates them: [`GroupCommitConfig`]).

pub(crate) mod after;
mod attempt;

use self::after::Answer;
use crate::auth::AuthContext;
use crate::bus::DeltaBus;
use crate::error::ServiceError;
use crate::metrics::{self, TxOutcome};
use crate::protocol::{MutateRequest, MutateResponse};
use crate::request_id::RequestId;
use crate::service::Registry;
use crate::storage::{Pool, PooledConn};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, RwLock};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Tuning of group commit, by which concurrent mutate requests share
/// database transactions.
///
/// Sync ids must be allocated in commit order, so every commit passes one
/// serialization point (the insert-order lock, held from the log insert to
/// the commit). Committing each request on its own would cap throughput
/// near one request per WAL flush. Instead, requests queue here and a
/// *lane* takes whatever has queued up: one lane applies a whole group in
/// **one** database transaction, logs every successful client transaction
/// with a single multi-row `INSERT` (which takes the insert-order lock
/// itself), and commits once. The lock is held only for that `INSERT` and
/// the `COMMIT`. Under light load a request runs alone, with no added wait.
///
/// # Attempts
///
/// Round trips are what a lane spends its time on, so a group first runs
/// *optimistically*: deduplication in one statement that tries the dedupe
/// locks without waiting, and the client transactions back to back with no
/// savepoints. If anything goes differently (a dedupe lock is held by a
/// concurrent duplicate, a client transaction fails, or a duplicate
/// committed meanwhile), the group's transaction is rolled back and the
/// group runs again *carefully*: waiting for the dedupe locks, each client
/// transaction in its own savepoint, and each request of several
/// transactions in a savepoint around them, so each still succeeds or
/// fails on its own. A client transaction then sees exactly what it would
/// have seen in the careful run alone; its before-hooks may have run once
/// more in the rolled-back attempt (as for any retried transaction:
/// whatever they wrote to the database was rolled back with it).
///
/// # Isolation: a request can fail only itself
///
/// Every failure inside a client transaction is classified (see
/// `storage::fault`) and charged to that transaction or its request alone:
///
/// * what the transaction caused (a constraint, an invalid value, a hook's
///   refusal or panic) fails it alone with a fixed message
///   (`success:false`), and the others of the group commit;
/// * so does a panic in any application code it runs (a custom codec or
///   `Storable` impl, a `references` check, generated model code): it
///   fails alone with `Mutation failed` (`success:false`, counted with
///   reason `panic`), whatever it had opened is rolled back, it is not
///   run again, and the others of the group commit;
/// * a condition of the moment inside it (its statement or lock timeout, a
///   before-hook that overran [`GroupCommitConfig::hook_timeout`], a
///   serialization failure) rolls back its whole request, which is
///   answered with a retryable 503 ([`ServiceError::Interrupted`]); the
///   other requests commit;
/// * a failure that surfaces only at the group's log `INSERT` or `COMMIT`
///   (a hook that put text the log cannot store into its data, a deferred
///   constraint) sends the group to a *strict* attempt: constraints are
///   checked at once, and each client transaction's log rows are tried
///   (and rolled back) inside its own savepoint, so the culprit fails
///   alone and the real log insert succeeds;
/// * only a lost connection, or a commit whose outcome is unknown, fails
///   the whole group with a retryable 503: the database is unavailable.
///   The clients retry and deduplication answers for whatever did commit;
/// * a panic that escapes the group anyway (a bug in the group machinery
///   itself, or a connection that could not be cleaned up after a
///   transaction's panic) runs the group's requests again one at a time,
///   in queue order, each as a group of its own on a fresh connection: the
///   request whose run panics again gets a retryable 503 alone, the others
///   commit (or, if they had committed before the panic, are answered by
///   deduplication with their original sync ids: never twice).
///
/// Statements of the lanes' transactions run under PostgreSQL's
/// `statement_timeout` and `lock_timeout` ([`GroupCommitConfig`], set with
/// `SET LOCAL`, so they never outlive the transaction), so a row lock held
/// elsewhere or a runaway query stalls the lane for a bounded time.
///
/// # Hooks
///
/// Before-hooks run on this shared commit path, inside the group's
/// transaction, and must be quick: each runs within
/// [`GroupCommitConfig::hook_timeout`], and while it runs every other
/// request of its lane waits. A panic in a before-hook fails its
/// transaction alone (`Mutation rejected by hook`), as does a panic in
/// other application code (`Mutation failed`); the lane carries on.
///
/// `after_mutation` hooks run after the group is committed and published,
/// off the lane: the lane takes the next group at once, while the request
/// that caused them waits for its own hooks, so their warnings are in its
/// response. A slow after-hook delays only its own response.
///
/// # Lanes
///
/// Several lanes may run groups concurrently, each on its own connection
/// (the lane keeps it between groups). Requests are routed to lanes by
/// client id, so one client's requests are committed in the order they
/// arrived, as with a single lane. Groups that lock the same rows in
/// different orders can deadlock; PostgreSQL then aborts one of them,
/// which rolls back entirely, and its lane runs it again alone (the other
/// lanes wait), so a deadlock between lanes costs time but fails no
/// request.
///
/// The lanes start with the engine ([`crate::engine::SyncEngineBuilder::start`]).
/// [`crate::SyncEngine::shutdown`] closes their queues: each lane commits
/// and answers what was queued, then ends.
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
    /// PostgreSQL's `statement_timeout` for every statement of the lanes'
    /// transactions, hooks' queries included. A client transaction whose
    /// statement runs longer fails its request with a retryable 503. Zero
    /// turns it off.
    pub statement_timeout: Duration,
    /// PostgreSQL's `lock_timeout` for the lanes' transactions: how long a
    /// statement waits for a lock (a row locked by another session, say)
    /// before it fails its request with a retryable 503. Zero turns it off.
    pub lock_timeout: Duration,
    /// How long each before-hook may run before it fails its request with a
    /// retryable 503. Zero turns it off.
    pub hook_timeout: Duration,
}

/// Lanes of [`GroupCommitConfig::default`].
pub(crate) const DEFAULT_LANES: usize = 1;

/// [`GroupCommitConfig::statement_timeout`] by default.
pub(crate) const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// [`GroupCommitConfig::lock_timeout`] by default.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// [`GroupCommitConfig::hook_timeout`] by default.
pub(crate) const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(2);

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            lanes: DEFAULT_LANES,
            max_group: 1000,
            queue: 4096,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            hook_timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

impl GroupCommitConfig {
    /// The statement that opens a lane's transaction with its timeouts (in
    /// milliseconds, at most PostgreSQL's largest, about 24 days).
    fn begin_sql(&self) -> String {
        let ms = |d: Duration| d.as_millis().min(i32::MAX as u128);
        format!(
            "BEGIN; SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
            ms(self.statement_timeout),
            ms(self.lock_timeout)
        )
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

/// A lane's view: the writer and the settings of its transactions.
struct Committer {
    writer: Writer,
    /// `BEGIN` with the timeouts.
    begin: String,
    hook_timeout: Duration,
}

/// A queued request and where its answer goes.
struct Job {
    user: AuthContext,
    request: MutateRequest,
    /// The id of the HTTP request that submitted it, if any.
    request_id: Option<RequestId>,
    reply: oneshot::Sender<Result<MutateResponse, ServiceError>>,
}

/// Request ids a group's span lists at most (the rest are counted).
const SPAN_REQUEST_IDS: usize = 16;

/// The span of one group: its size and the ids of its requests.
fn group_span(group: &[Job]) -> tracing::Span {
    let transactions: usize = group.iter().map(|j| j.request.transactions.len()).sum();
    let mut ids: Vec<&str> = group.iter().filter_map(|j| j.request_id.as_ref().map(RequestId::as_str)).collect();
    let more = ids.len().saturating_sub(SPAN_REQUEST_IDS);
    ids.truncate(SPAN_REQUEST_IDS);
    let mut request_ids = ids.join(",");
    if more > 0 {
        request_ids.push_str(&format!(",+{more}"));
    }
    tracing::info_span!("commit_group", requests = group.len(), transactions, %request_ids)
}

/// The queues in front of the lanes, one each, and the lanes' tasks.
pub(crate) struct GroupCommit {
    /// Emptied by [`GroupCommit::close`]: a lane ends once its queue is
    /// closed and drained.
    lanes: Mutex<Vec<mpsc::Sender<Job>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl GroupCommit {
    /// Starts the lanes (inside the tokio runtime).
    pub(crate) fn start(writer: Writer, config: GroupCommitConfig) -> GroupCommit {
        let gate = Arc::new(RwLock::new(()));
        // Each lane keeps a connection: leave the other half of the pool to
        // the reads.
        let lanes = config.lanes.min(writer.pool.status().max_size / 2).max(1);
        let queue = (config.queue / lanes).max(1);
        let committer = Arc::new(Committer { begin: config.begin_sql(), hook_timeout: config.hook_timeout, writer });
        let (lanes, tasks) = (0..lanes)
            .map(|_| {
                let (jobs, queue) = mpsc::channel(queue);
                let task = tokio::spawn(lane(committer.clone(), queue, gate.clone(), config.max_group.max(1)));
                (jobs, task)
            })
            .unzip();
        GroupCommit { lanes: Mutex::new(lanes), tasks: Mutex::new(tasks) }
    }

    /// Stops taking requests (later ones fail with
    /// [`ServiceError::Unavailable`]) and waits until the lanes have
    /// committed and answered every request queued before.
    pub(crate) async fn close(&self) {
        drop(std::mem::take(&mut *self.lanes.lock().unwrap_or_else(|e| e.into_inner())));
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a mutation lane ended abnormally");
            }
        }
    }

    /// Queues a request and waits for its response (including its
    /// after-mutation hooks, which run off the lane).
    pub(crate) async fn submit(
        &self,
        user: &AuthContext,
        request: &MutateRequest,
    ) -> Result<MutateResponse, ServiceError> {
        let (reply, response) = oneshot::channel();
        let job = Job { user: user.clone(), request: request.clone(), request_id: RequestId::current(), reply };
        // One client's requests always go to the same lane, which commits
        // them in the order they arrived.
        let client = request.transactions.first().map_or("", |tx| tx.client_id.as_str());
        let mut hash = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(client, &mut hash);
        let jobs = {
            let lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
            let lane = (std::hash::Hasher::finish(&hash) % lanes.len().max(1) as u64) as usize;
            // Closed lanes: the engine is shutting down.
            lanes.get(lane).cloned().ok_or(ServiceError::Unavailable)?
        };
        jobs.send(job).await.map_err(|_| ServiceError::Unavailable)?;
        // Not held while waiting: a closed queue must end its lane once
        // the lane has taken what was queued.
        drop(jobs);
        response.await.map_err(|_| ServiceError::Unavailable)?
    }
}

/// Takes the first queued job and whatever else has queued, up to
/// `max_group` client transactions; `None` when the queue is closed.
async fn next_group(queue: &mut mpsc::Receiver<Job>, max_group: usize) -> Option<Vec<Job>> {
    let first = queue.recv().await?;
    let mut size = first.request.transactions.len();
    let mut group = vec![first];
    while size < max_group {
        let Ok(next) = queue.try_recv() else { break };
        size += next.request.transactions.len();
        group.push(next);
    }
    Some(group)
}

/// What running a group gave: each request's answer, the group's
/// failure, or a panic that escaped it.
type Run = std::thread::Result<Result<Vec<Result<Answer, ServiceError>>, ServiceError>>;

/// One lane: takes what has queued, commits it as a group, answers.
///
/// `gate` is read-locked while a group runs; a group that deadlocked runs
/// again under the write lock, alone, so it cannot deadlock again with
/// another lane. A panic in a client transaction's application code fails
/// that transaction alone (see the attempts); a panic that escapes the
/// group anyway sends its requests through again one at a time (see
/// [`Committer::one_at_a_time`]), and the lane carries on.
async fn lane(committer: Arc<Committer>, mut queue: mpsc::Receiver<Job>, gate: Arc<RwLock<()>>, max_group: usize) {
    let mut conn: Option<PooledConn> = None;
    while let Some(group) = next_group(&mut queue, max_group).await {
        let span = group_span(&group);
        let run = committer.run_caught(&mut conn, &gate, &group).instrument(span.clone()).await;
        match run {
            Err(panic) if group.len() > 1 => {
                span.in_scope(|| {
                    tracing::error!(
                        panic = super::supervise::panic_message(panic.as_ref()),
                        requests = group.len(),
                        "a mutation group panicked; running its requests one at a time"
                    )
                });
                committer.one_at_a_time(&mut conn, &gate, group).instrument(span).await;
            }
            run => span.in_scope(|| committer.settle(group, run)),
        }
    }
}

impl Committer {
    /// Commits `group` (on the lane's connection `conn`), catching a panic;
    /// records the group's metrics. After a panic the connection is in an
    /// unknown state: it goes back to the pool (which checks it: an open
    /// transaction discards it) and the next run takes another.
    async fn run_caught(&self, conn: &mut Option<PooledConn>, gate: &RwLock<()>, group: &[Job]) -> Run {
        let started = Instant::now();
        let transactions: usize = group.iter().map(|j| j.request.transactions.len()).sum();
        let requests: Vec<(&AuthContext, &MutateRequest)> = group.iter().map(|j| (&j.user, &j.request)).collect();
        let run = AssertUnwindSafe(self.commit_group(conn, gate, &requests)).catch_unwind().await;
        if run.is_err() {
            *conn = None;
        }
        metrics::commit_group(group.len(), transactions, started.elapsed());
        tracing::debug!(elapsed = ?started.elapsed(), ok = matches!(run, Ok(Ok(_))), "mutation group done");
        run
    }

    /// After a panic escaped a group (a bug outside any client
    /// transaction's application code, or a connection that could not be
    /// cleaned up after one): each request runs again as a group of its
    /// own, in queue order, so the one whose work panics fails alone with
    /// a retryable 503 and the others commit. A request that had committed
    /// before the panic is answered by deduplication (its original sync
    /// ids), never committed twice.
    async fn one_at_a_time(&self, conn: &mut Option<PooledConn>, gate: &RwLock<()>, group: Vec<Job>) {
        for job in group {
            let run = self.run_caught(conn, gate, std::slice::from_ref(&job)).await;
            self.settle(vec![job], run);
        }
    }

    /// Answers the requests of a group that ran.
    fn settle(&self, group: Vec<Job>, run: Run) {
        if !matches!(run, Ok(Ok(_))) {
            let transactions: usize = group.iter().map(|j| j.request.transactions.len()).sum();
            metrics::mutations(TxOutcome::Unavailable, transactions);
        }
        match run {
            Ok(Ok(answers)) => {
                for (job, answer) in group.into_iter().zip(answers) {
                    self.answer(job, answer);
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = ?e, requests = group.len(), "mutation group failed; clients will retry");
                let mut e = Some(e);
                for job in group {
                    let _ = job.reply.send(Err(e.take().unwrap_or(ServiceError::Unavailable)));
                }
            }
            Err(panic) => {
                tracing::error!(
                    panic = super::supervise::panic_message(panic.as_ref()),
                    requests = group.len(),
                    "a mutation request panicked; it failed, the lane carries on"
                );
                for job in group {
                    let _ = job.reply.send(Err(ServiceError::Unavailable));
                }
            }
        }
    }

    /// Sends a request its answer: at once, or after its after-mutation
    /// hooks, which run on a task of their own (never on the lane).
    fn answer(&self, job: Job, answer: Result<Answer, ServiceError>) {
        match answer {
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
            Ok(answer) if answer.after.is_empty() => {
                let _ = job.reply.send(Ok(MutateResponse::from_results(answer.results)));
            }
            Ok(answer) => {
                let registry = self.writer.registry.clone();
                tokio::spawn(async move {
                    let response = answer.finish(&registry, &job.request).await;
                    let _ = job.reply.send(Ok(response));
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_set_for_the_transaction_only() {
        assert_eq!(
            GroupCommitConfig::default().begin_sql(),
            "BEGIN; SET LOCAL statement_timeout = 5000; SET LOCAL lock_timeout = 2000"
        );
        let off = GroupCommitConfig {
            statement_timeout: Duration::ZERO,
            lock_timeout: Duration::from_secs(86_400 * 365),
            ..GroupCommitConfig::default()
        };
        assert_eq!(off.begin_sql(), "BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 2147483647");
    }
}
