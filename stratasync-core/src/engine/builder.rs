//! [`SyncEngineBuilder`]: the engine's settings, checked and started in one
//! place.

use super::{ConfigError, Running, SyncEngine};
use crate::auth::SyncAuth;
use crate::bus::DeltaBus;
use crate::model::client_schema::ClientSchema;
use crate::ops::compact::Retention;
use crate::realtime::HubConfig;
use crate::service::group_commit::{GroupCommit, GroupCommitConfig, Writer};
use crate::service::rate_limit::{MutationLimiter, MutationRateLimit};
use crate::service::streams::{StreamGate, StreamLimits};
use crate::service::Registry;
use crate::storage::Pool;
use std::sync::Arc;

/// The settings of a [`SyncEngine`], from [`SyncEngine::builder`]: every
/// setting has its default until set, and [`SyncEngineBuilder::start`]
/// checks them all before anything runs.
#[must_use = "an engine runs only once started"]
pub struct SyncEngineBuilder {
    pool: Pool,
    registry: Registry,
    auth: Arc<dyn SyncAuth>,
    group_commit: GroupCommitConfig,
    hub: HubConfig,
    streams: StreamLimits,
    rate_limit: Option<MutationRateLimit>,
    /// The hash of the client schema, when set.
    schema_hash: Option<Arc<str>>,
    /// How often to compact the log, and what to keep.
    compaction: Option<(std::time::Duration, Retention)>,
    /// The Redis fan-out's client, or why the URL given does not parse.
    #[cfg(feature = "redis")]
    redis: Option<Result<redis::Client, redis::RedisError>>,
}

impl std::fmt::Debug for SyncEngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the Redis URL: it may hold a password.
        f.debug_struct("SyncEngineBuilder")
            .field("registry", &self.registry)
            .field("group_commit", &self.group_commit)
            .field("hub", &self.hub)
            .field("streams", &self.streams)
            .field("rate_limit", &self.rate_limit)
            .field("compaction", &self.compaction)
            .finish_non_exhaustive()
    }
}

impl SyncEngineBuilder {
    pub(super) fn new(pool: Pool, registry: Registry, auth: Arc<dyn SyncAuth>) -> Self {
        SyncEngineBuilder {
            pool,
            registry,
            auth,
            group_commit: GroupCommitConfig::default(),
            hub: HubConfig::default(),
            streams: StreamLimits::default(),
            rate_limit: None,
            schema_hash: None,
            compaction: None,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// Compacts the log every `every` by age ([`Retention`]; see
    /// [`crate::ops::compact`]). Off by default: the log then keeps every
    /// action. Each node may run the schedule; runs never overlap.
    pub fn compaction_schedule(mut self, every: std::time::Duration, retention: Retention) -> Self {
        self.compaction = Some((every, retention));
        self
    }

    /// Tunes group commit: lanes, group and queue sizes, the statement,
    /// lock and hook timeouts ([`GroupCommitConfig`]).
    pub fn group_commit(mut self, config: GroupCommitConfig) -> Self {
        self.group_commit = config;
        self
    }

    /// Tunes the live feed: its poll of the log, the sockets' send
    /// buffers, its page size ([`crate::realtime::hub`]).
    pub fn hub_config(mut self, config: HubConfig) -> Self {
        self.hub = config;
        self
    }

    /// Sets the limits on streamed responses
    /// ([`StreamLimits`]).
    pub fn stream_limits(mut self, limits: StreamLimits) -> Self {
        self.streams = limits;
        self
    }

    /// Limits how many client transactions each user may apply per second
    /// (off unless set; see [`MutationRateLimit`]). A request over
    /// the limit fails with [`crate::ServiceError::RateLimited`] before it
    /// reaches the database.
    pub fn mutation_rate_limit(mut self, limit: MutationRateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets the client schema whose hash bootstrap metadata carries, when
    /// the application changed what [`ClientSchema::from_registry`] gives
    /// (a load strategy, say).
    pub fn client_schema(mut self, schema: &ClientSchema) -> Self {
        self.schema_hash = Some(schema.hash().into());
        self
    }

    /// Fans commits out to other nodes through Redis at `url`
    /// ([`crate::realtime::redis`]); `rediss://host:port` connects with
    /// TLS (rustls), checking the server's certificate against the
    /// system's root store. The URL is checked by
    /// [`SyncEngineBuilder::start`]; Redis itself need not be up: the node
    /// serves without it and connects when it can.
    #[cfg(feature = "redis")]
    pub fn redis_url(mut self, url: &str) -> Self {
        crate::tls::install_default_provider();
        self.redis = Some(redis::Client::open(url));
        self
    }

    /// [`SyncEngineBuilder::redis_url`] with a client the application
    /// configured: a private CA or client certificates
    /// ([`redis::Client::build_with_tls`]), RESP3, …
    #[cfg(feature = "redis")]
    pub fn redis_client(mut self, client: redis::Client) -> Self {
        self.redis = Some(Ok(client));
        self
    }

    /// Checks the settings, then starts the engine: the group commit
    /// lanes, the live feed, and the Redis fan-out if one was set. Must be
    /// called inside the tokio runtime that is to run them.
    pub fn start(self) -> Result<SyncEngine, ConfigError> {
        self.check()?;
        #[cfg(feature = "redis")]
        let redis = self.redis.transpose().map_err(ConfigError::RedisUrl)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        let bus = DeltaBus::default();
        let feed = crate::realtime::Hub::start(self.pool.clone(), &bus, self.hub);
        #[cfg(feature = "redis")]
        let fanout = match redis {
            None => None,
            Some(client) => {
                let fanout =
                    crate::realtime::redis::Fanout::start(client, &bus, feed.clone()).map_err(ConfigError::Redis)?;
                tracing::info!(
                    source_id = fanout.source_id(),
                    "fan-out through redis ({})",
                    crate::realtime::redis::CHANNEL
                );
                Some(fanout)
            }
        };
        let writer = Writer { pool: self.pool.clone(), registry: self.registry.clone(), bus: bus.clone() };
        let running = Running {
            hook_timeout: self.group_commit.hook_timeout,
            lanes: GroupCommit::start(writer, self.group_commit),
            feed,
            #[cfg(feature = "redis")]
            fanout,
            compaction: self
                .compaction
                .map(|(every, retention)| super::compaction_schedule::spawn(self.pool.clone(), every, retention)),
        };
        let schema_hash = self.schema_hash.unwrap_or_else(|| ClientSchema::from_registry(&self.registry).hash().into());
        Ok(SyncEngine {
            schema_hash,
            streams: StreamGate::new(self.streams, self.pool.status().max_size),
            pool: self.pool,
            registry: self.registry,
            auth: self.auth,
            bus,
            running: Arc::new(running),
            limiter: self.rate_limit.map(|limit| Arc::new(MutationLimiter::new(limit))),
        })
    }

    /// The settings no engine can run with.
    fn check(&self) -> Result<(), ConfigError> {
        let GroupCommitConfig { lanes, max_group, queue, .. } = &self.group_commit;
        let HubConfig { poll_interval, send_buffer_bytes, page_size, .. } = &self.hub;
        let StreamLimits { per_user, snapshot_slots, stall_timeout, .. } = &self.streams;
        let refusals = [
            (*lanes == 0, ConfigError::ZeroLanes),
            (*max_group == 0, ConfigError::ZeroMaxGroup),
            (*queue == 0, ConfigError::ZeroQueue),
            (poll_interval.is_zero(), ConfigError::ZeroPollInterval),
            (*send_buffer_bytes == 0, ConfigError::ZeroSendBuffer),
            (*page_size <= 0, ConfigError::PageSize(*page_size)),
            (*per_user == 0, ConfigError::ZeroStreamsPerUser),
            (*snapshot_slots == Some(0), ConfigError::ZeroSnapshotSlots),
            (stall_timeout.is_zero(), ConfigError::ZeroStallTimeout),
            (self.compaction.is_some_and(|(every, _)| every.is_zero()), ConfigError::ZeroCompactionPeriod),
        ];
        match refusals.into_iter().find(|(refused, _)| *refused) {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthContext, AuthRejection, AuthUser};
    use crate::error::ServiceError;
    use crate::protocol::MutateRequest;
    use std::time::Duration;

    struct NoAuth;

    #[async_trait::async_trait]
    impl SyncAuth for NoAuth {
        async fn verify_token(&self, _: &str) -> Result<AuthUser, AuthRejection> {
            Err(AuthRejection::Invalid)
        }
    }

    /// Settings over a database nobody listens at (the pool connects
    /// lazily; nothing here needs it).
    fn builder() -> SyncEngineBuilder {
        let pool = crate::storage::connect("postgres://postgres@127.0.0.1:1/none", &Default::default()).expect("pool");
        SyncEngine::builder(pool, Registry::builder().build(), NoAuth)
    }

    #[test]
    fn settings_no_engine_can_run_with_are_refused() {
        let commit = GroupCommitConfig::default;
        let hub = HubConfig::default;
        let streams = StreamLimits::default;
        let refused = [
            builder().group_commit(GroupCommitConfig { lanes: 0, ..commit() }),
            builder().group_commit(GroupCommitConfig { max_group: 0, ..commit() }),
            builder().group_commit(GroupCommitConfig { queue: 0, ..commit() }),
            builder().hub_config(HubConfig { poll_interval: Duration::ZERO, ..hub() }),
            builder().hub_config(HubConfig { send_buffer_bytes: 0, ..hub() }),
            builder().hub_config(HubConfig { page_size: -1, ..hub() }),
            builder().stream_limits(StreamLimits { per_user: 0, ..streams() }),
            builder().stream_limits(StreamLimits { snapshot_slots: Some(0), ..streams() }),
            builder().stream_limits(StreamLimits { stall_timeout: Duration::ZERO, ..streams() }),
        ]
        .map(|b| b.start().map(|_| ()).expect_err("refused").to_string());
        let expected = [
            "GroupCommitConfig::lanes is 0",
            "GroupCommitConfig::max_group is 0",
            "GroupCommitConfig::queue is 0",
            "HubConfig::poll_interval is zero",
            "HubConfig::send_buffer_bytes is 0",
            "HubConfig::page_size is -1",
            "StreamLimits::per_user is 0",
            "StreamLimits::snapshot_slots is 0",
            "StreamLimits::stall_timeout is zero",
        ];
        for (message, setting) in refused.iter().zip(expected) {
            assert!(message.contains(setting), "{message:?} names {setting}");
        }
        // Zero timeouts turn them off: allowed (no runtime here, so the
        // settings passed).
        let off = GroupCommitConfig { statement_timeout: Duration::ZERO, hook_timeout: Duration::ZERO, ..commit() };
        assert!(matches!(builder().group_commit(off).start(), Err(ConfigError::NoRuntime)));
    }

    #[cfg(feature = "redis")]
    #[test]
    fn an_invalid_redis_url_is_refused_without_repeating_it() {
        let started = builder().redis_url("http://user:hunter2@127.0.0.1:6379").start();
        let Err(e @ ConfigError::RedisUrl(_)) = started else { panic!("accepted a URL that is not redis://") };
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let started = builder().redis_url("redis://127.0.0.1:6379").start();
        assert!(matches!(started, Err(ConfigError::NoRuntime)), "a valid URL passes");
    }

    #[tokio::test]
    async fn shutdown_stops_the_lanes_and_the_feed() {
        let engine = builder().start().expect("started");
        // The running feed's tail listens on the bus.
        assert_eq!(engine.bus.receivers(), 1);
        engine.shutdown().await;
        let user = AuthContext { user: AuthUser::new("u"), groups: vec![], derived_groups: vec![] };
        let request = MutateRequest { batch_id: "b".into(), transactions: vec![] };
        assert!(matches!(engine.mutate(&user, &request).await, Err(ServiceError::Unavailable)));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while engine.bus.receivers() != 0 {
            assert!(tokio::time::Instant::now() < deadline, "the feed's tail did not end");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!engine.hub().position().0, "the stopped feed is not live");
        engine.shutdown().await;
    }
}
