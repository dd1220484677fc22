//! Operator tools over an application's database, for commands such as
//! the example's `taskboard log stats` and `taskboard explain`:
//!
//! * [`stats`]: what the sync log holds ([`stats::log_stats`]);
//! * [`compact`]: folds and trims the log without sending clients back to
//!   a bootstrap ([`compact::compact`]);
//! * [`explain`]: why a user may or may not see a row or apply a mutation,
//!   answered by the server's own checks in a transaction that is rolled
//!   back ([`explain::explain_row`], [`explain::explain_mutation`]).
//!
//! Migrations are [`crate::storage::migrate::run_reporting`]; the client
//! schema is [`crate::model::client_schema`].

pub mod compact;
pub mod explain;
pub mod stats;
