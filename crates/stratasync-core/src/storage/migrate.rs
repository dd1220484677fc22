//! Embedded migrations, safe to run from several nodes at once.
//!
//! The runner takes a session-level advisory lock, so concurrent starts
//! apply each migration once, one node at a time. When nothing is pending
//! (every restart after the first) it runs no DDL at all, so a restarting
//! node never takes table locks that could deadlock with live writers (the
//! reference re-runs its DDL on every start). DDL that must wait for a
//! lock gives up after `lock_timeout` instead of queueing writers behind it.

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The framework's own migrations (`sync_actions`, `sync_group_memberships`).
pub const FRAMEWORK_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A migration failure.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database could not be reached.
    #[error("could not connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    /// A migration or the lock failed.
    #[error("migration failed: {0}")]
    Migration(String),
}

/// Applies the framework's migrations, then each of `app` in order.
///
/// Runs on a dedicated connection (with TLS as the URL's `sslmode` asks,
/// like the pool's) in a blocking task (Diesel's migration harness is
/// synchronous), never on the async executor.
pub async fn run(database_url: &str, app: &[&'static EmbeddedMigrations]) -> Result<(), MigrateError> {
    let mut conn = super::establish(database_url).await?;
    let fail = |e: diesel::result::Error| MigrateError::Migration(e.to_string());
    conn.batch_execute("SET lock_timeout = '10s'; SELECT pg_advisory_lock(hashtext('stratasync:migrations'))")
        .await
        .map_err(fail)?;
    let sources: Vec<&'static EmbeddedMigrations> =
        std::iter::once(&FRAMEWORK_MIGRATIONS).chain(app.iter().copied()).collect();
    let result = tokio::task::spawn_blocking(move || {
        let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
        let outcome = sources.iter().try_for_each(|source| apply(&mut wrapper, source));
        (wrapper, outcome)
    })
    .await;
    let (wrapper, outcome) = result.map_err(|e| MigrateError::Migration(e.to_string()))?;
    let mut conn: AsyncPgConnection = wrapper.into_inner();
    let unlock = conn.batch_execute("SELECT pg_advisory_unlock_all()").await;
    outcome?;
    unlock.map_err(fail)
}

fn apply(
    conn: &mut AsyncConnectionWrapper<AsyncPgConnection>,
    source: &'static EmbeddedMigrations,
) -> Result<(), MigrateError> {
    let pending = conn.pending_migrations(Source(source)).map_err(|e| MigrateError::Migration(e.to_string()))?;
    for migration in pending {
        tracing::info!(version = %migration.name(), "applying migration");
        conn.run_migration(&*migration).map_err(|e| MigrateError::Migration(e.to_string()))?;
    }
    Ok(())
}

/// A borrowed embedded migration set (Diesel's harness takes sources by value).
struct Source(&'static EmbeddedMigrations);

impl MigrationSource<Pg> for Source {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        self.0.migrations()
    }
}
