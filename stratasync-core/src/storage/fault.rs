//! Which database failures are whose fault: the one place that decides
//! whether a failed statement is the transaction's own doing (it fails
//! alone, with a fixed message) or a condition of the moment (retryable,
//! answered with a 503).
//!
//! Diesel does not keep PostgreSQL's SQLSTATE: `diesel-async` maps a few
//! codes to a [`DatabaseErrorKind`] and leaves every other one as
//! `Unknown`, with the server's message text. The classes below are
//! therefore read from the kind and, for `Unknown`, from the message. The
//! messages are PostgreSQL's English ones, which every connection asks for
//! (`SET lc_messages = 'C'`, see `connect::english_messages`); where the
//! role may not set it and the server's messages are translated, the
//! retryable statement-level conditions below are classed as
//! [`Fault::Caused`] (the transaction then fails with `Mutation failed`
//! instead of being retried), while a lost connection is still recognized,
//! because the group commit also checks the connection itself (a savepoint
//! that cannot be rolled back means the connection is gone).
//!
//! | class | SQLSTATE | recognized by |
//! |---|---|---|
//! | [`Fault::Connection`] | 08xxx, 57P01–57P03, 25P03, a closed socket | `ClosedConnection`, `UnableToSendCommand` (no SQLSTATE: the client lost the server), `terminating connection …`, `the database system is …`, a broken transaction manager |
//! | [`Fault::Deadlock`] | 40P01 | `deadlock detected` |
//! | [`Fault::Transient`] | 40001, 57014, 55P03, 53xxx | `SerializationFailure`, `canceling statement due to …` (statement timeout, lock timeout, cancel), `could not obtain lock …`, `could not serialize access …`, out of memory, disk full, too many connections |
//! | [`Fault::Caused`] | 23xxx, 22xxx, 42xxx, … | everything else |

use diesel::result::{DatabaseErrorKind, Error};

/// What a database failure says about whose fault it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The connection is gone or unusable: nothing more can run on it, and
    /// the outcome of an open transaction is lost. Retryable.
    Connection,
    /// PostgreSQL aborted the statement to break a deadlock. Retryable.
    Deadlock,
    /// The statement was stopped by a condition of the moment (a statement
    /// or lock timeout, a cancel, a serialization failure, insufficient
    /// resources); the connection is fine. Retryable.
    Transient,
    /// The statement failed because of what it asked for (a constraint, a
    /// value, a query error): the transaction's own failure, which a retry
    /// would repeat.
    Caused,
}

impl Fault {
    /// Whether a retry later may succeed.
    pub(crate) fn is_retryable(self) -> bool {
        self != Fault::Caused
    }
}

/// Message prefixes of the connection-level conditions (`57P01`
/// admin shutdown, `57P02` crash shutdown, `57P03` cannot connect now,
/// `25P03` idle-in-transaction timeout, `57P05` idle-session timeout).
const CONNECTION: &[&str] = &["terminating connection", "the database system is", "connection closed"];

/// Message prefixes of the retryable statement-level conditions.
const TRANSIENT: &[&str] = &[
    // 57014 statement timeout and cancel, 55P03 lock timeout.
    "canceling statement due to",
    // 55P03 `NOWAIT`.
    "could not obtain lock",
    // 40001 raised outside the kinds Diesel maps.
    "could not serialize access",
    // 53200.
    "out of memory",
    "out of shared memory",
    // 53300.
    "sorry, too many clients",
    "remaining connection slots are reserved",
];

/// Message fragments of retryable conditions that do not start the message
/// (53100 disk full: `could not extend file "…": No space left on device`).
const TRANSIENT_ANYWHERE: &[&str] = &["No space left on device"];

/// Classifies a Diesel error (see the [module docs](self)).
pub(crate) fn classify(err: &Error) -> Fault {
    match err {
        Error::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => Fault::Connection,
            DatabaseErrorKind::SerializationFailure => Fault::Transient,
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::NotNullViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::RestrictViolation
            | DatabaseErrorKind::ExclusionViolation
            | DatabaseErrorKind::ReadOnlyTransaction => Fault::Caused,
            _ => classify_message(info.message()),
        },
        Error::BrokenTransactionManager | Error::AlreadyInTransaction | Error::NotInTransaction => Fault::Connection,
        Error::RollbackErrorOnCommit { rollback_error, .. } => match classify(rollback_error) {
            Fault::Connection => Fault::Connection,
            _ => Fault::Transient,
        },
        _ => Fault::Caused,
    }
}

/// Classifies the message of an error Diesel left as `Unknown`.
fn classify_message(message: &str) -> Fault {
    if message.starts_with("deadlock detected") {
        Fault::Deadlock
    } else if CONNECTION.iter().any(|p| message.starts_with(p)) {
        Fault::Connection
    } else if TRANSIENT.iter().any(|p| message.starts_with(p)) || TRANSIENT_ANYWHERE.iter().any(|p| message.contains(p))
    {
        Fault::Transient
    } else {
        Fault::Caused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    fn unknown(message: &str) -> Fault {
        classify(&db(DatabaseErrorKind::Unknown, message))
    }

    #[test]
    fn connection_loss_and_shutdowns() {
        assert_eq!(classify(&db(DatabaseErrorKind::ClosedConnection, "x")), Fault::Connection);
        assert_eq!(classify(&db(DatabaseErrorKind::UnableToSendCommand, "connection closed")), Fault::Connection);
        assert_eq!(
            classify(&db(DatabaseErrorKind::UnableToSendCommand, "error communicating with the server: Broken pipe")),
            Fault::Connection
        );
        assert_eq!(unknown("terminating connection due to administrator command"), Fault::Connection);
        assert_eq!(unknown("terminating connection because of crash of another server process"), Fault::Connection);
        assert_eq!(unknown("terminating connection due to idle-in-transaction timeout"), Fault::Connection);
        assert_eq!(unknown("the database system is shutting down"), Fault::Connection);
        assert_eq!(unknown("the database system is starting up"), Fault::Connection);
        assert_eq!(classify(&Error::BrokenTransactionManager), Fault::Connection);
        assert_eq!(classify(&Error::AlreadyInTransaction), Fault::Connection);
    }

    #[test]
    fn retryable_conditions_of_the_moment() {
        assert_eq!(unknown("deadlock detected"), Fault::Deadlock);
        assert_eq!(classify(&db(DatabaseErrorKind::SerializationFailure, "could not serialize")), Fault::Transient);
        assert_eq!(unknown("canceling statement due to statement timeout"), Fault::Transient);
        assert_eq!(unknown("canceling statement due to lock timeout"), Fault::Transient);
        assert_eq!(unknown("canceling statement due to user request"), Fault::Transient);
        assert_eq!(unknown("could not obtain lock on row in relation \"tasks\""), Fault::Transient);
        assert_eq!(unknown("out of memory"), Fault::Transient);
        assert_eq!(unknown("out of shared memory"), Fault::Transient);
        assert_eq!(unknown("sorry, too many clients already"), Fault::Transient);
        assert_eq!(unknown("could not extend file \"base/16384/2619\": No space left on device"), Fault::Transient);
        for fault in [Fault::Connection, Fault::Deadlock, Fault::Transient] {
            assert!(fault.is_retryable());
        }
        assert!(!Fault::Caused.is_retryable());
    }

    #[test]
    fn what_a_transaction_caused() {
        for kind in [
            DatabaseErrorKind::UniqueViolation,
            DatabaseErrorKind::ForeignKeyViolation,
            DatabaseErrorKind::NotNullViolation,
            DatabaseErrorKind::CheckViolation,
            DatabaseErrorKind::RestrictViolation,
            DatabaseErrorKind::ExclusionViolation,
        ] {
            // Even a message that reads like a condition of the moment.
            assert_eq!(classify(&db(kind, "deadlock detected")), Fault::Caused, "{kind:?}");
        }
        assert_eq!(unknown("invalid byte sequence for encoding \"UTF8\": 0x00"), Fault::Caused);
        assert_eq!(unknown("date out of range: \"-10000-01-01\""), Fault::Caused);
        assert_eq!(unknown("integer out of range"), Fault::Caused);
        assert_eq!(unknown("unsupported Unicode escape sequence"), Fault::Caused);
        assert_eq!(unknown("index row size 8208 exceeds btree version 4 maximum 2704 for index \"x\""), Fault::Caused);
        assert_eq!(
            unknown("current transaction is aborted, commands ignored until end of transaction block"),
            Fault::Caused
        );
        // A message that merely mentions a condition is not it.
        assert_eq!(unknown("value \"deadlock detected\" is not allowed"), Fault::Caused);
        assert_eq!(classify(&Error::NotFound), Fault::Caused);
        assert_eq!(classify(&Error::DeserializationError("bad".into())), Fault::Caused);
    }
}
