//! PostgreSQL: the databases of a run (one seeded template, cloned once per
//! server so every server starts from byte-identical data), and the two
//! baselines (COPY streaming and bare INSERT commits).

use crate::plan::Plan;
use crate::stats::{Hist, Ticker};
use crate::BoxError;
use futures_util::{pin_mut, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stratasync_core::storage::{self, PoolConfig};
use taskboard::seed::{seed, SeedOptions};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

/// The main (bootstrap) workspace's id: fixed, so every clone and every
/// run have the same.
pub(crate) const MAIN_WORKSPACE: Uuid = Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001);
/// Its member, who bootstraps and mutates.
pub(crate) const MAIN_USER: &str = "alice";

/// The id of fan-out workspace `i`.
pub(crate) fn fan_workspace(i: usize) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_4000_8000_0001_0000_0000 + i as u128)
}

/// The member of fan-out workspace `i`.
pub(crate) fn fan_user(i: usize) -> String {
    format!("fan{i}")
}

/// A PostgreSQL server and the names of the run's databases.
#[derive(Debug, Clone)]
pub(crate) struct Pg {
    /// `postgres://user@host:port` (no database).
    pub server: String,
    pub prefix: String,
}

impl Pg {
    pub fn new(server_url: &str) -> Pg {
        // BENCH_DB_PREFIX keeps concurrent runs (other checkouts on the same
        // PostgreSQL server) from dropping each other's databases.
        let prefix = std::env::var("BENCH_DB_PREFIX").ok().filter(|p| !p.is_empty());
        Pg {
            server: server_url.trim_end_matches('/').to_owned(),
            prefix: prefix.unwrap_or_else(|| "stratasync_bench".to_owned()),
        }
    }

    pub fn url(&self, db: &str) -> String {
        format!("{}/{db}", self.server)
    }

    pub fn name(&self, what: &str) -> String {
        format!("{}_{what}", self.prefix)
    }

    pub async fn connect(&self, db: &str) -> Result<Client, BoxError> {
        connect(&self.url(db)).await
    }

    /// Drops the database (closing our own leftover sessions on it).
    pub async fn drop_db(&self, db: &str) -> Result<(), BoxError> {
        let admin = self.connect("postgres").await?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await?;
        Ok(())
    }

    /// A fresh, empty database.
    pub async fn create_db(&self, db: &str, template: Option<&str>) -> Result<(), BoxError> {
        let admin = self.connect("postgres").await?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await?;
        match template {
            None => admin.batch_execute(&format!("CREATE DATABASE \"{db}\"")).await?,
            Some(t) => {
                // CREATE DATABASE … TEMPLATE needs the template to be idle.
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                        &[&t],
                    )
                    .await?;
                admin.batch_execute(&format!("CREATE DATABASE \"{db}\" TEMPLATE \"{t}\"")).await?
            }
        }
        Ok(())
    }

    /// Waits (up to 10 s) until no session is left on `db` after its
    /// server was stopped, then ends any that remain (a killed server's
    /// backends can linger on a lock wait).
    pub async fn settle(&self, db: &str) -> Result<(), BoxError> {
        let admin = self.connect("postgres").await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n: i64 =
                admin.query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", &[&db]).await?.get(0);
            if n == 0 {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                admin
                    .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&db])
                    .await?;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Server version and the settings that bound commit rates.
    pub async fn describe(&self) -> Result<String, BoxError> {
        let c = self.connect("postgres").await?;
        let mut parts = Vec::new();
        for q in ["SHOW server_version", "SHOW synchronous_commit", "SHOW fsync", "SHOW shared_buffers"] {
            let row = c.query_one(q, &[]).await?;
            parts.push(row.get::<_, String>(0));
        }
        Ok(format!(
            "PostgreSQL {} (synchronous_commit={}, fsync={}, shared_buffers={})",
            parts[0], parts[1], parts[2], parts[3]
        ))
    }
}

pub(crate) async fn connect(url: &str) -> Result<Client, BoxError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Creates the schema (the example server's own migrations) and the data
/// every workload uses, in the template database `db`:
/// the main workspace (tasks, labels, one label per task, member `alice`),
/// `fan_workspaces` small workspaces with one member each, and `actions`
/// sync actions (updates of the main workspace's tasks) for the delta
/// catch-up.
pub(crate) async fn seed_template(pg: &Pg, db: &str, plan: &Plan) -> Result<(), BoxError> {
    let url = pg.url(db);
    taskboard::migrate(&url).await?;
    let pool = storage::connect(&url, &PoolConfig::default())?;
    let mut main = SeedOptions::new(&[MAIN_USER], plan.tasks);
    main.workspace_id = MAIN_WORKSPACE;
    main.workspace_name = "Benchmark workspace".to_owned();
    main.labels = plan.labels;
    seed(&pool, &main).await?;
    for i in 0..plan.fan_workspaces {
        let user = fan_user(i);
        let mut opts = SeedOptions::new(&[user.as_str()], plan.fan_tasks);
        opts.workspace_id = fan_workspace(i);
        opts.workspace_name = format!("Fan-out workspace {i}");
        opts.labels = 1;
        seed(&pool, &opts).await?;
    }
    drop(pool);
    let c = pg.connect(db).await?;
    // The delta log: `actions` updates of the main workspace's tasks, in
    // task order, as a client would have made them.
    c.batch_execute(&format!(
        "WITH t AS (SELECT id::text AS id, row_number() OVER (ORDER BY id) - 1 AS rn \
                    FROM tasks WHERE workspace_id = '{ws}'), \
              n AS (SELECT count(*) AS c FROM t) \
         INSERT INTO sync_actions (model, model_id, action, data, group_id, client_id, client_tx_id) \
         SELECT 'Task', t.id, 'U', jsonb_build_object('title', 'Task edit ' || g, 'priority', g % 4), \
                '{ws}', 'bench-seed', 'seed-' || g \
         FROM generate_series(1, {n}) AS g JOIN t ON t.rn = g % (SELECT c FROM n) ORDER BY g",
        ws = MAIN_WORKSPACE,
        n = plan.actions
    ))
    .await?;
    c.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

/// One bootstrap's worth of keyset pages run by PostgreSQL alone: the
/// main workspace's rows read with the statements the Rust server's
/// generated code runs (`workspace_id = $1 AND id > $2 ORDER BY id LIMIT
/// 1000`, and `(task_id, label_id) > ($2, $3)` for task labels), fetched
/// over the wire but not encoded. Returns (rows, total time). The server's
/// rows/s against this shows its own cost; this against itself at two
/// sizes shows PostgreSQL's.
pub(crate) async fn keyset_bootstrap(pg: &Pg, db: &str) -> Result<(u64, Duration), BoxError> {
    const PAGE: i64 = 1000;
    let c = pg.connect(db).await?;
    let ws = MAIN_WORKSPACE;
    let t0 = Instant::now();
    let mut rows =
        c.query("SELECT * FROM workspaces WHERE id = ANY($1) ORDER BY id LIMIT 1000", &[&vec![ws]]).await?.len() as u64;
    for table in ["tasks", "labels"] {
        let first = c.prepare(&format!("SELECT * FROM {table} WHERE workspace_id = $1 ORDER BY id LIMIT $2")).await?;
        let next = c
            .prepare(&format!("SELECT * FROM {table} WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
            .await?;
        let mut page = c.query(&first, &[&ws, &PAGE]).await?;
        loop {
            rows += page.len() as u64;
            let Some(last) = page.last() else { break };
            if (page.len() as i64) < PAGE {
                break;
            }
            let after: Uuid = last.try_get("id")?;
            page = c.query(&next, &[&ws, &after, &PAGE]).await?;
        }
    }
    let first =
        c.prepare("SELECT * FROM task_labels WHERE workspace_id = $1 ORDER BY task_id, label_id LIMIT $2").await?;
    let next = c
        .prepare(
            "SELECT * FROM task_labels WHERE workspace_id = $1 AND (task_id, label_id) > ($2, $3) \
             ORDER BY task_id, label_id LIMIT $4",
        )
        .await?;
    let mut page = c.query(&first, &[&ws, &PAGE]).await?;
    loop {
        rows += page.len() as u64;
        let Some(last) = page.last() else { break };
        if (page.len() as i64) < PAGE {
            break;
        }
        let (task, label): (Uuid, Uuid) = (last.try_get("task_id")?, last.try_get("label_id")?);
        page = c.query(&next, &[&ws, &task, &label, &PAGE]).await?;
    }
    Ok((rows, t0.elapsed()))
}

/// The id of the scale run's second workspace, whose rows share the tables
/// with the measured one's and must not be read by its bootstrap.
pub(crate) const NOISE_WORKSPACE: Uuid = Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0002);

/// Creates the schema and the scale run's data in `db`: the main workspace
/// with `tasks` tasks, a hundredth as many labels and one label per task
/// (member `alice`), and a second workspace a tenth that size (member
/// `bob`), analyzed.
pub(crate) async fn seed_scale(pg: &Pg, db: &str, tasks: i64) -> Result<(), BoxError> {
    let url = pg.url(db);
    taskboard::migrate(&url).await?;
    let pool = storage::connect(&url, &PoolConfig::default())?;
    for (workspace, member, n) in [(MAIN_WORKSPACE, MAIN_USER, tasks), (NOISE_WORKSPACE, "bob", (tasks / 10).max(1))] {
        let mut opts = SeedOptions::new(&[member], n);
        opts.workspace_id = workspace;
        opts.labels = crate::plan::scale_labels(n);
        seed(&pool, &opts).await?;
    }
    drop(pool);
    pg.connect(db).await?.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

/// The highest sync id in `db` (0 when the log is empty).
pub(crate) async fn head(pg: &Pg, db: &str) -> Result<u64, BoxError> {
    let c = pg.connect(db).await?;
    let row = c.query_one("SELECT coalesce(max(id), 0) FROM sync_actions", &[]).await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Up to `n` task ids of a workspace, in id order.
pub(crate) async fn task_ids(pg: &Pg, db: &str, workspace: Uuid, n: i64) -> Result<Vec<String>, BoxError> {
    let c = pg.connect(db).await?;
    let rows = c
        .query(
            "SELECT id::text FROM tasks WHERE workspace_id = $1::text::uuid ORDER BY id LIMIT $2",
            &[&workspace.to_string(), &n],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// The tasks of the first `n` fan-out workspaces: `tasks[i]` are
/// workspace `i`'s, in id order.
pub(crate) async fn fan_tasks(pg: &Pg, db: &str, n: usize) -> Result<Vec<Vec<String>>, BoxError> {
    let c = pg.connect(db).await?;
    let ids: Vec<String> = (0..n).map(|i| fan_workspace(i).to_string()).collect();
    let rows = c
        .query(
            "SELECT workspace_id::text, id::text FROM tasks \
             WHERE workspace_id = ANY($1::text[]::uuid[]) ORDER BY workspace_id, id",
            &[&ids],
        )
        .await?;
    let mut out = vec![Vec::new(); n];
    for r in rows {
        let ws: String = r.get(0);
        if let Some(i) = ids.iter().position(|x| *x == ws) {
            out[i].push(r.get(1));
        }
    }
    if out.iter().any(Vec::is_empty) {
        return Err("a fan-out workspace has no tasks".into());
    }
    Ok(out)
}

/// One COPY-baseline bootstrap: the same rows as the servers' bootstrap
/// of the main workspace, streamed by PostgreSQL as JSON into a null sink.
/// Returns (rows, time to first byte, total time).
pub(crate) async fn copy_bootstrap(pg: &Pg, db: &str) -> Result<(u64, Duration, Duration), BoxError> {
    let c = pg.connect(db).await?;
    let ws = MAIN_WORKSPACE;
    let queries = [
        format!("SELECT id, name, created_at FROM workspaces WHERE id = '{ws}'"),
        format!("SELECT * FROM tasks WHERE workspace_id = '{ws}' ORDER BY id"),
        format!("SELECT * FROM labels WHERE workspace_id = '{ws}' ORDER BY id"),
        format!("SELECT * FROM task_labels WHERE workspace_id = '{ws}' ORDER BY task_id, label_id"),
    ];
    let t0 = Instant::now();
    let mut first = None;
    let mut rows = 0u64;
    for q in &queries {
        let stream = c.copy_out(&format!("COPY (SELECT row_to_json(t) FROM ({q}) t) TO STDOUT")).await?;
        pin_mut!(stream);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            first.get_or_insert_with(|| t0.elapsed());
            rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    Ok((rows, first.unwrap_or_default(), t0.elapsed()))
}

/// Result of the INSERT baseline.
pub(crate) struct InsertBaseline {
    pub commits: u64,
    pub elapsed: Duration,
    pub latency: Hist,
}

/// The commit-rate baseline: `clients` connections each running bare
/// single-row `INSERT INTO sync_actions` statements (each its own
/// transaction, so one commit each) for `warmup + measure`.
pub(crate) async fn insert_baseline(
    pg: &Pg,
    db: &str,
    clients: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<InsertBaseline, BoxError> {
    let url = pg.url(db);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let counter = Arc::new(AtomicU64::new(0));
    let ticker = Ticker::start("baseline INSERT+COMMIT", counter.clone(), "commits", start, warmup + measure);
    let mut tasks = Vec::new();
    for client_no in 0..clients {
        let url = url.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let c = connect(&url).await?;
            let stmt = c
                .prepare(
                    "INSERT INTO sync_actions (model, model_id, action, data, group_id, client_id, client_tx_id) \
                     VALUES ('Task', $1, 'U', '{\"title\":\"baseline\"}'::jsonb, $2, 'bench-baseline', $3)",
                )
                .await?;
            let group = MAIN_WORKSPACE.to_string();
            let model_id = Uuid::new_v4().to_string();
            let mut hist = Hist::new();
            let mut n = 0u64;
            let mut counted = 0u64;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let tx_id = format!("{client_no}-{n}-{}", Uuid::new_v4());
                c.execute(&stmt, &[&model_id, &group, &tx_id]).await?;
                n += 1;
                let done = Instant::now();
                if done >= measure_from && done <= end {
                    hist.record(done - t);
                    counted += 1;
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, BoxError>((counted, hist))
        }));
    }
    let mut latency = Hist::new();
    let mut commits = 0;
    for t in tasks {
        let (n, h) = t.await??;
        commits += n;
        latency.merge(&h);
    }
    ticker.stop().await;
    Ok(InsertBaseline { commits, elapsed: measure, latency })
}

/// Samples what the database's sessions are doing (`pg_stat_activity`)
/// every 20 ms while a phase runs: the share of session samples per wait
/// event shows where the time goes (for example `Lock:advisory` for the
/// insert-order lock, `IO:WALSync` for commit flushes, `ClientRead` for a
/// session waiting on its server).
pub(crate) struct WaitSampler {
    stop: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<std::collections::BTreeMap<String, u64>>,
}

impl WaitSampler {
    pub async fn start(pg: &Pg, db: &str) -> Result<WaitSampler, BoxError> {
        let c = pg.connect("postgres").await?;
        let db = db.to_owned();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let handle = tokio::spawn(async move {
            let mut counts = std::collections::BTreeMap::new();
            let Ok(stmt) = c
                .prepare(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, \
                            CASE WHEN state = 'active' THEN 'CPU (active, no wait)' ELSE coalesce(state, '?') END) \
                     FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                )
                .await
            else {
                return counts;
            };
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                if let Ok(rows) = c.query(&stmt, &[&db]).await {
                    for r in rows {
                        *counts.entry(r.get::<_, String>(0)).or_insert(0u64) += 1;
                    }
                }
            }
            counts
        });
        Ok(WaitSampler { stop, handle })
    }

    /// Stops sampling; returns "event share%" items, largest first.
    pub async fn finish(self) -> String {
        let _ = self.stop.send(true);
        let counts = self.handle.await.unwrap_or_default();
        let total: u64 = counts.values().sum();
        if total == 0 {
            return "no samples".to_owned();
        }
        let mut v: Vec<(String, u64)> = counts.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v.iter()
            .take(6)
            .map(|(k, n)| format!("{k} {:.0}%", 100.0 * *n as f64 / total as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Starts timestamping log inserts in `db`: a trigger records
/// `clock_timestamp()` for every new `sync_actions` row, inside the
/// inserting transaction, right before its commit. The fan-out latency is
/// measured from it.
pub(crate) async fn start_log_clock(pg: &Pg, db: &str) -> Result<(), BoxError> {
    let c = pg.connect(db).await?;
    // Runs while the (fresh) server is idle; never waits long for a lock.
    c.batch_execute(
        "SET lock_timeout = '10s'; \
         CREATE TABLE IF NOT EXISTS bench_log_times (id bigint PRIMARY KEY, at timestamptz NOT NULL); \
         TRUNCATE bench_log_times; \
         CREATE OR REPLACE FUNCTION bench_log_time() RETURNS trigger LANGUAGE plpgsql AS $$ \
           BEGIN INSERT INTO bench_log_times VALUES (NEW.id, clock_timestamp()); RETURN NULL; END $$; \
         DROP TRIGGER IF EXISTS bench_log_time ON sync_actions; \
         CREATE TRIGGER bench_log_time AFTER INSERT ON sync_actions FOR EACH ROW EXECUTE FUNCTION bench_log_time();",
    )
    .await?;
    Ok(())
}

/// Reads the log clock: sync id → (insert time in µs since the Unix
/// epoch, the action's group). Only plain reads: the server may still hold
/// transactions open (a trigger change would wait for them and block every
/// later query of the server behind it); the trigger keeps firing until
/// [`remove_log_clock`] or the next [`start_log_clock`].
pub(crate) async fn read_log_clock(
    pg: &Pg,
    db: &str,
) -> Result<std::collections::HashMap<u64, (i64, Option<String>)>, BoxError> {
    let c = pg.connect(db).await?;
    let rows = c
        .query(
            "SELECT b.id, (extract(epoch FROM b.at) * 1000000)::bigint, s.group_id \
             FROM bench_log_times b LEFT JOIN sync_actions s ON s.id = b.id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get::<_, i64>(0) as u64, (r.get::<_, i64>(1), r.get::<_, Option<String>>(2)))).collect())
}

/// Removes the log clock (once the servers on `db` are stopped).
pub(crate) async fn remove_log_clock(pg: &Pg, db: &str) -> Result<(), BoxError> {
    let c = pg.connect(db).await?;
    c.batch_execute(
        "SET lock_timeout = '10s'; DROP TRIGGER IF EXISTS bench_log_time ON sync_actions; \
         DROP TABLE IF EXISTS bench_log_times; DROP FUNCTION IF EXISTS bench_log_time()",
    )
    .await?;
    Ok(())
}
