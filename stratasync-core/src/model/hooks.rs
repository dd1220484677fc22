//! Application hooks around mutations.

use super::JsonObject;
use crate::auth::AuthContext;
use crate::protocol::ActionKind;
use async_trait::async_trait;

/// What a hook may touch: the mutation's own database transaction and the
/// caller.
pub struct HookContext<'a> {
    /// The connection, inside the transaction (and savepoint) of this
    /// mutation. Whatever the hook writes commits or rolls back with it.
    pub conn: &'a mut crate::storage::Conn,
    /// The authenticated caller; for a write of the server's own
    /// ([`Actor::System`](crate::write::Actor::System)) an empty context (no
    /// user id, no groups).
    pub user: &'a AuthContext,
    /// Whether the server itself writes ([`Actor::System`](crate::write::Actor::System)).
    pub system: bool,
}

impl std::fmt::Debug for HookContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookContext").field("user", &self.user).field("system", &self.system).finish_non_exhaustive()
    }
}

/// A hook's refusal or failure.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The mutation is refused; the message is shown to the client.
    #[error("{0}")]
    Reject(String),
    /// The hook failed; the client sees a stable message, the cause is logged.
    #[error("hook failed: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A committed mutation, as given to [`ModelHooks::after_mutation`].
#[derive(Debug)]
pub struct MutationEvent<'a> {
    /// The model's wire name.
    pub model_name: &'a str,
    /// The canonical model id.
    pub model_id: &'a str,
    /// The action letter.
    pub action: ActionKind,
    /// The request payload.
    pub payload: &'a JsonObject,
    /// The `data` stored in the sync action.
    pub data: &'a JsonObject,
    /// The sync id of the committed action.
    pub sync_id: u64,
}

/// Hooks run around one model's mutations. Every method has a default that
/// does nothing, so an implementation overrides only what it needs.
///
/// The `before_*` hooks run for the insert, update and delete of a model
/// with an id field (a *standard* model), whatever its group (a field,
/// `own` or `global`) and id type; archive, unarchive and every action of
/// a composite model run none. `after_mutation` runs for every committed
/// action. Each gets the canonical model id (for a composite model, its
/// computed id); an id in any other spelling is refused before a hook runs.
///
/// The `before_*` hooks run inside the database transaction and may run
/// more than once for one mutation: when another mutation of its group
/// fails, or its group deadlocks, the group is rolled back and applied
/// again (see [`group_commit`](crate::service::group_commit)). Whatever a
/// hook wrote through its connection is rolled back with the attempt;
/// side effects outside the database belong in `after_mutation`, which
/// runs once, after the commit.
///
/// The `before_*` hooks run on the shared commit path: while one runs,
/// the other mutations of its lane wait. They must be quick. Each runs
/// within [`GroupCommitConfig::hook_timeout`] (2 s by default), and its
/// statements under the lane's statement and lock timeouts; a hook that
/// overruns fails its request with a retryable 503, a hook that panics
/// fails its transaction alone (`Mutation rejected by hook`). A
/// `before_insert` may move the row to another group by rewriting the
/// group key (the caller must be allowed to write the new group, and the
/// row is logged there); a `before_update` may not (`Invalid mutation: the
/// group of a record cannot be changed`).
///
/// `after_mutation` runs after the group is committed and published, off
/// the commit path: it may be slow (a webhook) without delaying anyone
/// but the request that caused it, whose response waits for it so that a
/// failure shows as a warning. A panic in it is such a warning too.
///
/// [`GroupCommitConfig::hook_timeout`]: crate::service::group_commit::GroupCommitConfig::hook_timeout
#[async_trait]
pub trait ModelHooks: Send + Sync + 'static {
    /// Before a standard insert, inside the transaction. May rewrite `data`
    /// (wire form, as stored in the sync action) or reject.
    async fn before_insert(
        &self,
        _cx: &mut HookContext<'_>,
        _model_id: &str,
        _payload: &JsonObject,
        _data: &mut JsonObject,
    ) -> Result<(), HookError> {
        Ok(())
    }

    /// Before a standard update, inside the transaction. May rewrite `data`
    /// or reject.
    async fn before_update(
        &self,
        _cx: &mut HookContext<'_>,
        _model_id: &str,
        _payload: &JsonObject,
        _data: &mut JsonObject,
    ) -> Result<(), HookError> {
        Ok(())
    }

    /// Before a standard delete, inside the transaction. May reject.
    async fn before_delete(
        &self,
        _cx: &mut HookContext<'_>,
        _model_id: &str,
        _payload: &JsonObject,
    ) -> Result<(), HookError> {
        Ok(())
    }

    /// After commit and publication, off the commit path. An error (or a
    /// panic) becomes a warning on the result; the mutation stays
    /// committed.
    async fn after_mutation(&self, _event: &MutationEvent<'_>) -> Result<(), HookError> {
        Ok(())
    }
}

/// The hooks of a model that declares none.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl ModelHooks for NoHooks {}
