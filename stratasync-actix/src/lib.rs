//! # stratasync-actix
//!
//! The actix-web adapter of StrataSync: it maps the endpoints of the sync
//! protocol (the repository's `docs/protocol.md`, §3–4 and §7) onto the
//! core's [`SyncEndpoints`] and adds nothing else. Every status, header,
//! body, error line, WebSocket message and close code is decided by
//! [`stratasync_core::endpoint`] and [`stratasync_core::realtime`]; this
//! crate copies requests into [`RequestParts`](stratasync_core::endpoint::RequestParts),
//! writes the replies back, decodes client frames into the session's
//! events and writes the session's messages as RFC 6455 frames (actix-http's
//! codec; a delta's frame is encoded once and shared by every socket).
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
//! | `GET {path}/bootstrap` | query: `type` (`full`, default, or `partial`), `firstSyncId` (required with `partial`), `onlyModels` (comma list of model names), `syncGroups` (comma list; default all of the caller's groups), `schemaHash` (ignored: the metadata carries the server's own hash), `noSyncPackets` (`true`/`false`, ignored) | 200 `application/x-ndjson` stream: a metadata line, then the rows | 400, 401, 429, 500, 503 |
//! | `POST {path}/batch` | JSON body `{"firstSyncId"?, "requests":[…]}`, 1–100 requests, each `{"modelName","indexedKey","keyValue"}` or `{"modelName","groupId"}` | 200 `application/x-ndjson` stream of rows | 400, 401, 413, 415, 429, 500, 503 |
//! | `GET {path}/deltas` | query: `after` (sync id, default `0`), `limit` (default 1000, at most 5000), `syncGroups` | 200 `application/json; charset=utf-8` `{"actions":[…],"hasMore","lastSyncId"}` | 400, 401, 409, 429, 500, 503 |
//! | `POST {path}/mutate` | JSON body `{"batchId","transactions":[…]}`, 1–100 transactions, each `{"action","clientId","clientTxId","modelId","modelName","payload"}` | 200 `application/json; charset=utf-8` `{"lastSyncId","results":[…],"success"}` | 400, 401, 413, 415, 429, 500, 503 |
//! | `GET {path}/ws` | query: `token` (required); then client text frames `{"type":"subscribe","token":"…","afterSyncId":"<sync id>","groups":["…"]}` | 101 WebSocket: `delta` frames, `subscribed` after the replay, then live `delta` frames | 401, 426 or 400 (not a WebSocket handshake, the core's answer), 429 (too many open sockets of the user, with `Retry-After`) before the upgrade; error frames and close codes after it |
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
//! `{"details":[…],"error":"Validation failed","requestId":…,"source":…}`,
//! its `requestId` the request's `X-Request-Id` or `req-…`),
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
//! [`stratasync_core::engine::StreamLimits`]). No response carries SQL,
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

mod reply;
mod ws;
mod ws_body;
mod ws_incoming;

use actix_web::{web, HttpRequest, Scope};
use std::time::Duration;
pub use stratasync_core as core;
use stratasync_core::endpoint::SyncEndpoints;
pub use stratasync_core::endpoint::HEARTBEAT_INTERVAL;
use stratasync_core::realtime::{SocketHooks, SocketLimits};
pub use stratasync_core::request::MAX_BODY_BYTES;
use stratasync_core::SyncEngine;

/// The sync endpoints of one engine, ready to mount.
///
/// Cheap to clone: clones share the engine and the core's
/// [`SyncEndpoints`] (request-id counter, open-socket counts, shutdown
/// signal). Build it once per process, outside the `HttpServer::new`
/// factory, and call [`SyncHttp::scope`] (or [`SyncHttp::configure`])
/// inside it.
#[derive(Clone, Debug)]
pub struct SyncHttp {
    endpoints: SyncEndpoints,
}

impl From<SyncEndpoints> for SyncHttp {
    fn from(endpoints: SyncEndpoints) -> Self {
        SyncHttp { endpoints }
    }
}

impl SyncHttp {
    /// The endpoints of `engine`, with the default body limit
    /// ([`MAX_BODY_BYTES`]).
    pub fn new(engine: SyncEngine) -> Self {
        SyncHttp { endpoints: SyncEndpoints::new(engine) }
    }

    /// See [`SyncEndpoints::close_sockets`].
    pub fn close_sockets(&self) {
        self.endpoints.close_sockets();
    }

    /// See [`SyncEndpoints::socket_hooks`].
    pub fn socket_hooks(self, hooks: impl SocketHooks) -> Self {
        SyncHttp { endpoints: self.endpoints.socket_hooks(hooks) }
    }

    /// See [`SyncEndpoints::heartbeat`].
    pub fn heartbeat(self, every: Duration) -> Self {
        SyncHttp { endpoints: self.endpoints.heartbeat(every) }
    }

    /// See [`SyncEndpoints::socket_limits`].
    pub fn socket_limits(self, limits: SocketLimits) -> Self {
        SyncHttp { endpoints: self.endpoints.socket_limits(limits) }
    }

    /// See [`SyncEndpoints::body_limit`].
    pub fn body_limit(self, bytes: usize) -> Self {
        SyncHttp { endpoints: self.endpoints.body_limit(bytes) }
    }

    /// The engine behind the endpoints.
    pub fn engine(&self) -> &SyncEngine {
        self.endpoints.engine()
    }

    /// The core endpoints behind this adapter.
    pub fn endpoints(&self) -> &SyncEndpoints {
        &self.endpoints
    }

    /// A scope at `path` (e.g. `"/sync"`) with `GET bootstrap`,
    /// `POST batch`, `GET deltas`, `POST mutate` and `GET ws`.
    pub fn scope(&self, path: &str) -> Scope {
        web::scope(path).configure(|cfg| self.configure(cfg))
    }

    /// Registers the routes (`/bootstrap`, `/batch`, `/deltas`, `/mutate`,
    /// `/ws`) in `cfg`, relative to wherever `cfg` is mounted. Registers
    /// no app data: the handlers hold their state themselves.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let e = &self.endpoints;
        let (e1, e2, e3, e4, e5) = (e.clone(), e.clone(), e.clone(), e.clone(), e.clone());
        cfg.route(
            "/bootstrap",
            web::get().to(move |req: HttpRequest| {
                let e = e1.clone();
                async move { reply::response(e.bootstrap(&reply::parts(&req)).await) }
            }),
        )
        .route(
            "/batch",
            web::post().to(move |req: HttpRequest, body: web::Payload| {
                let e = e2.clone();
                async move { reply::response(e.batch(&reply::parts(&req), body).await) }
            }),
        )
        .route(
            "/deltas",
            web::get().to(move |req: HttpRequest| {
                let e = e3.clone();
                async move { reply::response(e.deltas(&reply::parts(&req)).await) }
            }),
        )
        .route(
            "/mutate",
            web::post().to(move |req: HttpRequest, body: web::Payload| {
                let e = e4.clone();
                async move { reply::response(e.mutate(&reply::parts(&req), body).await) }
            }),
        )
        .route(
            "/ws",
            web::get().to(move |req: HttpRequest, body: web::Payload| {
                let e = e5.clone();
                async move { ws::upgrade(&e, req, body).await }
            }),
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
