//! The log run (`--only log`; Rust only: the reference has neither a hot
//! tail nor compaction): catch-up from the hot tail against catch-up from
//! PostgreSQL, a reconnect storm against each, and compaction.
//!
//! One database holds a workspace of `log_tasks` tasks (member `alice`,
//! and one member per storm client) and a history of `log_updates`
//! updates per task. Two servers start on it: one with the default hot
//! tail, one with `SYNC_HOT_TAIL_BYTES=0`. Then `tail_behind` more updates
//! are written (the hot server's tail holds them), and
//!
//! 1. a client that far behind pages `/sync/deltas` to the head from each
//!    server in turn (`log_tail::catch_up_rounds`);
//! 2. `storm_clients` clients resume `storm_behind` actions behind at once,
//!    against each server (`log_tail::storm`);
//! 3. a client behind the whole history catches up before and after
//!    `taskboard log compact` (`log_compact::run`).
//!
//! Its section of `RESULTS.md` sits between its own markers, like the
//! scale run's.

use crate::load::http_client;
use crate::log_compact::{self, CompactResult};
use crate::log_tail::{self, Storm, TailRun};
use crate::pg::{self, Pg, MAIN_USER, MAIN_WORKSPACE};
use crate::plan::Plan;
use crate::report::Machine;
use crate::servers::{self, Kind, Launch, Server};
use crate::BoxError;
use std::time::{Duration, Instant};
use taskboard::seed::{seed, SeedOptions};

/// The first line of the section in `RESULTS.md`.
const BEGIN: &str = "<!-- log run: begin -->";
/// The last line of the section in `RESULTS.md`.
const END: &str = "<!-- log run: end -->";

/// Every figure of the log run.
pub(crate) struct LogResult {
    pub tasks: i64,
    pub updates: i64,
    pub limit: usize,
    pub tail_behind: u64,
    pub rounds: usize,
    /// Catch-up from the hot tail, and from PostgreSQL.
    pub tail: TailRun,
    pub cold: TailRun,
    /// Resident memory of each server after the writes.
    pub rss: (Option<u64>, Option<u64>),
    pub storm_behind: u64,
    pub storm_hot: Storm,
    pub storm_cold: Storm,
    pub pg_settled: bool,
    pub compaction: CompactResult,
    pub took: Duration,
}

/// The storm clients' users.
fn storm_user(i: usize) -> String {
    format!("storm{i}")
}

/// Runs the log workloads on a database of their own.
pub(crate) async fn run(launch: &Launch, pg: &Pg, plan: &Plan, keep_databases: bool) -> Result<LogResult, BoxError> {
    let started = Instant::now();
    let db = pg.name("log");
    let r = measure(launch, pg, plan, &db, started).await;
    if !keep_databases {
        let _ = pg.drop_db(&db).await;
    }
    r
}

/// Creates the database: the workspace, its members and the history.
/// Returns the head before the history (the far client's cursor).
async fn seed_log(pg: &Pg, db: &str, plan: &Plan) -> Result<u64, BoxError> {
    pg.create_db(db, None).await?;
    let url = pg.url(db);
    taskboard::migrate(&url).await?;
    let pool = stratasync_core::storage::connect(&url, &stratasync_core::storage::PoolConfig::default())?;
    let users: Vec<String> =
        std::iter::once(MAIN_USER.to_owned()).chain((0..plan.storm_clients).map(storm_user)).collect();
    let members: Vec<&str> = users.iter().map(String::as_str).collect();
    let mut opts = SeedOptions::new(&members, plan.log_tasks);
    opts.workspace_id = MAIN_WORKSPACE;
    opts.workspace_name = "Log workspace".to_owned();
    seed(&pool, &opts).await?;
    drop(pool);
    let far = pg::head(pg, db).await?;
    let c = pg.connect(db).await?;
    // `log_updates` updates of every task, round after round.
    c.batch_execute(&format!(
        "WITH t AS (SELECT id::text AS id, row_number() OVER (ORDER BY id) - 1 AS rn \
                    FROM tasks WHERE workspace_id = '{ws}'), \
              n AS (SELECT count(*) AS c FROM t) \
         INSERT INTO sync_actions (model, model_id, action, data, group_id, client_id, client_tx_id) \
         SELECT 'Task', t.id, 'U', jsonb_build_object('title', 'Task edit ' || g, 'priority', g % 4), \
                '{ws}', 'bench-log', 'log-' || g \
         FROM generate_series(1, {n}) AS g JOIN t ON t.rn = g % (SELECT c FROM n) ORDER BY g",
        ws = MAIN_WORKSPACE,
        n = plan.log_tasks * plan.log_updates
    ))
    .await?;
    c.batch_execute("VACUUM ANALYZE").await?;
    Ok(far)
}

async fn measure(launch: &Launch, pg: &Pg, plan: &Plan, db: &str, started: Instant) -> Result<LogResult, BoxError> {
    phase!(
        "log: seeding {db}: {} tasks, {} members, {} updates per task",
        plan.log_tasks,
        plan.storm_clients + 1,
        plan.log_updates
    );
    let t = Instant::now();
    let far = seed_log(pg, db, plan).await?;
    eprintln!("    seeded in {:.1} s; history after sync id {far}", t.elapsed().as_secs_f64());
    let url = pg.url(db);
    let hot = servers::start_with_env(launch, Kind::Rust, "rust-log-hot-tail", &url, None, &[]).await?;
    let cold = match servers::start_with_env(
        launch,
        Kind::Rust,
        "rust-log-no-tail",
        &url,
        None,
        &[("SYNC_HOT_TAIL_BYTES", "0")],
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            hot.stop().await;
            return Err(e);
        }
    };
    let r = with_servers(launch, pg, plan, db, far, &hot, &cold, started).await;
    let mut failure = None;
    for (name, mut s) in [("hot-tail", hot), ("no-tail", cold)] {
        if !s.alive() {
            failure.get_or_insert_with(|| format!("the {name} server exited: {}", s.log_tail()));
        }
        s.stop().await;
    }
    let _ = pg.settle(db).await;
    match failure {
        Some(f) => Err(f.into()),
        None => r,
    }
}

#[allow(clippy::too_many_arguments)]
async fn with_servers(
    launch: &Launch,
    pg: &Pg,
    plan: &Plan,
    db: &str,
    far: u64,
    hot: &Server,
    cold: &Server,
    started: Instant,
) -> Result<LogResult, BoxError> {
    let client = http_client()?;
    let limit = plan.delta_limit;
    let from = pg::head(pg, db).await?;
    phase!("log: writing {} updates through the hot-tail server (after sync id {from})", plan.tail_behind);
    let tasks = pg::task_ids(pg, db, MAIN_WORKSPACE, plan.log_tasks).await?;
    log_tail::write_updates(&client, hot, MAIN_USER, &tasks, plan.tail_behind).await?;
    let head = pg::head(pg, db).await?;
    log_tail::wait_for_feeds(&client, &[hot, cold], head).await?;
    let rss = (hot.rss(), cold.rss());
    let c = pg.connect(db).await?;
    let behind = |n: i64| {
        let c = &c;
        async move {
            let row = c
                .query_opt("SELECT id FROM sync_actions ORDER BY id DESC OFFSET $1 LIMIT 1", &[&n])
                .await?
                .ok_or("the log is shorter than asked")?;
            Ok::<u64, BoxError>(row.get::<_, i64>(0) as u64)
        }
    };
    let tail_from = behind(plan.tail_behind).await?;
    if tail_from != from {
        return Err(
            format!("{} writes after {from} did not end {} actions later", plan.tail_behind, plan.tail_behind).into()
        );
    }
    let storm_from = behind(plan.storm_behind).await?;
    drop(c);

    phase!(
        "log: catch-up of {} actions (pages of {limit}), hot tail against PostgreSQL ×{}",
        plan.tail_behind,
        plan.tail_rounds
    );
    let expected = plan.tail_behind as u64;
    let (tail, cold_run) =
        log_tail::catch_up_rounds(&client, hot, cold, MAIN_USER, from, head, expected, limit, plan.tail_rounds).await?;

    let users: Vec<String> = (0..plan.storm_clients).map(storm_user).collect();
    let behind_n = plan.storm_behind as u64;
    let settle = plan.pg_stats_settle;
    let mut storms = Vec::new();
    for (name, server) in [("hot tail", hot), ("no tail", cold)] {
        phase!("log: reconnect storm, {} clients {behind_n} behind, {name}", users.len());
        let s = log_tail::storm(server, pg, db, &users, storm_from, head, behind_n, limit, settle).await?;
        eprintln!(
            "    {:.2} s in all, per client p50 {:.1} ms, p99 {:.1} ms; PostgreSQL: {} commits, {} tuples returned, \
             {} fetched, {} blocks; served from memory {}, from PostgreSQL {}",
            s.wall.as_secs_f64(),
            s.per_client.ms_at(0.5),
            s.per_client.ms_at(0.99),
            s.pg.xact_commit,
            s.pg.tup_returned,
            s.pg.tup_fetched,
            s.pg.blocks,
            s.served.memory,
            s.served.database
        );
        storms.push(s);
    }
    let mut storms = storms.into_iter();
    let (storm_hot, storm_cold) = (storms.next().ok_or("no storm")?, storms.next().ok_or("no storm")?);
    let total = behind_n as f64 * users.len() as f64;
    if storm_hot.served.memory < total || storm_cold.served.memory > 0.0 {
        return Err(format!(
            "storm: the hot-tail server served {} of {total} actions from memory, the other {} (expected none)",
            storm_hot.served.memory, storm_cold.served.memory
        )
        .into());
    }

    let compaction =
        log_compact::run(launch, &client, cold, pg, db, MAIN_USER, far, limit, plan.compact_rounds).await?;
    Ok(LogResult {
        tasks: plan.log_tasks,
        updates: plan.log_updates,
        limit,
        tail_behind: expected,
        rounds: plan.tail_rounds,
        tail,
        cold: cold_run,
        rss,
        storm_behind: behind_n,
        storm_hot,
        storm_cold,
        pg_settled: !settle.is_zero(),
        compaction,
        took: started.elapsed(),
    })
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        if a == 0.0 {
            "–".to_owned()
        } else {
            "∞".to_owned()
        }
    } else {
        format!("{:.2}×", a / b)
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1048576.0)
}

fn opt_mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a".to_owned(), |b| mib(b as f64))
}

/// The log figures as lines for the terminal.
pub(crate) fn summary(r: &LogResult) -> Vec<String> {
    let c = &r.compaction;
    vec![
        format!(
            "log: catch-up of {} actions: tail {:.0} actions/s, PostgreSQL {:.0} actions/s ({})",
            r.tail_behind,
            r.tail.median(),
            r.cold.median(),
            ratio(r.tail.median(), r.cold.median())
        ),
        format!(
            "log: storm of {} clients {} behind: {:.2} s with the tail, {:.2} s without ({}); PostgreSQL tuples \
             returned+fetched {} with, {} without",
            r.storm_hot.clients,
            r.storm_behind,
            r.storm_hot.wall.as_secs_f64(),
            r.storm_cold.wall.as_secs_f64(),
            ratio(r.storm_cold.wall.as_secs_f64(), r.storm_hot.wall.as_secs_f64()),
            r.storm_hot.pg.tup_returned + r.storm_hot.pg.tup_fetched,
            r.storm_cold.pg.tup_returned + r.storm_cold.pg.tup_fetched
        ),
        format!(
            "log: compaction {} → {} rows, {} → {}, {} ms; far catch-up {:.2} s → {:.2} s ({})",
            c.before.rows,
            c.after.rows,
            mib(c.before.bytes as f64),
            mib(c.after.bytes as f64),
            c.report.millis,
            c.catch_up_before.median_s(),
            c.catch_up_after.median_s(),
            ratio(c.catch_up_before.median_s(), c.catch_up_after.median_s())
        ),
    ]
}

/// The section of `RESULTS.md`, markers included.
pub(crate) fn markdown(r: &LogResult, size: &str, machine: &Machine, at: chrono::DateTime<chrono::Utc>) -> String {
    let mut s = String::new();
    s.push_str(BEGIN);
    s.push_str("\n## Log: hot tail and compaction\n\n");
    s.push_str(&format!(
        "Produced by a `--size {size}` run of `cargo run --release -p stratasync-bench` (`-- --only log \
         --no-reference` runs this section alone) on {} UTC ({:.0} s), on {} cores ({}), {}. Rust server only: \
         the reference has neither a hot tail nor compaction. See `bench/README.md` (log run) for the setup.\n\n",
        at.format("%Y-%m-%d %H:%M"),
        r.took.as_secs_f64(),
        machine.cores,
        machine.cpu,
        machine.postgres
    ));
    s.push_str(&format!(
        "One database: a workspace of {} tasks with {} updates per task in the log (the history), then {} more \
         updates written through the server after both servers started. Two servers on it: the default hot tail \
         (16 MiB) and `SYNC_HOT_TAIL_BYTES=0`. Pages of {}.\n\n",
        r.tasks, r.updates, r.tail_behind, r.limit
    ));

    s.push_str(&format!(
        "### Catch-up from {} actions behind\n\nMedian of {} rounds, each paging `/sync/deltas` to the head ({} \
         actions in {} pages) from each server in turn; \"served\" is the servers' \
         `stratasync_deltas_served_total{{via=\"http\"}}` over the rounds.\n\n",
        r.tail_behind, r.rounds, r.tail.actions, r.tail.pages
    ));
    s.push_str("| Server | actions/s | slowest–fastest round | ÷ PostgreSQL | served from memory | served from PostgreSQL | RSS after the writes |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for (name, t, rss) in [("hot tail", &r.tail, r.rss.0), ("no tail (PostgreSQL)", &r.cold, r.rss.1)] {
        let (lo, hi) = t.range();
        s.push_str(&format!(
            "| {name} | {:.0} | {lo:.0}–{hi:.0} | {} | {:.0} | {:.0} | {} |\n",
            t.median(),
            ratio(t.median(), r.cold.median()),
            t.served.memory,
            t.served.database,
            opt_mib(rss)
        ));
    }

    s.push_str(&format!(
        "\n### Reconnect storm\n\n{} clients (each its own user, on new connections) resume {} actions behind at \
         once, paging `/sync/deltas` to the head, against each server in turn. PostgreSQL's work is the \
         difference of `pg_stat_database` for the database over the storm{}; it includes both servers' idle \
         feed polls (a few a second).\n\n",
        r.storm_hot.clients,
        r.storm_behind,
        if r.pg_settled {
            " (read after its sessions published their counts)"
        } else {
            " (read at once: partial in a `--size small` run)"
        }
    ));
    s.push_str("| | hot tail | no tail (PostgreSQL) | no tail ÷ hot tail |\n|---|---:|---:|---:|\n");
    let (h, c) = (&r.storm_hot, &r.storm_cold);
    let rows: Vec<(&str, f64, f64, String)> = vec![
        ("all clients done", h.wall.as_secs_f64(), c.wall.as_secs_f64(), "s".into()),
        ("per client p50", h.per_client.ms_at(0.5), c.per_client.ms_at(0.5), "ms".into()),
        ("per client p99", h.per_client.ms_at(0.99), c.per_client.ms_at(0.99), "ms".into()),
        ("per client max", h.per_client.max_ms(), c.per_client.max_ms(), "ms".into()),
        ("server CPU", h.server_cpu.unwrap_or(f64::NAN), c.server_cpu.unwrap_or(f64::NAN), "s".into()),
        ("PostgreSQL commits", h.pg.xact_commit as f64, c.pg.xact_commit as f64, String::new()),
        ("PostgreSQL tuples returned", h.pg.tup_returned as f64, c.pg.tup_returned as f64, String::new()),
        ("PostgreSQL tuples fetched", h.pg.tup_fetched as f64, c.pg.tup_fetched as f64, String::new()),
        ("PostgreSQL buffer blocks (hit + read)", h.pg.blocks as f64, c.pg.blocks as f64, String::new()),
        ("actions served from memory", h.served.memory, c.served.memory, String::new()),
        ("actions served from PostgreSQL", h.served.database, c.served.database, String::new()),
    ];
    for (name, a, b, unit) in rows {
        let fmt = |v: f64| match unit.as_str() {
            "s" => format!("{v:.2} s"),
            "ms" => format!("{v:.1} ms"),
            _ => format!("{v:.0}"),
        };
        s.push_str(&format!("| {name} | {} | {} | {} |\n", fmt(a), fmt(b), ratio(b, a)));
    }

    let k = &r.compaction;
    s.push_str(&format!(
        "\n### Compaction\n\n`taskboard log compact --below {} --horizon {}` (fold the whole log, remove nothing a \
         client at sync id {} needs), through the server without a tail; the log's size is \
         `pg_total_relation_size('sync_actions')` (heap, TOAST, indexes) after `VACUUM FULL`. The catch-up is a \
         client at sync id {} (before the history) paging to the head, median of {} runs.\n\n",
        k.head,
        k.far + 1,
        k.far,
        k.far,
        k.catch_up_before.seconds.len()
    ));
    s.push_str("| | before | after | after ÷ before |\n|---|---:|---:|---:|\n");
    let (b, a) = (&k.catch_up_before, &k.catch_up_after);
    s.push_str(&format!(
        "| log rows | {} | {} | {} |\n",
        k.before.rows,
        k.after.rows,
        ratio(k.after.rows as f64, k.before.rows as f64)
    ));
    s.push_str(&format!(
        "| log size | {} | {} | {} |\n",
        mib(k.before.bytes as f64),
        mib(k.after.bytes as f64),
        ratio(k.after.bytes as f64, k.before.bytes as f64)
    ));
    s.push_str(&format!(
        "| far client's catch-up: actions (pages) | {} ({}) | {} ({}) | {} |\n",
        b.actions,
        b.pages,
        a.actions,
        a.pages,
        ratio(a.actions as f64, b.actions as f64)
    ));
    s.push_str(&format!(
        "| far client's catch-up: time | {:.2} s | {:.2} s | {} |\n\n",
        b.median_s(),
        a.median_s(),
        ratio(a.median_s(), b.median_s())
    ));
    s.push_str(&format!(
        "Compaction: {} removed, {} rewritten in {} ms by its report ({:.0} ms with the process): {} the \
         time of one catch-up from the far cursor before it.\n",
        k.report.removed,
        k.report.rewritten,
        k.report.millis,
        k.wall.as_secs_f64() * 1000.0,
        ratio(k.report.millis as f64 / 1000.0, b.median_s())
    ));
    s.push_str(END);
    s.push('\n');
    s
}

/// `text` (`RESULTS.md` without this section applied) with this section:
/// the one given, else the one `previous` had; it goes last.
pub(crate) fn splice(text: &str, previous: Option<&str>, section: Option<String>) -> String {
    let (rest, _) = split(text);
    let old = previous.and_then(|p| split(p).1);
    match section.or(old) {
        Some(section) => format!("{}\n\n{}", rest.trim_end(), section),
        None => rest,
    }
}

/// The text without this section, and the section.
pub(crate) fn split(text: &str) -> (String, Option<String>) {
    crate::report::split_section(text, BEGIN, END)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(n: u32) -> String {
        format!("{BEGIN}\n## Log: hot tail and compaction\n\nfigures {n}\n{END}\n")
    }

    #[test]
    fn the_section_is_kept_or_replaced_and_goes_last() {
        let main = "# Benchmark results\n\nmain\n";
        let first = splice(main, None, Some(section(1)));
        assert_eq!(first, format!("# Benchmark results\n\nmain\n\n{}", section(1)));
        // A run without it keeps the previous one, after the other parts.
        let (without, _) = split(&first);
        let rewritten = format!("{}\n<!-- scale run: begin -->\nscale\n<!-- scale run: end -->\n", without.trim_end());
        let second = splice(&rewritten, Some(&first), None);
        assert!(second.ends_with(&section(1)), "{second}");
        assert!(second.contains("scale\n"));
        let third = splice(&second, Some(&second), Some(section(2)));
        assert!(third.ends_with(&section(2)) && !third.contains("figures 1"), "{third}");
        assert_eq!(splice(&third, Some(&third), None), third, "stable");
    }
}
