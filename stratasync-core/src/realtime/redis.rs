//! Fan-out across nodes through Redis pub/sub (docs/protocol.md §6).
//!
//! Started by [`SyncEngineBuilder::redis_url`] (or
//! [`SyncEngineBuilder::redis_client`]) and stopped by
//! [`SyncEngine::shutdown`]. Every action this node commits is published
//! on `sync:deltas` in the reference's message format, so Rust and
//! TypeScript nodes can share one Redis. A message from another node only
//! **wakes** this node's live feed, which then reads the log from its own
//! cursor: Redis is best-effort for latency, never for correctness. If
//! Redis is down, restarts or drops a message, the feed's periodic poll
//! still delivers every action, mutations keep succeeding, and both
//! connections come back by themselves: the publisher's is a
//! [`redis::aio::ConnectionManager`], which reconnects when a command finds
//! its connection dropped; the subscriber (a RESP2 pub/sub connection,
//! which the manager cannot hold) reconnects with a backoff. Each outage is
//! logged once, not per message.
//!
//! [`SyncEngineBuilder::redis_url`]: crate::engine::SyncEngineBuilder::redis_url
//! [`SyncEngineBuilder::redis_client`]: crate::engine::SyncEngineBuilder::redis_client
//! [`SyncEngine::shutdown`]: crate::SyncEngine::shutdown

use crate::bus::{Delta, DeltaBus};
use crate::protocol::SyncAction;
use crate::realtime::Hub;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The channel shared with `@stratasync/server`.
pub const CHANNEL: &str = "sync:deltas";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Connection attempts the publisher's manager makes per reconnection
/// (the next command after they all failed starts another round).
const PUBLISH_CONNECT_ATTEMPTS: usize = 3;

/// A running fan-out: its publisher and subscriber tasks.
pub(crate) struct Fanout {
    source_id: String,
    status: Arc<FanoutStatus>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Fanout {
    /// Starts publishing the commits of `bus` through `client` and waking
    /// `hub` on other nodes' messages. Never waits for Redis: a node starts
    /// and serves without it and connects when it can.
    pub(crate) fn start(client: redis::Client, bus: &DeltaBus, hub: Hub) -> Result<Fanout, redis::RedisError> {
        crate::tls::install_default_provider();
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        let source_id = format!("sync-{}", &uuid[..8]);
        let status = Arc::new(FanoutStatus::default());
        // Lazy: the first PUBLISH connects.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(PUBLISH_TIMEOUT))
            .set_number_of_retries(PUBLISH_CONNECT_ATTEMPTS)
            .set_max_delay(MAX_BACKOFF);
        let publisher = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let tasks = vec![
            tokio::spawn(publish(publisher, bus.subscribe(), source_id.clone())),
            tokio::spawn(listen(client, hub, source_id.clone(), status.clone())),
        ];
        Ok(Fanout { source_id, status, tasks: Mutex::new(tasks) })
    }

    /// This node's id in published messages (`sync-` + 8 hex digits).
    pub(crate) fn source_id(&self) -> &str {
        &self.source_id
    }

    /// The subscriber's state, for readiness.
    pub(crate) fn status(&self) -> &FanoutStatus {
        &self.status
    }

    /// Stops both tasks (commits not yet published reach the other nodes
    /// at their next poll of the log).
    pub(crate) async fn stop(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Cancelled, as asked.
            let _ = task.await;
        }
        self.status.subscribed.store(false, Ordering::Release);
        crate::metrics::redis("publisher", false, false);
        crate::metrics::redis("subscriber", false, false);
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    action: &'a SyncAction,
    groups: Vec<&'a str>,
    source_id: &'a str,
}

/// The published JSON of one committed action.
pub fn message(action: &SyncAction, source_id: &str) -> String {
    let groups = action.group_id.as_deref().filter(|g| !g.is_empty()).into_iter().collect();
    serde_json::to_string(&Message { action, groups, source_id }).unwrap_or_default()
}

/// The fan-out's state, for [`SyncEngine::readiness`](crate::SyncEngine::readiness).
#[derive(Debug, Default)]
pub(crate) struct FanoutStatus {
    /// The subscriber is subscribed to [`CHANNEL`].
    subscribed: AtomicBool,
}

impl FanoutStatus {
    /// Whether the subscriber is subscribed now.
    pub(crate) fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }
}

/// Logs a connection state change once, and keeps its metrics.
struct Health {
    what: &'static str,
    down: bool,
    /// Whether the connection is up now.
    up: bool,
}

impl Health {
    fn new(what: &'static str) -> Health {
        crate::metrics::redis(what, false, false);
        Health { what, down: false, up: false }
    }

    fn failed(&mut self, error: &dyn std::fmt::Display) {
        if self.up {
            crate::metrics::redis(self.what, false, false);
            self.up = false;
        }
        if !self.down {
            tracing::warn!(error = %error, "redis {} unavailable; live deltas fall back to polling the log", self.what);
            self.down = true;
        }
    }

    fn ok(&mut self) {
        if !self.up {
            crate::metrics::redis(self.what, true, self.down);
            self.up = true;
        }
        if self.down {
            tracing::info!("redis {} connected again", self.what);
            self.down = false;
        }
    }
}

async fn publish(mut conn: ConnectionManager, mut commits: broadcast::Receiver<Delta>, source_id: String) {
    let mut health = Health::new("publisher");
    loop {
        let action = match commits.recv().await {
            Ok(action) => action,
            // Missed messages only cost other nodes latency: they poll.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(CHANNEL).arg(message(&action, &source_id));
        // A connection Redis dropped (say, a restart) fails the first
        // command sent on it, and the manager starts reconnecting: retry
        // that once, so the first commit after a restart still wakes the
        // other nodes. The timeout bounds the wait for a connection too.
        let mut retried = false;
        loop {
            match tokio::time::timeout(CONNECT_TIMEOUT + PUBLISH_TIMEOUT, publish.exec_async(&mut conn)).await {
                Ok(Ok(())) => health.ok(),
                Ok(Err(e)) if e.is_unrecoverable_error() && !std::mem::replace(&mut retried, true) => continue,
                Ok(Err(e)) => health.failed(&e),
                Err(e) => health.failed(&e),
            }
            break;
        }
    }
}

async fn listen(client: redis::Client, hub: Hub, source_id: String, status: Arc<FanoutStatus>) {
    let mut health = Health::new("subscriber");
    let mut backoff = Duration::from_millis(100);
    loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, subscribe(&client)).await {
            Ok(Ok(pubsub)) => {
                health.ok();
                status.subscribed.store(true, Ordering::Release);
                backoff = Duration::from_millis(100);
                // Anything published while we were away is in the log.
                hub.wake();
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    if is_foreign_delta(msg.get_payload_bytes(), &source_id) {
                        hub.wake();
                    }
                }
                status.subscribed.store(false, Ordering::Release);
                health.failed(&"connection closed");
            }
            Ok(Err(e)) => health.failed(&e),
            Err(e) => health.failed(&e),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(client: &redis::Client) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    Ok(pubsub)
}

/// Whether a message is a well-formed delta from another node (§6: `groups`
/// a string array; `action` with string `action`, `modelId`, `modelName`,
/// a date `createdAt`, object `data`, digit-string `syncId`).
pub fn is_foreign_delta(payload: &[u8], own_source_id: &str) -> bool {
    let Ok(message) = serde_json::from_slice::<Value>(payload) else {
        tracing::warn!("dropping a redis message that is not JSON");
        return false;
    };
    if message.get("sourceId").and_then(Value::as_str) == Some(own_source_id) {
        return false;
    }
    let groups_ok = message.get("groups").and_then(Value::as_array).is_some_and(|g| g.iter().all(Value::is_string));
    let action = message.get("action");
    let field = |k: &str| action.and_then(|a| a.get(k));
    let string = |k: &str| field(k).is_some_and(Value::is_string);
    let created =
        field("createdAt").and_then(Value::as_str).is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok());
    let sync_id = field("syncId").and_then(Value::as_str).is_some_and(|s| s.parse::<crate::protocol::SyncId>().is_ok());
    let valid = groups_ok
        && string("action")
        && string("modelId")
        && string("modelName")
        && created
        && field("data").is_some_and(Value::is_object)
        && sync_id;
    if !valid {
        tracing::warn!("dropping a malformed redis delta message");
    }
    valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ActionKind, SyncId};
    use chrono::TimeZone;

    fn action(group: Option<&str>) -> SyncAction {
        SyncAction {
            action: ActionKind::Insert,
            client_id: Some("c".into()),
            client_tx_id: Some("tx".into()),
            created_at: chrono::Utc.timestamp_millis_opt(1_718_452_800_000).unwrap(),
            data: serde_json::json!({"id": "t9"}).as_object().unwrap().clone(),
            group_id: group.map(str::to_owned),
            model_id: "t9".into(),
            model_name: "Task".into(),
            sync_id: SyncId(7),
        }
    }

    #[test]
    fn messages_match_the_reference_format() {
        assert_eq!(
            message(&action(Some("w1")), "sync-1a2b3c4d"),
            r#"{"action":{"action":"I","clientId":"c","clientTxId":"tx","createdAt":"2024-06-15T12:00:00.000Z","data":{"id":"t9"},"groupId":"w1","modelId":"t9","modelName":"Task","syncId":"7"},"groups":["w1"],"sourceId":"sync-1a2b3c4d"}"#
        );
        assert!(message(&action(None), "s").contains(r#""groups":[]"#));
    }

    #[test]
    fn inbound_messages_are_validated() {
        let ours = message(&action(Some("w1")), "sync-own");
        assert!(!is_foreign_delta(ours.as_bytes(), "sync-own"), "loopback is suppressed");
        assert!(is_foreign_delta(ours.as_bytes(), "sync-other"));
        assert!(!is_foreign_delta(b"not json", "x"));
        let bad_id = ours.replace(r#""syncId":"7""#, r#""syncId":7"#);
        assert!(!is_foreign_delta(bad_id.as_bytes(), "x"));
        let bad_groups = ours.replace(r#""groups":["w1"]"#, r#""groups":[1]"#);
        assert!(!is_foreign_delta(bad_groups.as_bytes(), "x"));
    }
}
