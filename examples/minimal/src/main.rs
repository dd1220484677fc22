//! A minimal StrataSync server. Settings: `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/minimal`, created if missing),
//! `BIND` (127.0.0.1), `PORT` (3000), `RUST_LOG` (info).

mod auth;
mod model;

use actix_web::{web, App, HttpResponse, HttpServer};
use stratasync_actix::SyncHttp;
use stratasync_core::storage::{self, migrate, migrate::EmbeddedMigrations};
use stratasync_core::{Registry, SyncEngine};
use tracing_subscriber::EnvFilter;

/// The app's own tables, compiled in from `migrations/`.
const MIGRATIONS: EmbeddedMigrations = stratasync_core::embed_migrations!("migrations");

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let database_url = env_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/minimal");
    let bind = env_or("BIND", "127.0.0.1");
    let port: u16 = env_or("PORT", "3000").parse()?;

    // The framework's tables (`sync_actions`, `sync_group_memberships`), then ours.
    migrate::create_database_if_missing(&database_url).await?;
    migrate::run(&database_url, &[&MIGRATIONS]).await?;
    let pool = storage::connect(&database_url, &Default::default())?;
    let registry = Registry::builder().model::<model::Project>().build();
    // Starts the group commit lanes and the live feed.
    let engine = SyncEngine::builder(pool, registry, auth::DevAuth).start()?;
    let sync = SyncHttp::new(engine.clone());

    HttpServer::new(move || App::new().service(sync.scope("/sync")).route("/health", web::get().to(health)))
        .tcp_nodelay(true) // streamed pages and WebSocket frames are small writes
        .bind((bind.as_str(), port))?
        .run() // until SIGTERM or SIGINT
        .await?;
    engine.shutdown().await; // commits what the last requests queued
    Ok(())
}

/// `GET /health`: the server is up.
async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(r#"{"status":"ok"}"#)
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
