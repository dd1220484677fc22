//! Readiness: whether this node can serve, for a load balancer's or an
//! orchestrator's probe ([`SyncEngine::readiness`](crate::SyncEngine::readiness)).
//!
//! A node is ready when the database answers, the Redis fan-out (if one
//! was started) is subscribed, and the live feed reads the log. A Redis
//! outage costs the node's sockets latency, never deliveries (the feed
//! polls the log), but the node reports it so traffic can go to nodes
//! that have it.

use serde::Serialize;
use std::time::Duration;

/// How long the database check may take before it counts as down.
pub const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The database as the readiness check found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseState {
    /// A pooled connection read the log's head.
    Up,
    /// No connection, a failed query, or no answer within
    /// [`DATABASE_CHECK_TIMEOUT`].
    Down,
}

/// The Redis fan-out's subscriber connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisState {
    /// The engine has no fan-out (a single node).
    Disabled,
    /// Subscribed to the fan-out channel.
    Connected,
    /// Not subscribed (it reconnects by itself).
    Disconnected,
}

/// The live feed's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeedState {
    /// Whether the feed's last read of the log succeeded.
    pub live: bool,
    /// The log's newest sync id (read now; `None` when the database is
    /// down).
    pub head: Option<u64>,
    /// The sync id up to which the feed delivered the log to this node's
    /// sockets.
    pub delivered: u64,
    /// `head - delivered` (`None` when the head is unknown).
    pub lag: Option<u64>,
}

/// What [`SyncEngine::readiness`](crate::SyncEngine::readiness) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// The database.
    pub database: DatabaseState,
    /// The Redis fan-out.
    pub redis: RedisState,
    /// The live feed.
    pub feed: FeedState,
}

/// The JSON body of a readiness probe: `status` first, then the report.
#[derive(Serialize)]
struct Body<'a> {
    status: &'static str,
    #[serde(flatten)]
    report: &'a Readiness,
}

impl Readiness {
    /// Ready: the database is up, Redis is connected (or not used) and the
    /// feed is live.
    pub fn is_ready(&self) -> bool {
        self.database == DatabaseState::Up && self.redis != RedisState::Disconnected && self.feed.live
    }

    /// `{"status":"ready"|"not_ready","database":"up"|"down",
    /// "redis":"disabled"|"connected"|"disconnected",
    /// "feed":{"live":…,"head":…,"delivered":…,"lag":…}}`.
    pub fn to_json(&self) -> String {
        let status = if self.is_ready() { "ready" } else { "not_ready" };
        serde_json::to_string(&Body { status, report: self }).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_puts_the_status_first() {
        let mut report = Readiness {
            database: DatabaseState::Up,
            redis: RedisState::Disabled,
            feed: FeedState { live: true, head: Some(7), delivered: 5, lag: Some(2) },
        };
        assert_eq!(
            report.to_json(),
            r#"{"status":"ready","database":"up","redis":"disabled","feed":{"live":true,"head":7,"delivered":5,"lag":2}}"#
        );
        report.redis = RedisState::Disconnected;
        assert!(!report.is_ready());
        report.redis = RedisState::Connected;
        assert!(report.is_ready());
        report.database = DatabaseState::Down;
        report.feed = FeedState { live: false, head: None, delivered: 5, lag: None };
        assert_eq!(
            report.to_json(),
            r#"{"status":"not_ready","database":"down","redis":"connected","feed":{"live":false,"head":null,"delivered":5,"lag":null}}"#
        );
    }
}
