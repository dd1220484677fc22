//! The engine: the pool, the registry, the application's auth and the
//! delta bus, shared by every service.

use crate::auth::{self, AuthContext, AuthError, SyncAuth};
use crate::bus::DeltaBus;
use crate::error::ServiceError;
use crate::model::client_schema::ClientSchema;
use crate::model::Registry;
use crate::protocol::{MutateRequest, MutateResponse};
use crate::realtime::redis::FanoutStatus;
use crate::realtime::{Hub, HubConfig};
use crate::service::group_commit::{GroupCommit, GroupCommitConfig, Writer};
use crate::service::rate_limit::{MutationLimiter, MutationRateLimit};
use crate::service::streams::{StreamGate, StreamLimits};
use crate::storage::Pool;
use std::sync::{Arc, OnceLock};

/// Everything a sync server needs; cheap to clone.
#[derive(Clone)]
pub struct SyncEngine {
    pub(crate) pool: Pool,
    pub(crate) registry: Registry,
    pub(crate) auth: Arc<dyn SyncAuth>,
    pub(crate) bus: DeltaBus,
    pub(crate) streams: Arc<StreamGate>,
    realtime: Arc<Realtime>,
    writes: Arc<Writes>,
    /// The per-user mutation rate limit (none by default).
    limiter: Option<Arc<MutationLimiter>>,
    /// The hash of the client schema, sent in bootstrap metadata.
    schema_hash: Arc<str>,
}

/// Group commit, started on first use (it needs the async runtime).
#[derive(Default)]
struct Writes {
    config: GroupCommitConfig,
    lanes: OnceLock<GroupCommit>,
}

/// The live feed, started on first use (it needs the async runtime).
#[derive(Default)]
struct Realtime {
    config: HubConfig,
    hub: OnceLock<Hub>,
    /// The Redis fan-out's connection state, once one was started.
    fanout: OnceLock<Arc<FanoutStatus>>,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine").field("registry", &self.registry).finish_non_exhaustive()
    }
}

impl SyncEngine {
    /// An engine over `pool` serving the models of `registry`.
    pub fn new(pool: Pool, registry: Registry, auth: impl SyncAuth) -> Self {
        let streams = StreamGate::new(StreamLimits::default(), pool.status().max_size);
        let schema_hash = ClientSchema::from_registry(&registry).hash().into();
        SyncEngine {
            schema_hash,
            streams,
            pool,
            registry,
            auth: Arc::new(auth),
            bus: DeltaBus::default(),
            realtime: Arc::default(),
            writes: Arc::default(),
            limiter: None,
        }
    }

    /// Sets the client schema whose hash bootstrap metadata carries, when
    /// the application changed what [`ClientSchema::from_registry`] gives
    /// (a load strategy, say).
    pub fn with_client_schema(mut self, schema: &ClientSchema) -> Self {
        self.schema_hash = schema.hash().into();
        self
    }

    /// The hash of the client schema ([`ClientSchema::hash`]), which
    /// bootstrap metadata carries as `schemaHash`.
    pub fn schema_hash(&self) -> &str {
        &self.schema_hash
    }

    /// Tunes group commit (before the first mutation).
    pub fn with_group_commit(mut self, config: GroupCommitConfig) -> Self {
        self.writes = Arc::new(Writes { config, lanes: OnceLock::new() });
        self
    }

    /// Limits how many client transactions each user may apply per second
    /// (off unless set; see [`crate::service::rate_limit`]). A request over
    /// the limit fails with [`ServiceError::RateLimited`] before it reaches
    /// the database.
    pub fn with_mutation_rate_limit(mut self, limit: MutationRateLimit) -> Self {
        self.limiter = Some(Arc::new(MutationLimiter::new(limit)));
        self
    }

    /// Processes a batch (docs/protocol.md §4.4, §5) and publishes the committed
    /// actions on the bus. The batch may share its database transaction
    /// with concurrent batches ([`crate::service::group_commit`]).
    ///
    /// Errors are retryable: [`ServiceError::RateLimited`] (the user's
    /// rate limit), [`ServiceError::Interrupted`] (the batch's own work hit
    /// a timeout or similar; nothing of it committed) and failures of the
    /// database. A batch whose commit outcome is unknown is reported as an
    /// error (a 5xx), never as `success:false`, so the client retries and
    /// deduplication answers.
    pub async fn mutate(&self, user: &AuthContext, request: &MutateRequest) -> Result<MutateResponse, ServiceError> {
        if let Some(limiter) = &self.limiter {
            if let Err(e) = limiter.check(&user.user.user_id, request.transactions.len()) {
                crate::metrics::mutations(crate::metrics::TxOutcome::RateLimited, request.transactions.len());
                return Err(e);
            }
        }
        let lanes = self.writes.lanes.get_or_init(|| {
            let writer = Writer { pool: self.pool.clone(), registry: self.registry.clone(), bus: self.bus.clone() };
            GroupCommit::start(writer, self.writes.config.clone())
        });
        lanes.submit(user, request).await
    }

    /// A writer for application code: synced rows written inside the
    /// application's own transactions, with the checks, hooks and log of
    /// client mutations (see [`crate::write`]).
    pub fn writer(&self) -> crate::write::SyncWriter {
        crate::write::SyncWriter::new(
            self.pool.clone(),
            self.registry.clone(),
            self.bus.clone(),
            self.writes.config.hook_timeout,
        )
    }

    /// Sets the limits on streamed responses (before serving; see
    /// [`crate::service::streams`]).
    pub fn with_stream_limits(mut self, limits: StreamLimits) -> Self {
        self.streams = StreamGate::new(limits, self.pool.status().max_size);
        self
    }

    /// Tunes the live feed (before the first WebSocket subscribes).
    pub fn with_hub_config(mut self, config: HubConfig) -> Self {
        self.realtime = Arc::new(Realtime { config, hub: OnceLock::new(), fanout: OnceLock::new() });
        self
    }

    /// The node's live feed, started on first use. Must be called inside
    /// the tokio runtime.
    pub fn hub(&self) -> &Hub {
        self.realtime.hub.get_or_init(|| Hub::start(self.pool.clone(), &self.bus, self.realtime.config.clone()))
    }

    /// The Redis fan-out's state, if one was started on this engine.
    pub(crate) fn fanout(&self) -> Option<&Arc<FanoutStatus>> {
        self.realtime.fanout.get()
    }

    /// The Redis fan-out's state, created for the fan-out being started.
    pub(crate) fn start_fanout(&self) -> Arc<FanoutStatus> {
        self.realtime.fanout.get_or_init(Arc::default).clone()
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The registered models.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The in-process delta bus.
    pub fn bus(&self) -> &DeltaBus {
        &self.bus
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
