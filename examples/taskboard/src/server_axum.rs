//! The example server on axum: the same application as [`crate::server`]
//! (models, auth, configuration, `/sync/*`, `/health`, `/ready`,
//! `/metrics` and `X-Request-Id`), served through
//! `stratasync-axum` instead of `stratasync-actix`. Run by the
//! `taskboard-axum` binary.

use crate::config::ServeArgs;
use crate::observability::Metrics;
use crate::server::{operator_endpoints, prepare_serve, print_try_it, shutdown_requested, BoxError, Prepared};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use std::time::Instant;
use stratasync_axum::SyncRouter;
use stratasync_core::log_text::{clip, request_target};
use stratasync_core::request_id::{self, RequestId};
use stratasync_core::storage::Pool;
use stratasync_core::SyncEngine;
use tracing::Instrument;

/// The request id header, in and out ([`stratasync_core::request_id::HEADER`]).
const REQUEST_ID: HeaderName = HeaderName::from_static(request_id::HEADER);

/// The application's routes: the sync router at `/sync`, `GET /health`
/// and `GET /ready`.
pub fn routes(sync: &SyncRouter, pool: Pool) -> Router {
    let ready = Router::new().route("/ready", get(ready)).with_state(sync.engine().clone());
    Router::new().route("/health", get(health)).with_state(pool).merge(ready).nest("/sync", sync.router())
}

/// `GET /ready`: as [`crate::observability::ready`].
async fn ready(State(engine): State<SyncEngine>) -> Response {
    let report = engine.readiness().await;
    let status = if report.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], report.to_json()).into_response()
}

/// `GET /metrics` when a recorder is installed: as
/// [`crate::observability::metrics_route`].
fn metrics_routes(metrics: Option<Metrics>) -> Router {
    #[cfg(feature = "prometheus")]
    if let Some(handle) = metrics {
        let render = move || async move {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render())
        };
        return Router::new().route("/metrics", get(render));
    }
    #[cfg(not(feature = "prometheus"))]
    let _ = metrics;
    Router::new()
}

/// `GET /health`: as [`crate::server::health`].
async fn health(State(pool): State<Pool>) -> Response {
    let (status, body) = crate::server::health_status(&pool).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

/// The request log of [`crate::request_log`], as an axum middleware: the
/// request runs in a `request` span with its id (returned as
/// `X-Request-Id`), one line per request, tokens redacted, client text
/// clipped.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = RequestId::for_request(req.headers().get(&REQUEST_ID).map(HeaderValue::as_bytes));
    let span = tracing::info_span!("request", request_id = %id);
    let method = clip(req.method()).to_string();
    let target =
        req.uri().path_and_query().map_or_else(String::new, |target| request_target(target.as_str()).to_string());
    let mut response = id.clone().scope(next.run(req)).instrument(span.clone()).await;
    // Visible ASCII only (`RequestId`), so always a valid value.
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    span.in_scope(|| tracing::info!(%method, %target, status, elapsed = ?started.elapsed(), "request"));
    response
}

/// `taskboard-axum serve`: runs until SIGINT or SIGTERM, then closes the
/// WebSockets and stops accepting connections, letting requests in flight
/// finish, then shuts the engine down. `--workers` sets the runtime's worker threads (see the binary).
pub async fn serve(database_url: &str, args: &ServeArgs) -> Result<(), BoxError> {
    let Prepared { endpoints, pool, demo, dev_tokens, metrics } = prepare_serve(database_url, args).await?;
    let engine = endpoints.engine().clone();
    let sync = SyncRouter::from(endpoints);
    let served = operator_endpoints(&metrics);
    let app = routes(&sync, pool).merge(metrics_routes(metrics)).layer(middleware::from_fn(log_request));
    let listener = tokio::net::TcpListener::bind((args.bind.as_str(), args.port)).await?;
    let addr = listener.local_addr()?;
    tracing::info!("listening on http://{addr} (sync endpoints under /sync; {served}; axum)");
    print_try_it(demo, addr, dev_tokens);
    let stop = {
        let sync = sync.clone();
        async move {
            shutdown_requested().await;
            // Open WebSockets would hold the server until they close.
            sync.close_sockets();
        }
    };
    // Streamed bodies and WebSocket frames go out in several writes; with
    // Nagle's algorithm each later small write waits for the client's ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app).with_graceful_shutdown(stop).await?;
    // axum's graceful shutdown stops tracking a connection once it is
    // upgraded: the router's own tracker waits for the sockets told to
    // close to send their close frame (at most 5 s: a client that never
    // reads must not hold the exit).
    if tokio::time::timeout(std::time::Duration::from_secs(5), sync.sockets_closed()).await.is_err() {
        tracing::warn!("WebSockets still open after 5 s; stopping anyway");
    }
    engine.shutdown().await;
    tracing::info!("server stopped");
    Ok(())
}
