//! Storage: the one seam through which the engine reaches its database.
//!
//! Everything that talks to PostgreSQL lives under this module (the
//! framework tables, connections and TLS, the pool, migrations) or in the code that
//! `#[derive(SyncModel)]` generates against [`Conn`]. A second backend
//! (SQLite for an embedded mode) would add a sibling of this module and a
//! second code generator, leaving the derive's attributes unchanged.

pub(crate) mod compaction;
mod connect;
pub(crate) mod fault;
pub(crate) mod log;
pub mod memberships;
pub mod migrate;
mod pool;
pub(crate) mod prepared;
mod raw_json;
pub(crate) mod schema;

/// The log's JSON text, passed through (a [`crate::protocol`] type, read
/// from `jsonb` here).
pub use connect::{establish, ConnectError, Connector, SslMode};
pub use pool::{connect, Pool, PoolConfig, PooledConn};

/// The connection type generated model code runs on.
pub type Conn = diesel_async::AsyncPgConnection;

/// A storage failure. Its `Display` is safe for clients; the cause is kept
/// for logs.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No connection could be had in time (database down or pool exhausted).
    #[error("database unavailable")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    /// A query failed.
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
}
