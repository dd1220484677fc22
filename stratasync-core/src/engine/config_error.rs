//! Why [`SyncEngineBuilder::start`](super::SyncEngineBuilder::start)
//! refused its settings.

/// A setting no engine can run with, or no runtime to run it on. Each
/// message names the setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// [`GroupCommitConfig::lanes`](crate::service::group_commit::GroupCommitConfig::lanes) is 0.
    #[error("group commit needs at least one lane (GroupCommitConfig::lanes is 0)")]
    ZeroLanes,
    /// [`GroupCommitConfig::max_group`](crate::service::group_commit::GroupCommitConfig::max_group) is 0.
    #[error("a commit group must take at least one transaction (GroupCommitConfig::max_group is 0)")]
    ZeroMaxGroup,
    /// [`GroupCommitConfig::queue`](crate::service::group_commit::GroupCommitConfig::queue) is 0.
    #[error("group commit needs room for at least one waiting request (GroupCommitConfig::queue is 0)")]
    ZeroQueue,
    /// [`HubConfig::poll_interval`](crate::realtime::HubConfig::poll_interval) is zero.
    #[error("the live feed cannot poll the log continuously (HubConfig::poll_interval is zero)")]
    ZeroPollInterval,
    /// [`HubConfig::send_buffer_bytes`](crate::realtime::HubConfig::send_buffer_bytes) is 0.
    #[error("sockets need a send buffer of at least one byte (HubConfig::send_buffer_bytes is 0)")]
    ZeroSendBuffer,
    /// [`HubConfig::page_size`](crate::realtime::HubConfig::page_size) is not positive.
    #[error("the live feed must read at least one action per query (HubConfig::page_size is {0})")]
    PageSize(i64),
    /// [`StreamLimits::per_user`](crate::service::streams::StreamLimits::per_user) is 0.
    #[error("users must be allowed at least one streamed response (StreamLimits::per_user is 0)")]
    ZeroStreamsPerUser,
    /// [`StreamLimits::snapshot_slots`](crate::service::streams::StreamLimits::snapshot_slots) is `Some(0)`.
    #[error("snapshot streams need at least one slot (StreamLimits::snapshot_slots is 0)")]
    ZeroSnapshotSlots,
    /// [`StreamLimits::stall_timeout`](crate::service::streams::StreamLimits::stall_timeout) is zero.
    #[error("streams must wait some time for their consumer (StreamLimits::stall_timeout is zero)")]
    ZeroStallTimeout,
    /// The compaction schedule's period is zero.
    #[error("the log cannot be compacted continuously (the compaction schedule's period is zero)")]
    ZeroCompactionPeriod,
    /// The Redis URL does not parse (its text is not repeated: it may hold
    /// a password).
    #[cfg(feature = "redis")]
    #[error("invalid Redis URL: {0}")]
    RedisUrl(#[source] redis::RedisError),
    /// The Redis fan-out could not be set up with the client given.
    #[cfg(feature = "redis")]
    #[error("cannot set up the Redis fan-out: {0}")]
    Redis(#[source] redis::RedisError),
    /// [`SyncEngineBuilder::start`](super::SyncEngineBuilder::start) ran
    /// outside a tokio runtime (it spawns the engine's tasks).
    #[error("the sync engine must be started inside a tokio runtime")]
    NoRuntime,
}
