//! The engine's metrics, recorded through the [`metrics`] facade.
//!
//! The engine depends on the facade only: nothing is collected until the
//! application installs a recorder (say `metrics-exporter-prometheus`, as
//! the example server does for `GET /metrics`), and without one every call
//! here is a no-op. Install the recorder before the engine starts, then
//! call [`describe`] so the series carry their help text and unit.
//!
//! Every series is named `stratasync_*`, its unit in its name, and listed
//! with its labels in the repository's `docs/metrics.md`.
//!
//! Call sites elsewhere in the crate stay one line: each series has a
//! named helper here. The per-frame counters of the WebSocket writers are
//! process-wide atomics, published as counters once a second by the live
//! feed's sampler (see [`crate::realtime::Hub::start`]), so a delivery
//! costs no recorder lookup.

use crate::error::MutationError;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Client transactions by outcome (label `outcome`).
pub const MUTATIONS: &str = "stratasync_mutations_total";
/// Rejected client transactions by reason class (label `reason`).
pub const MUTATIONS_REJECTED: &str = "stratasync_mutations_rejected_total";
/// Client transactions per committed group.
pub const COMMIT_GROUP_TRANSACTIONS: &str = "stratasync_commit_group_transactions";
/// Requests per committed group.
pub const COMMIT_GROUP_REQUESTS: &str = "stratasync_commit_group_requests";
/// How long a group took from its first statement to its answer.
pub const COMMIT_DURATION: &str = "stratasync_commit_duration_seconds";
/// Rows streamed by bootstraps.
pub const BOOTSTRAP_ROWS: &str = "stratasync_bootstrap_rows_total";
/// NDJSON bytes streamed by bootstraps.
pub const BOOTSTRAP_BYTES: &str = "stratasync_bootstrap_bytes_total";
/// Rows streamed by batch loads.
pub const BATCH_LOAD_ROWS: &str = "stratasync_batch_load_rows_total";
/// NDJSON bytes streamed by batch loads.
pub const BATCH_LOAD_BYTES: &str = "stratasync_batch_load_bytes_total";
/// Actions served to clients catching up (labels `source`, `via`).
pub const DELTAS_SERVED: &str = "stratasync_deltas_served_total";
/// WebSockets open now.
pub const SOCKETS_OPEN: &str = "stratasync_ws_sockets_open";
/// WebSocket frames handed to the transport.
pub const FRAMES_SENT: &str = "stratasync_ws_frames_sent_total";
/// Bytes of the WebSocket frames handed to the transport.
pub const BYTES_SENT: &str = "stratasync_ws_sent_bytes_total";
/// Bytes waiting in the subscribed sockets' send queues.
pub const SEND_QUEUE_BYTES: &str = "stratasync_ws_send_queue_bytes";
/// WebSockets closed, by close code (label `code`).
pub const SOCKETS_CLOSED: &str = "stratasync_ws_closed_total";
/// The newest sync id the live feed knows the log holds.
pub const FEED_HEAD: &str = "stratasync_feed_head_sync_id";
/// The sync id up to which the live feed delivered the log.
pub const FEED_DELIVERED: &str = "stratasync_feed_delivered_sync_id";
/// Head minus delivered: actions the live feed has not delivered yet.
pub const FEED_LAG: &str = "stratasync_feed_lag_actions";
/// Whether a Redis connection of the fan-out is up (label `role`).
pub const REDIS_CONNECTED: &str = "stratasync_redis_connected";
/// Redis connections of the fan-out re-established after a loss (label `role`).
pub const REDIS_RECONNECTS: &str = "stratasync_redis_reconnects_total";
/// Database pool connections (label `state`: `in_use`, `idle`, `max`).
pub const POOL_CONNECTIONS: &str = "stratasync_db_pool_connections";
/// Log compactions run by this process (label `outcome`: `done`, `busy`, `failed`).
pub const COMPACTIONS: &str = "stratasync_log_compactions_total";
/// Actions log compactions removed (label `kind`: `removed`, `rewritten`).
pub const COMPACTED_ACTIONS: &str = "stratasync_log_compacted_actions_total";

/// Frames handed to WebSocket transports by this process.
static FRAMES: AtomicU64 = AtomicU64::new(0);
/// Their bytes.
static FRAME_BYTES: AtomicU64 = AtomicU64::new(0);

/// Registers the help text and unit of every series with the installed
/// recorder (call it once, after installing the recorder).
pub fn describe() {
    describe_counter!(MUTATIONS, Unit::Count, "Client transactions by outcome: applied, deduplicated, rejected (success:false), interrupted (503, retried), unavailable (503: the database), rate_limited (429).");
    describe_counter!(MUTATIONS_REJECTED, Unit::Count, "Client transactions answered success:false, by reason class.");
    describe_histogram!(COMMIT_GROUP_TRANSACTIONS, Unit::Count, "Client transactions per mutation group.");
    describe_histogram!(COMMIT_GROUP_REQUESTS, Unit::Count, "Mutate requests per mutation group.");
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "Time a mutation group took on its lane, attempts and commit included."
    );
    describe_counter!(BOOTSTRAP_ROWS, Unit::Count, "Rows streamed by bootstraps.");
    describe_counter!(BOOTSTRAP_BYTES, Unit::Bytes, "NDJSON bytes streamed by bootstraps.");
    describe_counter!(BATCH_LOAD_ROWS, Unit::Count, "Rows streamed by batch loads.");
    describe_counter!(BATCH_LOAD_BYTES, Unit::Bytes, "NDJSON bytes streamed by batch loads.");
    describe_counter!(DELTAS_SERVED, Unit::Count, "Actions served to clients catching up, by source (database) and path (http: /sync/deltas, replay: WebSocket subscribe).");
    describe_gauge!(SOCKETS_OPEN, Unit::Count, "WebSockets open.");
    describe_counter!(FRAMES_SENT, Unit::Count, "WebSocket frames handed to the transport.");
    describe_counter!(BYTES_SENT, Unit::Bytes, "Bytes of the WebSocket frames handed to the transport.");
    describe_gauge!(SEND_QUEUE_BYTES, Unit::Bytes, "Bytes waiting in the send queues of subscribed WebSockets.");
    describe_counter!(
        SOCKETS_CLOSED,
        Unit::Count,
        "WebSockets closed, by the close code sent (none: the connection ended without one)."
    );
    describe_gauge!(FEED_HEAD, Unit::Count, "The newest sync id the live feed knows the log holds.");
    describe_gauge!(FEED_DELIVERED, Unit::Count, "The sync id up to which the live feed delivered the log.");
    describe_gauge!(
        FEED_LAG,
        Unit::Count,
        "Actions committed but not yet delivered by the live feed (head - delivered)."
    );
    describe_gauge!(
        REDIS_CONNECTED,
        Unit::Count,
        "1 while the fan-out's Redis connection (publisher, subscriber) is up."
    );
    describe_counter!(REDIS_RECONNECTS, Unit::Count, "Redis connections of the fan-out re-established after a loss.");
    describe_gauge!(POOL_CONNECTIONS, Unit::Count, "Database pool connections: in_use, idle, max.");
    describe_counter!(COMPACTIONS, Unit::Count, "Log compactions run by this process, by outcome: done, busy, failed.");
    describe_counter!(
        COMPACTED_ACTIONS,
        Unit::Count,
        "Actions log compactions removed or rewritten as the fold of their run."
    );
}

/// What became of a client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxOutcome {
    Applied,
    Deduplicated,
    Rejected(&'static str),
    Interrupted,
    Unavailable,
    RateLimited,
}

/// Counts `n` client transactions with `outcome`.
pub(crate) fn mutations(outcome: TxOutcome, n: usize) {
    if n == 0 {
        return;
    }
    let label = match outcome {
        TxOutcome::Applied => "applied",
        TxOutcome::Deduplicated => "deduplicated",
        TxOutcome::Rejected(reason) => {
            counter!(MUTATIONS_REJECTED, "reason" => reason).increment(n as u64);
            "rejected"
        }
        TxOutcome::Interrupted => "interrupted",
        TxOutcome::Unavailable => "unavailable",
        TxOutcome::RateLimited => "rate_limited",
    };
    counter!(MUTATIONS, "outcome" => label).increment(n as u64);
}

/// The reason class of a rejected transaction, a label of
/// [`MUTATIONS_REJECTED`].
pub(crate) fn reject_reason(error: &MutationError) -> &'static str {
    use MutationError as E;
    match error {
        E::RecordNotFound | E::ForeignKey => "not_found",
        E::AccessDenied | E::MissingGroup | E::GroupChange => "access_denied",
        E::AlreadyExists => "conflict",
        E::UnknownModel(_)
        | E::UnsupportedAction(_)
        | E::UpdateNotConfigured
        | E::ArchiveNotConfigured
        | E::UnarchiveNotConfigured
        | E::ArchivedAtRequired
        | E::InvalidValue { .. }
        | E::NonCanonicalModelId
        | E::MissingField => "invalid",
        E::Hook(_) | E::HookPanicked | E::HookTimedOut => "hook",
        E::Database(_) | E::Unavailable(_) => "database",
    }
}

/// One committed (or failed) mutation group.
pub(crate) fn commit_group(requests: usize, transactions: usize, took: Duration) {
    histogram!(COMMIT_GROUP_REQUESTS).record(requests as f64);
    histogram!(COMMIT_GROUP_TRANSACTIONS).record(transactions as f64);
    histogram!(COMMIT_DURATION).record(took.as_secs_f64());
}

/// A finished snapshot stream (`bootstrap` or `batch`).
pub(crate) fn streamed(stream: &str, rows: u64, bytes: u64) {
    let (row_series, byte_series) = match stream {
        "bootstrap" => (BOOTSTRAP_ROWS, BOOTSTRAP_BYTES),
        _ => (BATCH_LOAD_ROWS, BATCH_LOAD_BYTES),
    };
    counter!(row_series).increment(rows);
    counter!(byte_series).increment(bytes);
}

/// Actions served from `source` (`database`, or `memory`: the hot tail),
/// through `via` (`http` or `replay`).
pub(crate) fn deltas_served(source: &'static str, via: &'static str, actions: u64) {
    if actions > 0 {
        counter!(DELTAS_SERVED, "source" => source, "via" => via).increment(actions);
    }
}

/// A log compaction ended with `outcome` (`done`, `busy`, `failed`),
/// having removed and rewritten that many actions.
pub(crate) fn compaction(outcome: &'static str, removed: u64, rewritten: u64) {
    counter!(COMPACTIONS, "outcome" => outcome).increment(1);
    counter!(COMPACTED_ACTIONS, "kind" => "removed").increment(removed);
    counter!(COMPACTED_ACTIONS, "kind" => "rewritten").increment(rewritten);
}

/// A socket's send queue was created.
pub(crate) fn socket_opened() {
    gauge!(SOCKETS_OPEN).increment(1.0);
}

/// A socket's send queue is gone, after a close frame with `code` (or
/// none).
pub(crate) fn socket_closed(code: Option<u16>) {
    gauge!(SOCKETS_OPEN).decrement(1.0);
    let code = match code {
        Some(code) => code.to_string(),
        None => "none".to_owned(),
    };
    counter!(SOCKETS_CLOSED, "code" => code).increment(1);
}

/// A frame of `len` bytes went to a WebSocket transport (two relaxed
/// atomic adds; published by [`sample_sent`]).
pub(crate) fn frame_sent(len: usize) {
    FRAMES.fetch_add(1, Ordering::Relaxed);
    FRAME_BYTES.fetch_add(len as u64, Ordering::Relaxed);
}

/// Publishes the frame counters of [`frame_sent`].
pub(crate) fn sample_sent() {
    counter!(FRAMES_SENT).absolute(FRAMES.load(Ordering::Relaxed));
    counter!(BYTES_SENT).absolute(FRAME_BYTES.load(Ordering::Relaxed));
}

/// The bytes queued on the subscribed sockets now.
pub(crate) fn send_queue(bytes: usize) {
    gauge!(SEND_QUEUE_BYTES).set(bytes as f64);
}

/// The live feed's position.
pub(crate) fn feed(head: u64, delivered: u64) {
    gauge!(FEED_HEAD).set(head as f64);
    gauge!(FEED_DELIVERED).set(delivered as f64);
    gauge!(FEED_LAG).set(head.saturating_sub(delivered) as f64);
}

/// The pool's connections now.
pub(crate) fn pool(status: &deadpool::Status) {
    let idle = status.available;
    gauge!(POOL_CONNECTIONS, "state" => "in_use").set(status.size.saturating_sub(idle) as f64);
    gauge!(POOL_CONNECTIONS, "state" => "idle").set(idle as f64);
    gauge!(POOL_CONNECTIONS, "state" => "max").set(status.max_size as f64);
}

/// A fan-out connection (`publisher` or `subscriber`) went up or down;
/// `again`: up after a loss.
#[cfg(feature = "redis")]
pub(crate) fn redis(role: &'static str, connected: bool, again: bool) {
    gauge!(REDIS_CONNECTED, "role" => role).set(if connected { 1.0 } else { 0.0 });
    if again {
        counter!(REDIS_RECONNECTS, "role" => role).increment(1);
    }
}
