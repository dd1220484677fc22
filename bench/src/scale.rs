//! The scale run: how the cost of a bootstrap grows with the data.
//!
//! For two sizes ten times apart (full: 100,000 and 1,000,000 tasks, each
//! with as many task labels and a hundredth as many labels, so 201,001 and
//! 2,010,001 rows), a database of its own is seeded with that workspace
//! and a second one a tenth its size (rows the bootstrap must not read),
//! and a fresh Rust server is started on each. Then, in rounds, each size
//! in turn: the COPY baseline (the same rows, streamed by PostgreSQL), the
//! server's page statements run by PostgreSQL alone, and a full bootstrap
//! through the server. Rounds take the sizes in turn so that the load of a
//! shared machine weighs on both alike; figures are medians, with each
//! server's peak memory. Linear cost shows as the same rows/s at both
//! sizes.
//!
//! Its section of `RESULTS.md` sits between two markers, so a run of the
//! scale workload alone rewrites that section and keeps the rest, and a
//! run without it keeps the section from the last scale run.

use crate::load;
use crate::pg::{self, Pg, MAIN_USER};
use crate::plan::{scale_labels, scale_rows, Plan};
use crate::report::{BootstrapSummary, Machine};
use crate::servers::{self, Kind, Launch, Server};
use crate::stats::{self, median};
use crate::BoxError;
use std::time::{Duration, Instant};

/// The first line of the section in `RESULTS.md`.
const BEGIN: &str = "<!-- scale run: begin -->";
/// The last line of the section in `RESULTS.md`.
const END: &str = "<!-- scale run: end -->";

/// The targets: rows/s at the larger size at least this share of rows/s
/// at the smaller one ...
const LINEAR_TARGET: f64 = 0.9;
/// ... and at least this share of COPY's.
const COPY_TARGET: f64 = 0.5;

/// One size.
pub(crate) struct ScalePoint {
    pub tasks: i64,
    /// The Rust server's bootstrap (medians), with its peak RSS.
    pub server: BootstrapSummary,
    /// COPY of the same rows (medians).
    pub copy: BootstrapSummary,
    /// The server's page statements run by PostgreSQL alone: rows/s
    /// (median).
    pub keyset_rows_per_s: f64,
    /// The slowest and fastest of the server's rounds, rows/s.
    pub server_range: (f64, f64),
    /// Server CPU seconds over all its bootstrap runs.
    pub server_cpu: Option<f64>,
}

/// Both sizes, smallest first.
pub(crate) struct ScaleResult {
    pub points: Vec<ScalePoint>,
    /// Rounds (samples per figure).
    pub runs: usize,
    pub took: Duration,
}

impl ScaleResult {
    /// Rows/s at the larger size ÷ rows/s at the smaller one.
    fn linearity(&self) -> Option<f64> {
        match self.points.as_slice() {
            [small, .., big] => Some(big.server.rows_per_s / small.server.rows_per_s),
            _ => None,
        }
    }

    /// The same ratio for PostgreSQL running the page statements alone.
    fn keyset_linearity(&self) -> Option<f64> {
        match self.points.as_slice() {
            [small, .., big] => Some(big.keyset_rows_per_s / small.keyset_rows_per_s),
            _ => None,
        }
    }

    /// Rows/s of the server ÷ rows/s of COPY at the larger size.
    fn share_of_copy(&self) -> Option<f64> {
        self.points.last().map(|p| p.server.rows_per_s / p.copy.rows_per_s)
    }
}

/// Runs the scale workload: seeds a database per size, starts a fresh
/// server on each, then measures in rounds (COPY, the page statements in
/// PostgreSQL alone, and a bootstrap through the server, for each size in
/// turn), and reports medians.
pub(crate) async fn run(
    launch: &Launch,
    pg: &Pg,
    plan: &Plan,
    client: &reqwest::Client,
    keep_databases: bool,
) -> Result<ScaleResult, BoxError> {
    let started = Instant::now();
    let dbs: Vec<String> = plan.scale_tasks.iter().map(|tasks| pg.name(&format!("scale_{tasks}"))).collect();
    let result = measure(launch, pg, plan, client, &dbs).await;
    if !keep_databases {
        for db in &dbs {
            let _ = pg.drop_db(db).await;
        }
    }
    Ok(ScaleResult { points: result?, runs: plan.scale_rounds, took: started.elapsed() })
}

/// One size's samples.
#[derive(Default)]
struct Samples {
    copy: Vec<(u64, Duration, Duration)>,
    keyset: Vec<f64>,
    server: Vec<load::BootstrapRun>,
}

async fn measure(
    launch: &Launch,
    pg: &Pg,
    plan: &Plan,
    client: &reqwest::Client,
    dbs: &[String],
) -> Result<Vec<ScalePoint>, BoxError> {
    for (tasks, db) in plan.scale_tasks.iter().zip(dbs) {
        phase!(
            "scale: seeding {db}: {tasks} tasks, {} labels, {tasks} task labels (+ a workspace a tenth that size)",
            scale_labels(*tasks)
        );
        let t = Instant::now();
        pg.create_db(db, None).await?;
        pg::seed_scale(pg, db, *tasks).await?;
        eprintln!("    seeded in {:.1} s", t.elapsed().as_secs_f64());
    }
    let mut servers = Vec::new();
    for (tasks, db) in plan.scale_tasks.iter().zip(dbs) {
        match servers::start(launch, Kind::Rust, &format!("rust-scale-{tasks}"), &pg.url(db), None).await {
            Ok(server) => servers.push(server),
            Err(e) => {
                for s in servers {
                    s.stop().await;
                }
                return Err(e);
            }
        }
    }
    let cpu: Vec<Option<f64>> = servers.iter().map(|s| stats::cpu_seconds(Some(s.pid))).collect();
    let sampled = rounds(pg, plan, client, dbs, &servers).await;
    let mut points = Vec::new();
    let mut failure = None;
    for (i, mut server) in servers.into_iter().enumerate() {
        let server_cpu = cpu[i].zip(stats::cpu_seconds(Some(server.pid))).map(|(a, b)| b - a);
        let peak_rss = server.hwm();
        if !server.alive() {
            failure.get_or_insert_with(|| format!("the server exited: {}", server.log_tail()));
        }
        server.stop().await;
        let _ = pg.settle(&dbs[i]).await;
        if let Ok(samples) = &sampled {
            points.push(point(plan.scale_tasks[i], &samples[i], peak_rss, server_cpu));
        }
    }
    if let Some(f) = failure {
        return Err(f.into());
    }
    sampled?;
    Ok(points)
}

/// The measurement rounds.
async fn rounds(
    pg: &Pg,
    plan: &Plan,
    client: &reqwest::Client,
    dbs: &[String],
    servers: &[Server],
) -> Result<Vec<Samples>, BoxError> {
    let mut samples: Vec<Samples> = dbs.iter().map(|_| Samples::default()).collect();
    for round in 1..=plan.scale_rounds {
        for (i, db) in dbs.iter().enumerate() {
            let rows = scale_rows(plan.scale_tasks[i]);
            phase!("scale: round {round}/{}, {rows} rows", plan.scale_rounds);
            let copy = pg::copy_bootstrap(pg, db).await?;
            let (keyset_rows, keyset_took) = pg::keyset_bootstrap(pg, db).await?;
            let server = load::bootstrap(client, &servers[i].base(), MAIN_USER).await?;
            for (what, n) in [("COPY", copy.0), ("the page statements", keyset_rows), ("the server", server.rows)] {
                if n != rows {
                    return Err(format!("{what} returned {n} rows, expected {rows}").into());
                }
            }
            eprintln!(
                "    COPY {:.0} rows/s, page statements alone {:.0} rows/s, server {:.0} rows/s",
                rows as f64 / copy.2.as_secs_f64(),
                rows as f64 / keyset_took.as_secs_f64(),
                rows as f64 / server.total.as_secs_f64()
            );
            samples[i].copy.push(copy);
            samples[i].keyset.push(rows as f64 / keyset_took.as_secs_f64());
            samples[i].server.push(server);
        }
    }
    Ok(samples)
}

/// Medians of one size's samples.
fn point(tasks: i64, s: &Samples, peak_rss: Option<u64>, server_cpu: Option<f64>) -> ScalePoint {
    let rows = scale_rows(tasks);
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let secs = |d: Duration| d.as_secs_f64();
    let of = |v: Vec<f64>| median(&v);
    let server = BootstrapSummary {
        rows,
        rows_per_s: of(s.server.iter().map(|r| rate(r.total)).collect()),
        ttfb_ms: of(s.server.iter().map(|r| ms(r.ttfb)).collect()),
        total_s: of(s.server.iter().map(|r| secs(r.total)).collect()),
        mib: of(s.server.iter().map(|r| r.bytes as f64 / 1048576.0).collect()),
        peak_rss,
    };
    let copy = BootstrapSummary {
        rows,
        rows_per_s: of(s.copy.iter().map(|c| rate(c.2)).collect()),
        ttfb_ms: of(s.copy.iter().map(|c| ms(c.1)).collect()),
        total_s: of(s.copy.iter().map(|c| secs(c.2)).collect()),
        mib: 0.0,
        peak_rss: None,
    };
    let rates: Vec<f64> = s.server.iter().map(|r| rate(r.total)).collect();
    let server_range = (rates.iter().copied().fold(f64::INFINITY, f64::min), rates.iter().copied().fold(0.0, f64::max));
    ScalePoint { tasks, server, copy, keyset_rows_per_s: median(&s.keyset), server_range, server_cpu }
}

/// The scale figures as lines for the terminal.
pub(crate) fn summary(r: &ScaleResult) -> Vec<String> {
    let mut lines: Vec<String> = r
        .points
        .iter()
        .map(|p| {
            format!(
                "scale: {} rows: {:.0} rows/s (COPY {:.0}, {:.2}×), peak RSS {}",
                p.server.rows,
                p.server.rows_per_s,
                p.copy.rows_per_s,
                p.server.rows_per_s / p.copy.rows_per_s,
                mib(p.server.peak_rss)
            )
        })
        .collect();
    lines.extend(targets(r));
    lines
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a".to_owned(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// The two target lines.
fn targets(r: &ScaleResult) -> Vec<String> {
    let (Some(first), Some(last)) = (r.points.first(), r.points.last()) else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(l) = r.linearity() {
        out.push(format!(
            "rows/s at {} rows ÷ rows/s at {} rows: {l:.2} (target ≥ {LINEAR_TARGET:.2}: {})",
            last.server.rows,
            first.server.rows,
            verdict(l >= LINEAR_TARGET)
        ));
    }
    if let Some(k) = r.keyset_linearity() {
        out.push(format!(
            "the same ratio for PostgreSQL running the server's page statements alone (no target): {k:.2}"
        ));
    }
    if let Some(c) = r.share_of_copy() {
        out.push(format!(
            "rows/s of the Rust server ÷ rows/s of COPY at {} rows: {c:.2} (target ≥ {COPY_TARGET:.2}: {})",
            last.server.rows,
            verdict(c >= COPY_TARGET)
        ));
    }
    out
}

/// The section of `RESULTS.md`, markers included.
pub(crate) fn markdown(r: &ScaleResult, size: &str, machine: &Machine, at: chrono::DateTime<chrono::Utc>) -> String {
    let mut s = String::new();
    s.push_str(BEGIN);
    s.push_str("\n## Scale run\n\n");
    s.push_str(&format!(
        "Produced by a `--size {size}` run of `cargo run --release -p stratasync-bench` (`-- --only scale \
         --no-reference` runs this section alone) on {} UTC ({:.0} s), on {} cores ({}), {}. See \
         `bench/README.md` (scale run) for the setup.\n\n",
        at.format("%Y-%m-%d %H:%M"),
        r.took.as_secs_f64(),
        machine.cores,
        machine.cpu,
        machine.postgres
    ));
    s.push_str(&format!(
        "Full bootstrap of one workspace (its tasks, a hundredth as many labels and one task label per task) \
         whose tables also hold a second workspace a tenth its size, on a fresh server per size; median of {} \
         rounds, each measuring both sizes in turn; COPY of the same rows, and the server's page statements \
         run by PostgreSQL alone, in the same rounds.\n\n",
        r.runs
    ));
    s.push_str(
        "| Rows | Rust rows/s | Rust rows/s, slowest–fastest round | COPY rows/s | PostgreSQL page statements alone, rows/s | Rust ÷ COPY \
         | Rust total | COPY total | Rust first byte | Peak server RSS (VmHWM) | Server CPU (all runs) |\n",
    );
    s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for p in &r.points {
        s.push_str(&format!(
            "| {} ({} tasks) | {:.0} | {:.0}–{:.0} | {:.0} | {:.0} | {:.2} | {:.1} s | {:.1} s | {:.1} ms | {} | {} |\n",
            p.server.rows,
            p.tasks,
            p.server.rows_per_s,
            p.server_range.0,
            p.server_range.1,
            p.copy.rows_per_s,
            p.keyset_rows_per_s,
            p.server.rows_per_s / p.copy.rows_per_s,
            p.server.total_s,
            p.copy.total_s,
            p.server.ttfb_ms,
            mib(p.server.peak_rss),
            p.server_cpu.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.1} s")),
        ));
    }
    s.push('\n');
    for t in targets(r) {
        s.push_str(&format!("- {t}\n"));
    }
    s.push_str(END);
    s.push('\n');
    s
}

/// `RESULTS.md` from its previous contents and the parts this run
/// produced: the main part if the main workloads ran, the scale section if
/// the scale workload ran. What a run did not produce is kept.
pub(crate) fn splice(previous: Option<&str>, main: Option<String>, scale: Option<String>) -> String {
    let (old_main, old_scale) = match previous {
        Some(text) => split(text),
        None => (String::new(), None),
    };
    let main = main.unwrap_or(old_main);
    let main = if main.trim().is_empty() { "# Benchmark results\n".to_owned() } else { main };
    match scale.or(old_scale) {
        Some(section) => format!("{}\n\n{}", main.trim_end(), section),
        None => main,
    }
}

/// The text without the scale section, and the section.
fn split(text: &str) -> (String, Option<String>) {
    crate::report::split_section(text, BEGIN, END)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(n: u32) -> String {
        format!("{BEGIN}\n## Scale run\n\nfigures {n}\n{END}\n")
    }

    #[test]
    fn a_run_rewrites_only_the_parts_it_produced() {
        let first = splice(None, Some("# Benchmark results\n\nmain 1\n".into()), None);
        assert_eq!(first, "# Benchmark results\n\nmain 1\n");
        let second = splice(Some(&first), None, Some(section(1)));
        assert_eq!(second, format!("# Benchmark results\n\nmain 1\n\n{}", section(1)));
        let third = splice(Some(&second), Some("# Benchmark results\n\nmain 2\n".into()), None);
        assert_eq!(third, format!("# Benchmark results\n\nmain 2\n\n{}", section(1)));
        let fourth = splice(Some(&third), None, Some(section(2)));
        assert_eq!(fourth, format!("# Benchmark results\n\nmain 2\n\n{}", section(2)));
        assert_eq!(splice(Some(&fourth), None, None), fourth, "stable");
    }

    #[test]
    fn a_scale_section_alone_gets_a_heading() {
        assert_eq!(splice(None, None, Some(section(1))), format!("# Benchmark results\n\n{}", section(1)));
    }

    #[test]
    fn text_after_the_section_is_kept_with_the_main_part() {
        let text = format!("# R\n\nmain\n\n{}\n## Notes\n\nn\n", section(1));
        let (main, scale) = split(&text);
        assert_eq!(main, "# R\n\nmain\n\n## Notes\n\nn\n");
        assert_eq!(scale, Some(section(1)));
    }
}
