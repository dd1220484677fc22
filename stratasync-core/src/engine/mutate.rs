//! `POST /sync/mutate` and writes from server code on the engine (the
//! group commit itself is [`crate::service::group_commit`]; the writer
//! [`crate::write`]).

use super::SyncEngine;
use crate::auth::AuthContext;
use crate::error::ServiceError;
use crate::protocol::{MutateRequest, MutateResponse};

impl SyncEngine {
    /// Processes a batch (docs/protocol.md §4.4, §5) and publishes the committed
    /// actions on the bus. The batch may share its database transaction
    /// with concurrent batches ([`GroupCommitConfig`](super::GroupCommitConfig)).
    ///
    /// Errors are retryable: [`ServiceError::RateLimited`] (the user's
    /// rate limit), [`ServiceError::Interrupted`] (the batch's own work hit
    /// a timeout or similar; nothing of it committed) and failures of the
    /// database. A batch whose commit outcome is unknown is reported as an
    /// error (a 5xx), never as `success:false`, so the client retries and
    /// deduplication answers. After [`SyncEngine::shutdown`] every batch
    /// fails with [`ServiceError::Unavailable`].
    pub async fn mutate(&self, user: &AuthContext, request: &MutateRequest) -> Result<MutateResponse, ServiceError> {
        if let Some(limiter) = &self.limiter {
            if let Err(e) = limiter.check(&user.user.user_id, request.transactions.len()) {
                crate::metrics::mutations(crate::metrics::TxOutcome::RateLimited, request.transactions.len());
                return Err(e);
            }
        }
        self.running.lanes.submit(user, request).await
    }

    /// A writer for application code: synced rows written inside the
    /// application's own transactions, with the checks, hooks and log of
    /// client mutations (see [`crate::write`]).
    pub fn writer(&self) -> crate::write::SyncWriter {
        crate::write::SyncWriter::new(
            self.pool.clone(),
            self.registry.clone(),
            self.bus.clone(),
            self.running.hook_timeout,
        )
    }
}
