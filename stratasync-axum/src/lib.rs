//! # stratasync-axum
//!
//! The axum adapter of StrataSync: it maps the endpoints of the sync
//! protocol (the repository's `docs/protocol.md`, §3–4 and §7) onto the
//! core's [`SyncEndpoints`] and adds nothing else. Every status, header,
//! body, error line, WebSocket message and close code is decided by
//! [`stratasync_core::endpoint`] and [`stratasync_core::realtime`]; this
//! crate copies requests into [`RequestParts`](stratasync_core::endpoint::RequestParts),
//! writes the replies back, and moves WebSocket messages between axum's
//! socket and the core's session. It serves the same protocol as
//! `stratasync-actix`, byte for byte on HTTP.
//!
//! ## Mounting
//!
//! [`SyncRouter::router`] returns an [`axum::Router`] with the five
//! endpoints; nest it under the path the application chooses. It needs no
//! state of the application's and composes with its own routes and
//! layers:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use stratasync_axum::SyncRouter;
//! use stratasync_core::SyncEngine;
//!
//! async fn serve(engine: SyncEngine) -> std::io::Result<()> {
//!     let sync = SyncRouter::new(engine);
//!     let app = Router::new().route("/health", get(|| async { "ok" })).nest("/sync", sync.router());
//!     let listener = tokio::net::TcpListener::bind(("127.0.0.1", 3000)).await?;
//!     axum::serve(listener, app).await
//! }
//! ```
//!
//! ## Endpoints
//!
//! | route | parameters | success | errors |
//! |---|---|---|---|
//! | `GET {path}/bootstrap` | query: `type` (`full`, default, or `partial`), `firstSyncId` (required with `partial`), `onlyModels` (comma list of model names), `syncGroups` (comma list; default all of the caller's groups), `schemaHash` (ignored: the metadata carries the server's own hash), `noSyncPackets` (`true`/`false`, ignored); header `Authorization: Bearer <token>` | 200 `application/x-ndjson` stream: a metadata line, then the rows | 400, 401, 429, 500, 503 |
//! | `POST {path}/batch` | JSON body `{"firstSyncId"?, "requests":[…]}`, 1–100 requests, each `{"modelName","indexedKey","keyValue"}` or `{"modelName","groupId"}`; `Authorization` | 200 `application/x-ndjson` stream of rows | 400, 401, 413, 415, 429, 500, 503 |
//! | `GET {path}/deltas` | query: `after` (sync id, default `0`), `limit` (default 1000, at most 5000), `syncGroups`; `Authorization` | 200 `application/json; charset=utf-8` `{"actions":[…],"hasMore","lastSyncId"}` | 400, 401, 409, 429, 500, 503 |
//! | `POST {path}/mutate` | JSON body `{"batchId","transactions":[…]}`, 1–100 transactions, each `{"action","clientId","clientTxId","modelId","modelName","payload"}`; `Authorization` | 200 `application/json; charset=utf-8` `{"lastSyncId","results":[…],"success"}` | 400, 401, 413, 415, 429, 500, 503 |
//! | `GET {path}/ws` | query: `token` (required); then client text messages `{"type":"subscribe","token":"…","afterSyncId":"<sync id>","groups":["…"]}` | 101 WebSocket: `delta` messages, `subscribed` after the replay, then live `delta` messages | 401 (`Token required`, `Invalid token`), 426 or 400 (not a WebSocket handshake, the core's answer), 429 (too many open sockets of the user, with `Retry-After`) before the upgrade; error messages and close codes after it |
//!
//! The answers, the order of checks and the WebSocket protocol are the
//! core's, documented on [`SyncEndpoints`] and in the `stratasync-actix`
//! crate documentation (a request to `ws` that is no WebSocket handshake
//! gets the core's answer, the same as on actix). One transport
//! difference: the WebSocket library (tungstenite) answers a client's
//! ping with a pong itself, so such a client may see two pongs (one from
//! the library, one from the session), which RFC 6455 allows, and answers
//! a client's close frame itself by echoing it (a close without a code is
//! answered without one, where `stratasync-actix` answers 1000).
//!
//! CORS and compression are the application's, as tower-http layers on
//! the router it builds.
//!
//! ## Graceful shutdown
//!
//! axum's graceful shutdown lets go of a connection once it is upgraded to
//! a WebSocket, so `axum::serve(..).with_graceful_shutdown(..)` returns
//! while sockets may still be writing their close frames. The router
//! tracks its socket tasks itself: call [`SyncRouter::close_sockets`] when
//! the shutdown starts, and await [`SyncRouter::sockets_closed`] after
//! `serve` returns, before the process exits:
//!
//! ```no_run
//! # use stratasync_axum::SyncRouter;
//! # async fn serve(sync: SyncRouter, app: axum::Router, listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! let stop = {
//!     let sync = sync.clone();
//!     async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         sync.close_sockets();
//!     }
//! };
//! axum::serve(listener, app).with_graceful_shutdown(stop).await?;
//! // Every socket has sent its 1001 close frame (or its client is gone).
//! let _ = tokio::time::timeout(std::time::Duration::from_secs(5), sync.sockets_closed()).await;
//! # Ok(())
//! # }
//! ```

mod reply;
mod ws;

use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::time::Duration;
pub use stratasync_core as core;
use stratasync_core::endpoint::SyncEndpoints;
pub use stratasync_core::endpoint::HEARTBEAT_INTERVAL;
use stratasync_core::realtime::{SocketHooks, SocketLimits};
pub use stratasync_core::request::MAX_BODY_BYTES;
use stratasync_core::SyncEngine;
use tokio_util::task::TaskTracker;

/// The sync endpoints of one engine, ready to mount.
///
/// Cheap to clone: clones share the engine and the core's
/// [`SyncEndpoints`] (request-id counter, open-socket counts, shutdown
/// signal). Build it once per process.
#[derive(Clone, Debug)]
pub struct SyncRouter {
    endpoints: SyncEndpoints,
    /// The tasks of upgraded sockets (axum stops tracking a connection
    /// once it is upgraded).
    sockets: TaskTracker,
}

impl From<SyncEndpoints> for SyncRouter {
    fn from(endpoints: SyncEndpoints) -> Self {
        SyncRouter { endpoints, sockets: TaskTracker::new() }
    }
}

impl SyncRouter {
    /// The endpoints of `engine`, with the default body limit
    /// ([`MAX_BODY_BYTES`]).
    pub fn new(engine: SyncEngine) -> Self {
        SyncRouter::from(SyncEndpoints::new(engine))
    }

    /// See [`SyncEndpoints::close_sockets`].
    pub fn close_sockets(&self) {
        self.endpoints.close_sockets();
    }

    /// Resolves once every WebSocket served by this router (and its
    /// clones) has ended: its session is over and its writer has flushed
    /// the close frame, or its client is gone. Await it after
    /// [`Self::close_sockets`] and after `axum::serve` has returned (see
    /// the crate docs), under a timeout of the application's choice: a
    /// client that never reads can hold its socket until the session's
    /// write timeout. Sockets upgraded later are waited for as well.
    pub async fn sockets_closed(&self) {
        self.sockets.close();
        self.sockets.wait().await;
    }

    /// See [`SyncEndpoints::socket_hooks`].
    pub fn socket_hooks(self, hooks: impl SocketHooks) -> Self {
        SyncRouter { endpoints: self.endpoints.socket_hooks(hooks), ..self }
    }

    /// See [`SyncEndpoints::heartbeat`].
    pub fn heartbeat(self, every: Duration) -> Self {
        SyncRouter { endpoints: self.endpoints.heartbeat(every), ..self }
    }

    /// See [`SyncEndpoints::socket_limits`].
    pub fn socket_limits(self, limits: SocketLimits) -> Self {
        SyncRouter { endpoints: self.endpoints.socket_limits(limits), ..self }
    }

    /// See [`SyncEndpoints::body_limit`].
    pub fn body_limit(self, bytes: usize) -> Self {
        SyncRouter { endpoints: self.endpoints.body_limit(bytes), ..self }
    }

    /// The engine behind the endpoints.
    pub fn engine(&self) -> &SyncEngine {
        self.endpoints.engine()
    }

    /// The core endpoints behind this adapter.
    pub fn endpoints(&self) -> &SyncEndpoints {
        &self.endpoints
    }

    /// A router with `GET /bootstrap`, `POST /batch`, `GET /deltas`,
    /// `POST /mutate` and `GET /ws`, to nest under the sync path (e.g.
    /// `Router::new().nest("/sync", sync.router())`). Any other method on
    /// these paths (`HEAD` included) gets 404 with an empty body, as an
    /// unknown path does (and as `stratasync-actix` answers), not axum's
    /// 405.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/bootstrap", any(bootstrap))
            .route("/batch", any(batch))
            .route("/deltas", any(deltas))
            .route("/mutate", any(mutate))
            .route("/ws", any(socket))
            .with_state(self.clone())
    }
}

/// The HTTP routes need only the endpoints of the router's state.
impl FromRef<SyncRouter> for SyncEndpoints {
    fn from_ref(router: &SyncRouter) -> SyncEndpoints {
        router.endpoints.clone()
    }
}

/// The answer to a method a route does not take.
fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

async fn bootstrap(State(e): State<SyncEndpoints>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET {
        return not_found();
    }
    reply::response(e.bootstrap(&reply::parts(&uri, &headers)).await)
}

async fn batch(State(e): State<SyncEndpoints>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    if method != Method::POST {
        return not_found();
    }
    reply::response(e.batch(&reply::parts(&uri, &headers), body.into_data_stream()).await)
}

async fn deltas(State(e): State<SyncEndpoints>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET {
        return not_found();
    }
    reply::response(e.deltas(&reply::parts(&uri, &headers)).await)
}

async fn mutate(State(e): State<SyncEndpoints>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    if method != Method::POST {
        return not_found();
    }
    reply::response(e.mutate(&reply::parts(&uri, &headers), body.into_data_stream()).await)
}

async fn socket(
    State(router): State<SyncRouter>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if method != Method::GET {
        return not_found();
    }
    ws::upgrade(&router.endpoints, &router.sockets, &uri, &headers, upgrade).await
}
