//! Running one group's database transaction: the optimistic, careful and
//! strict attempts, and how each failure is charged to a transaction, a
//! request or the group (see the [module docs](super)).

use super::after::{AfterHook, Answer};
use super::Committer;
use crate::auth::AuthContext;
use crate::error::{MutationError, ServiceError};
use crate::protocol::{MutateRequest, SyncAction, SyncId, TransactionInput, TxResult};
use crate::service::mutate::{Applied, TxInput};
use crate::storage::fault::{classify, Fault};
use crate::storage::{log, Conn, Pool, PooledConn, StorageError};
use diesel_async::{AnsiTransactionManager, SimpleAsyncConnection, TransactionManager};
use futures_util::FutureExt;
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
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

/// One attempt in progress, inside the group's transaction.
struct Pass<'c, 'a> {
    committer: &'c Committer,
    conn: &'c mut Conn,
    items: &'c [Item<'a>],
    mode: Mode,
    verdicts: &'c mut Verdicts,
    alone: bool,
    /// Pairs committed before this group, with their sync ids.
    committed: HashMap<(String, String), SyncId>,
    /// The first item of each pair in this group.
    first_seen: HashMap<(&'a str, &'a str), usize>,
    outcomes: Vec<Outcome>,
    applied: Vec<Applied>,
}

impl<'c, 'a> Pass<'c, 'a> {
    fn new(
        committer: &'c Committer,
        conn: &'c mut Conn,
        items: &'c [Item<'a>],
        mode: Mode,
        verdicts: &'c mut Verdicts,
        alone: bool,
    ) -> Self {
        Pass {
            committer,
            conn,
            items,
            mode,
            verdicts,
            alone,
            committed: HashMap::new(),
            first_seen: HashMap::new(),
            outcomes: Vec::with_capacity(items.len()),
            applied: Vec::new(),
        }
    }

    fn careful(&self) -> bool {
        self.mode != Mode::Optimistic
    }

    /// A failure of the group's own statements (dedupe, savepoints, the
    /// log insert): nothing to charge a transaction with.
    fn group_error(&self, e: diesel::result::Error) -> Abort {
        if classify(&e) == Fault::Deadlock && !self.alone {
            Abort::Deadlock
        } else {
            Abort::Fail(StorageError::from(e).into())
        }
    }

    /// Inside the transaction: dedupe, apply every request, then one log
    /// insert for everything that applied.
    async fn run(mut self) -> Result<(Vec<Outcome>, Vec<Applied>, Vec<SyncAction>), Abort> {
        self.dedupe().await?;
        if self.mode == Mode::Strict {
            self.conn.batch_execute("SET CONSTRAINTS ALL IMMEDIATE").await.map_err(|e| self.group_error(e))?;
        }
        let items = self.items;
        let mut start = 0;
        while start < items.len() {
            let request = items[start].request;
            let end = start + items[start..].iter().take_while(|i| i.request == request).count();
            self.request(start, end).await?;
            start = end;
        }

        // Cascaded deletes are logged before the action that caused them,
        // everything in one statement under the insert-order lock.
        let mut actions = Vec::new();
        for (item, outcome) in items.iter().zip(self.outcomes.iter_mut()) {
            let Outcome::Applied { applied: a, logged } = outcome else { continue };
            let rows = log_rows(item, &self.applied[*a]);
            *logged = actions.len() + rows.len() - 1;
            actions.extend(rows);
        }
        let logged = match log::append(self.conn, actions).await {
            Ok(logged) => logged,
            Err(e) => {
                return Err(match (self.mode, classify(&e)) {
                    // A duplicate committed between the optimistic dedupe
                    // read and its lock: the careful run finds it. Anything
                    // else there (a statement a hook failed and hid, say)
                    // is also left to the careful run to attribute.
                    (Mode::Optimistic, Fault::Caused) => {
                        if !log::is_duplicate_pair(&e) {
                            tracing::warn!(error = %e, "optimistic log insert failed; running the group carefully");
                        }
                        Abort::Retry(Mode::Careful)
                    }
                    (Mode::Careful, Fault::Caused) => {
                        tracing::warn!(error = %e, "the log insert of a mutation group failed; running it strictly");
                        Abort::Retry(Mode::Strict)
                    }
                    _ => self.group_error(e),
                });
            }
        };
        Ok((self.outcomes, self.applied, logged))
    }

    /// Reads the pairs committed before (taking their dedupe locks).
    async fn dedupe(&mut self) -> Result<(), Abort> {
        let keys: Vec<(String, String)> =
            self.items.iter().map(|i| (i.tx.client_id.clone(), i.tx.client_tx_id.clone())).collect();
        let found = match self.mode {
            Mode::Optimistic => {
                log::try_lock_and_find_committed(self.conn, &keys).await.map_err(|e| self.group_error(e))?
            }
            Mode::Careful | Mode::Strict => None,
        };
        let found = match found {
            Some(found) => found,
            None => {
                log::lock_dedupe_keys(self.conn, &keys).await.map_err(|e| self.group_error(e))?;
                log::find_committed_pairs(self.conn, &keys).await.map_err(|e| self.group_error(e))?
            }
        };
        self.committed.reserve(found.len());
        for (key, id) in found {
            self.committed.entry(key).or_insert(id);
        }
        Ok(())
    }

    /// The transactions `start..end` of one request. When careful, a
    /// request of several runs inside a savepoint of its own, so that an
    /// interruption takes back all of it.
    async fn request(&mut self, start: usize, end: usize) -> Result<(), Abort> {
        let request = self.items[start].request;
        if self.verdicts.interrupted.contains(&request) {
            self.outcomes.extend((start..end).map(|_| Outcome::Skipped));
            return Ok(());
        }
        let shared = self.careful() && end - start > 1;
        if shared {
            AnsiTransactionManager::begin_transaction(self.conn).await.map_err(|e| self.group_error(e))?;
        }
        let applied_before = self.applied.len();
        for i in start..end {
            match self.transaction(i).await? {
                Step::Done(outcome) => self.outcomes.push(outcome),
                Step::Interrupt => {
                    if shared {
                        AnsiTransactionManager::rollback_transaction(self.conn)
                            .await
                            .map_err(|e| Abort::Fail(StorageError::from(e).into()))?;
                    }
                    self.applied.truncate(applied_before);
                    self.outcomes.truncate(start);
                    self.outcomes.extend((start..end).map(|_| Outcome::Skipped));
                    self.first_seen.retain(|_, first| *first < start);
                    self.verdicts.interrupted.insert(request);
                    return Ok(());
                }
            }
        }
        if shared {
            AnsiTransactionManager::commit_transaction(self.conn).await.map_err(|e| self.group_error(e))?;
        }
        Ok(())
    }

    /// One client transaction (in its own savepoint when careful).
    async fn transaction(&mut self, i: usize) -> Result<Step, Abort> {
        let items = self.items;
        let item = &items[i];
        let tx = item.tx;
        if let Some(id) = self.committed.get(&(tx.client_id.clone(), tx.client_tx_id.clone())) {
            return Ok(Step::Done(Outcome::Duplicate(*id)));
        }
        let key = (tx.client_id.as_str(), tx.client_tx_id.as_str());
        if let Some(&first) = self.first_seen.get(&key) {
            return Ok(Step::Done(Outcome::SameAs(first)));
        }
        self.first_seen.insert(key, i);
        if let Some(error) = self.verdicts.failed.get(&i) {
            return Ok(Step::Done(Outcome::Failed(error.clone())));
        }
        let registry = &self.committer.writer.registry;
        let Some(model) = registry.get(&tx.model_name) else {
            if !self.careful() {
                return Err(Abort::Retry(Mode::Careful));
            }
            return Ok(Step::Done(Outcome::Failed(MutationError::UnknownModel(tx.model_name.clone()).into())));
        };
        let input = TxInput {
            action: tx.action.into(),
            model_id: &tx.model_id,
            payload: &tx.payload,
            user: item.user,
            system: false,
            hook_timeout: self.committer.hook_timeout,
        };
        let depth = depth(self.conn);
        if self.careful() {
            AnsiTransactionManager::begin_transaction(self.conn).await.map_err(|e| self.group_error(e))?;
        }
        // Application code runs in here (codecs, `references` checks, the
        // generated model code, hooks): a panic is pinned to this
        // transaction.
        let applied = AssertUnwindSafe(model.apply(registry, self.conn, &input)).catch_unwind().await;
        let mut result = match applied {
            Ok(result) => result,
            Err(panic) => return self.panicked(i, depth, panic).await,
        };
        if self.mode == Mode::Strict {
            if let Ok(done) = &result {
                if let Err(e) = log::probe(self.conn, log_rows(item, done)).await {
                    result = Err(MutationError::from(e));
                }
            }
        }
        match result {
            Ok(done) => {
                if self.careful() {
                    if let Err(e) = AnsiTransactionManager::commit_transaction(self.conn).await {
                        // The savepoint could not be released: a statement
                        // of the transaction failed and a hook hid the error.
                        // It fails; the group runs again without it.
                        if classify(&e) == Fault::Caused {
                            tracing::warn!(error = %e, "a mutation left its transaction aborted; running the group again without it");
                            self.verdicts.failed.insert(i, MutationError::from(e).into());
                            return Err(Abort::Retry(self.mode));
                        }
                        return Err(self.group_error(e));
                    }
                }
                self.applied.push(done);
                Ok(Step::Done(Outcome::Applied { applied: self.applied.len() - 1, logged: 0 }))
            }
            Err(e) => {
                if self.careful() {
                    // Down to where it started: a hook that panicked or
                    // overran may have left a transaction of its own open.
                    if let Err(rollback) = unwind_to(self.conn, depth).await {
                        // The connection is gone: the group fails.
                        tracing::warn!(error = %rollback, cause = ?e, "rolling back a failed mutation failed");
                        return Err(Abort::Fail(StorageError::from(rollback).into()));
                    }
                }
                self.charge(i, e)
            }
        }
    }

    /// A client transaction whose application code panicked: it fails
    /// alone ([`PANICKED`]) and is not run again. Whatever it had opened is
    /// rolled back down to `depth`, the transaction depth it started at:
    /// when careful, the group goes on; when optimistic, the attempt is
    /// rolled back and the group runs carefully without it. If that
    /// rollback fails, the panic goes on to the lane, which runs the
    /// group's requests again one at a time.
    async fn panicked(&mut self, i: usize, depth: Option<u32>, panic: Box<dyn Any + Send>) -> Result<Step, Abort> {
        let item = &self.items[i];
        tracing::error!(
            panic = super::super::supervise::panic_message(panic.as_ref()),
            model = %crate::log_text::clip(&item.tx.model_name),
            client_tx_id = %crate::log_text::clip(&item.tx.client_tx_id),
            "a mutation panicked; it fails alone"
        );
        let rejected = Rejected { message: PANICKED.to_owned(), reason: "panic" };
        self.verdicts.failed.insert(i, rejected.clone());
        if let Err(e) = unwind_to(self.conn, depth).await {
            tracing::warn!(error = %e, "rolling back a panicked mutation failed");
            std::panic::resume_unwind(panic);
        }
        if self.careful() {
            Ok(Step::Done(Outcome::Failed(rejected)))
        } else {
            Err(Abort::Retry(Mode::Careful))
        }
    }

    /// Charges a failed client transaction (already rolled back when
    /// careful): to itself (`success:false`), or to its request (a
    /// condition of the moment), or, for a deadlock with another lane, to
    /// the group (which runs again alone).
    fn charge(&mut self, i: usize, e: MutationError) -> Result<Step, Abort> {
        let item = &self.items[i];
        match e.fault() {
            None if self.careful() => {
                tracing::info!(model = %crate::log_text::clip(&item.tx.model_name), client_tx_id = %crate::log_text::clip(&item.tx.client_tx_id), error = ?crate::log_text::clip(&e), "mutation rejected");
                Ok(Step::Done(Outcome::Failed(e.into())))
            }
            None => {
                // The attempt may have written, or failed a statement: undo
                // it. A panicking hook is not run again.
                if matches!(e, MutationError::HookPanicked) {
                    self.verdicts.failed.insert(i, e.into());
                }
                Err(Abort::Retry(Mode::Careful))
            }
            Some(Fault::Deadlock) if !self.alone => Err(Abort::Deadlock),
            Some(fault) => {
                tracing::warn!(?fault, error = ?e, "a mutation was interrupted; its request is answered 503");
                if self.careful() {
                    Ok(Step::Interrupt)
                } else {
                    self.verdicts.interrupted.insert(item.request);
                    Err(Abort::Retry(Mode::Careful))
                }
            }
        }
    }
}

/// The depth of the connection's open transactions (`None` when its
/// transaction manager is in an error state).
fn depth(conn: &mut Conn) -> Option<u32> {
    let status = AnsiTransactionManager::transaction_manager_status_mut(conn);
    status.transaction_depth().ok().map(|depth| depth.map_or(0, NonZeroU32::get))
}

/// Rolls back the transactions and savepoints open above `target` (what a
/// panic left behind, including any application code opened).
async fn unwind_to(conn: &mut Conn, target: Option<u32>) -> Result<(), diesel::result::Error> {
    use diesel::result::Error::BrokenTransactionManager;
    let target = target.ok_or(BrokenTransactionManager)?;
    loop {
        match depth(conn) {
            Some(now) if now <= target => return Ok(()),
            Some(_) => AnsiTransactionManager::rollback_transaction(conn).await?,
            None => return Err(BrokenTransactionManager),
        }
    }
}

/// The log rows of an applied client transaction: its cascaded deletes,
/// then its own action (last).
fn log_rows(item: &Item<'_>, done: &Applied) -> Vec<log::NewAction> {
    done.log_rows(item.tx.action.into(), Some((&item.tx.client_id, &item.tx.client_tx_id)))
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
