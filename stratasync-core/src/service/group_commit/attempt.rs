//! Running one group's database transaction: the optimistic, careful and
//! strict attempts, and how each failure is charged to a transaction, a
//! request or the group (see [`GroupCommitConfig`](super::GroupCommitConfig)).

mod pass;

use super::after::{AfterHook, Answer};
use super::Committer;
use crate::auth::AuthContext;
use crate::error::{MutationError, ServiceError};
use crate::protocol::{MutateRequest, SyncAction, SyncId, TransactionInput, TxResult};
use crate::service::mutate::Applied;
use crate::storage::fault::{classify, Fault};
use crate::storage::{Conn, Pool, PooledConn, StorageError};
use diesel_async::{AnsiTransactionManager, TransactionManager};
use pass::{unwind_to, Pass};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::RwLock;

/// The message of an outcome that cannot happen (an index out of place).
const UNEXPECTED: &str = "Mutation failed";

/// The message of a client transaction whose application code panicked (a
/// codec, a `references` check, generated model code; a panicking
/// before-hook has its own, [`MutationError::HookPanicked`]).
const PANICKED: &str = "Mutation failed";

/// How a group runs, from the cheapest to the most careful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    /// Dedupe locks tried without waiting, no savepoints; any surprise
    /// rolls the group back to run it [`Mode::Careful`]ly.
    Optimistic,
    /// Dedupe locks waited for, one savepoint per client transaction and
    /// one around each request of several transactions.
    Careful,
    /// Careful, and deferred constraints are checked at once, and each
    /// client transaction's log rows are tried (then rolled back) inside
    /// its savepoint: whatever the group's log insert or commit would fail
    /// on is charged to the transaction that caused it.
    Strict,
}

/// Why an attempt ended without committing.
enum Abort {
    /// Run the group again in this mode (at least); what the attempt
    /// learned is in the [`Verdicts`].
    Retry(Mode),
    /// PostgreSQL broke a deadlock with another lane: run the group again
    /// alone.
    Deadlock,
    /// The group fails; each of its requests gets a retryable error.
    Fail(ServiceError),
}

/// What earlier attempts of a group learned.
#[derive(Default)]
struct Verdicts {
    /// Requests stopped by a condition of the moment: nothing of them is
    /// applied, and each is answered with a retryable error.
    interrupted: HashSet<usize>,
    /// Client transactions known to fail, with their message and reason
    /// class, which are not run again (a panicking hook; an error a hook
    /// swallowed).
    failed: HashMap<usize, Rejected>,
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
    Failed(Rejected),
    /// Not applied: its request was interrupted.
    Skipped,
}

/// A failed client transaction's message, and its reason class for the
/// metrics.
#[derive(Clone)]
struct Rejected {
    message: String,
    reason: &'static str,
}

impl From<MutationError> for Rejected {
    fn from(e: MutationError) -> Self {
        Rejected { reason: crate::metrics::reject_reason(&e), message: e.to_string() }
    }
}

/// One client transaction of a group, with its caller and request.
struct Item<'a> {
    user: &'a AuthContext,
    tx: &'a TransactionInput,
    /// The index of its request in the group.
    request: usize,
}

/// A committed attempt.
struct Attempted {
    outcomes: Vec<Outcome>,
    applied: Vec<Applied>,
    logged: Vec<SyncAction>,
    verdicts: Verdicts,
}

/// How one client transaction's turn ended.
enum Step {
    /// It has this outcome.
    Done(Outcome),
    /// A condition of the moment stopped it: its request is interrupted.
    Interrupt,
}

impl Committer {
    /// Applies, logs and commits a group of requests in one transaction,
    /// then publishes; answers each request with its own results (or a
    /// retryable error if it was interrupted). `held` is the lane's
    /// connection (taken from the pool when there is none, dropped after a
    /// failure). `Err` when the whole group failed.
    pub(super) async fn commit_group(
        &self,
        held: &mut Option<PooledConn>,
        gate: &RwLock<()>,
        requests: &[(&AuthContext, &MutateRequest)],
    ) -> Result<Vec<Result<Answer, ServiceError>>, ServiceError> {
        let items: Vec<Item<'_>> = requests
            .iter()
            .enumerate()
            .flat_map(|(index, &(user, request))| {
                request.transactions.iter().map(move |tx| Item { user, tx, request: index })
            })
            .collect();
        let mut result = {
            let _shared = gate.read().await;
            self.run(held, &items, false).await
        };
        if matches!(result, Err(Abort::Deadlock)) {
            tracing::warn!(requests = requests.len(), "mutation group deadlocked with another lane; running it alone");
            let _alone = gate.write().await;
            result = self.run(held, &items, true).await;
        }
        match result {
            Ok(done) => Ok(self.answers(requests, &items, done)),
            Err(abort) => {
                // Whatever state it is in, a connection that failed goes
                // back to the pool (which checks it) and the next group
                // takes another.
                *held = None;
                Err(match abort {
                    Abort::Fail(e) => e,
                    Abort::Retry(_) | Abort::Deadlock => ServiceError::Unavailable,
                })
            }
        }
    }

    /// Runs the group's transaction to its commit, each attempt stricter
    /// than the last or knowing more. `alone`: no other lane runs (a
    /// deadlock is then charged like any other condition of the moment).
    async fn run(&self, held: &mut Option<PooledConn>, items: &[Item<'_>], alone: bool) -> Result<Attempted, Abort> {
        let mut verdicts = Verdicts::default();
        let mut mode = Mode::Optimistic;
        // Every retry moves to a stricter mode or learns the verdict of one
        // more transaction.
        for _ in 0..items.len() + 3 {
            let conn = begin(&self.writer.pool, held, &self.begin).await.map_err(Abort::Fail)?;
            match self.attempt(conn, items, mode, &mut verdicts, alone).await {
                Ok((outcomes, applied, logged)) => return Ok(Attempted { outcomes, applied, logged, verdicts }),
                Err(Abort::Retry(next)) => mode = mode.max(next),
                Err(abort) => return Err(abort),
            }
        }
        Err(Abort::Fail(ServiceError::Unavailable))
    }

    /// One attempt inside the open transaction, ending it: committed
    /// (`Ok`), or rolled back (`Err`).
    async fn attempt(
        &self,
        conn: &mut Conn,
        items: &[Item<'_>],
        mode: Mode,
        verdicts: &mut Verdicts,
        alone: bool,
    ) -> Result<(Vec<Outcome>, Vec<Applied>, Vec<SyncAction>), Abort> {
        let applied = Pass::new(self, &mut *conn, items, mode, verdicts, alone).run().await;
        let done = match applied {
            Ok(done) => done,
            Err(abort) => {
                // The whole transaction, and whatever application code left
                // open inside it.
                if let Err(e) = unwind_to(conn, Some(0)).await {
                    // The connection is unusable: fail the group.
                    tracing::warn!(error = %e, "rollback of a mutation group failed");
                    return Err(Abort::Fail(StorageError::from(e).into()));
                }
                return Err(abort);
            }
        };
        if let Err(e) = AnsiTransactionManager::commit_transaction(conn).await {
            // A commit the server refused (a deferred constraint) rolled
            // everything back: run again to find the culprit. Anything else
            // leaves the outcome unknown.
            if classify(&e) == Fault::Caused && mode < Mode::Strict {
                tracing::warn!(error = %e, "the commit of a mutation group was refused; running it strictly");
                return Err(Abort::Retry(Mode::Strict));
            }
            tracing::error!(error = %e, "mutation commit failed; outcome unknown");
            return Err(Abort::Fail(StorageError::from(e).into()));
        }
        Ok(done)
    }

    /// Each request's answer; publishes the committed actions.
    fn answers(
        &self,
        requests: &[(&AuthContext, &MutateRequest)],
        items: &[Item<'_>],
        done: Attempted,
    ) -> Vec<Result<Answer, ServiceError>> {
        let Attempted { outcomes, applied, logged, verdicts } = done;
        count_outcomes(items, &outcomes, &verdicts);
        let published: Vec<Arc<SyncAction>> = logged.into_iter().map(Arc::new).collect();
        let mut applied: Vec<Option<Applied>> = applied.into_iter().map(Some).collect();
        let mut results: Vec<TxResult> = Vec::with_capacity(items.len());
        let mut after: Vec<(usize, AfterHook)> = Vec::new();
        for (i, (item, outcome)) in items.iter().zip(&outcomes).enumerate() {
            let id = item.tx.client_tx_id.clone();
            let result = match outcome {
                Outcome::Duplicate(sync_id) => TxResult::success(id, *sync_id, Vec::new()),
                Outcome::SameAs(j) => match results.get(*j) {
                    Some(TxResult::Success { sync_id, .. }) => TxResult::success(id, *sync_id, Vec::new()),
                    Some(TxResult::Failure { error, .. }) => TxResult::failure(id, error.clone()),
                    None => TxResult::failure(id, UNEXPECTED.to_owned()),
                },
                Outcome::Applied { applied: a, logged: l } => {
                    match (applied.get_mut(*a).and_then(Option::take), published.get(*l)) {
                        (Some(done), Some(action)) => {
                            let hook = AfterHook {
                                index: 0,
                                model: done.model,
                                model_id: done.model_id,
                                data: done.data,
                                action: action.clone(),
                            };
                            after.push((i, hook));
                            TxResult::success(id, action.sync_id, Vec::new())
                        }
                        _ => TxResult::failure(id, UNEXPECTED.to_owned()),
                    }
                }
                Outcome::Failed(error) => TxResult::failure(id, error.message.clone()),
                // Never sent: its request is answered with an error.
                Outcome::Skipped => TxResult::failure(id, String::new()),
            };
            results.push(result);
        }
        self.writer.bus.publish(published);

        let mut results = results.into_iter();
        let mut after = after.into_iter().peekable();
        let mut start = 0;
        requests
            .iter()
            .enumerate()
            .map(|(index, (_, request))| {
                let n = request.transactions.len();
                let own: Vec<TxResult> = results.by_ref().take(n).collect();
                let mut hooks = Vec::new();
                while let Some((i, mut hook)) = after.next_if(|(i, _)| *i < start + n) {
                    hook.index = i - start;
                    hooks.push(hook);
                }
                start += n;
                if verdicts.interrupted.contains(&index) {
                    Err(ServiceError::Interrupted)
                } else {
                    Ok(Answer { results: own, after: hooks })
                }
            })
            .collect()
    }
}

/// Counts each client transaction's outcome in the metrics.
fn count_outcomes(items: &[Item<'_>], outcomes: &[Outcome], verdicts: &Verdicts) {
    use crate::metrics::{mutations, TxOutcome};
    let (mut applied, mut deduplicated, mut interrupted) = (0, 0, 0);
    for (item, outcome) in items.iter().zip(outcomes) {
        if verdicts.interrupted.contains(&item.request) {
            interrupted += 1;
            continue;
        }
        match outcome {
            Outcome::Applied { .. } => applied += 1,
            Outcome::Duplicate(_) | Outcome::SameAs(_) => deduplicated += 1,
            Outcome::Failed(rejected) => mutations(TxOutcome::Rejected(rejected.reason), 1),
            Outcome::Skipped => interrupted += 1,
        }
    }
    mutations(TxOutcome::Applied, applied);
    mutations(TxOutcome::Deduplicated, deduplicated);
    mutations(TxOutcome::Interrupted, interrupted);
}

/// Opens the group's transaction (with the lane's timeouts, `begin`) on
/// the lane's connection, taking one from the pool if the lane has none. A
/// kept connection that fails to begin (it broke while idle) is replaced
/// once: nothing ran on it yet.
async fn begin<'c>(pool: &Pool, held: &'c mut Option<PooledConn>, begin: &str) -> Result<&'c mut Conn, ServiceError> {
    if let Some(conn) = held.as_mut() {
        if let Err(e) = AnsiTransactionManager::begin_transaction_sql(&mut **conn, begin).await {
            tracing::warn!(error = %e, "a kept mutation connection failed; taking another");
            *held = None;
        }
    }
    if held.is_none() {
        let mut conn = pool.get().await.map_err(StorageError::from)?;
        AnsiTransactionManager::begin_transaction_sql(&mut *conn, begin).await.map_err(StorageError::from)?;
        *held = Some(conn);
    }
    match held.as_mut() {
        Some(conn) => Ok(&mut **conn),
        None => Err(ServiceError::Unavailable),
    }
}
