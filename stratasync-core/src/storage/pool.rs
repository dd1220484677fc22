//! The connection pool (deadpool through diesel-async).
//!
//! Every checkout is verified with a cheap query and broken connections are
//! dropped, so after PostgreSQL restarts or terminates backends the next
//! requests get fresh connections; waits and connects are bounded so no
//! request hangs on a dead server. Connections use TLS as the URL's
//! `sslmode` asks (see [`Connector`]); with `sslmode=disable` the pool is
//! exactly diesel-async's default.

use super::connect::{ConnectError, Connector, SslMode};
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

/// Builds a pool for `database_url` (connections open lazily). Fails at
/// once on TLS settings that cannot work (an unsupported `sslmode`, an
/// unreadable `sslrootcert`), not at the first checkout.
pub fn connect(database_url: &str, config: &PoolConfig) -> Result<Pool, ConnectError> {
    let connector = Connector::new(database_url)?;
    let mut manager_config = ManagerConfig::<Conn>::default();
    manager_config.recycling_method = RecyclingMethod::Verified;
    let url = connector.client_url().to_owned();
    if connector.ssl_mode() != SslMode::Disable {
        manager_config.custom_setup = Box::new(move |_url| {
            let connector = connector.clone();
            Box::pin(async move { connector.establish().await })
        });
    }
    let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(url, manager_config);
    Ok(Pool::builder(manager)
        .max_size(config.max_size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(config.wait_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .build()?)
}
