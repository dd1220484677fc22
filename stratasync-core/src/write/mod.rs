//! Writes from server code: application code inserts, updates, archives,
//! unarchives and deletes synced rows exactly as a client mutation would.
//!
//! A [`SyncWriter`] (from [`SyncEngine::writer`](crate::SyncEngine::writer))
//! applies each write on a connection the application holds, usually
//! inside its own database transaction, so a handler can change its own
//! tables and synced rows atomically. Each write goes through the model's
//! codecs, its group check (for [`Actor::User`]; [`Actor::System`] may write
//! any group), its before-hooks, its declared references and cascades, and
//! the log insert with its ordering rule, inside a savepoint of its own:
//! a write that fails (with the same [`MutationError`](crate::MutationError)
//! a client mutation would get) leaves the application's transaction usable.
//!
//! The log insert takes the insert-order lock, which every other writer
//! waits for until this transaction ends: write synced rows last and commit
//! promptly. Once the transaction has committed, hand the [`Written`]
//! receipts to [`SyncWriter::committed`]: it publishes the actions that did
//! commit on the delta bus (live subscribers, the Redis fan-out) and runs
//! the models' `after_mutation` hooks. Receipts of a transaction that
//! rolled back are ignored there; receipts never handed over still reach
//! every subscriber through the live feed's poll of the log.
//!
//! ```no_run
//! use stratasync_core::model::JsonObject;
//! use stratasync_core::storage::Conn;
//! use stratasync_core::write::{Actor, SyncWriter, Written};
//! use stratasync_core::{MutationError, SyncModel};
//!
//! /// Inserts a row of `M` as the server, on a connection inside the
//! /// caller's transaction.
//! async fn create<M: SyncModel>(
//!     writer: &SyncWriter,
//!     conn: &mut Conn,
//!     id: &str,
//!     payload: JsonObject,
//! ) -> Result<Written, MutationError> {
//!     writer.insert::<M>(conn, Actor::System, id, payload).await
//! }
//! ```

mod actor;
mod writer;

pub use actor::Actor;
pub use writer::{SyncWriter, Written};
