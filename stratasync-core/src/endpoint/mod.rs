//! The sync protocol's endpoints, without I/O (docs/protocol.md §3–4, §7).
//!
//! A transport adapter reads what it received into a [`RequestParts`]
//! with [`RequestParts::read`] (the raw query and a header lookup; which
//! headers and how they are read is decided here), hands over the body's
//! chunks for `POST` endpoints, calls the endpoint, and
//! writes the [`Reply`] it gets back unchanged. Every status, header,
//! body, error line and close code is decided here; an adapter only moves
//! bytes.
//!
//! | endpoint | method | reads | answers |
//! |---|---|---|---|
//! | `GET {path}/bootstrap` | [`SyncEndpoints::bootstrap`] | query, `Authorization` | 200 NDJSON stream, or an error |
//! | `POST {path}/batch` | [`SyncEndpoints::batch`] | body, `Content-Type`, `Content-Length`, `Authorization` | 200 NDJSON stream, or an error |
//! | `GET {path}/deltas` | [`SyncEndpoints::deltas`] | query, `Authorization` | 200 JSON (streamed), or an error |
//! | `POST {path}/mutate` | [`SyncEndpoints::mutate`] | body, `Content-Type`, `Content-Length`, `Authorization` | 200 JSON, or an error |
//! | `GET {path}/ws` | [`SyncEndpoints::open_socket`] | query `token` | a [`SocketSession`](crate::realtime::SocketSession) to run, or a 401/429 reply |
//!
//! The request flow: adapter → endpoint (body, validation, auth) →
//! service ([`SyncEngine`]) → storage; a mutation's actions go to the log,
//! the node's feed tails the log and hands each delta to the subscribed
//! sessions, whose frames the adapter writes.

mod body;
mod failure;
mod http;
mod ndjson;
mod parts;
mod reply;
mod upgrade;

pub use parts::{Handshake, RequestParts};
pub use reply::{Reply, ReplyBody, ReplyStream, StreamAborted};

use crate::engine::SyncEngine;
use crate::realtime::socket::SocketSettings;
use crate::realtime::{NoSocketHooks, SessionBackend, SocketHooks, SocketLimits, UserSockets};
use crate::request::MAX_BODY_BYTES;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// The default interval of WebSocket pings (docs/protocol.md §7.6).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// The sync endpoints of one engine, with their settings.
///
/// Cheap to clone: clones share the engine, the request-id counter
/// (`"req-" + base36(n)` in validation failures of requests not run under
/// a [`RequestId`](crate::request_id::RequestId)), the open-socket counts
/// and the shutdown signal. Build it once per process.
#[derive(Clone)]
pub struct SyncEndpoints {
    engine: SyncEngine,
    body_limit: usize,
    requests: Arc<AtomicU64>,
    socket_hooks: Arc<dyn SocketHooks>,
    heartbeat: Duration,
    token_recheck: Option<Duration>,
    socket_limits: SocketLimits,
    sockets: UserSockets,
    going_away: Arc<tokio::sync::watch::Sender<bool>>,
}

impl std::fmt::Debug for SyncEndpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEndpoints")
            .field("engine", &self.engine)
            .field("body_limit", &self.body_limit)
            .field("heartbeat", &self.heartbeat)
            .field("token_recheck", &self.token_recheck)
            .field("socket_limits", &self.socket_limits)
            .finish_non_exhaustive()
    }
}

impl SyncEndpoints {
    /// The endpoints of `engine`, with the default body limit
    /// ([`MAX_BODY_BYTES`]), heartbeat ([`HEARTBEAT_INTERVAL`]) and socket
    /// limits, and no socket hooks.
    pub fn new(engine: SyncEngine) -> Self {
        SyncEndpoints {
            engine,
            body_limit: MAX_BODY_BYTES,
            requests: Arc::new(AtomicU64::new(0)),
            socket_hooks: Arc::new(NoSocketHooks),
            heartbeat: HEARTBEAT_INTERVAL,
            token_recheck: None,
            socket_limits: SocketLimits::default(),
            sockets: UserSockets::default(),
            going_away: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Closes every WebSocket of these endpoints with 1001 `Server shutting
    /// down` (clients reconnect to another node at once). Call it when the
    /// application starts a graceful shutdown: open sockets would otherwise
    /// hold the server until its shutdown timeout.
    pub fn close_sockets(&self) {
        self.going_away.send_replace(true);
    }

    /// Runs `hooks` on every WebSocket (subscribe, app messages, close).
    pub fn socket_hooks(mut self, hooks: impl SocketHooks) -> Self {
        self.socket_hooks = Arc::new(hooks);
        self
    }

    /// Sets the WebSocket ping interval; a socket that has not answered the
    /// previous ping by the next one is closed with 1011 `Heartbeat timeout`.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// Verifies each live WebSocket's token again every `every` (off by
    /// default): a token [`SyncAuth::verify_token`](crate::SyncAuth::verify_token)
    /// now refuses closes its socket with 4001 `Token rejected` (or `Token
    /// expired`), so a revoked session ends within `every`. Independently of
    /// this, a socket whose token carries an expiry
    /// ([`AuthUser::expires_at`](crate::AuthUser::expires_at)) is closed
    /// with 4001 `Token expired` when it passes.
    pub fn token_recheck(mut self, every: Duration) -> Self {
        self.token_recheck = Some(every);
        self
    }

    /// Sets the limits on WebSocket clients: message and subscribe sizes,
    /// waiting subscribes, and open sockets per user (see
    /// [`SocketLimits`] for each, its default and how it is answered). A
    /// user over [`SocketLimits::max_sockets_per_user`] gets `429 Too Many
    /// Requests` with `Retry-After: 5` on the upgrade. Sockets are counted
    /// per `SyncEndpoints` (clones share the counts), so build it once per
    /// process.
    pub fn socket_limits(mut self, limits: SocketLimits) -> Self {
        self.sockets = UserSockets::new(limits.max_sockets_per_user);
        self.socket_limits = limits;
        self
    }

    /// Sets the largest accepted request body, in bytes (larger ones get
    /// 413).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The engine behind the endpoints.
    pub fn engine(&self) -> &SyncEngine {
        &self.engine
    }

    fn socket_settings(&self) -> SocketSettings {
        SocketSettings {
            engine: SessionBackend {
                pool: self.engine.pool.clone(),
                feed: self.engine.hub(),
                auth: Arc::clone(&self.engine.auth),
            },
            hooks: Arc::clone(&self.socket_hooks),
            heartbeat: self.heartbeat,
            token_recheck: self.token_recheck,
            limits: self.socket_limits.clone(),
            going_away: self.going_away.subscribe(),
        }
    }
}
