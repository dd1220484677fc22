//! Administration from the command line, written the way a server's own
//! code changes synced state: `members add|remove` changes
//! `sync_group_memberships` (each change logs the user's `S` action, which
//! tells their clients that their groups changed), and `tasks create`
//! inserts a task as the system through `stratasync_core::write`, inside a
//! database transaction, with the checks and hooks of a client's insert.
//!
//! The running server delivers what these commands commit from the log (its
//! live feed polls it, `SYNC_POLL_MS`): they run in another process, whose
//! delta bus no server listens to.

use crate::models::Task;
use crate::schema::workspaces;
use crate::server::{prepare, BoxError};
use clap::{Args, Subcommand};
use diesel::dsl::exists;
use diesel::QueryDsl;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::json;
use stratasync_core::storage::{memberships, Conn, StorageError};
use stratasync_core::write::{Actor, Written};
use stratasync_core::{MutationError, SyncEngine};
use uuid::Uuid;

/// `members`: add a user to a workspace or remove them.
#[derive(Debug, Clone, Args)]
pub struct MembersArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: MembersAction,
}

/// `members add` or `members remove`.
#[derive(Debug, Clone, Subcommand)]
pub enum MembersAction {
    /// Make the user a member of the workspace (nothing if already one).
    Add(Membership),
    /// Take the user out of the workspace (nothing if not a member).
    Remove(Membership),
}

/// A user and a workspace.
#[derive(Debug, Clone, Args)]
pub struct Membership {
    /// The workspace id.
    #[arg(long)]
    pub workspace: Uuid,
    /// The user id.
    #[arg(long)]
    pub user: String,
}

/// `tasks`: write tasks as the system.
#[derive(Debug, Clone, Args)]
pub struct TasksArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TasksAction,
}

/// `tasks create`.
#[derive(Debug, Clone, Subcommand)]
pub enum TasksAction {
    /// Create a task in a workspace; prints its id and sync id.
    Create(CreateTask),
}

/// The task to create.
#[derive(Debug, Clone, Args)]
pub struct CreateTask {
    /// The workspace id.
    #[arg(long)]
    pub workspace: Uuid,
    /// The title.
    #[arg(long)]
    pub title: String,
}

/// Runs `members add|remove`; returns the line to print.
pub async fn members(database_url: &str, args: &MembersArgs) -> Result<String, BoxError> {
    let pool = prepare(database_url).await?;
    Ok(match &args.action {
        MembersAction::Add(m) => {
            memberships::add(&pool, &m.user, &m.workspace.to_string(), "workspace").await?;
            format!("{} is a member of {}", m.user, m.workspace)
        }
        MembersAction::Remove(m) => {
            let was = memberships::remove(&pool, &m.user, &m.workspace.to_string()).await?;
            let verb = if was { "removed from" } else { "was not a member of" };
            format!("{} {verb} {}", m.user, m.workspace)
        }
    })
}

/// Runs `tasks create`; returns the line to print.
pub async fn tasks(database_url: &str, args: &TasksArgs) -> Result<String, BoxError> {
    let TasksAction::Create(task) = &args.action;
    let pool = prepare(database_url).await?;
    let engine = crate::engine(pool, crate::DevAuth::default())?;
    let written = create_task(&engine, task.workspace, &task.title).await;
    engine.shutdown().await;
    let written = written?;
    let id = written.action().map_or("", |a| a.model_id.as_str());
    Ok(format!("task {id} created (sync id {})", written.sync_id()))
}

/// Why `tasks create` failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such workspace.
    #[error("no workspace {0}")]
    NoWorkspace(Uuid),
    /// The write was refused (the message a client would get) or the
    /// database failed.
    #[error(transparent)]
    Write(#[from] MutationError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for AdminError {
    fn from(e: diesel::result::Error) -> Self {
        AdminError::Storage(e.into())
    }
}

/// Creates a task in `workspace` as the system: one transaction holds
/// the application's own check and the synced insert.
pub async fn create_task(engine: &SyncEngine, workspace: Uuid, title: &str) -> Result<Written, AdminError> {
    let writer = engine.writer();
    let id = Uuid::new_v4().to_string();
    let payload = json!({"workspaceId": workspace, "title": title});
    let payload = payload.as_object().cloned().unwrap_or_default();
    let mut pooled = engine.pool().get().await.map_err(StorageError::from)?;
    let conn: &mut Conn = &mut pooled;
    let written = conn
        .transaction(async |conn| {
            let found = workspaces::table.find(workspace).select(workspaces::id);
            let exists: bool = RunQueryDsl::get_result(diesel::select(exists(found)), conn).await?;
            if !exists {
                return Err(AdminError::NoWorkspace(workspace));
            }
            Ok(writer.insert::<Task>(conn, Actor::System, &id, payload).await?)
        })
        .await?;
    // Committed: publish it to live subscribers, run after-mutation hooks.
    writer.committed([written.clone()]).await?;
    Ok(written)
}
