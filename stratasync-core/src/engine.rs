//! The engine: the pool, the registry, the application's auth and the
//! delta bus, shared by every service, and what runs beside them (the
//! group commit lanes, the live feed and the Redis fan-out).
//!
//! [`SyncEngine::builder`] takes the settings; [`SyncEngineBuilder::start`]
//! checks them ([`ConfigError`]) and starts everything, so a running engine
//! is never half-configured. [`SyncEngine::shutdown`] stops it again:
//!
//! ```no_run
//! # use stratasync_core::{async_trait, AuthRejection, AuthUser, Registry, SyncAuth, SyncEngine};
//! # use stratasync_core::engine::GroupCommitConfig;
//! # struct MyAuth;
//! # #[async_trait]
//! # impl SyncAuth for MyAuth {
//! #     async fn verify_token(&self, _: &str) -> Result<AuthUser, AuthRejection> { Err(AuthRejection::Invalid) }
//! # }
//! # async fn run(pool: stratasync_core::storage::Pool, registry: Registry) -> Result<(), Box<dyn std::error::Error>> {
//! let engine = SyncEngine::builder(pool, registry, MyAuth)
//!     .group_commit(GroupCommitConfig { lanes: 2, ..GroupCommitConfig::default() })
//!     .start()?;
//! // … serve it (an adapter such as `stratasync_actix::SyncHttp::new(engine.clone())`) …
//! engine.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod batch;
mod bootstrap;
mod builder;
mod compaction_schedule;
mod config_error;
mod deltas;
mod mutate;
mod readiness;

pub use builder::SyncEngineBuilder;
pub use config_error::ConfigError;
// The settings and parameters of the engine's API, declared by the
// services that use them.
pub use crate::service::batch::{BatchItem, BatchParams};
pub use crate::service::bootstrap::{BootstrapKind, BootstrapParams};
pub use crate::service::deltas::DeltasParams;
pub use crate::service::group_commit::GroupCommitConfig;
pub use crate::service::rate_limit::MutationRateLimit;
pub use crate::service::{ChunkStream, NdjsonStream, StreamLimits};

use crate::auth::{self, AuthContext, AuthError, SyncAuth};
use crate::bus::DeltaBus;
use crate::realtime::Hub;
use crate::service::group_commit::GroupCommit;
use crate::service::rate_limit::MutationLimiter;
use crate::service::streams::StreamGate;
use crate::service::Registry;
use crate::storage::Pool;
use std::sync::Arc;
use std::time::Duration;

/// Everything a sync server needs; cheap to clone (clones share the
/// running lanes, feed and fan-out). Made by [`SyncEngine::builder`].
#[derive(Clone)]
pub struct SyncEngine {
    pub(crate) pool: Pool,
    pub(crate) registry: Registry,
    pub(crate) auth: Arc<dyn SyncAuth>,
    pub(crate) bus: DeltaBus,
    pub(crate) streams: Arc<StreamGate>,
    running: Arc<Running>,
    /// The per-user mutation rate limit (none by default).
    limiter: Option<Arc<MutationLimiter>>,
    /// The hash of the client schema, sent in bootstrap metadata.
    schema_hash: Arc<str>,
}

/// What [`SyncEngineBuilder::start`] started, shared by the engine's clones.
struct Running {
    lanes: GroupCommit,
    /// [`crate::service::group_commit::GroupCommitConfig::hook_timeout`],
    /// for writes from server code.
    hook_timeout: Duration,
    feed: Hub,
    #[cfg(feature = "redis")]
    fanout: Option<crate::realtime::redis::Fanout>,
    /// The compaction schedule's task, if one was set.
    compaction: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine").field("registry", &self.registry).finish_non_exhaustive()
    }
}

impl SyncEngine {
    /// The settings of an engine over `pool` serving the models of
    /// `registry`, each at its default until set; start it with
    /// [`SyncEngineBuilder::start`].
    pub fn builder(pool: Pool, registry: Registry, auth: impl SyncAuth) -> SyncEngineBuilder {
        SyncEngineBuilder::new(pool, registry, Arc::new(auth))
    }

    /// Stops the engine, for a graceful exit once the server stopped
    /// taking requests (and closed its sockets):
    ///
    /// 1. group commit takes no more requests (later mutations fail with
    ///    [`ServiceError::Unavailable`](crate::error::ServiceError::Unavailable), a retryable 503), and the lanes
    ///    commit and answer every request queued before;
    /// 2. the Redis fan-out's tasks stop (other nodes see the last commits
    ///    at their next poll of the log);
    /// 3. the live feed stops ([`Hub::stop`]): its tasks end, sockets
    ///    still open get no more live frames, and [`SyncEngine::readiness`]
    ///    reports it not live;
    /// 4. the compaction schedule, if any, stops.
    ///
    /// Every clone of the engine is stopped; calling it again does nothing.
    /// Reads (bootstrap, batch loads, delta pages) and
    /// [`SyncEngine::writer`] keep working: they need only the pool.
    pub async fn shutdown(&self) {
        self.running.lanes.close().await;
        #[cfg(feature = "redis")]
        if let Some(fanout) = &self.running.fanout {
            fanout.stop().await;
        }
        self.running.feed.stop();
        if let Some(schedule) = &self.running.compaction {
            schedule.abort();
        }
    }

    /// The hash of the client schema ([`ClientSchema::hash`]), which
    /// bootstrap metadata carries as `schemaHash`.
    ///
    /// [`ClientSchema::hash`]: crate::model::client_schema::ClientSchema::hash
    pub fn schema_hash(&self) -> &str {
        &self.schema_hash
    }

    /// Compacts the log (see [`crate::ops::compact`]) on a connection of
    /// the pool. Safe while clients read and write, on any node.
    pub async fn compact(
        &self,
        plan: crate::ops::compact::Compaction,
    ) -> Result<crate::ops::compact::CompactionReport, crate::ops::compact::CompactError> {
        let mut conn = self.pool.get().await?;
        crate::ops::compact::compact(&mut conn, plan).await
    }

    /// The node's live feed (after [`SyncEngine::shutdown`], a stopped one
    /// that delivers nothing).
    pub fn hub(&self) -> Hub {
        self.running.feed.clone()
    }

    /// Whether the Redis fan-out is subscribed: `None` when the engine has
    /// none (a single node).
    pub(crate) fn fanout_subscribed(&self) -> Option<bool> {
        #[cfg(feature = "redis")]
        if let Some(fanout) = &self.running.fanout {
            return Some(fanout.status().subscribed());
        }
        None
    }

    /// This node's id in the messages its Redis fan-out publishes (`sync-`
    /// + 8 hex digits); `None` without a fan-out.
    #[cfg(feature = "redis")]
    pub fn redis_source_id(&self) -> Option<&str> {
        self.running.fanout.as_ref().map(|f| f.source_id())
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The registered models.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every action this node commits from now on (mutations and server
    /// writes, not those of other nodes), in commit order, as the live feed
    /// receives them. A receiver that falls more than the bus's capacity
    /// behind misses actions and is told so (`RecvError::Lagged`).
    pub fn subscribe_committed(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<crate::protocol::SyncAction>> {
        self.bus.subscribe()
    }

    /// Verifies a token only (the WebSocket upgrade does not resolve groups).
    pub async fn verify_token(&self, token: &str) -> Result<auth::AuthUser, auth::AuthRejection> {
        self.auth.verify_token(token).await
    }

    /// Verifies a token and resolves the caller's groups (docs/protocol.md §3.2).
    pub async fn authorize(&self, token: &str) -> Result<AuthContext, AuthError> {
        auth::authorize(self.auth.as_ref(), &self.pool, token).await
    }
}
