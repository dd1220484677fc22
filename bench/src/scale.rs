//! The scale run: how the cost of a bootstrap grows with the data.
//!
//! For two sizes ten times apart (full: 100,000 and 1,000,000 tasks, each
//! with as many task labels and a hundredth as many labels, so 201,001 and
//! 2,010,001 rows), a database of its own is seeded with that workspace
//! and a second one a tenth its size (rows the bootstrap must not read).
//! On it the harness runs the COPY baseline (the same rows, streamed by
//! PostgreSQL) and then, on a fresh Rust server, full bootstraps of the
//! workspace, median of the runs, with the server's peak memory. Linear
//! cost shows as the same rows/s at both sizes.
//!
//! Its section of `RESULTS.md` sits between two markers, so a run of the
//! scale workload alone rewrites that section and keeps the rest, and a
//! run without it keeps the section from the last scale run.

use crate::pg::{self, Pg};
use crate::plan::{scale_labels, scale_rows, Plan};
use crate::report::{BootstrapSummary, Machine};
use crate::servers::{self, Kind, Launch};
use crate::stats;
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
    /// Server CPU seconds over its bootstrap runs.
    pub server_cpu: Option<f64>,
}

/// Both sizes, smallest first.
pub(crate) struct ScaleResult {
    pub points: Vec<ScalePoint>,
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

    /// Rows/s of the server ÷ rows/s of COPY at the larger size.
    fn share_of_copy(&self) -> Option<f64> {
        self.points.last().map(|p| p.server.rows_per_s / p.copy.rows_per_s)
    }
}

/// Runs the scale workload.
pub(crate) async fn run(
    launch: &Launch,
    pg: &Pg,
    plan: &Plan,
    client: &reqwest::Client,
    keep_databases: bool,
) -> Result<ScaleResult, BoxError> {
    let started = Instant::now();
    let mut points = Vec::new();
    for tasks in plan.scale_tasks {
        let db = pg.name(&format!("scale_{tasks}"));
        phase!(
            "scale: seeding {db}: {tasks} tasks, {} labels, {tasks} task labels (+ a workspace a tenth that size)",
            scale_labels(tasks)
        );
        let t = Instant::now();
        pg.create_db(&db, None).await?;
        let point = async {
            pg::seed_scale(pg, &db, tasks).await?;
            eprintln!("    seeded in {:.1} s", t.elapsed().as_secs_f64());
            measure(launch, pg, &db, plan, client, tasks).await
        }
        .await;
        if !keep_databases {
            let _ = pg.drop_db(&db).await;
        }
        points.push(point?);
    }
    Ok(ScaleResult { points, runs: plan.read_runs, took: started.elapsed() })
}

/// COPY, then a fresh server, on the seeded database `db`.
async fn measure(
    launch: &Launch,
    pg: &Pg,
    db: &str,
    plan: &Plan,
    client: &reqwest::Client,
    tasks: i64,
) -> Result<ScalePoint, BoxError> {
    let rows = scale_rows(tasks);
    phase!("scale: COPY baseline ×{} ({rows} rows)", plan.read_runs);
    let copy = crate::copy_baseline(pg, db, plan.read_runs, rows).await?;
    eprintln!("    COPY: {:.0} rows/s", copy.rows_per_s);
    phase!("scale: rust bootstrap ×{} ({rows} rows, fresh server)", plan.read_runs);
    let mut server = servers::start(launch, Kind::Rust, &format!("rust-scale-{tasks}"), &pg.url(db), None).await?;
    let cpu = stats::cpu_seconds(Some(server.pid));
    let result = crate::bootstrap_runs(&server, client, plan.read_runs, rows).await;
    let server_cpu = cpu.zip(stats::cpu_seconds(Some(server.pid))).map(|(a, b)| b - a);
    let alive = server.alive();
    let tail = server.log_tail();
    server.stop().await;
    let _ = pg.settle(db).await;
    if !alive {
        return Err(format!("the server exited: {tail}").into());
    }
    let server = result?;
    Ok(ScalePoint { tasks, server, copy, server_cpu })
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
         whose tables also hold a second workspace a tenth its size; median of {} runs on a fresh server \
         per size; COPY of the same rows in the same run.\n\n",
        r.runs
    ));
    s.push_str(
        "| Rows | Rust rows/s | COPY rows/s | Rust ÷ COPY | Rust total | COPY total | Rust first byte \
         | Peak server RSS (VmHWM) | Server CPU (all runs) |\n",
    );
    s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for p in &r.points {
        s.push_str(&format!(
            "| {} ({} tasks) | {:.0} | {:.0} | {:.2} | {:.1} s | {:.1} s | {:.1} ms | {} | {} |\n",
            p.server.rows,
            p.tasks,
            p.server.rows_per_s,
            p.copy.rows_per_s,
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
    let Some(begin) = text.find(BEGIN) else { return (text.to_owned(), None) };
    let end = text[begin..].find(END).map_or(text.len(), |e| begin + e + END.len());
    let section = format!("{}\n", text[begin..end].trim_end());
    let rest = format!("{}{}", text[..begin].trim_end(), &text[end..]);
    (format!("{}\n", rest.trim_end()), Some(section))
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
