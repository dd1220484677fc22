//! Demo and benchmark data: a workspace with members, tasks, labels and
//! task labels, written with set-based SQL (no row actions: seeded rows
//! reach clients through bootstrap; each new membership logs its user's
//! `S` action).

use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use stratasync_core::storage::{memberships, Pool, StorageError};
use uuid::Uuid;

/// What to create.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// The workspace id (also its sync group).
    pub workspace_id: Uuid,
    /// The workspace name.
    pub workspace_name: String,
    /// Users who become members of the workspace.
    pub members: Vec<String>,
    /// Number of tasks.
    pub tasks: i64,
    /// Number of labels.
    pub labels: i64,
    /// Number of task labels (at most one per task).
    pub task_labels: i64,
}

impl SeedOptions {
    /// A workspace with `tasks` tasks, `tasks / 100` labels (at least one)
    /// and one label on every task, with `members` as its members.
    pub fn new(members: &[&str], tasks: i64) -> Self {
        SeedOptions {
            workspace_id: Uuid::new_v4(),
            workspace_name: "Demo workspace".to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            tasks,
            labels: (tasks / 100).max(1),
            task_labels: tasks,
        }
    }
}

/// Creates the workspace, memberships and rows described by `opts`.
pub async fn seed(pool: &Pool, opts: &SeedOptions) -> Result<(), StorageError> {
    let ws = opts.workspace_id;
    {
        let mut conn = pool.get().await?;
        diesel::sql_query("INSERT INTO workspaces (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind::<SqlUuid, _>(ws)
            .bind::<Text, _>(&opts.workspace_name)
            .execute(&mut conn)
            .await?;
        diesel::sql_query(
            "INSERT INTO tasks (id, workspace_id, title, description, priority, due_date, created_at) \
             SELECT gen_random_uuid(), $1, 'Task ' || g, \
                    CASE WHEN g % 3 = 0 THEN NULL ELSE 'Description of task ' || g END, \
                    g % 4, DATE '2025-01-01' + (g % 365)::int, now() \
             FROM generate_series(1, $2) AS g",
        )
        .bind::<SqlUuid, _>(ws)
        .bind::<BigInt, _>(opts.tasks)
        .execute(&mut conn)
        .await?;
        diesel::sql_query(
            "INSERT INTO labels (id, workspace_id, name, color) \
             SELECT gen_random_uuid(), $1, 'Label ' || g, '#' || lpad(to_hex((g * 2654435761) % 16777216), 6, '0') \
             FROM generate_series(1, $2) AS g",
        )
        .bind::<SqlUuid, _>(ws)
        .bind::<BigInt, _>(opts.labels)
        .execute(&mut conn)
        .await?;
        diesel::sql_query(
            "WITH t AS (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM tasks WHERE workspace_id = $1), \
                  l AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn FROM labels WHERE workspace_id = $1), \
                  n AS (SELECT count(*) AS c FROM l) \
             INSERT INTO task_labels (task_id, label_id, workspace_id) \
             SELECT t.id, l.id, $1 FROM t JOIN l ON l.rn = t.rn % (SELECT c FROM n) \
             WHERE t.rn <= $2 ON CONFLICT DO NOTHING",
        )
        .bind::<SqlUuid, _>(ws)
        .bind::<BigInt, _>(opts.task_labels)
        .execute(&mut conn)
        .await?;
    }
    for member in &opts.members {
        memberships::add(pool, member, &ws.to_string(), "workspace").await?;
    }
    Ok(())
}
