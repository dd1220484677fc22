//! The connection pool (deadpool through diesel-async).
//!
//! Every checkout is verified with a cheap query and broken connections are
//! dropped, so after PostgreSQL restarts or terminates backends the next
//! requests get fresh connections; waits and connects are bounded so no
//! request hangs on a dead server.

use super::Conn;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use std::time::Duration;

/// A pool of PostgreSQL connections.
pub type Pool = DeadPool<Conn>;

/// A connection checked out of the [`Pool`].
pub type PooledConn = Object<Conn>;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Maximum open connections.
    pub max_size: usize,
    /// How long a request waits for a free connection.
    pub wait_timeout: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { max_size: 16, wait_timeout: Duration::from_secs(5), connect_timeout: Duration::from_secs(5) }
    }
}

/// Builds a pool for `database_url` (connections open lazily).
pub fn connect(database_url: &str, config: &PoolConfig) -> Result<Pool, deadpool::managed::BuildError> {
    let mut manager_config = ManagerConfig::<Conn>::default();
    manager_config.recycling_method = RecyclingMethod::Verified;
    let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(database_url, manager_config);
    Pool::builder(manager)
        .max_size(config.max_size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(config.wait_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .build()
}
