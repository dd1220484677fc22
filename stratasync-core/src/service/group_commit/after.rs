//! A committed request's answer, and its `after_mutation` hooks, which run
//! off the lane once the group is committed and published.

use crate::error::{hook_message, MutationError};
use crate::model::{JsonObject, MutationEvent};
use crate::protocol::{MutateRequest, MutateResponse, SyncAction, TxResult};
use crate::service::{DynModel, Registry};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// What a committed request is answered, once its hooks have run.
pub(super) struct Answer {
    /// One result per transaction, in request order (no warnings yet).
    pub(super) results: Vec<TxResult>,
    /// The hooks its applied transactions call, in request order.
    pub(super) after: Vec<AfterHook>,
}

/// One `after_mutation` call owed to a committed transaction.
pub(super) struct AfterHook {
    /// The transaction's index in its request (and in `results`).
    pub(super) index: usize,
    /// The model's wire name.
    pub(super) model: &'static str,
    /// The canonical model id.
    pub(super) model_id: String,
    /// The action's data.
    pub(super) data: JsonObject,
    /// The committed action.
    pub(super) action: Arc<SyncAction>,
}

impl Answer {
    /// Runs the hooks one after another and builds the response; a hook's
    /// error or panic becomes a warning on its transaction's result (the
    /// mutation stays committed).
    pub(super) async fn finish(mut self, registry: &Registry, request: &MutateRequest) -> MutateResponse {
        for hook in &self.after {
            let (Some(model), Some(tx)) = (registry.get(hook.model), request.transactions.get(hook.index)) else {
                continue;
            };
            let event = MutationEvent {
                model_name: hook.model,
                model_id: &hook.model_id,
                action: hook.action.action,
                payload: &tx.payload,
                data: &hook.data,
                sync_id: hook.action.sync_id.0,
            };
            let Some(warning) = after_mutation(model.as_ref(), &event).await else { continue };
            if let Some(TxResult::Success { warnings, .. }) = self.results.get_mut(hook.index) {
                warnings.push(format!("onAfterMutation hook failed: {warning}"));
            }
        }
        MutateResponse::from_results(self.results)
    }
}

/// Runs `model`'s `after_mutation` hook for `event`: `None` when it
/// succeeded, else the warning its error or panic becomes (the mutation
/// stays committed; the cause is logged).
pub(crate) async fn after_mutation(model: &dyn DynModel, event: &MutationEvent<'_>) -> Option<String> {
    match AssertUnwindSafe(model.after_mutation(event)).catch_unwind().await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(model = event.model_name, error = ?e, "after-mutation hook failed");
            Some(hook_message(&e))
        }
        Err(panic) => {
            tracing::error!(
                model = event.model_name,
                panic = super::super::supervise::panic_message(panic.as_ref()),
                "after-mutation hook panicked"
            );
            Some(MutationError::HookPanicked.to_string())
        }
    }
}
