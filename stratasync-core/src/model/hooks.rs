//! Application hooks around mutations, typed per model.

use super::{JsonObject, SyncModel};
use crate::auth::AuthContext;
use crate::error::{HookError, MutationError};
use crate::protocol::ActionKind;
use async_trait::async_trait;

/// What a before-hook may touch: the mutation's own database transaction,
/// the caller, the row's id and the request's payload.
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
    /// The canonical model id of the row: the client's `modelId` of a
    /// standard model (only its canonical spelling reaches a hook), the
    /// computed id of a composite model (for an insert, computed from the
    /// key fields as sent; a `before_insert` that rewrites a key field
    /// changes the id the row is stored and logged under).
    pub model_id: &'a str,
    /// The request's payload, as the client sent it (the typed insert or
    /// patch holds only the fields the action writes, read through their
    /// codecs; other keys are only here).
    pub payload: &'a JsonObject,
}

impl std::fmt::Debug for HookContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookContext")
            .field("user", &self.user)
            .field("system", &self.system)
            .field("model_id", &self.model_id)
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
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

/// The typed changes of an insert or an update of one model, as its hooks
/// see and rewrite them: the struct `<Model>Changes` that
/// `#[derive(SyncModel)]` generates next to the model, with one `Option`
/// per synced field (the id field of a standard model aside: the id is
/// [`HookContext::model_id`]). `None` is a field the mutation does not
/// write; for a field whose type is an `Option`, `Some(None)` writes NULL.
///
/// Both conversions go through the fields' codecs, the ones the mutation
/// path itself reads and logs values with; values a hook leaves alone
/// keep the exact wire form the client's mutation had.
pub trait SyncChanges: std::fmt::Debug + Clone + Default + Send + Sync + 'static {
    /// Reads the fields present in normalized wire `data` (an insert's or
    /// an update's `data`); keys that are no field of the struct (the `id`
    /// of a standard insert) are ignored. A value its field's type cannot
    /// hold is the codec's error (`Invalid <kind> value for <field>`).
    fn from_data(data: &JsonObject) -> Result<Self, MutationError>;

    /// The fields that are `Some`, in wire form, in field order.
    fn to_data(&self) -> JsonObject;
}

/// Hooks run around the mutations of model `M`. Every method has a default
/// that does nothing, so an implementation overrides only what it needs;
/// the model names the type with `#[sync(hooks = Type)]`.
///
/// The `before_*` hooks run for every action the model accepts, on every
/// kind of model: a standard model whatever its group (a field, `own` or
/// `global`) and id type, and a composite (join-table) model, whose id is
/// computed from its key fields. `before_insert` gets the typed insert
/// ([`SyncModel::Changes`], the values the row is about to be stored
/// with, defaults and `date_now` included), `before_update` the row as
/// stored and the typed patch, `before_delete`, `before_archive` and
/// `before_unarchive` the row as stored. The stored row is the one the
/// mutation writes: read inside its transaction and locked `FOR UPDATE`
/// before the hook runs, so it cannot change until the mutation commits.
/// A hook that rejects (or fails) fails its transaction; a hook that
/// rewrites the insert or the patch changes what is stored and logged.
/// A hook may only write fields the action writes (`insert` fields for an
/// insert, `update` fields for an update); setting another one fails the
/// transaction like a hook failure (`Mutation rejected by hook`, the field
/// goes to the log). The [`HookContext`] carries the canonical model id
/// (an id in any other spelling is refused before a hook runs), the
/// request's payload and the caller.
///
/// The typed insert and patch are built only for a model that declares
/// hooks (`hooks = …`): a model without them pays nothing on the mutation
/// path. A hook that changes nothing leaves the stored action's `data`
/// byte for byte as it would have been without it.
///
/// `after_mutation` runs for every committed action, with the canonical
/// id and the logged `data`.
///
/// The `before_*` hooks run inside the database transaction and may run
/// more than once for one mutation: when another mutation of its group
/// fails, or its group deadlocks, the group is rolled back and applied
/// again (see [`GroupCommitConfig`](crate::engine::GroupCommitConfig)). Whatever a
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
/// ```
/// use stratasync_core::{async_trait, HookContext, HookError, ModelHooks, SyncModel};
/// # use diesel::prelude::*;
/// # diesel::table! { notes (id) { id -> Uuid, title -> Text, locked -> Bool } }
///
/// #[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
/// #[diesel(table_name = notes)]
/// #[sync(group = global, actions(insert, update), hooks = NoteHooks)]
/// pub struct Note {
///     pub id: uuid::Uuid,
///     #[sync(insert, update)]
///     pub title: String,
///     pub locked: bool,
/// }
///
/// #[derive(Default)]
/// pub struct NoteHooks;
///
/// #[async_trait]
/// impl ModelHooks<Note> for NoteHooks {
///     async fn before_insert(&self, _cx: &mut HookContext<'_>, insert: &mut NoteChanges) -> Result<(), HookError> {
///         if let Some(title) = &mut insert.title {
///             *title = title.trim().to_owned();
///         }
///         Ok(())
///     }
///
///     async fn before_update(
///         &self,
///         _cx: &mut HookContext<'_>,
///         current: &Note,
///         _patch: &mut NoteChanges,
///     ) -> Result<(), HookError> {
///         if current.locked {
///             return Err(HookError::Reject("This note is locked".into()));
///         }
///         Ok(())
///     }
/// }
/// ```
///
/// [`GroupCommitConfig::hook_timeout`]: crate::engine::GroupCommitConfig::hook_timeout
#[async_trait]
pub trait ModelHooks<M: SyncModel>: Send + Sync + 'static {
    /// Before an insert, inside the transaction. May rewrite `insert`
    /// (the values the row is about to be stored with) or reject.
    async fn before_insert(&self, _cx: &mut HookContext<'_>, _insert: &mut M::Changes) -> Result<(), HookError> {
        Ok(())
    }

    /// Before an update of `current` (the row as stored, locked), inside
    /// the transaction. May rewrite `patch` (the fields the update writes)
    /// or reject.
    async fn before_update(
        &self,
        _cx: &mut HookContext<'_>,
        _current: &M,
        _patch: &mut M::Changes,
    ) -> Result<(), HookError> {
        Ok(())
    }

    /// Before the delete of `current` (the row as stored, locked), inside
    /// the transaction. May reject.
    async fn before_delete(&self, _cx: &mut HookContext<'_>, _current: &M) -> Result<(), HookError> {
        Ok(())
    }

    /// Before `current` (the row as stored, locked) is archived, inside
    /// the transaction; the payload's `archivedAt` has been checked. May
    /// reject.
    async fn before_archive(&self, _cx: &mut HookContext<'_>, _current: &M) -> Result<(), HookError> {
        Ok(())
    }

    /// Before `current` (the row as stored, locked) is unarchived, inside
    /// the transaction. May reject.
    async fn before_unarchive(&self, _cx: &mut HookContext<'_>, _current: &M) -> Result<(), HookError> {
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

impl<M: SyncModel> ModelHooks<M> for NoHooks {}
