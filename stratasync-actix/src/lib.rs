//! # stratasync-actix
//!
//! The actix-web adapter of StrataSync: it maps the HTTP endpoints of the
//! sync protocol (the repository's `docs/protocol.md`, §3–4) onto a [`SyncEngine`] and adds
//! nothing else. Parsing and validation live in
//! [`stratasync_core::request`], sync logic in the engine; this crate only
//! reads requests, calls them, and writes responses.
//!
//! ## Mounting
//!
//! One call mounts every endpoint under a path the application chooses.
//! The scope composes with the application's own routes, middleware and
//! `App` data, and installs no global state:
//!
//! ```no_run
//! use actix_web::{web, App, HttpResponse, HttpServer};
//! use stratasync_actix::SyncHttp;
//! use stratasync_core::SyncEngine;
//!
//! async fn serve(engine: SyncEngine) -> std::io::Result<()> {
//!     // Build it once, outside the factory: every worker then shares one
//!     // request-id counter.
//!     let sync = SyncHttp::new(engine);
//!     HttpServer::new(move || {
//!         App::new()
//!             .route("/health", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
//!             .service(sync.scope("/sync"))
//!     })
//!     // Bootstrap and delta pages are streamed, and WebSocket frames are
//!     // small: without this, Nagle's algorithm holds later writes for the
//!     // client's delayed ACK (tens of milliseconds).
//!     .tcp_nodelay(true)
//!     .bind(("127.0.0.1", 3000))?
//!     .run()
//!     .await
//! }
//! ```
//!
//! [`sync_scope`]`("/sync", engine)` is the one-line form (with a counter
//! per scope instance, so per worker), and [`SyncHttp::configure`] mounts
//! the routes into any `ServiceConfig`, e.g. a scope the application
//! builds and wraps itself.
//!
//! ## Endpoints
//!
//! | route | parameters | success | errors |
//! |---|---|---|---|
//! | `GET {path}/bootstrap` | query: `type` (`full`, default, or `partial`), `firstSyncId` (required with `partial`), `onlyModels` (comma list of model names), `syncGroups` (comma list; default all of the caller's groups), `schemaHash` (echoed), `noSyncPackets` (`true`/`false`, ignored) | 200 `application/x-ndjson` stream: a metadata line, then the rows | 400, 401, 429, 500, 503 |
//! | `POST {path}/batch` | JSON body `{"firstSyncId"?, "requests":[…]}`, 1–100 requests, each `{"modelName","indexedKey","keyValue"}` or `{"modelName","groupId"}` | 200 `application/x-ndjson` stream of rows | 400, 401, 413, 415, 429, 500, 503 |
//! | `GET {path}/deltas` | query: `after` (sync id, default `0`), `limit` (default 1000, at most 5000), `syncGroups` | 200 `application/json; charset=utf-8` `{"actions":[…],"hasMore","lastSyncId"}` | 400, 401, 409, 429, 500, 503 |
//! | `POST {path}/mutate` | JSON body `{"batchId","transactions":[…]}`, 1–100 transactions, each `{"action","clientId","clientTxId","modelId","modelName","payload"}` | 200 `application/json; charset=utf-8` `{"lastSyncId","results":[…],"success"}` | 400, 401, 413, 415, 429, 500, 503 |
//! | `GET {path}/ws` | query: `token` (required); then client text frames `{"type":"subscribe","token":"…","afterSyncId":"<sync id>","groups":["…"]}` | 101 WebSocket: `delta` frames, `subscribed` after the replay, then live `delta` frames | 401, 429 (too many open sockets of the user, with `Retry-After`) before the upgrade; error frames and close codes after it |
//!
//! The HTTP endpoints take the token as `Authorization: Bearer <token>`.
//!
//! The WebSocket endpoint checks `token` before the upgrade (401
//! `{"error":"Token required"}` when it is missing or empty,
//! `{"error":"Invalid token"}` when [`SyncAuth::verify_token`](stratasync_core::SyncAuth::verify_token)
//! refuses it). After the upgrade the client sends `subscribe` (and again
//! to re-subscribe from another cursor): its `token` is authorized with
//! the caller's groups, `afterSyncId` (a string of digits, default `"0"`)
//! is the client's cursor and `groups` (default: all of the caller's)
//! narrows the groups. The server answers with every action after the
//! cursor as `{"packet":{"actions":[…],"lastSyncId":"…"},"type":"delta"}`,
//! then `{"afterSyncId":"…","groups":[…],"type":"subscribed"}`, then live
//! deltas as they commit. Failures come as `{"message":"…","type":"error"}`
//! frames (`Invalid token`, `Authentication required` for a malformed
//! `subscribe`, `BOOTSTRAP_REQUIRED` with a `code` for a pruned cursor);
//! other JSON objects go to the [`SocketHooks`] set with
//! [`SyncHttp::socket_hooks`]. Pings go out every 30 s
//! ([`SyncHttp::heartbeat`]).
//!
//! Checks run in the protocol's order: body (415 content type, 413 over
//! [`MAX_BODY_BYTES`] = 1 MiB, 400 invalid or empty JSON), validation (400
//! `{"details":[…],"error":"Validation failed","requestId":"req-…","source":…}`),
//! authentication (401 `{"error":"Authorization header required"}`,
//! `Invalid authorization format`, `Invalid token`, `Token expired`; 500
//! `{"error":"Failed to resolve sync groups"}`), then the service. A stale
//! delta cursor answers 409
//! `{"error":"BOOTSTRAP_REQUIRED","message":"A fresh bootstrap is required before fetching deltas"}`;
//! an unreachable database answers 503 with `Retry-After: 1` and a generic
//! message, and so does a mutation interrupted by its own timeout
//! (`Mutation could not complete now; retry later`). A user over the
//! engine's mutation rate limit gets 429
//! `{"statusCode":429,"error":"Too Many Requests","message":"Rate limit exceeded"}`
//! with `Retry-After` in whole seconds. A caller with too many streamed
//! responses open gets 429
//! `{"statusCode":429,"error":"Too Many Requests","message":"Too many open streams"}`
//! with `Retry-After: 1` (limits in
//! [`stratasync_core::service::streams`]). No response carries SQL,
//! database error text or file paths: details go to the `tracing` log only.
//!
//! A validation failure of `/mutate` that lies inside transactions also
//! carries `"clientTxId"`, so the client drops that transaction instead of
//! requeueing the batch (see [`stratasync_core::request`]).
//!
//! Bootstrap and batch stream: each chunk the engine produces (about 64 KiB
//! of rows) is written as soon as it is ready, with chunked transfer
//! encoding and `Cache-Control: no-cache`, so memory stays flat whatever
//! the row count. An error after the 200 is written as a last line
//! `{"message":"…","type":"error"}`, and the response ends. A stream
//! whose client takes nothing for the stall timeout is aborted (the
//! connection is closed without the last chunk), as is a delta page that
//! fails midway: the client sees a broken body, never a short one.
//!
//! ## CORS
//!
//! Browsers need CORS when the client runs on another origin. The adapter
//! leaves it to the application; with [`actix-cors`](https://docs.rs/actix-cors),
//! wrap the `App` (or only the sync scope). The client sends
//! `Authorization` and `Content-Type`, so allow both:
//!
//! ```no_run
//! use actix_cors::Cors;
//! use actix_web::{http::header, App, HttpServer};
//! use stratasync_actix::SyncHttp;
//! # async fn serve(sync: SyncHttp) -> std::io::Result<()> {
//! HttpServer::new(move || {
//!     let cors = Cors::default()
//!         .allowed_origin("https://app.example.com")
//!         .allowed_methods(["GET", "POST"])
//!         .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
//!         .max_age(3600);
//!     App::new().wrap(cors).service(sync.scope("/sync"))
//! })
//! .bind(("127.0.0.1", 3000))?
//! .run()
//! .await
//! # }
//! ```
//!
//! ## Compression
//!
//! Also the application's choice: enable one of actix-web's
//! `compress-gzip`, `compress-brotli` or `compress-zstd` features and wrap
//! the app or the scope in [`Compress`](https://docs.rs/actix-web/4/actix_web/middleware/struct.Compress.html).
//! It negotiates with `Accept-Encoding` and compresses the NDJSON streams
//! chunk by chunk (rows can then reach the client a little later, as the
//! encoder buffers):
//!
//! ```no_run
//! use actix_web::{middleware::Compress, App, HttpServer};
//! use stratasync_actix::SyncHttp;
//! # async fn serve(sync: SyncHttp) -> std::io::Result<()> {
//! HttpServer::new(move || App::new().service(sync.scope("/sync").wrap(Compress::default())))
//!     .bind(("127.0.0.1", 3000))?
//!     .run()
//!     .await
//! # }
//! ```

mod body;
mod error;
mod handlers;
mod ndjson;
mod ws;
mod ws_body;
mod ws_incoming;

use actix_web::{web, HttpRequest, Scope};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
pub use stratasync_core as core;
use stratasync_core::realtime::{NoSocketHooks, SocketHooks, SocketLimits, UserSockets};
pub use stratasync_core::request::MAX_BODY_BYTES;
use stratasync_core::SyncEngine;

/// The sync endpoints of one engine, ready to mount.
///
/// Cheap to clone: clones share the engine and the request-id counter.
/// Build it once per process, outside the `HttpServer::new` factory, and
/// call [`SyncHttp::scope`] (or [`SyncHttp::configure`]) inside it.
#[derive(Clone)]
pub struct SyncHttp {
    engine: SyncEngine,
    body_limit: usize,
    requests: Arc<AtomicU64>,
    socket_hooks: Arc<dyn SocketHooks>,
    heartbeat: Duration,
    socket_limits: SocketLimits,
    user_sockets: UserSockets,
    going_away: Arc<tokio::sync::watch::Sender<bool>>,
}

impl std::fmt::Debug for SyncHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHttp")
            .field("engine", &self.engine)
            .field("body_limit", &self.body_limit)
            .field("heartbeat", &self.heartbeat)
            .field("socket_limits", &self.socket_limits)
            .finish_non_exhaustive()
    }
}

/// The default interval of WebSocket pings (PROTOCOL.md §7.6).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

impl SyncHttp {
    /// The endpoints of `engine`, with the default body limit
    /// ([`MAX_BODY_BYTES`]).
    pub fn new(engine: SyncEngine) -> Self {
        SyncHttp {
            engine,
            body_limit: MAX_BODY_BYTES,
            requests: Arc::new(AtomicU64::new(0)),
            socket_hooks: Arc::new(NoSocketHooks),
            heartbeat: HEARTBEAT_INTERVAL,
            socket_limits: SocketLimits::default(),
            user_sockets: UserSockets::default(),
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

    /// Sets the limits on WebSocket clients: message and subscribe sizes,
    /// waiting subscribes, and open sockets per user (see
    /// [`SocketLimits`] for each, its default and how it is answered). A
    /// user over [`SocketLimits::max_sockets_per_user`] gets `429 Too Many
    /// Requests` with `Retry-After: 5` on the upgrade. Sockets are counted
    /// per `SyncHttp` (clones share the counts), so build it once per
    /// process.
    pub fn socket_limits(mut self, limits: SocketLimits) -> Self {
        self.user_sockets = UserSockets::new(limits.max_sockets_per_user);
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

    /// A scope at `path` (e.g. `"/sync"`) with `GET bootstrap`,
    /// `POST batch`, `GET deltas`, `POST mutate` and `GET ws`.
    pub fn scope(&self, path: &str) -> Scope {
        web::scope(path).configure(|cfg| self.configure(cfg))
    }

    /// Registers the routes (`/bootstrap`, `/batch`, `/deltas`, `/mutate`,
    /// `/ws`)
    /// in `cfg`, relative to wherever `cfg` is mounted. Registers no app
    /// data: the handlers hold their state themselves.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let state = Arc::new(handlers::State {
            engine: self.engine.clone(),
            body_limit: self.body_limit,
            requests: Arc::clone(&self.requests),
        });
        let socket = Arc::new(ws::WsState {
            engine: self.engine.clone(),
            hooks: Arc::clone(&self.socket_hooks),
            heartbeat: self.heartbeat,
            limits: self.socket_limits.clone(),
            sockets: self.user_sockets.clone(),
            going_away: self.going_away.subscribe(),
        });
        let (s1, s2, s3, s4) = (state.clone(), state.clone(), state.clone(), state);
        cfg.route("/bootstrap", web::get().to(move |req: HttpRequest| handlers::bootstrap(s1.clone(), req)))
            .route(
                "/batch",
                web::post().to(move |req: HttpRequest, body: web::Payload| handlers::batch(s2.clone(), req, body)),
            )
            .route("/deltas", web::get().to(move |req: HttpRequest| handlers::deltas(s3.clone(), req)))
            .route(
                "/mutate",
                web::post().to(move |req: HttpRequest, body: web::Payload| handlers::mutate(s4.clone(), req, body)),
            )
            .route(
                "/ws",
                web::get().to(move |req: HttpRequest, body: web::Payload| ws::upgrade(socket.clone(), req, body)),
            );
    }
}

/// `SyncHttp::new(engine).scope(path)`: every endpoint under `path`.
///
/// Called inside an `HttpServer` factory, each worker gets its own
/// request-id counter; use [`SyncHttp`] for one per process.
pub fn sync_scope(path: &str, engine: SyncEngine) -> Scope {
    SyncHttp::new(engine).scope(path)
}
