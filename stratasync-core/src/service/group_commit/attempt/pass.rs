//! One attempt at a group, inside the group's transaction: each client
//! transaction deduplicated, applied (in a savepoint when careful) and
//! judged, and the group's log rows written.

use super::{Abort, Item, Mode, Outcome, Rejected, Step, Verdicts, PANICKED};
use crate::error::MutationError;
use crate::protocol::{SyncAction, SyncId};
use crate::service::group_commit::Committer;
use crate::service::mutate::{Applied, TxInput};
use crate::storage::fault::{classify, Fault};
use crate::storage::{log, Conn, StorageError};
use diesel_async::{AnsiTransactionManager, SimpleAsyncConnection, TransactionManager};
use futures_util::FutureExt;
use std::any::Any;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;

/// One attempt in progress, inside the group's transaction.
pub(super) struct Pass<'c, 'a> {
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
    pub(super) fn new(
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
    pub(super) async fn run(mut self) -> Result<(Vec<Outcome>, Vec<Applied>, Vec<SyncAction>), Abort> {
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
            panic = crate::service::supervise::panic_message(panic.as_ref()),
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
pub(super) async fn unwind_to(conn: &mut Conn, target: Option<u32>) -> Result<(), diesel::result::Error> {
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
