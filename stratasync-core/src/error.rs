//! Typed errors of the engine.
//!
//! Every error's `Display` is a stable, client-safe message; database and
//! hook details stay in the error's source, for logs only (docs/protocol.md §10
//! #14).

use crate::codec::CodecKind;
use crate::protocol::ActionKind;
use crate::storage::fault::{classify, Fault};
use std::time::Duration;

/// Why one mutation transaction failed. Its `Display` is the message the
/// client receives in `results[].error`.
#[derive(Debug, thiserror::Error)]
pub enum MutationError {
    /// The target row does not exist, or lives in a group the caller cannot
    /// see (the two are indistinguishable on purpose).
    #[error("Invalid mutation: record not found")]
    RecordNotFound,
    /// The group key of the row or payload is missing or empty.
    #[error("Invalid mutation: missing required group identifier")]
    MissingGroup,
    /// The caller may not write into the row's group.
    #[error("Access denied")]
    AccessDenied,
    /// No model with this name is registered.
    #[error("Unknown model: {0}")]
    UnknownModel(String),
    /// The model does not accept this action.
    #[error("Unsupported action \"{}\" for this model", .0.letter())]
    UnsupportedAction(ActionKind),
    /// The model has no update fields.
    #[error("Update not configured for this model")]
    UpdateNotConfigured,
    /// The model has no archive field.
    #[error("Archive not configured for this model")]
    ArchiveNotConfigured,
    /// The model has no archive field.
    #[error("Unarchive not configured for this model")]
    UnarchiveNotConfigured,
    /// An archive whose payload has no `archivedAt` (or `null`): the
    /// client chooses the archive time, the server does not fill it in.
    #[error("archivedAt is required")]
    ArchivedAtRequired,
    /// A payload value does not fit its field's codec.
    #[error("Invalid {} value for {field}", .kind.word())]
    InvalidValue {
        /// The field's codec.
        kind: CodecKind,
        /// The field's wire name.
        field: String,
    },
    /// A row with this id already exists.
    #[error("Invalid mutation: record already exists")]
    AlreadyExists,
    /// A referenced row does not exist (foreign key), or, for a field
    /// declared `references = Model`, is not in the row's group (the two
    /// are indistinguishable on purpose).
    #[error("Invalid mutation: referenced record not found")]
    ForeignKey,
    /// The model id spells a valid id in a form other than the canonical
    /// one (a UUID in upper case, in braces, as `urn:uuid:…` or without
    /// hyphens; an integer with a sign or leading zeros): ids are compared
    /// as strings in groups and in the log, so only the canonical spelling
    /// is accepted.
    #[error("Invalid mutation: modelId must be in canonical form (as the server writes it: a UUID in lower case with hyphens, an integer without sign or leading zeros)")]
    NonCanonicalModelId,
    /// A required column got no value.
    #[error("Invalid mutation: missing required field")]
    MissingField,
    /// A `before_update` hook changed the group key of the row (a row
    /// moves between groups only by a delete and an insert).
    #[error("Invalid mutation: the group of a record cannot be changed")]
    GroupChange,
    /// A hook refused the mutation (its message is shown) or failed.
    #[error("{}", hook_message(.0))]
    Hook(#[from] HookError),
    /// A before-hook panicked (the panic goes to the log).
    #[error("Mutation rejected by hook")]
    HookPanicked,
    /// A before-hook overran its time limit. Not the transaction's fault as
    /// far as anyone can tell: its request is answered with a retryable
    /// error, never `success:false`.
    #[error("Mutation hook timed out")]
    HookTimedOut,
    /// Any other database failure the transaction caused.
    #[error("Mutation failed")]
    Database(#[source] diesel::result::Error),
    /// The database could not complete the statement now (connection lost,
    /// a statement or lock timeout, a deadlock, …): not the transaction's
    /// fault. Its request is answered with a retryable error, never
    /// `success:false`.
    #[error("Storage unavailable")]
    Unavailable(#[source] diesel::result::Error),
}

/// The client-safe message of a hook error.
pub(crate) fn hook_message(err: &HookError) -> String {
    match err {
        HookError::Reject(msg) => msg.clone(),
        HookError::Internal(_) => "Mutation rejected by hook".to_owned(),
    }
}

impl From<diesel::result::Error> for MutationError {
    /// The stable message of a database failure: what the transaction
    /// caused gets its own message, a condition of the moment becomes
    /// [`MutationError::Unavailable`] (see the classifier in
    /// [`storage`](crate::storage)).
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error};
        if classify(&err).is_retryable() {
            return MutationError::Unavailable(err);
        }
        match &err {
            Error::DatabaseError(K::UniqueViolation, _) => MutationError::AlreadyExists,
            Error::DatabaseError(K::ForeignKeyViolation, _) => MutationError::ForeignKey,
            Error::DatabaseError(K::NotNullViolation, _) => MutationError::MissingField,
            _ => MutationError::Database(err),
        }
    }
}

impl MutationError {
    /// The retryable condition behind this failure, if it is one: the
    /// transaction did not cause it, so it must not end in `success:false`.
    /// A hook's internal error counts when it is a Diesel error (a hook's
    /// own query that timed out, say).
    pub(crate) fn fault(&self) -> Option<Fault> {
        let fault = match self {
            MutationError::Unavailable(e) | MutationError::Database(e) => classify(e),
            MutationError::HookTimedOut => Fault::Transient,
            MutationError::Hook(HookError::Internal(source)) => {
                source.downcast_ref::<diesel::result::Error>().map_or(Fault::Caused, classify)
            }
            _ => Fault::Caused,
        };
        fault.is_retryable().then_some(fault)
    }
}

/// Failures of the bootstrap, batch, delta and mutate services, as the HTTP
/// layer maps them. `Display` is safe to show to clients.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The cursor is older than the retained log or ahead of its head.
    #[error("A fresh bootstrap is required before fetching deltas")]
    BootstrapRequired,
    /// An indexed batch load used a key the model does not allow.
    #[error("Indexed key \"{key}\" is not allowed for model \"{model}\"")]
    IndexedKeyNotAllowed {
        /// The requested key.
        key: String,
        /// The model.
        model: String,
    },
    /// An indexed batch load matched too many rows.
    #[error("Indexed batch load exceeded {limit} rows for model \"{model}\"")]
    BatchLimitExceeded {
        /// The row limit.
        limit: usize,
        /// The model.
        model: String,
    },
    /// The database is unreachable or failed; retryable.
    #[error("Storage unavailable")]
    Storage(#[from] crate::storage::StorageError),
    /// The request could not be processed now (its group failed, the
    /// server is shutting down, or every snapshot stream slot stayed
    /// taken); retryable.
    #[error("Storage unavailable")]
    Unavailable,
    /// The request's own work was stopped by a condition of the moment (a
    /// statement or lock timeout, a before-hook that overran, a deadlock
    /// or serialization failure); nothing of it committed. Retryable.
    #[error("Mutation could not complete now; retry later")]
    Interrupted,
    /// The caller exceeded a rate limit; retry after `retry_after`.
    #[error("Rate limit exceeded")]
    RateLimited {
        /// How long until the request would be accepted.
        retry_after: Duration,
    },
    /// The caller already has as many streamed responses open as
    /// [`StreamLimits::per_user`](crate::service::streams::StreamLimits::per_user)
    /// allows; retryable once one of them ends.
    #[error("Too many open streams")]
    TooManyStreams,
    /// A streamed response stopped before its end: its consumer took
    /// nothing for the stall timeout, or its producer failed. The
    /// transport must abort the response, not end it, so the client sees a
    /// broken body instead of a short one.
    #[error("Response interrupted")]
    StreamAborted,
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
