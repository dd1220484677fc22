//! Embedded migrations, safe to run from several nodes at once.
//!
//! The runner takes a session-level advisory lock, so concurrent starts
//! apply each migration once, one node at a time. When nothing is pending
//! (every restart after the first) it runs no DDL at all, so a restarting
//! node never takes table locks that could deadlock with live writers (the
//! reference re-runs its DDL on every start). DDL that must wait for a
//! lock gives up after `lock_timeout` instead of queueing writers behind it.
//!
//! # An application's own migrations
//!
//! Diesel's layout: a folder `migrations/` next to the application's
//! `Cargo.toml`, holding one folder per migration named
//! `<timestamp>_<name>` (e.g. `2024-01-01-000000_projects`) with an `up.sql`
//! and optionally a `down.sql`. [`embed_migrations!`](crate::embed_migrations)
//! compiles them into the binary, and [`run`] applies the framework's and
//! the application's:
//!
//! ```no_run
//! use stratasync_core::storage::migrate::{self, EmbeddedMigrations};
//!
//! const MIGRATIONS: EmbeddedMigrations = stratasync_core::embed_migrations!("migrations");
//!
//! # async fn start(database_url: &str) -> Result<(), migrate::MigrateError> {
//! migrate::create_database_if_missing(database_url).await?; // `run` does not create it
//! migrate::run(database_url, &[&MIGRATIONS]).await?;
//! # Ok(()) }
//! ```

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Text};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, MigrationHarness};

/// A set of migrations compiled into the binary: what
/// [`embed_migrations!`](crate::embed_migrations) returns and [`run`] takes.
pub use diesel_migrations::EmbeddedMigrations;

/// The framework's own migrations (`sync_actions`, `sync_group_memberships`,
/// and the trigger that logs membership changes).
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
    /// [`create_database_if_missing`] could not create the database.
    #[error("could not create database {name}: {source}")]
    CreateDatabase {
        /// The database's name.
        name: String,
        /// What PostgreSQL answered.
        #[source]
        source: diesel::result::Error,
    },
}

/// Applies the framework's migrations, then each of `app` in order.
///
/// The database itself must exist: `run` does not create it (see
/// [`create_database_if_missing`]).
///
/// Runs on a dedicated connection (with TLS as the URL's `sslmode` asks,
/// like the pool's) in a blocking task (Diesel's migration harness is
/// synchronous), never on the async executor.
pub async fn run(database_url: &str, app: &[&'static EmbeddedMigrations]) -> Result<(), MigrateError> {
    run_reporting(database_url, app).await.map(drop)
}

/// [`run`], returning the names of the migrations it applied, in order
/// (empty when nothing was pending): what an operator's `migrate` command
/// prints.
pub async fn run_reporting(
    database_url: &str,
    app: &[&'static EmbeddedMigrations],
) -> Result<Vec<String>, MigrateError> {
    let mut conn = super::establish(database_url).await?;
    let fail = |e: diesel::result::Error| MigrateError::Migration(e.to_string());
    conn.batch_execute("SET lock_timeout = '10s'; SELECT pg_advisory_lock(hashtext('stratasync:migrations'))")
        .await
        .map_err(fail)?;
    let sources: Vec<&'static EmbeddedMigrations> =
        std::iter::once(&FRAMEWORK_MIGRATIONS).chain(app.iter().copied()).collect();
    let result = tokio::task::spawn_blocking(move || {
        let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
        let mut applied = Vec::new();
        let outcome = sources.iter().try_for_each(|source| apply(&mut wrapper, source, &mut applied));
        let outcome = outcome.map(|()| applied);
        (wrapper, outcome)
    })
    .await;
    let (wrapper, outcome) = result.map_err(|e| MigrateError::Migration(e.to_string()))?;
    let mut conn: AsyncPgConnection = wrapper.into_inner();
    let unlock = conn.batch_execute("SELECT pg_advisory_unlock_all()").await;
    let applied = outcome?;
    unlock.map_err(fail)?;
    Ok(applied)
}

fn apply(
    conn: &mut AsyncConnectionWrapper<AsyncPgConnection>,
    source: &'static EmbeddedMigrations,
    applied: &mut Vec<String>,
) -> Result<(), MigrateError> {
    let pending = conn.pending_migrations(Source(source)).map_err(|e| MigrateError::Migration(e.to_string()))?;
    for migration in pending {
        tracing::info!(version = %migration.name(), "applying migration");
        conn.run_migration(&*migration).map_err(|e| MigrateError::Migration(e.to_string()))?;
        applied.push(migration.name().to_string());
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

/// Creates the database that `database_url` names if it does not exist
/// yet, so that a fresh machine needs no setup step. Returns whether it
/// created it.
///
/// When the database cannot be reached, this connects to the same server's
/// `postgres` database (the URL with its path replaced) and runs
/// `CREATE DATABASE`, which needs the `CREATEDB` privilege. The URL must be
/// of the form `postgres://…/<name>[?…]`. Concurrent calls are safe: a
/// database created meanwhile by another process counts as existing.
pub async fn create_database_if_missing(database_url: &str) -> Result<bool, MigrateError> {
    let unreachable = match super::establish(database_url).await {
        Ok(_) => return Ok(false),
        Err(e) => e,
    };
    // Without a database name there is nothing to create: the first
    // connection's error is the one to report.
    let Some((admin, name)) = admin_url(database_url) else { return Err(unreachable.into()) };
    let mut conn = super::establish(&admin).await?;
    let failed = |source| MigrateError::CreateDatabase { name: name.clone(), source };
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let existing: Count = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(&name)
        .get_result(&mut conn)
        .await
        .map_err(failed)?;
    if existing.n > 0 {
        // It exists, so the first connection failed for another reason.
        return Err(unreachable.into());
    }
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match conn.batch_execute(&format!("CREATE DATABASE {quoted}")).await {
        Ok(()) => {
            tracing::info!(database = %name, "created the database");
            Ok(true)
        }
        // Another process created it between the check and here.
        Err(e) if e.to_string().contains("already exists") => Ok(false),
        Err(e) => Err(failed(e)),
    }
}

/// Splits a PostgreSQL URL into the URL of the same server's `postgres`
/// database and the name of the database it names. Hand-written because
/// only the path is swapped; a URL crate would also re-encode the rest.
fn admin_url(database_url: &str) -> Option<(String, String)> {
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
