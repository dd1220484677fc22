//! # taskboard: the StrataSync example application
//!
//! A small task tracker (described in the repository's `docs/example.md`):
//! workspaces, tasks, labels and task labels, declared as sync models with
//! `#[derive(SyncModel)]`.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod models;
pub mod observability;
pub mod ops;
pub mod request_log;
pub mod schema;
pub mod seed;
pub mod server;
pub mod server_axum;

use stratasync_core::engine::{ConfigError, SyncEngineBuilder};
use stratasync_core::storage::migrate::EmbeddedMigrations;
use stratasync_core::storage::Pool;
use stratasync_core::{Registry, SyncEngine};

pub use auth::DevAuth;
pub use models::{Label, Task, TaskLabel, Workspace};

/// The example's own tables.
pub const MIGRATIONS: EmbeddedMigrations = stratasync_core::embed_migrations!("migrations");

/// The example's models, in bootstrap order.
pub fn registry() -> Registry {
    Registry::builder().model::<Workspace>().model::<Task>().model::<Label>().model::<TaskLabel>().build()
}

/// The settings of the example's sync engine over `pool`, at their
/// defaults.
pub fn engine_builder(pool: Pool, auth: DevAuth) -> SyncEngineBuilder {
    SyncEngine::builder(pool, registry(), auth)
}

/// The example's sync engine over `pool`, started with the default
/// settings (inside the tokio runtime).
pub fn engine(pool: Pool, auth: DevAuth) -> Result<SyncEngine, ConfigError> {
    engine_builder(pool, auth).start()
}

/// Creates the framework's and the example's tables if they are missing.
pub async fn migrate(database_url: &str) -> Result<(), stratasync_core::storage::migrate::MigrateError> {
    stratasync_core::storage::migrate::run(database_url, &[&MIGRATIONS]).await
}
