//! The example server: database setup, the routes (`/sync/*` and
//! `/health`), and the `serve` and `seed` commands.

use crate::config::{SeedArgs, ServeArgs};
use crate::request_log::log_request;
use crate::seed::{seed, SeedOptions};
use crate::DevAuth;
use actix_web::middleware::from_fn;
use actix_web::{http::header, web, App, HttpResponse, HttpServer};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::error::Error;
use std::time::Duration;
use stratasync_actix::SyncHttp;
use stratasync_core::realtime::hub::DEFAULT_SEND_BUFFER_BYTES;
use stratasync_core::realtime::HubConfig;
use stratasync_core::service::group_commit::GroupCommitConfig;
use stratasync_core::storage::{self, Pool, PoolConfig};
use uuid::Uuid;

/// Any failure of the commands, reported by `main`.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The application's routes: the sync scope at `/sync` and `GET /health`.
/// Used by `main` and by the end-to-end tests.
pub fn routes(sync: SyncHttp, pool: Pool) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        let pool = pool.clone();
        cfg.route("/health", web::get().to(move || health(pool.clone()))).service(sync.scope("/sync"));
    }
}

/// `GET /health`: 200 `{"status":"ok"}` when the database answers, 503
/// `{"status":"unavailable"}` otherwise.
pub async fn health(pool: Pool) -> HttpResponse {
    let ok = match pool.get().await {
        Ok(mut conn) => conn.batch_execute("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let (mut response, body) = if ok {
        (HttpResponse::Ok(), r#"{"status":"ok"}"#)
    } else {
        tracing::warn!("health check: database unavailable");
        (HttpResponse::ServiceUnavailable(), r#"{"status":"unavailable"}"#)
    };
    response.insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8")).body(body)
}

/// Splits a PostgreSQL URL into the URL of the same server's `postgres`
/// database and the name of the database it names.
pub fn admin_url(database_url: &str) -> Option<(String, String)> {
    let scheme_end = database_url.find("://")? + 3;
    let path_start = scheme_end + database_url[scheme_end..].find('/')?;
    let rest = &database_url[path_start + 1..];
    let (name, query) = match rest.find('?') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if name.is_empty() {
        return None;
    }
    Some((format!("{}/postgres{query}", &database_url[..path_start]), name.to_owned()))
}

/// Creates the database of `database_url` if it does not exist yet, so a
/// fresh machine needs no setup. Failures are logged, not fatal: the
/// migrations then report what is really wrong.
pub async fn ensure_database(database_url: &str) {
    if AsyncPgConnection::establish(database_url).await.is_ok() {
        return;
    }
    let Some((admin, name)) = admin_url(database_url) else { return };
    match create_database(&admin, &name).await {
        Ok(true) => tracing::info!(database = %name, "created the database"),
        Ok(false) => {}
        Err(e) => tracing::warn!(database = %name, error = %e, "could not create the database"),
    }
}

async fn create_database(admin_url: &str, name: &str) -> Result<bool, BoxError> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(admin_url).await?;
    let existing: Count = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(name)
        .get_result(&mut conn)
        .await?;
    if existing.n > 0 {
        return Ok(false);
    }
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match conn.batch_execute(&format!("CREATE DATABASE {quoted}")).await {
        Ok(()) => Ok(true),
        // Another process created it meanwhile.
        Err(e) if e.to_string().contains("already exists") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates the database if needed, runs the migrations and opens a pool.
pub async fn prepare(database_url: &str) -> Result<Pool, BoxError> {
    ensure_database(database_url).await;
    crate::migrate(database_url).await?;
    Ok(storage::connect(database_url, &PoolConfig::default())?)
}

/// `taskboard serve`: runs until SIGINT or SIGTERM, then stops accepting
/// connections and lets requests in flight finish (up to 10 s, then the
/// remaining connections are dropped).
pub async fn serve(database_url: &str, args: &ServeArgs) -> Result<(), BoxError> {
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
    let pool = prepare(database_url).await?;
    let feed = HubConfig {
        poll_interval: Duration::from_millis(args.poll_ms.max(1)),
        send_buffer_bytes: args.sockets.send_buffer_bytes.unwrap_or(DEFAULT_SEND_BUFFER_BYTES),
        ..HubConfig::default()
    };
    let mut engine = crate::engine(pool.clone(), auth).with_hub_config(feed);
    if let Some(lanes) = args.mutation_lanes {
        engine = engine.with_group_commit(GroupCommitConfig { lanes: lanes.into(), ..GroupCommitConfig::default() });
    }
    // Start the live feed now rather than on the first WebSocket.
    engine.hub();
    match &args.redis_url {
        Some(url) => {
            let fanout = stratasync_core::realtime::redis::start(&engine, url)?;
            tracing::info!(source_id = fanout.source_id(), "fan-out through redis (sync:deltas)");
        }
        None => tracing::info!("no REDIS_URL: live deltas reach this process's sockets only"),
    }
    let sync = SyncHttp::new(engine)
        .heartbeat(Duration::from_secs(args.heartbeat_secs.max(1)))
        .socket_limits(args.sockets.limits());
    let sockets = sync.clone();
    let app = routes(sync, pool);
    let stop = async move {
        shutdown_requested().await;
        // Open WebSockets would hold the server until the timeout.
        sockets.close_sockets();
    };
    let mut server = HttpServer::new(move || App::new().wrap(from_fn(log_request)).configure(app.clone()))
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
        tracing::info!("listening on http://{addr} (sync endpoints under /sync, health at /health)");
    }
    server.run().await?;
    tracing::info!("server stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. Both stop the server gracefully (actix's
/// own handlers treat SIGINT as a forced stop).
async fn shutdown_requested() {
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

#[cfg(test)]
mod tests {
    use super::admin_url;

    #[test]
    fn admin_urls() {
        assert_eq!(
            admin_url("postgres://postgres@127.0.0.1:5432/taskboard"),
            Some(("postgres://postgres@127.0.0.1:5432/postgres".into(), "taskboard".into()))
        );
        assert_eq!(
            admin_url("postgresql://u:p@db/app?sslmode=disable"),
            Some(("postgresql://u:p@db/postgres?sslmode=disable".into(), "app".into()))
        );
        assert_eq!(admin_url("postgres://localhost"), None);
        assert_eq!(admin_url("postgres://localhost/"), None);
        assert_eq!(admin_url("nonsense"), None);
    }
}
