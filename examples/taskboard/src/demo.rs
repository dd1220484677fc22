//! The demo workspace that `cargo run -p taskboard` creates on an empty
//! database (opt out with `--no-demo` or `TASKBOARD_NO_DEMO=1`), and the
//! lines that show how to try the server against it.
//!
//! Its rows are written directly (no sync actions), so they reach clients
//! through bootstrap, like the rows of `taskboard seed`.

use crate::schema::{labels, task_labels, tasks, workspaces};
use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::{AsyncConnection, RunQueryDsl};
use stratasync_core::storage::{memberships, Pool, StorageError};
use uuid::Uuid;

/// The demo workspace's id (fixed, so every fresh database has the same).
pub const WORKSPACE_ID: Uuid = Uuid::from_u128(0x5eed0000_de70_4000_8000_000000000001);

/// Its members.
pub const MEMBERS: [&str; 2] = ["alice", "bob"];

/// Its labels: name and color.
const LABELS: [(&str, &str); 3] = [("bug", "#d73a4a"), ("feature", "#0e8a16"), ("docs", "#0075ca")];

/// Its tasks: title, description, priority, label, due day, done.
type DemoTask = (&'static str, Option<&'static str>, i32, Option<&'static str>, Option<(i32, u32, u32)>, bool);

const TASKS: [DemoTask; 5] = [
    ("Read docs/protocol.md", Some("The wire protocol, as this server speaks it"), 1, Some("docs"), None, false),
    (
        "Subscribe on /sync/ws",
        Some("Live deltas for every group you are in"),
        2,
        Some("feature"),
        Some((2030, 1, 15)),
        false,
    ),
    ("Fix the flaky login page", None, 3, Some("bug"), Some((2030, 1, 8)), false),
    ("Write the release notes", None, 0, Some("docs"), None, true),
    ("Try an offline edit", Some("Edit while disconnected, then reconnect"), 1, None, None, false),
];

/// What [`seed_if_empty`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demo {
    /// The database was empty; the demo workspace was created now.
    Seeded,
    /// The demo workspace was there already.
    Present,
    /// The database holds other data; nothing was created.
    Skipped,
}

/// A stable id for a demo row.
fn row_id(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(&WORKSPACE_ID, format!("{kind}:{name}").as_bytes())
}

#[derive(QueryableByName)]
struct Empty {
    #[diesel(sql_type = Bool)]
    empty: bool,
}

/// Creates the demo workspace (members [`MEMBERS`], three labels, five
/// tasks) when the database has no workspace and no sync action yet. Runs
/// in one transaction under an advisory lock, so nodes starting together on
/// a fresh database create it once.
pub async fn seed_if_empty(pool: &Pool) -> Result<Demo, StorageError> {
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('taskboard:demo'))").execute(conn).await?;
        if diesel::select(diesel::dsl::exists(workspaces::table.find(WORKSPACE_ID))).get_result::<bool>(conn).await? {
            return Ok(Demo::Present);
        }
        let state: Empty = diesel::sql_query(
            "SELECT NOT EXISTS (SELECT 1 FROM workspaces) AND NOT EXISTS (SELECT 1 FROM sync_actions) AS empty",
        )
        .get_result(conn)
        .await?;
        if !state.empty {
            return Ok(Demo::Skipped);
        }
        diesel::insert_into(workspaces::table)
            .values((workspaces::id.eq(WORKSPACE_ID), workspaces::name.eq("Demo workspace")))
            .execute(conn)
            .await?;
        let label_rows: Vec<_> = LABELS
            .iter()
            .map(|(name, color)| {
                (
                    labels::id.eq(row_id("label", name)),
                    labels::workspace_id.eq(WORKSPACE_ID),
                    labels::name.eq(*name),
                    labels::color.eq(*color),
                )
            })
            .collect();
        diesel::insert_into(labels::table).values(label_rows).execute(conn).await?;
        let now = Utc::now();
        let task_rows: Vec<_> = TASKS
            .iter()
            .map(|(title, description, priority, _, due, done)| {
                (
                    tasks::id.eq(row_id("task", title)),
                    tasks::workspace_id.eq(WORKSPACE_ID),
                    tasks::title.eq(*title),
                    tasks::description.eq(*description),
                    tasks::priority.eq(*priority),
                    tasks::due_date.eq(due.and_then(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))),
                    tasks::completed_at.eq(done.then_some(now)),
                )
            })
            .collect();
        diesel::insert_into(tasks::table).values(task_rows).execute(conn).await?;
        let tagged: Vec<_> = TASKS
            .iter()
            .filter_map(|(title, _, _, label, _, _)| {
                label.map(|label| {
                    (
                        task_labels::task_id.eq(row_id("task", title)),
                        task_labels::label_id.eq(row_id("label", label)),
                        task_labels::workspace_id.eq(WORKSPACE_ID),
                    )
                })
            })
            .collect();
        diesel::insert_into(task_labels::table).values(tagged).execute(conn).await?;
        for member in MEMBERS {
            memberships::add_on(conn, member, &WORKSPACE_ID.to_string(), "workspace").await?;
        }
        Ok(Demo::Seeded)
    })
    .await
}

/// The lines printed at start-up: how to try the server at `base_url`
/// against the demo workspace. With `dev_tokens` false (explicit
/// `TASKBOARD_TOKENS`), the token is a placeholder: tokens are never
/// printed.
pub fn try_it(base_url: &str, dev_tokens: bool) -> String {
    let token = if dev_tokens { "token-alice" } else { "<a token of TASKBOARD_TOKENS for alice>" };
    let ws = WORKSPACE_ID;
    let task = Uuid::new_v4();
    let tx = Uuid::new_v4();
    let members = MEMBERS.join(" and ");
    format!(
        "Demo workspace {ws} (members {members}). Try it:\n\
         \x20 curl -s {base_url}/health\n\
         \x20 curl -s \"{base_url}/sync/bootstrap?type=full\" -H \"Authorization: Bearer {token}\"\n\
         \x20 curl -s -X POST {base_url}/sync/mutate -H \"Authorization: Bearer {token}\" -H \"Content-Type: application/json\" \
         -d '{{\"batchId\":\"{tx}\",\"transactions\":[{{\"action\":\"INSERT\",\"clientId\":\"curl\",\"clientTxId\":\"{tx}\",\
         \"modelId\":\"{task}\",\"modelName\":\"Task\",\"payload\":{{\"workspaceId\":\"{ws}\",\"title\":\"Hello from curl\"}}}}]}}'\n\
         \x20 curl -s \"{base_url}/sync/deltas?after=0\" -H \"Authorization: Bearer {token}\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_it_names_the_demo_workspace_and_never_a_real_token() {
        let text = try_it("http://127.0.0.1:3000", true);
        assert!(text.contains(&WORKSPACE_ID.to_string()));
        assert!(text.contains("Bearer token-alice"));
        assert!(text.contains("curl -s \"http://127.0.0.1:3000/sync/bootstrap?type=full\""));
        // The mutate line's body is valid JSON.
        let body = text.split("-d '").nth(1).and_then(|rest| rest.split('\'').next()).unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["transactions"][0]["payload"]["workspaceId"], WORKSPACE_ID.to_string());
        let text = try_it("http://127.0.0.1:3000", false);
        assert!(!text.contains("token-alice"));
    }

    #[test]
    fn demo_rows_have_stable_distinct_ids() {
        let mut ids: Vec<Uuid> = TASKS.iter().map(|t| row_id("task", t.0)).collect();
        ids.extend(LABELS.iter().map(|l| row_id("label", l.0)));
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count);
        assert_eq!(row_id("task", TASKS[0].0), row_id("task", TASKS[0].0));
    }
}
