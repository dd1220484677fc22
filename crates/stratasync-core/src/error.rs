//! Typed errors of the engine.
//!
//! Every error's `Display` is a stable, client-safe message; database and
//! hook details stay in the error's source, for logs only (PROTOCOL.md §10
//! #14).

use crate::model::{CodecKind, HookError};
use crate::protocol::ActionKind;

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
    /// An archive without `archivedAt`.
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
    /// hyphens): ids are compared as strings in groups and in the log, so
    /// only the canonical spelling is accepted.
    #[error("Invalid mutation: modelId must be in canonical form (a UUID in lower case, with hyphens)")]
    NonCanonicalModelId,
    /// A required column got no value.
    #[error("Invalid mutation: missing required field")]
    MissingField,
    /// A hook refused the mutation (its message is shown) or failed.
    #[error("{}", hook_message(.0))]
    Hook(#[from] HookError),
    /// Any other database failure.
    #[error("Mutation failed")]
    Database(#[source] diesel::result::Error),
}

/// The client-safe message of a hook error.
pub(crate) fn hook_message(err: &HookError) -> String {
    match err {
        HookError::Reject(msg) => msg.clone(),
        HookError::Internal(_) => "Mutation rejected by hook".to_owned(),
    }
}

impl From<diesel::result::Error> for MutationError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error};
        match &err {
            Error::DatabaseError(K::UniqueViolation, _) => MutationError::AlreadyExists,
            Error::DatabaseError(K::ForeignKeyViolation, _) => MutationError::ForeignKey,
            Error::DatabaseError(K::NotNullViolation, _) => MutationError::MissingField,
            _ => MutationError::Database(err),
        }
    }
}

impl MutationError {}

/// Whether a Diesel error means the connection (not the statement) failed.
pub fn is_connection_error(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error};
    match err {
        Error::DatabaseError(K::ClosedConnection | K::SerializationFailure, _) => true,
        Error::DatabaseError(K::Unknown, info) => {
            // Admin shutdown, crash shutdown, cannot connect now, deadlock.
            let msg = info.message();
            msg.contains("terminating connection")
                || msg.contains("connection closed")
                || msg.contains("deadlock detected")
        }
        Error::BrokenTransactionManager | Error::AlreadyInTransaction => true,
        _ => false,
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
    /// The request could not be processed now (its group failed, or the
    /// server is shutting down); retryable.
    #[error("Storage unavailable")]
    Unavailable,
}

impl ServiceError {
    /// Whether PostgreSQL aborted the work to break a deadlock (nothing of
    /// it committed, so it can run again).
    pub(crate) fn is_deadlock(&self) -> bool {
        use diesel::result::Error;
        match self {
            ServiceError::Storage(crate::storage::StorageError::Query(Error::DatabaseError(_, info))) => {
                info.message().contains("deadlock detected")
            }
            _ => false,
        }
    }
}
