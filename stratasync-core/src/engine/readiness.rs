//! The readiness check of a node ([`crate::readiness`] holds its report).

use super::SyncEngine;
use crate::readiness::{DatabaseState, FeedState, Readiness, RedisState, DATABASE_CHECK_TIMEOUT};
use crate::storage::log;

impl SyncEngine {
    /// Checks the database (reading the log's head, within
    /// [`DATABASE_CHECK_TIMEOUT`]), the Redis fan-out and the live feed,
    /// and updates the feed's metrics. After [`SyncEngine::shutdown`] the
    /// feed is not live (and the fan-out not subscribed): not ready. Must
    /// be called inside the tokio runtime.
    pub async fn readiness(&self) -> Readiness {
        let head = tokio::time::timeout(DATABASE_CHECK_TIMEOUT, async {
            let mut conn = self.pool.get().await.ok()?;
            log::head(&mut conn).await.ok()
        })
        .await
        .ok()
        .flatten();
        let hub = self.hub();
        let (live, delivered) = hub.position();
        if let Some(head) = head {
            hub.observe_head(head.0);
        }
        let redis = match self.fanout_subscribed() {
            None => RedisState::Disabled,
            Some(true) => RedisState::Connected,
            Some(false) => RedisState::Disconnected,
        };
        Readiness {
            database: if head.is_some() { DatabaseState::Up } else { DatabaseState::Down },
            redis,
            feed: FeedState {
                live,
                head: head.map(|h| h.0),
                delivered,
                lag: head.map(|h| h.0.saturating_sub(delivered)),
            },
        }
    }
}
