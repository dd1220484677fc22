//! The example server: database setup, the routes (`/sync/*`, `/health`,
//! `/ready` and `/metrics`), and the `serve` and `seed` commands.

use crate::config::{SeedArgs, ServeArgs};
use crate::demo::{self, Demo};
use crate::observability;
use crate::request_log::log_request;
use crate::seed::{seed, SeedOptions};
use crate::DevAuth;
use actix_web::middleware::from_fn;
use actix_web::{http::header, web, App, HttpResponse, HttpServer};
use diesel_async::SimpleAsyncConnection;
use std::error::Error;
use std::time::Duration;
use stratasync_actix::SyncHttp;
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::ops::compact::Retention;
use stratasync_core::realtime::hub::DEFAULT_SEND_BUFFER_BYTES;
use stratasync_core::realtime::HubConfig;
use stratasync_core::storage::{self, Pool, PoolConfig};
use uuid::Uuid;

/// Any failure of the commands, reported by `main`.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The application's routes: the sync scope at `/sync`, `GET /health` and
/// `GET /ready`. Used by `main` and by the end-to-end tests.
pub fn routes(sync: SyncHttp, pool: Pool) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        let pool = pool.clone();
        let engine = sync.engine().clone();
        cfg.route("/health", web::get().to(move || health(pool.clone())))
            .route("/ready", web::get().to(move || observability::ready(engine.clone())))
            .service(sync.scope("/sync"));
    }
}

/// `GET /health`: 200 `{"status":"ok"}` when the database answers, 503
/// `{"status":"unavailable"}` otherwise.
pub async fn health(pool: Pool) -> HttpResponse {
    let (status, body) = health_status(&pool).await;
    let mut response = if status == 200 { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    response.insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8")).body(body)
}

/// The status and JSON body of `GET /health`, whatever the web framework.
pub async fn health_status(pool: &Pool) -> (u16, &'static str) {
    let ok = match pool.get().await {
        Ok(mut conn) => conn.batch_execute("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    if ok {
        (200, r#"{"status":"ok"}"#)
    } else {
        tracing::warn!("health check: database unavailable");
        (503, r#"{"status":"unavailable"}"#)
    }
}

/// Creates the database if needed, runs the migrations and opens a pool.
pub async fn prepare(database_url: &str) -> Result<Pool, BoxError> {
    storage::migrate::create_database_if_missing(database_url).await?;
    crate::migrate(database_url).await?;
    Ok(storage::connect(database_url, &PoolConfig::default())?)
}

/// `taskboard serve`: runs until SIGINT or SIGTERM, then stops accepting
/// connections and lets requests in flight finish (up to 10 s, then the
/// remaining connections are dropped), then shuts the engine down.
pub async fn serve(database_url: &str, args: &ServeArgs) -> Result<(), BoxError> {
    let Prepared { endpoints, pool, demo, dev_tokens, metrics } = prepare_serve(database_url, args).await?;
    let engine = endpoints.engine().clone();
    let sync = SyncHttp::from(endpoints);
    let sockets = sync.clone();
    let app = routes(sync, pool);
    let served = operator_endpoints(&metrics);
    let metrics = observability::metrics_route(metrics);
    let stop = async move {
        shutdown_requested().await;
        // Open WebSockets would hold the server until the timeout.
        sockets.close_sockets();
    };
    let mut server = HttpServer::new(move || {
        App::new().wrap(from_fn(log_request)).configure(app.clone()).configure(metrics.clone())
    })
    .shutdown_signal(stop)
    .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
    // Streamed bodies (bootstrap, delta pages) and WebSocket frames go
    // out in several writes; with Nagle's algorithm each later small
    // write waits for the client's (delayed) ACK.
    .tcp_nodelay(true);
    if let Some(workers) = args.workers {
        server = server.workers(workers.max(1));
    }
    let server = server.bind((args.bind.as_str(), args.port))?;
    for addr in server.addrs() {
        tracing::info!("listening on http://{addr} (sync endpoints under /sync; {served})");
    }
    if let Some(addr) = server.addrs().into_iter().next() {
        print_try_it(demo, addr, dev_tokens);
    }
    server.run().await?;
    // Mutations queued by the last requests commit; the feed and the
    // fan-out stop.
    engine.shutdown().await;
    tracing::info!("server stopped");
    Ok(())
}

/// What `serve` runs, whatever the web framework: the sync endpoints over
/// the configured engine, and the pool `/health` checks.
pub struct Prepared {
    /// The sync endpoints with the configured heartbeat and socket limits.
    pub endpoints: SyncEndpoints,
    /// The database pool.
    pub pool: Pool,
    /// Whether the demo workspace is there.
    pub demo: Demo,
    /// Whether the development tokens are in use.
    pub dev_tokens: bool,
    /// The Prometheus recorder, when one is installed (`GET /metrics`).
    pub metrics: Option<observability::Metrics>,
}

/// The operator endpoints served next to `/sync`, for the start-up line.
pub fn operator_endpoints(metrics: &Option<observability::Metrics>) -> &'static str {
    if metrics.is_some() {
        "/health, /ready, /metrics"
    } else {
        "/health, /ready"
    }
}

/// Prints the demo's "try it" lines for a server listening on `addr`.
/// A closed or broken stdout is not the server's problem: the lines are
/// written in one piece and a failure is only logged (`println!` would
/// panic and take the server down).
pub fn print_try_it(demo: Demo, addr: std::net::SocketAddr, dev_tokens: bool) {
    use std::io::Write;
    if let Demo::Seeded | Demo::Present = demo {
        // A wildcard bind is reached through the loopback address.
        let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
        let host = if addr.is_ipv6() && !addr.ip().is_unspecified() { format!("[{host}]") } else { host };
        let mut text = demo::try_it(&format!("http://{host}:{}", addr.port()), dev_tokens);
        text.push('\n');
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
            tracing::warn!(error = %e, "cannot print the demo's try-it lines to stdout");
        }
    }
}

/// Everything `serve` does before it listens: auth from the
/// configuration, migrations, the demo workspace, and the engine with its
/// limits, started (its live feed and Redis fan-out run). Stop it with
/// [`stratasync_core::SyncEngine::shutdown`] once the server stopped.
pub async fn prepare_serve(database_url: &str, args: &ServeArgs) -> Result<Prepared, BoxError> {
    let auth = match args.token_table()? {
        Some(tokens) => {
            tracing::info!(count = tokens.len(), "auth: explicit tokens from TASKBOARD_TOKENS");
            DevAuth::with_tokens(tokens)
        }
        None => {
            tracing::info!("auth: development tokens `token-<userId>` (set TASKBOARD_TOKENS to replace them)");
            DevAuth::default()
        }
    };
    let dev_tokens = args.token_table()?.is_none();
    // Before the engine records anything.
    let metrics = observability::install()?;
    let pool = prepare(database_url).await?;
    let demo = if args.no_demo { Demo::Skipped } else { demo::seed_if_empty(&pool).await? };
    match demo {
        Demo::Seeded => {
            tracing::info!(workspace = %demo::WORKSPACE_ID, "created the demo workspace (opt out: --no-demo)")
        }
        Demo::Present | Demo::Skipped => {}
    }
    let feed = HubConfig {
        poll_interval: Duration::from_millis(args.poll_ms.max(1)),
        send_buffer_bytes: args.sockets.send_buffer_bytes.unwrap_or(DEFAULT_SEND_BUFFER_BYTES),
        recent_bytes: args.hot_tail_bytes,
        warm_actions: args.hot_tail_warm,
        ..HubConfig::default()
    };
    let mut engine = crate::engine_builder(pool.clone(), auth)
        .hub_config(feed)
        .group_commit(args.group_commit())
        .stream_limits(args.stream_limits());
    if let Some(limit) = args.mutation_rate_limit() {
        tracing::info!(per_second = limit.per_second.get(), burst = limit.burst.get(), "per-user mutation rate limit");
        engine = engine.mutation_rate_limit(limit);
    }
    if args.compact_every_secs > 0 {
        let retention = Retention {
            compact_after: Duration::from_secs(args.compact_after_secs),
            keep_for: Duration::from_secs(args.retain_secs),
        };
        tracing::info!(every_secs = args.compact_every_secs, ?retention, "log compaction schedule");
        engine = engine.compaction_schedule(Duration::from_secs(args.compact_every_secs), retention);
    }
    match &args.redis_url {
        Some(url) => engine = engine.redis_client(redis_client(url, args.redis_ca_cert.as_deref())?),
        None => tracing::info!("no REDIS_URL: live deltas reach this process's sockets only"),
    }
    // The lanes, the live feed and the fan-out run from here on.
    let engine = engine.start()?;
    let mut endpoints = SyncEndpoints::new(engine)
        .heartbeat(Duration::from_secs(args.heartbeat_secs.max(1)))
        .socket_limits(args.sockets.limits());
    if args.token_recheck_secs > 0 {
        endpoints = endpoints.token_recheck(Duration::from_secs(args.token_recheck_secs));
    }
    Ok(Prepared { endpoints, pool, demo, dev_tokens, metrics })
}

/// The Redis client of `REDIS_URL`: `rediss://` trusts the system's roots,
/// or only those of `ca_cert` (a PEM file) when given.
pub fn redis_client(url: &str, ca_cert: Option<&std::path::Path>) -> Result<redis::Client, BoxError> {
    stratasync_core::tls::install_default_provider();
    let Some(path) = ca_cert else { return Ok(redis::Client::open(url)?) };
    let pem = std::fs::read(path).map_err(|e| format!("cannot read REDIS_CA_CERT {}: {e}", path.display()))?;
    let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
    Ok(redis::Client::build_with_tls(url, certificates)?)
}

/// Resolves on SIGINT or SIGTERM. Both stop the server gracefully (actix's
/// own handlers treat SIGINT as a forced stop).
pub async fn shutdown_requested() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received: stopping gracefully"),
        () = terminate => tracing::info!("SIGTERM received: stopping gracefully"),
    }
}

/// `taskboard seed`: creates the workspace and returns its id.
pub async fn seed_command(database_url: &str, args: &SeedArgs) -> Result<Uuid, BoxError> {
    let pool = prepare(database_url).await?;
    let members: Vec<&str> = args.members.iter().map(String::as_str).collect();
    let mut opts = SeedOptions::new(&members, args.tasks);
    opts.workspace_name = args.name.clone();
    if let Some(id) = args.workspace_id {
        opts.workspace_id = id;
    }
    if let Some(labels) = args.labels {
        opts.labels = labels;
    }
    seed(&pool, &opts).await?;
    tracing::info!(
        workspace = %opts.workspace_id,
        tasks = opts.tasks,
        labels = opts.labels,
        members = ?opts.members,
        "seeded"
    );
    Ok(opts.workspace_id)
}
