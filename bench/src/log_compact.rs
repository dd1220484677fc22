//! Compaction: the log's rows and size, and the catch-up of a client far
//! behind, before and after `taskboard log compact` folds the log.

use crate::load::catch_up_to_head;
use crate::pg::Pg;
use crate::servers::{without_tls, Launch, Server};
use crate::stats::median;
use crate::BoxError;
use serde::Deserialize;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The log's rows and its table's size (heap, TOAST and indexes, after
/// `VACUUM FULL`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogSize {
    pub rows: i64,
    pub bytes: i64,
}

/// The catch-up of the far client, over its runs.
#[derive(Debug, Clone)]
pub(crate) struct FarCatchUp {
    pub actions: u64,
    pub pages: u64,
    /// Seconds of each run.
    pub seconds: Vec<f64>,
}

impl FarCatchUp {
    pub fn median_s(&self) -> f64 {
        median(&self.seconds)
    }
}

/// What `taskboard log compact --json` printed (the fields used here).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CompactReport {
    pub rows_before: i64,
    pub rows_after: i64,
    pub removed: u64,
    pub rewritten: u64,
    pub millis: u64,
}

/// The compaction figures.
pub(crate) struct CompactResult {
    pub far: u64,
    pub head: u64,
    pub before: LogSize,
    pub after: LogSize,
    pub report: CompactReport,
    /// The `taskboard log compact` process, start to exit.
    pub wall: Duration,
    pub catch_up_before: FarCatchUp,
    pub catch_up_after: FarCatchUp,
}

/// Rows and size of `sync_actions` after `VACUUM FULL`.
async fn log_size(pg: &Pg, db: &str) -> Result<LogSize, BoxError> {
    let c = pg.connect(db).await?;
    // Separate statements: VACUUM cannot run inside the implicit
    // transaction of a multi-statement query.
    c.batch_execute("SET lock_timeout = '30s'").await?;
    c.batch_execute("VACUUM FULL sync_actions").await?;
    let r = c.query_one("SELECT count(*), pg_total_relation_size('sync_actions') FROM sync_actions", &[]).await?;
    Ok(LogSize { rows: r.get(0), bytes: r.get(1) })
}

/// `runs` catch-ups from `far`: each must read every action after it (as
/// the log holds them now) and end at `head`.
#[allow(clippy::too_many_arguments)]
async fn far_catch_up(
    client: &reqwest::Client,
    server: &Server,
    pg: &Pg,
    db: &str,
    user: &str,
    far: u64,
    head: u64,
    limit: usize,
    runs: usize,
) -> Result<FarCatchUp, BoxError> {
    let c = pg.connect(db).await?;
    let expected: i64 = c.query_one("SELECT count(*) FROM sync_actions WHERE id > $1", &[&(far as i64)]).await?.get(0);
    let mut out = FarCatchUp { actions: 0, pages: 0, seconds: Vec::new() };
    for run in 1..=runs {
        let r = catch_up_to_head(client, &server.base(), user, far, limit).await?;
        eprintln!("    run {run}: {} actions in {} pages, {:.2} s", r.actions, r.pages, r.took.as_secs_f64());
        if r.actions != expected as u64 || r.last != head {
            return Err(format!(
                "catch-up from {far} read {} actions ending at {}, expected {expected} ending at {head}",
                r.actions, r.last
            )
            .into());
        }
        out.actions = r.actions;
        out.pages = r.pages;
        out.seconds.push(r.took.as_secs_f64());
    }
    Ok(out)
}

/// Runs `taskboard log compact --below head --horizon far+1 --json`.
async fn compact(launch: &Launch, url: &str, far: u64, head: u64) -> Result<(CompactReport, Duration), BoxError> {
    let t0 = Instant::now();
    let out = tokio::process::Command::new(&launch.taskboard)
        .args(["log", "compact", "--below", &head.to_string(), "--horizon", &(far + 1).to_string(), "--json"])
        .env("DATABASE_URL", without_tls(url))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run taskboard log compact: {e}"))?;
    let wall = t0.elapsed();
    if !out.status.success() {
        return Err(format!("taskboard log compact failed: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    let report: CompactReport = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("taskboard log compact printed no report ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })?;
    Ok((report, wall))
}

/// Measures the log and the far client's catch-up through `server`,
/// compacts (fold everything up to the head, horizon right above `far`),
/// and measures both again.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    launch: &Launch,
    client: &reqwest::Client,
    server: &Server,
    pg: &Pg,
    db: &str,
    user: &str,
    far: u64,
    limit: usize,
    runs: usize,
) -> Result<CompactResult, BoxError> {
    let head = crate::pg::head(pg, db).await?;
    let before = log_size(pg, db).await?;
    phase!("log: catch-up from {far} (head {head}) before compaction ×{runs}");
    let catch_up_before = far_catch_up(client, server, pg, db, user, far, head, limit, runs).await?;
    phase!("log: taskboard log compact --below {head} --horizon {}", far + 1);
    let (report, wall) = compact(launch, &pg.url(db), far, head).await?;
    eprintln!(
        "    {} rows -> {} ({} removed, {} rewritten) in {} ms ({:.0} ms with the process)",
        report.rows_before,
        report.rows_after,
        report.removed,
        report.rewritten,
        report.millis,
        wall.as_secs_f64() * 1000.0
    );
    let after = log_size(pg, db).await?;
    if after.rows != report.rows_after {
        return Err(format!("the log holds {} rows, the report says {}", after.rows, report.rows_after).into());
    }
    phase!("log: catch-up from {far} after compaction ×{runs}");
    let catch_up_after = far_catch_up(client, server, pg, db, user, far, head, limit, runs).await?;
    if catch_up_after.actions >= catch_up_before.actions {
        return Err(format!(
            "compaction left {} actions after the far cursor, {} before",
            catch_up_after.actions, catch_up_before.actions
        )
        .into());
    }
    Ok(CompactResult { far, head, before, after, report, wall, catch_up_before, catch_up_after })
}
