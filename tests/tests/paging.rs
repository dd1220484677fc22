//! Keyset paging is linear: a page deep into a large group reads the rows
//! it returns and no others, for every cursor shape and group kind.
//!
//! Proved without timing: each test runs the generated `page` on a
//! connection of its own, takes the exact statement it prepared from
//! `pg_prepared_statements`, and runs `EXPLAIN (ANALYZE, BUFFERS, FORMAT
//! JSON) EXECUTE` of it with a cursor deep in the group, under both a
//! custom and a generic plan. The plan must be an index scan whose index
//! condition holds the cursor, with no row removed by a filter, at most one
//! row more than the page, and about one buffer per row (an index scan
//! that started at the beginning of the group and skipped to the cursor
//! inside the index would show up there, not as removed rows).

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use stratasync_core::__private::SyncStorage;
use stratasync_core::{ScopeFilter, SyncModel};
use stratasync_tests::*;
use taskboard::schema::{task_labels, tasks, workspaces};
use taskboard::seed::{seed, SeedOptions};
use taskboard::{Task, TaskLabel, Workspace};
use uuid::Uuid;

/// Rows in the big group of each model.
const ROWS: i64 = 20_000;
/// The page size of the checked pages.
const PAGE: i64 = 100;
/// How deep into the group the checked page starts.
const DEPTH: i64 = 19_000;

/// Every task and task label, whatever its workspace.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(name = "AllTasks", group = global)]
struct AllTasks {
    id: Uuid,
    workspace_id: Uuid,
}

/// Every task label, whatever its workspace (a composite global cursor).
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = task_labels)]
#[sync(name = "AllTaskLabels", group = global, cursor(task_id, label_id))]
struct AllTaskLabels {
    task_id: Uuid,
    label_id: Uuid,
    workspace_id: Uuid,
}

/// Task labels under a custom scope that fixes the workspace by equality.
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = task_labels)]
#[sync(name = "FirstGroupTaskLabels", group = workspace_id, cursor(task_id, label_id), scope = first_group)]
struct FirstGroupTaskLabels {
    task_id: Uuid,
    label_id: Uuid,
    workspace_id: Uuid,
}

/// Tasks under the same kind of custom scope (a simple cursor).
#[derive(Debug, Clone, Queryable, Selectable, SyncModel)]
#[diesel(table_name = tasks)]
#[sync(name = "FirstGroupTasks", group = workspace_id, scope = first_group_tasks)]
struct FirstGroupTasks {
    id: Uuid,
    workspace_id: Uuid,
}

fn first(scope: &ScopeFilter) -> Uuid {
    scope.groups_as::<Uuid>().into_iter().next().unwrap_or_default()
}

fn first_group(scope: &ScopeFilter) -> stratasync_core::__private::Scope<'_, task_labels::table> {
    Box::new(task_labels::workspace_id.eq(first(scope)))
}

fn first_group_tasks(scope: &ScopeFilter) -> stratasync_core::__private::Scope<'_, tasks::table> {
    Box::new(tasks::workspace_id.eq(first(scope)))
}

/// Two workspaces of `ROWS` tasks and task labels each (the second is
/// noise the first one's pages must not read), and `ROWS` more workspaces
/// without rows, all analyzed.
async fn seeded() -> (TestDb, Uuid, Uuid) {
    let db = TestDb::new().await;
    let mut ids = Vec::new();
    for member in ["alice", "bob"] {
        let mut opts = SeedOptions::new(&[member], ROWS);
        opts.labels = 200;
        seed(&db.pool, &opts).await.expect("seed");
        ids.push(opts.workspace_id);
    }
    TestDb::execute(
        &db,
        &format!("INSERT INTO workspaces (id, name) SELECT gen_random_uuid(), 'W' FROM generate_series(1, {ROWS})"),
    )
    .await;
    TestDb::execute(&db, "VACUUM ANALYZE").await;
    (db, ids[0], ids[1])
}

#[derive(QueryableByName)]
struct Prepared {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    statement: String,
    #[diesel(sql_type = Text)]
    types: String,
}

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text)]
    plan: String,
}

/// A connection of its own, so its prepared statements are the page's.
async fn fresh(db: &TestDb) -> AsyncPgConnection {
    let mut conn = AsyncPgConnection::establish(&db.url).await.expect("connect");
    diesel::sql_query(
        "CREATE OR REPLACE FUNCTION pg_temp.explain(q text) RETURNS text LANGUAGE plpgsql AS $$ \
         DECLARE plan text; BEGIN \
           EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || q INTO plan; RETURN plan; \
         END $$",
    )
    .execute(&mut conn)
    .await
    .expect("explain helper");
    conn
}

/// The statement on `conn` that reads `table` in pages, with its bind
/// types.
async fn page_statement(conn: &mut AsyncPgConnection, table: &str) -> Prepared {
    let found: Vec<Prepared> = diesel::sql_query(
        "SELECT name, statement, parameter_types::text AS types FROM pg_prepared_statements \
         WHERE statement LIKE '%FROM \"' || $1 || '\"%ORDER BY%LIMIT%' ORDER BY prepare_time",
    )
    .bind::<Text, _>(table)
    .load(conn)
    .await
    .expect("prepared statements");
    assert_eq!(
        found.len(),
        1,
        "one page statement on {table}: {:?}",
        found.iter().map(|p| &p.statement).collect::<Vec<_>>()
    );
    found.into_iter().next().unwrap()
}

/// The scan nodes (every node whose type ends in "Scan") of a JSON plan.
fn scans(node: &Value, out: &mut Vec<Value>) {
    if node["Node Type"].as_str().is_some_and(|t| t.ends_with("Scan")) {
        out.push(node.clone());
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        scans(child, out);
    }
}

fn number(node: &Value, key: &str) -> i64 {
    node[key].as_i64().unwrap_or(0)
}

/// How a page reads its rows off the index.
#[derive(Clone, Copy)]
enum Access {
    /// One index range: the leaf pages of the page's rows, plus at most
    /// one heap page per row.
    Range,
    /// One primary-key probe per returned row (`id = ANY($groups)`): a
    /// descent (at most three levels here) and one heap page per row.
    ProbePerRow,
}

/// Cuts a long text (plans with thousands of group ids) for messages.
fn cut(s: &str) -> String {
    if s.chars().count() <= 3000 {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(3000).collect::<String>())
    }
}

/// Runs `EXPLAIN ANALYZE` of the prepared page statement with `args`
/// (SQL literals in bind order) under both plan kinds, and checks that it
/// is an index scan that reads the page and nothing else.
async fn assert_linear(
    conn: &mut AsyncPgConnection,
    statement: &Prepared,
    args: &[String],
    access: Access,
    what: &str,
) {
    for mode in ["force_custom_plan", "force_generic_plan"] {
        diesel::sql_query(format!("SET plan_cache_mode = {mode}")).execute(conn).await.unwrap();
        let execute = format!("EXECUTE {}({})", statement.name, args.join(", "));
        let plan: Plan = diesel::sql_query("SELECT pg_temp.explain($1) AS plan")
            .bind::<Text, _>(&execute)
            .get_result(conn)
            .await
            .unwrap_or_else(|e| panic!("{what}: {execute}: {e}"));
        let plan: Value = serde_json::from_str(&plan.plan).unwrap();
        let top = &plan[0]["Plan"];
        let context = format!("{what} ({mode}), statement {}\nplan {}", statement.statement, cut(&format!("{top:#}")));
        let mut found = Vec::new();
        scans(top, &mut found);
        assert_eq!(found.len(), 1, "one scan: {context}");
        let scan = &found[0];
        assert!(
            matches!(scan["Node Type"].as_str(), Some("Index Scan" | "Index Only Scan")),
            "an index scan: {context}"
        );
        let returned = number(top, "Actual Rows");
        assert_eq!(returned, PAGE, "a full page: {context}");
        assert!(number(scan, "Actual Rows") <= PAGE + 1, "at most one row beyond the page: {context}");
        assert_eq!(number(scan, "Rows Removed by Filter"), 0, "no row read and thrown away: {context}");
        assert_eq!(number(scan, "Rows Removed by Index Recheck"), 0, "{context}");
        let cond = scan["Index Cond"].as_str().unwrap_or("");
        assert!(cond.contains('>'), "the cursor is an index condition: {context}");
        // The page's own rows, not the group's earlier ones.
        let budget = match access {
            Access::Range => PAGE + 20,
            Access::ProbePerRow => 4 * PAGE + 20,
        };
        let buffers = number(scan, "Shared Hit Blocks") + number(scan, "Shared Read Blocks");
        assert!(buffers <= budget, "{buffers} buffers for {PAGE} rows: {context}");
    }
    diesel::sql_query("RESET plan_cache_mode").execute(conn).await.unwrap();
}

fn lit(v: impl std::fmt::Display) -> String {
    format!("'{v}'")
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_deep_in_large_groups_read_only_their_rows() {
    let (db, ws, _noise) = seeded().await;
    let scope = ScopeFilter::new("alice", &[ws.to_string(), "alice".to_owned()]);
    let mut reader = db.pool.get().await.unwrap();

    // A composite cursor grouped by a field (TaskLabel): one workspace,
    // `(task_id, label_id) > ($2, $3)` on (workspace_id, task_id, label_id).
    let after: TaskLabel = task_labels::table
        .select(TaskLabel::as_select())
        .filter(task_labels::workspace_id.eq(ws))
        .order((task_labels::task_id, task_labels::label_id))
        .offset(DEPTH - 1)
        .first(&mut reader)
        .await
        .unwrap();
    let expected: Vec<(Uuid, Uuid)> = task_labels::table
        .select((task_labels::task_id, task_labels::label_id))
        .filter(task_labels::workspace_id.eq(ws))
        .order((task_labels::task_id, task_labels::label_id))
        .offset(DEPTH)
        .limit(PAGE)
        .load(&mut reader)
        .await
        .unwrap();
    let mut conn = fresh(&db).await;
    let page = TaskLabel::page(&mut conn, &scope, Some(&after), PAGE).await.unwrap();
    assert_eq!(page.iter().map(|r| (r.task_id, r.label_id)).collect::<Vec<_>>(), expected);
    let statement = page_statement(&mut conn, "task_labels").await;
    assert!(statement.statement.contains("ROW("), "a row-value comparison: {}", statement.statement);
    assert_eq!(statement.types, "{uuid,uuid,uuid,bigint}");
    let args = [lit(ws), lit(after.task_id), lit(after.label_id), PAGE.to_string()];
    assert_linear(&mut conn, &statement, &args, Access::Range, "TaskLabel").await;

    // A simple cursor grouped by a field (Task): `id > $2` on
    // (workspace_id, id).
    let after: Task = tasks::table
        .select(Task::as_select())
        .filter(tasks::workspace_id.eq(ws))
        .order(tasks::id)
        .offset(DEPTH - 1)
        .first(&mut reader)
        .await
        .unwrap();
    let mut conn = fresh(&db).await;
    let page = Task::page(&mut conn, &scope, Some(&after), PAGE).await.unwrap();
    assert_eq!(page.len() as i64, PAGE);
    assert!(page.iter().all(|t| t.workspace_id == ws && t.id > after.id));
    let statement = page_statement(&mut conn, "tasks").await;
    assert_eq!(statement.types, "{uuid,uuid,bigint}");
    assert_linear(&mut conn, &statement, &[lit(ws), lit(after.id), PAGE.to_string()], Access::Range, "Task").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_of_own_id_global_and_custom_scopes_read_only_their_rows() {
    let (db, ws, _noise) = seeded().await;
    let mut reader = db.pool.get().await.unwrap();

    // Own id (Workspace): the caller is in every other workspace of the
    // table; `id = ANY($1) AND id > $2` probes the primary key once per
    // returned row.
    let mut member_of: Vec<Uuid> =
        workspaces::table.select(workspaces::id).order(workspaces::id).load(&mut reader).await.unwrap();
    member_of = member_of.into_iter().step_by(2).collect();
    let groups: Vec<String> = member_of.iter().map(Uuid::to_string).collect();
    let scope = ScopeFilter::new("alice", &groups);
    let depth = member_of.len() * 3 / 4;
    let after: Workspace = workspaces::table
        .select(Workspace::as_select())
        .filter(workspaces::id.eq(member_of[depth]))
        .first(&mut reader)
        .await
        .unwrap();
    let mut conn = fresh(&db).await;
    let page = Workspace::page(&mut conn, &scope, Some(&after), PAGE).await.unwrap();
    assert_eq!(page.iter().map(|w| w.id).collect::<Vec<_>>(), member_of[depth + 1..depth + 1 + PAGE as usize]);
    let statement = page_statement(&mut conn, "workspaces").await;
    let array = format!("'{{{}}}'", groups.join(","));
    assert_linear(&mut conn, &statement, &[array, lit(after.id), PAGE.to_string()], Access::ProbePerRow, "Workspace")
        .await;

    // Global, simple and composite cursors: the primary key.
    let after: AllTasks =
        tasks::table.select(AllTasks::as_select()).order(tasks::id).offset(2 * DEPTH).first(&mut reader).await.unwrap();
    let mut conn = fresh(&db).await;
    assert_eq!(AllTasks::page(&mut conn, &scope, Some(&after), PAGE).await.unwrap().len() as i64, PAGE);
    let statement = page_statement(&mut conn, "tasks").await;
    assert_linear(&mut conn, &statement, &[lit(after.id), PAGE.to_string()], Access::Range, "global AllTasks").await;

    let after: AllTaskLabels = task_labels::table
        .select(AllTaskLabels::as_select())
        .order((task_labels::task_id, task_labels::label_id))
        .offset(2 * DEPTH)
        .first(&mut reader)
        .await
        .unwrap();
    let mut conn = fresh(&db).await;
    assert_eq!(AllTaskLabels::page(&mut conn, &scope, Some(&after), PAGE).await.unwrap().len() as i64, PAGE);
    let statement = page_statement(&mut conn, "task_labels").await;
    let args = [lit(after.task_id), lit(after.label_id), PAGE.to_string()];
    assert_linear(&mut conn, &statement, &args, Access::Range, "global AllTaskLabels").await;

    // A custom scope fixing the group by equality, then the cursor.
    let scope = ScopeFilter::new("alice", &[ws.to_string()]);
    let after: FirstGroupTaskLabels = task_labels::table
        .select(FirstGroupTaskLabels::as_select())
        .filter(task_labels::workspace_id.eq(ws))
        .order((task_labels::task_id, task_labels::label_id))
        .offset(DEPTH - 1)
        .first(&mut reader)
        .await
        .unwrap();
    let mut conn = fresh(&db).await;
    assert_eq!(FirstGroupTaskLabels::page(&mut conn, &scope, Some(&after), PAGE).await.unwrap().len() as i64, PAGE);
    let statement = page_statement(&mut conn, "task_labels").await;
    let args = [lit(ws), lit(after.task_id), lit(after.label_id), PAGE.to_string()];
    assert_linear(&mut conn, &statement, &args, Access::Range, "custom scope, composite").await;

    let after: FirstGroupTasks = tasks::table
        .select(FirstGroupTasks::as_select())
        .filter(tasks::workspace_id.eq(ws))
        .order(tasks::id)
        .offset(DEPTH - 1)
        .first(&mut reader)
        .await
        .unwrap();
    let mut conn = fresh(&db).await;
    assert_eq!(FirstGroupTasks::page(&mut conn, &scope, Some(&after), PAGE).await.unwrap().len() as i64, PAGE);
    let statement = page_statement(&mut conn, "tasks").await;
    assert_linear(
        &mut conn,
        &statement,
        &[lit(ws), lit(after.id), PAGE.to_string()],
        Access::Range,
        "custom scope, simple",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_cross_groups_in_order_without_gaps_or_repeats() {
    let db = TestDb::new().await;
    let mut groups = Vec::new();
    for (member, n) in [("a", 23), ("b", 0), ("c", 1), ("d", 40)] {
        let opts = SeedOptions::new(&[member], n);
        seed(&db.pool, &opts).await.unwrap();
        groups.push(opts.workspace_id.to_string());
    }
    // A group named twice, one spelled another way and one that is no
    // UUID: each read once or not at all.
    let mut requested = groups.clone();
    requested.extend([groups[0].clone(), groups[3].to_uppercase(), "alice".to_owned()]);
    let scope = ScopeFilter::new("alice", &requested);
    let mut conn = db.pool.get().await.unwrap();
    for page_size in [1, 7, 64, 1000] {
        let mut seen: Vec<TaskLabel> = Vec::new();
        loop {
            let page = TaskLabel::page(&mut conn, &scope, seen.last(), page_size).await.unwrap();
            let n = page.len() as i64;
            assert!(n <= page_size);
            seen.extend(page);
            if n < page_size {
                break;
            }
        }
        let keys: Vec<(String, Uuid, Uuid)> =
            seen.iter().map(|r| (r.workspace_id.to_string(), r.task_id, r.label_id)).collect();
        let mut expected = Vec::new();
        for g in &groups {
            let mut rows: Vec<&(String, Uuid, Uuid)> = keys.iter().filter(|k| &k.0 == g).collect();
            rows.sort();
            expected.extend(rows.into_iter().cloned());
        }
        assert_eq!(keys, expected, "group by group in request order, cursor order within (page {page_size})");
        assert_eq!(keys.len(), 23 + 1 + 40, "every row (page {page_size})");
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "no row twice (page {page_size})");
    }
}
