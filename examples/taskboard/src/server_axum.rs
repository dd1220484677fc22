//! The example server on axum: the same application as [`crate::server`]
//! (models, auth, configuration, `/sync/*` and `/health`), served through
//! `stratasync-axum` instead of `stratasync-actix`. Run by the
//! `taskboard-axum` binary.

use crate::config::ServeArgs;
use crate::server::{prepare_serve, print_try_it, shutdown_requested, BoxError, Prepared};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use std::time::Instant;
use stratasync_axum::SyncRouter;
use stratasync_core::log_text::{clip, request_target};
use stratasync_core::storage::Pool;

/// The application's routes: the sync router at `/sync` and `GET /health`.
pub fn routes(sync: &SyncRouter, pool: Pool) -> Router {
    Router::new().route("/health", get(health)).with_state(pool).nest("/sync", sync.router())
}

/// `GET /health`: as [`crate::server::health`].
async fn health(State(pool): State<Pool>) -> Response {
    let (status, body) = crate::server::health_status(&pool).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

/// The request log of [`crate::request_log`], as an axum middleware: one
/// line per request, tokens redacted, client text clipped.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = clip(req.method()).to_string();
    let target =
        req.uri().path_and_query().map_or_else(String::new, |target| request_target(target.as_str()).to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    tracing::info!(%method, %target, status, elapsed = ?started.elapsed(), "request");
    response
}

/// `taskboard-axum serve`: runs until SIGINT or SIGTERM, then closes the
/// WebSockets and stops accepting connections, letting requests in flight
/// finish. `--workers` sets the runtime's worker threads (see the binary).
pub async fn serve(database_url: &str, args: &ServeArgs) -> Result<(), BoxError> {
    let Prepared { endpoints, pool, demo, dev_tokens } = prepare_serve(database_url, args).await?;
    let sync = SyncRouter::from(endpoints);
    let app = routes(&sync, pool).layer(middleware::from_fn(log_request));
    let listener = tokio::net::TcpListener::bind((args.bind.as_str(), args.port)).await?;
    let addr = listener.local_addr()?;
    tracing::info!("listening on http://{addr} (sync endpoints under /sync, health at /health; axum)");
    print_try_it(demo, addr, dev_tokens);
    let stop = async move {
        shutdown_requested().await;
        // Open WebSockets would hold the server until they close.
        sync.close_sockets();
    };
    // Streamed bodies and WebSocket frames go out in several writes; with
    // Nagle's algorithm each later small write waits for the client's ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app).with_graceful_shutdown(stop).await?;
    tracing::info!("server stopped");
    Ok(())
}
