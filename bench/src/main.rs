//! # stratasync-bench
//!
//! Measures the Rust example server (`taskboard`) side by side with the
//! TypeScript reference (`@stratasync/server` on Fastify, in
//! `bench/reference`) and with PostgreSQL's own limits, in one run:
//!
//! ```text
//! cargo run --release -p stratasync-bench                 # full run, writes bench/RESULTS.md
//! cargo run --release -p stratasync-bench -- --size small # smoke run (CI)
//! cargo run --release -p stratasync-bench -- --only scale --no-reference # the scale run alone
//! cargo run --release -p stratasync-bench -- --only log --no-reference   # the log run alone
//! ```
//!
//! The scale run (`scale.rs`: bootstrap at two sizes ten times apart) and
//! the log run (`log_section.rs`: catch-up from the hot tail against
//! PostgreSQL, a reconnect storm, compaction) have their own sections of
//! `RESULTS.md`; a run rewrites only the parts whose workloads it ran.
//!
//! It creates one seeded template database and clones it for each server
//! (identical data), builds and starts the servers, drives the workloads
//! from this process over loopback, prints one table with the machine it
//! ran on, and writes it to `RESULTS.md` with an SVG chart of the latency
//! distributions. It exits non-zero if a workload of either server does
//! not complete (the reference's too, its `npm install` included, unless
//! `--no-reference`), if a bootstrap or delta catch-up differs from the
//! database's rows, if a fan-out delivers a frame twice or to the wrong
//! socket, or if a WebSocket delivery of the Rust server is missing or out
//! of order.
//!
//! Options: `--pg URL` (PostgreSQL server, default
//! `postgres://postgres@127.0.0.1:5432`, env `BENCH_PG_URL`),
//! `--no-reference`, `--taskboard PATH` (skip the build), `--node PATH`,
//! `--out-dir DIR`, `--keep-databases`.

/// A phase heading on stderr, with the time since the run started.
macro_rules! phase {
    ($($arg:tt)*) => {
        eprintln!("==> [{:>6.1} s] {}", $crate::stats::now_ns() as f64 / 1e9, format!($($arg)*))
    };
}

mod chart;
mod content;
mod fanout;
mod load;
mod log_compact;
mod log_section;
mod log_tail;
mod pg;
mod pg_work;
mod plan;
mod report;
mod scale;
mod servers;
mod stats;

use clap::Parser;
use fanout::{FanOut, FanOutResult, Subscriber};
use load::{http_client, MutationRun};
use pg::{fan_user, fan_workspace, Pg, MAIN_USER, MAIN_WORKSPACE};
use plan::{Plan, Selection, Size, Workload};
use plotters::style::RGBColor;
use report::{Baselines, BootstrapSummary, DeltaSummary, Machine, Outcome, ServerResults};
use servers::{Kind, Launch, Redis, Server};
use stats::{median, Hist};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "stratasync-bench", about = "StrataSync benchmarks: Rust server vs @stratasync/server vs PostgreSQL")]
struct Args {
    /// `full` (the issue's sizes) or `small` (a smoke run of a few seconds).
    #[arg(long, value_enum, default_value = "full")]
    size: Size,
    /// PostgreSQL server URL without a database name.
    #[arg(long, env = "BENCH_PG_URL", default_value = "postgres://postgres@127.0.0.1:5432")]
    pg: String,
    /// Skip the TypeScript reference (its figures become n/a).
    #[arg(long)]
    no_reference: bool,
    /// Use this taskboard binary instead of building the release one.
    #[arg(long)]
    taskboard: Option<PathBuf>,
    /// The axum build of the same app (default: `taskboard-axum` next to
    /// the taskboard binary).
    #[arg(long)]
    taskboard_axum: Option<PathBuf>,
    /// Skip the axum server (its column reads "not run").
    #[arg(long)]
    no_axum: bool,
    /// The Node.js executable.
    #[arg(long, default_value = "node")]
    node: String,
    /// Where RESULTS.md and latency.svg go (default: `bench/` for a full
    /// run, a temporary directory for a small one).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Keep the benchmark databases afterwards.
    #[arg(long)]
    keep_databases: bool,
    /// Override the number of fan-out subscribers (for ad hoc runs).
    #[arg(long)]
    subscribers: Option<usize>,
    /// Override the number of fan-out workspaces.
    #[arg(long)]
    fan_workspaces: Option<usize>,
    /// Override the fan-out writer's mutations per second.
    #[arg(long)]
    fan_rate: Option<u32>,
    /// Override how long the fan-out writer writes, in seconds.
    #[arg(long)]
    fan_seconds: Option<f64>,
    /// Run only these workloads (for ad hoc runs while profiling); the
    /// others read "not run". Comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Workload>,
}

fn short(e: impl std::fmt::Display) -> String {
    let s = e.to_string();
    let first = s.lines().next().unwrap_or("").to_owned();
    if first.chars().count() > 90 {
        format!("{}…", first.chars().take(90).collect::<String>())
    } else {
        first
    }
}

/// Notes collected along the way (full error texts, oddities).
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    fn fail<T>(&mut self, what: &str, r: Result<T, BoxError>) -> Outcome<T> {
        r.map_err(|e| {
            eprintln!("    !! {what}: {e}");
            self.0.push(format!("{what}: {}", e.to_string().replace('\n', " / ")));
            short(&e)
        })
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, BoxError> {
    let mut plan = Plan::new(args.size);
    plan.only = Selection(args.only.clone());
    if let Some(n) = args.subscribers {
        plan.subscribers = n.max(1);
    }
    if let Some(n) = args.fan_workspaces {
        plan.fan_workspaces = n.max(1);
    }
    if let Some(r) = args.fan_rate {
        plan.fan_rate = r.max(1);
    }
    if let Some(s) = args.fan_seconds {
        plan.fan_duration = Duration::from_secs_f64(s.max(0.1));
    }
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    stats::now_ns();
    let bench_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out_dir = args.out_dir.clone().unwrap_or_else(|| match plan.size {
        Size::Full => bench_dir.clone(),
        Size::Small => std::env::temp_dir().join("stratasync-bench-small"),
    });
    std::fs::create_dir_all(&out_dir)?;
    let log_dir = std::env::temp_dir().join(format!("stratasync-bench-logs-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir)?;
    let mut notes = Notes::default();

    // The servers.
    let taskboard = match &args.taskboard {
        Some(p) => p.clone(),
        None => servers::build_taskboard()?,
    };
    let reference_dir = bench_dir.join("reference");
    let reference: Result<String, String> = if args.no_reference {
        Err("not run: --no-reference".to_owned())
    } else {
        servers::install_reference(&reference_dir, &args.node).map_err(|e| {
            notes.0.push(format!("reference: {e}"));
            short(&e)
        })
    };
    let taskboard_axum = args.taskboard_axum.clone().unwrap_or_else(|| taskboard.with_file_name("taskboard-axum"));
    let launch = Launch {
        taskboard,
        taskboard_axum,
        reference_dir: reference_dir.clone(),
        node: args.node.clone(),
        log_dir: log_dir.clone(),
    };

    // The databases.
    let pg = Pg::new(&args.pg);
    let postgres = pg.describe().await.map_err(|e| format!("PostgreSQL at {} is not reachable: {e}", args.pg))?;
    let mut machine = Machine::probe(postgres, reference.clone().unwrap_or_else(|e| format!("n/a ({e})")));
    // The main table's workloads.
    let (baselines, rust, axum, reference_results) = if plan.only.runs_main() {
        let template = pg.name("template");
        let db_rust = pg.name("rust");
        let db_axum = pg.name("axum");
        let db_ref = pg.name("reference");
        let db_base = pg.name("baseline");
        phase!(
            "seeding {template}: {} tasks, {} labels, {} task labels, {} actions, {} fan-out workspaces",
            plan.tasks,
            plan.labels,
            plan.tasks,
            plan.actions,
            plan.fan_workspaces
        );
        let t = Instant::now();
        pg.create_db(&template, None).await?;
        pg::seed_template(&pg, &template, &plan).await?;
        for db in [&db_rust, &db_axum, &db_ref, &db_base] {
            pg.create_db(db, Some(&template)).await?;
        }
        eprintln!("    seeded and cloned in {:.1} s", t.elapsed().as_secs_f64());

        let redis = match Redis::start(&log_dir).await {
            Ok(r) => Ok(r),
            Err(e) => {
                notes.0.push(format!("redis: {e}"));
                Err(short(&e))
            }
        };

        // Baselines.
        let baselines = if plan.only.runs(Workload::Baselines) {
            phase!("baseline: COPY (SELECT row_to_json …) TO STDOUT");
            let copy = copy_baseline(&pg, &db_base, &plan).await;
            let copy = notes.fail("baseline COPY", copy);
            phase!("baseline: single-row INSERT + COMMIT, {} connections", plan.clients);
            let sampler = pg::WaitSampler::start(&pg, &db_base).await;
            let insert = pg::insert_baseline(&pg, &db_base, plan.clients, plan.warmup, plan.measure)
                .await
                .map(|b| (b.commits as f64 / b.elapsed.as_secs_f64(), b.latency));
            let insert_waits = match sampler {
                Ok(s) => s.finish().await,
                Err(e) => format!("not sampled: {e}"),
            };
            let insert = notes.fail("baseline INSERT", insert);
            Baselines { copy, insert, insert_waits }
        } else {
            Baselines {
                copy: Err(SKIPPED.to_owned()),
                insert: Err(SKIPPED.to_owned()),
                insert_waits: SKIPPED.to_owned(),
            }
        };

        // The servers under test, one after the other.
        let rust = run_server(Kind::Rust, &launch, &pg, &db_rust, &plan, redis.as_ref().ok(), &redis, &mut notes).await;
        let axum = if args.no_axum {
            ServerResults::not_run("not run: --no-axum")
        } else {
            run_server(Kind::Axum, &launch, &pg, &db_axum, &plan, redis.as_ref().ok(), &redis, &mut notes).await
        };
        let reference_results = match &reference {
            Ok(_) => {
                run_server(Kind::Reference, &launch, &pg, &db_ref, &plan, redis.as_ref().ok(), &redis, &mut notes).await
            }
            Err(reason) => ServerResults::not_run(reason),
        };
        if let Ok(r) = redis {
            r.stop().await;
        }
        if !args.keep_databases {
            for db in [&db_rust, &db_axum, &db_ref, &db_base, &template] {
                let _ = pg.drop_db(db).await;
            }
        }
        (baselines, rust, axum, reference_results)
    } else {
        let skipped = Baselines {
            copy: Err(SKIPPED.to_owned()),
            insert: Err(SKIPPED.to_owned()),
            insert_waits: SKIPPED.to_owned(),
        };
        (skipped, ServerResults::not_run(SKIPPED), ServerResults::not_run(SKIPPED), ServerResults::not_run(SKIPPED))
    };

    // The scale run.
    let scale = if plan.only.runs(Workload::Scale) {
        let r = match http_client() {
            Ok(client) => scale::run(&launch, &pg, &plan, &client, args.keep_databases).await,
            Err(e) => Err(e),
        };
        Some(notes.fail("scale run", r))
    } else {
        None
    };
    // The log run: hot tail against PostgreSQL, reconnect storm, compaction.
    let log = if plan.only.runs(Workload::Log) {
        let r = log_section::run(&launch, &pg, &plan, args.keep_databases).await;
        Some(notes.fail("log run", r))
    } else {
        None
    };
    machine.load_end = report::loadavg();

    // The report: the main table if its workloads ran, the scale section
    // if the scale run did; RESULTS.md keeps the part a run did not redo.
    let size = match plan.size {
        Size::Full => "full",
        Size::Small => "small",
    };
    let main_md = if plan.only.runs_main() {
        Some(main_report(
            &plan,
            size,
            started_at,
            started.elapsed(),
            &machine,
            &mut notes,
            &reference_dir,
            &out_dir,
            &report::Columns { rust: &rust, axum: &axum, reference: &reference_results },
            &baselines,
        ))
    } else {
        None
    };
    let scale_md = match &scale {
        Some(Ok(r)) => {
            println!();
            for l in scale::summary(r) {
                println!("{l}");
            }
            Some(scale::markdown(r, size, &machine, started_at))
        }
        _ => None,
    };
    let log_md = match &log {
        Some(Ok(r)) => {
            println!();
            for l in log_section::summary(r) {
                println!("{l}");
            }
            Some(log_section::markdown(r, size, &machine, started_at))
        }
        _ => None,
    };
    let md_path = out_dir.join("RESULTS.md");
    let previous = std::fs::read_to_string(&md_path).ok();
    let text = scale::splice(previous.as_deref(), main_md, scale_md);
    std::fs::write(&md_path, log_section::splice(&text, previous.as_deref(), log_md))?;
    phase!("wrote {} ({:.0} s in all)", md_path.display(), started.elapsed().as_secs_f64());

    // The verdict: every workload of both servers ran to its end (the
    // reference's too, unless --no-reference), with row content, delivery
    // order and every Rust delivery checked.
    let mut ok = true;
    let mut fail = |what: String| {
        eprintln!("FAILED: {what}");
        ok = false;
    };
    let ran = |w: Workload| plan.only.runs(w);
    if ran(Workload::Scale) && !matches!(scale, Some(Ok(_))) {
        fail("rust scale run".to_owned());
    }
    if let Some(Err(e)) = &log {
        fail(format!("rust log run: {e}"));
    }
    for (who, r) in [("rust", &rust), ("rust-axum", &axum), ("reference", &reference_results)] {
        let rust_server = who != "reference";
        if who == "rust-axum" && args.no_axum {
            continue;
        }
        if !rust_server {
            match &reference {
                Err(_) if args.no_reference => continue,
                Err(e) => {
                    fail(format!("reference: {e}"));
                    continue;
                }
                Ok(_) => {}
            }
        }
        if ran(Workload::Memory) {
            if let Err(e) = &r.memory {
                fail(format!("{who} idle memory: {e}"));
            }
        }
        if ran(Workload::Bootstrap) {
            if let Err(e) = &r.bootstrap {
                fail(format!("{who} bootstrap: {e}"));
            }
        }
        if ran(Workload::Deltas) {
            if let Err(e) = &r.deltas {
                fail(format!("{who} delta catch-up: {e}"));
            }
        }
        for (name, m) in [("single-transaction", &r.single), ("batch", &r.batch)] {
            if !ran(Workload::Mutations) {
                continue;
            }
            match m {
                Err(e) => fail(format!("{who} {name} mutations: {e}")),
                Ok(m) if m.committed == 0 => fail(format!("{who} {name} mutations: none committed")),
                Ok(m) if rust_server && m.failed > 0 => {
                    fail(format!("{who} {name} mutations: {} failed ({:?})", m.failed, m.first_error))
                }
                Ok(_) => {}
            }
        }
        for (name, workload, f) in [
            ("fan-out, 1 workspace", Workload::Fanout, &r.fan_one),
            ("fan-out, many workspaces", Workload::Fanout, &r.fan_many),
            ("2 nodes, 1 workspace", Workload::TwoNodes, &r.two_one),
            ("2 nodes, many workspaces", Workload::TwoNodes, &r.two_many),
        ] {
            if !ran(workload) {
                continue;
            }
            match f {
                Err(e) => fail(format!("{who} {name}: {e}")),
                // Either server: something delivered, nothing twice, nothing
                // to the wrong socket. The reference loses and reorders
                // deliveries by design (docs/protocol.md §10 #1, #2) and times
                // out writes under load: reported in the table, not failed.
                Ok(f) if f.expected == 0 || f.duplicates > 0 || f.foreign > 0 => fail(format!(
                    "{who} {name}: {}/{} deliveries, {} duplicate, {} foreign",
                    f.delivered, f.expected, f.duplicates, f.foreign
                )),
                Ok(f) if rust_server && (f.missing > 0 || f.out_of_order > 0 || f.mutation_failures > 0) => {
                    fail(format!(
                        "{who} {name}: {}/{} deliveries, {} out of order, {} writes failed",
                        f.delivered, f.expected, f.out_of_order, f.mutation_failures
                    ))
                }
                Ok(_) => {}
            }
        }
    }
    if ok {
        eprintln!(
            "OK: every workload completed with the database's rows, and every Rust WebSocket delivery arrived once, \
             in order"
        );
        let _ = std::fs::remove_dir_all(&log_dir);
    } else {
        eprintln!("server logs: {}", log_dir.display());
    }
    Ok(ok)
}

/// Prints the main table and writes the latency chart; returns the main
/// part of `RESULTS.md`.
#[allow(clippy::too_many_arguments)]
fn main_report(
    plan: &Plan,
    size: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    took: Duration,
    machine: &Machine,
    notes: &mut Notes,
    reference_dir: &Path,
    out_dir: &Path,
    columns: &report::Columns<'_>,
    baselines: &Baselines,
) -> String {
    let rows = report::rows(columns, baselines, plan.subscribers, plan.fan_workspaces, plan.clients, plan.batch);
    let table = report::markdown_table(&rows);
    println!();
    for l in machine.lines() {
        println!("{l}");
    }
    println!();
    print!("{table}");
    let svg = out_dir.join("latency.svg");
    let chart = write_chart(&svg, size, columns, baselines, plan.batch, plan.fan_workspaces);
    match &chart {
        Ok(()) => phase!("wrote {}", svg.display()),
        Err(e) => notes.0.push(format!("chart: {e}")),
    }
    results_markdown(
        plan,
        size,
        started_at,
        took,
        machine,
        &table,
        notes,
        reference_dir,
        chart.is_ok(),
        columns,
        baselines,
    )
}

/// What a workload left out by `--only` reads.
const SKIPPED: &str = "not run: --only";

async fn copy_baseline(pg: &Pg, db: &str, plan: &Plan) -> Result<BootstrapSummary, BoxError> {
    let mut rates = Vec::new();
    let mut ttfb = Vec::new();
    let mut totals = Vec::new();
    let mut rows = 0;
    for _ in 0..plan.read_runs {
        let (n, first, total) = pg::copy_bootstrap(pg, db).await?;
        rows = n;
        rates.push(n as f64 / total.as_secs_f64());
        ttfb.push(first.as_secs_f64() * 1000.0);
        totals.push(total.as_secs_f64());
    }
    if rows != plan.bootstrap_rows() {
        return Err(format!("COPY returned {rows} rows, expected {}", plan.bootstrap_rows()).into());
    }
    Ok(BootstrapSummary {
        rows,
        rows_per_s: median(&rates),
        ttfb_ms: median(&ttfb),
        total_s: median(&totals),
        mib: 0.0,
        peak_rss: None,
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_server(
    kind: Kind,
    launch: &Launch,
    pg: &Pg,
    db: &str,
    plan: &Plan,
    redis: Option<&Redis>,
    redis_state: &Result<Redis, String>,
    notes: &mut Notes,
) -> ServerResults {
    let label = kind.label();
    let mut res = ServerResults::not_run("not run");
    let url = pg.url(db);
    if plan.only.runs(Workload::Memory) {
        phase!("{label}: memory per idle WebSocket ({} subscribers on a fresh server)", plan.subscribers);
        let r = memory_phase(launch, kind, pg, db, plan).await;
        res.memory = notes.fail(&format!("{label} idle memory"), r);
    } else {
        res.memory = Err(SKIPPED.to_owned());
    }
    if let Ok((a, h, b)) = &res.memory {
        eprintln!(
            "    RSS {:.1} MiB fresh, {:.1} MiB with {} idle sockets, {:.1} MiB with {}: {:.1} KiB per socket",
            *a as f64 / 1048576.0,
            *h as f64 / 1048576.0,
            plan.subscribers / 2,
            *b as f64 / 1048576.0,
            plan.subscribers,
            (*b as f64 - *h as f64) / 1024.0 / (plan.subscribers - plan.subscribers / 2).max(1) as f64
        );
    }
    phase!("{label}: starting the server");
    let mut server = match servers::start(launch, kind, label, &url, None).await {
        Ok(s) => s,
        Err(e) => {
            let r = notes.fail(&format!("{label}: start"), Err::<(), _>(e)).unwrap_err();
            return ServerResults::not_run(&format!("did not start: {r}"));
        }
    };
    let client = match http_client() {
        Ok(c) => c,
        Err(e) => return ServerResults::not_run(&short(e)),
    };

    if plan.only.runs(Workload::Bootstrap) {
        phase!("{label}: bootstrap ×{} ({} rows)", plan.read_runs, plan.bootstrap_rows());
        let meter = Meter::start(&server);
        let sampler = pg::WaitSampler::start(pg, db).await;
        let r = bootstrap_phase(&server, &client, plan, pg, db).await;
        meter.stop(&server, "bootstrap", &mut res);
        if let Ok(s) = sampler {
            res.waits.push(("bootstrap".to_owned(), s.finish().await));
        }
        res.bootstrap = notes.fail(&format!("{label} bootstrap"), r);
        if let Err(e) = check_alive(&mut server) {
            return crashed(res, e, notes, label);
        }
    } else {
        res.bootstrap = Err(SKIPPED.to_owned());
    }
    if plan.only.runs(Workload::Deltas) {
        phase!("{label}: delta catch-up ×{} ({} actions, limit={})", plan.read_runs, plan.actions, plan.delta_limit);
        let meter = Meter::start(&server);
        let sampler = pg::WaitSampler::start(pg, db).await;
        let r = deltas_phase(&server, &client, plan, pg, db).await;
        meter.stop(&server, "delta catch-up", &mut res);
        if let Ok(s) = sampler {
            res.waits.push(("delta catch-up".to_owned(), s.finish().await));
        }
        res.deltas = notes.fail(&format!("{label} deltas"), r);
        if let Err(e) = check_alive(&mut server) {
            return crashed(res, e, notes, label);
        }
    } else {
        res.deltas = Err(SKIPPED.to_owned());
    }
    let tasks = pg::task_ids(pg, db, MAIN_WORKSPACE, (plan.clients * plan.batch) as i64).await;
    let tasks = match tasks {
        Ok(t) => t,
        Err(e) => {
            let reason = notes.fail(&format!("{label} task ids"), Err::<(), _>(e)).unwrap_err();
            res.single = Err(reason.clone());
            res.batch = Err(reason);
            Vec::new()
        }
    };
    if !plan.only.runs(Workload::Mutations) {
        res.single = Err(SKIPPED.to_owned());
        res.batch = Err(SKIPPED.to_owned());
    } else if !tasks.is_empty() {
        for (batch, slot) in [(1usize, 0), (plan.batch, 1)] {
            phase!(
                "{label}: mutations, {} clients × {batch}-transaction batches, {:.0} s (+{:.0} s warm-up)",
                plan.clients,
                plan.measure.as_secs_f64(),
                plan.warmup.as_secs_f64()
            );
            let meter = Meter::start(&server);
            let sampler = pg::WaitSampler::start(pg, db).await;
            let r = load::mutations(
                &format!("{label} {batch}-tx"),
                &client,
                &server.base(),
                MAIN_USER,
                &tasks,
                plan.clients,
                batch,
                plan.warmup,
                plan.measure,
            )
            .await;
            let r: Result<MutationRun, BoxError> = r;
            meter.stop(&server, &format!("mutations ({batch}-tx batches, incl. warm-up)"), &mut res);
            if let Ok(s) = sampler {
                res.waits.push((format!("mutations ({batch}-tx batches)"), s.finish().await));
            }
            let r = notes.fail(&format!("{label} mutations ({batch}-tx)"), r);
            if let Ok(m) = &r {
                eprintln!("    {:.0} tx/s, {} failed", m.tx_per_s(), m.failed);
                if let Some(e) = &m.first_error {
                    notes.0.push(format!("{label} mutations ({batch}-tx): first failure: {e}"));
                }
            }
            if slot == 0 {
                res.single = r;
            } else {
                res.batch = r;
            }
            if let Err(e) = check_alive(&mut server) {
                return crashed(res, e, notes, label);
            }
        }
    }

    let fan_tasks = pg::fan_tasks(pg, db, plan.fan_workspaces).await;
    let fan_tasks = match fan_tasks {
        Ok(t) => t,
        Err(e) => {
            let reason = notes.fail(&format!("{label} fan-out tasks"), Err::<(), _>(e)).unwrap_err();
            res.fan_one = Err(reason.clone());
            res.fan_many = Err(reason.clone());
            res.two_one = Err(reason.clone());
            res.two_many = Err(reason);
            server.stop().await;
            return res;
        }
    };
    server.stop().await;

    // Each fan-out run gets fresh server processes, so writes a slow run
    // abandoned (timed out) cannot commit during the next one.
    for many in [false, true] {
        let which = if many { "many" } else { "one" };
        if !plan.only.runs(Workload::Fanout) {
            res.fan_one = Err(SKIPPED.to_owned());
            res.fan_many = Err(SKIPPED.to_owned());
            break;
        }
        let r = match servers::start(launch, kind, &format!("{label}-fanout-{which}"), &url, None).await {
            Ok(mut s) => {
                let r = fan_phase(label, "1 node", &s, &s, &client, pg, db, plan, &fan_tasks, many).await;
                if !s.alive() {
                    notes.0.push(format!("{label}: the server exited during fan-out: {}", s.log_tail()));
                }
                s.stop().await;
                r
            }
            Err(e) => Err(e),
        };
        let _ = pg.settle(db).await;
        let r = notes.fail(&format!("{label} fan-out ({which})"), r);
        if many {
            res.fan_many = r;
        } else {
            res.fan_one = r;
        }
    }

    // Two nodes behind Redis.
    let Some(redis) = redis else {
        let reason = match redis_state {
            Err(e) => format!("no redis: {e}"),
            Ok(_) => "no redis".to_owned(),
        };
        res.two_one = Err(reason.clone());
        res.two_many = Err(reason);
        let _ = pg::remove_log_clock(pg, db).await;
        return res;
    };
    if !plan.only.runs(Workload::TwoNodes) {
        res.two_one = Err(SKIPPED.to_owned());
        res.two_many = Err(SKIPPED.to_owned());
        let _ = pg::remove_log_clock(pg, db).await;
        return res;
    }
    phase!("{label}: two nodes behind Redis (writer → node 1, subscribers → node 2)");
    for many in [false, true] {
        let which = if many { "many" } else { "one" };
        let node1 =
            servers::start(launch, kind, &format!("{label}-2nodes-{which}-node1"), &url, Some(&redis.url)).await;
        let node2 =
            servers::start(launch, kind, &format!("{label}-2nodes-{which}-node2"), &url, Some(&redis.url)).await;
        let r = match (node1, node2) {
            (Ok(mut n1), Ok(mut n2)) => {
                let r = fan_phase(label, "2 nodes", &n1, &n2, &client, pg, db, plan, &fan_tasks, many).await;
                if !n1.alive() || !n2.alive() {
                    notes.0.push(format!("{label}: a node exited: {} {}", n1.log_tail(), n2.log_tail()));
                }
                n1.stop().await;
                n2.stop().await;
                r
            }
            (a, b) => {
                let mut err: Option<BoxError> = None;
                for n in [a, b] {
                    match n {
                        Ok(s) => s.stop().await,
                        Err(e) => err = Some(e),
                    }
                }
                Err(err.unwrap_or_else(|| "start failed".into()))
            }
        };
        let _ = pg.settle(db).await;
        let r = notes.fail(&format!("{label} 2-node fan-out ({which})"), r);
        if many {
            res.two_many = r;
        } else {
            res.two_one = r;
        }
    }
    if let Err(e) = pg::remove_log_clock(pg, db).await {
        notes.0.push(format!("{label}: removing the log clock: {e}"));
    }
    res
}

/// Memory per idle connection, measured on a server process started for
/// it alone (so no earlier workload's heap hides or inflates it).
async fn memory_phase(
    launch: &Launch,
    kind: Kind,
    pg: &Pg,
    db: &str,
    plan: &Plan,
) -> Result<(u64, u64, u64), BoxError> {
    let server = servers::start(launch, kind, &format!("{}-memory", kind.label()), &pg.url(db), None).await?;
    // Let the fresh process finish starting up before the first reading.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let subscribers: Vec<Subscriber> =
        (0..plan.subscribers).map(|_| Subscriber { user: fan_user(0), group: fan_workspace(0).to_string() }).collect();
    let after = pg::head(pg, db).await;
    let r = match after {
        Ok(after) => {
            let rss = || server.rss();
            fanout::idle_memory(&server.ws_base(), &subscribers, after, Duration::from_secs(2), &rss).await
        }
        Err(e) => Err(e),
    };
    server.stop().await;
    r
}

/// Server CPU time over a phase.
struct Meter {
    cpu: Option<stats::Cpu>,
    start: Instant,
}

impl Meter {
    fn start(server: &Server) -> Meter {
        Meter { cpu: stats::cpu_times(Some(server.pid)), start: Instant::now() }
    }

    fn stop(self, server: &Server, phase: &str, res: &mut ServerResults) {
        if let (Some(a), Some(b)) = (self.cpu, stats::cpu_times(Some(server.pid))) {
            res.cpu.push((phase.to_owned(), b - a, self.start.elapsed().as_secs_f64()));
        }
    }
}

fn check_alive(server: &mut Server) -> Result<(), String> {
    if server.alive() {
        Ok(())
    } else {
        Err(format!("server exited: {}", server.log_tail().lines().last().unwrap_or("")))
    }
}

fn crashed(mut res: ServerResults, reason: String, notes: &mut Notes, label: &str) -> ServerResults {
    notes.0.push(format!("{label}: {reason}"));
    let r = short(&reason);
    for slot in [&mut res.fan_one, &mut res.fan_many, &mut res.two_one, &mut res.two_many] {
        if slot.as_ref().err().map(|e| e == "not run").unwrap_or(false) {
            *slot = Err(r.clone());
        }
    }
    if res.deltas.as_ref().err().map(|e| e == "not run").unwrap_or(false) {
        res.deltas = Err(r.clone());
    }
    for slot in [&mut res.single, &mut res.batch] {
        if slot.as_ref().err().map(|e| e == "not run").unwrap_or(false) {
            *slot = Err(r.clone());
        }
    }
    res
}

async fn bootstrap_phase(
    server: &Server,
    client: &reqwest::Client,
    plan: &Plan,
    pg: &Pg,
    db: &str,
) -> Result<BootstrapSummary, BoxError> {
    let (mut rates, mut ttfb, mut totals, mut mib) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rows = 0;
    for i in 0..plan.read_runs {
        let b = load::bootstrap(client, &server.base(), MAIN_USER).await?;
        eprintln!(
            "    run {}: {} rows in {:.2} s, first byte after {:.1} ms",
            i + 1,
            b.rows,
            b.total.as_secs_f64(),
            b.ttfb.as_secs_f64() * 1000.0
        );
        if b.rows != plan.bootstrap_rows() {
            return Err(format!("returned {} rows, expected {}", b.rows, plan.bootstrap_rows()).into());
        }
        rows = b.rows;
        rates.push(b.rows as f64 / b.total.as_secs_f64());
        ttfb.push(b.ttfb.as_secs_f64() * 1000.0);
        totals.push(b.total.as_secs_f64());
        mib.push(b.bytes as f64 / 1024.0 / 1024.0);
    }
    // Untimed: every row's content, not only the count.
    let checked = content::check_bootstrap(client, &server.base(), pg, db).await?;
    eprintln!("    content: {checked} rows equal the database's");
    Ok(BootstrapSummary {
        rows,
        rows_per_s: median(&rates),
        ttfb_ms: median(&ttfb),
        total_s: median(&totals),
        mib: median(&mib),
        peak_rss: server.hwm(),
    })
}

async fn deltas_phase(
    server: &Server,
    client: &reqwest::Client,
    plan: &Plan,
    pg: &Pg,
    db: &str,
) -> Result<DeltaSummary, BoxError> {
    let mut rates = Vec::new();
    let mut parse_ms = Vec::new();
    let (mut actions, mut pages) = (0, 0);
    // The seeded actions plus the main user's own group changes (`S`,
    // logged when the seed added their memberships).
    let group_changes: i64 = pg
        .connect(db)
        .await?
        .query_one("SELECT count(*) FROM sync_actions WHERE model = 'SyncGroup' AND group_id = $1", &[&MAIN_USER])
        .await?
        .get(0);
    let expected = plan.actions + group_changes;
    for i in 0..plan.read_runs {
        let (n, p, t, parse) = load::catch_up(client, &server.base(), MAIN_USER, 0, plan.delta_limit).await?;
        eprintln!(
            "    run {}: {n} actions in {p} pages, {:.2} s (harness parsing: {:.0} ms)",
            i + 1,
            t.as_secs_f64(),
            parse.as_secs_f64() * 1000.0
        );
        parse_ms.push(parse.as_secs_f64() * 1000.0);
        if n != expected as u64 {
            return Err(format!("paged {n} actions, expected {expected}").into());
        }
        actions = n;
        pages = p;
        rates.push(n as f64 / t.as_secs_f64());
    }
    // Untimed: every action's content, in order, not only the count.
    let checked = content::check_deltas(client, &server.base(), pg, db, plan.delta_limit).await?;
    eprintln!("    content: {checked} actions equal the log's, in order");
    Ok(DeltaSummary { actions, pages, actions_per_s: median(&rates), harness_parse_ms: median(&parse_ms) })
}

#[allow(clippy::too_many_arguments)]
async fn fan_phase(
    label: &str,
    nodes: &str,
    writer_node: &Server,
    subscriber_node: &Server,
    client: &reqwest::Client,
    pg: &Pg,
    db: &str,
    plan: &Plan,
    fan_tasks: &[Vec<String>],
    many: bool,
) -> Result<FanOutResult, BoxError> {
    let workspaces = if many { plan.fan_workspaces } else { 1 };
    let subscribers: Vec<Subscriber> = (0..plan.subscribers)
        .map(|j| {
            let w = j % workspaces;
            Subscriber { user: fan_user(w), group: fan_workspace(w).to_string() }
        })
        .collect();
    let groups: Vec<(String, String, Vec<String>)> =
        (0..workspaces).map(|w| (fan_workspace(w).to_string(), fan_user(w), fan_tasks[w].clone())).collect();
    let after = pg::head(pg, db).await?;
    let run_label = format!("{label} {nodes} fan-out {} subs/{workspaces} ws", plan.subscribers);
    phase!("{run_label}: writer at {}/s for {:.0} s", plan.fan_rate, plan.fan_duration.as_secs_f64());
    let rss = || subscriber_node.rss();
    let r = fanout::run(FanOut {
        label: run_label.clone(),
        ws_base: subscriber_node.ws_base(),
        http_base: writer_node.base(),
        subscribers,
        groups,
        after,
        rate: plan.fan_rate,
        duration: plan.fan_duration,
        grace: plan.fan_grace,
        stall: plan.fan_stall,
        client,
        rss: &rss,
        pg,
        db,
        server_pids: if writer_node.pid == subscriber_node.pid {
            vec![writer_node.pid]
        } else {
            vec![writer_node.pid, subscriber_node.pid]
        },
    })
    .await?;
    eprintln!(
        "    {}/{} delivered, commit→delivery p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} dropped sockets; \
         send→delivery p50 {:.2} ms; writes p50 {:.2} ms; CPU over {:.1} s: server {:.2} s (user {:.2}, system \
         {:.2}; {:.2} µs per delivery), harness {:.1} s",
        r.delivered,
        r.expected,
        r.latency.ms_at(0.5),
        r.latency.ms_at(0.99),
        r.latency.max_ms(),
        r.dropped,
        r.send_latency.ms_at(0.5),
        r.write_latency.ms_at(0.5),
        r.wall.as_secs_f64(),
        r.server_cpu.map_or(f64::NAN, stats::Cpu::total),
        r.server_cpu.map_or(f64::NAN, |c| c.user),
        r.server_cpu.map_or(f64::NAN, |c| c.sys),
        r.cpu_per_delivery_us().map_or(f64::NAN, stats::Cpu::total),
        r.harness_cpu.unwrap_or(f64::NAN)
    );
    // Let the closed sockets drain before the next phase.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(r)
}

fn write_chart(
    path: &Path,
    size: &str,
    columns: &report::Columns<'_>,
    base: &Baselines,
    batch: usize,
    fan_workspaces: usize,
) -> Result<(), BoxError> {
    const RUST: RGBColor = RGBColor(200, 40, 30);
    const RUST2: RGBColor = RGBColor(240, 140, 20);
    const AXUM: RGBColor = RGBColor(120, 40, 160);
    const AXUM2: RGBColor = RGBColor(200, 90, 200);
    const REF: RGBColor = RGBColor(30, 90, 200);
    const REF2: RGBColor = RGBColor(40, 170, 190);
    const BASE: RGBColor = RGBColor(110, 110, 110);
    let (rust, reference) = (columns.rust, columns.reference);
    let s =
        |name: &str, h: &Hist, color, dashed| chart::Series { name: name.to_owned(), hist: h.clone(), color, dashed };
    let mut mutations = Vec::new();
    if let Ok(m) = &rust.single {
        mutations.push(s("Rust, 1-tx batches", &m.latency, RUST, false));
    }
    if let Ok(m) = &rust.batch {
        mutations.push(s(&format!("Rust, batches of {batch}"), &m.latency, RUST2, false));
    }
    if let Ok(m) = &columns.axum.single {
        mutations.push(s("Rust (axum), 1-tx batches", &m.latency, AXUM, false));
    }
    if let Ok(m) = &columns.axum.batch {
        mutations.push(s(&format!("Rust (axum), batches of {batch}"), &m.latency, AXUM2, false));
    }
    if let Ok(m) = &reference.single {
        mutations.push(s("reference, 1-tx batches", &m.latency, REF, false));
    }
    if let Ok(m) = &reference.batch {
        mutations.push(s(&format!("reference, batches of {batch}"), &m.latency, REF2, false));
    }
    if let Ok((_, h)) = &base.insert {
        mutations.push(s("PostgreSQL INSERT+COMMIT", h, BASE, true));
    }
    let mut fan = Vec::new();
    for (who, res, c1, c2) in
        [("Rust", rust, RUST, RUST2), ("Rust (axum)", columns.axum, AXUM, AXUM2), ("reference", reference, REF, REF2)]
    {
        for (name, f) in res.fan_runs(fan_workspaces) {
            let color = if name.contains("1 workspace") { c1 } else { c2 };
            fan.push(s(&format!("{who}, {name}"), &f.latency, color, name.starts_with("2 nodes")));
        }
    }
    chart::write(path, &format!("StrataSync latency distributions (--size {size})"), &mutations, &fan)
}

fn package_version(dir: &Path, package: &str) -> String {
    let p = dir.join("node_modules").join(package).join("package.json");
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "not installed".to_owned())
}

#[allow(clippy::too_many_arguments)]
fn results_markdown(
    plan: &Plan,
    size: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    took: Duration,
    machine: &Machine,
    table: &str,
    notes: &Notes,
    reference_dir: &Path,
    chart: bool,
    columns: &report::Columns<'_>,
    baselines: &Baselines,
) -> String {
    let mut s = String::new();
    s.push_str("# Benchmark results\n\n");
    s.push_str(&format!(
        "Produced by `cargo run --release -p stratasync-bench -- --size {size}` on {} UTC ({:.0} s). \
         Rerun it to refresh this file; see `bench/README.md` for what each figure means.\n\n",
        started_at.format("%Y-%m-%d %H:%M"),
        took.as_secs_f64()
    ));
    s.push_str("## Machine\n\n");
    for l in machine.lines() {
        s.push_str(&format!("- {l}\n"));
    }
    s.push_str(&format!(
        "- Reference: @stratasync/server {}, fastify {}, @fastify/websocket {}, drizzle-orm {}, postgres {}, redis {}\n",
        package_version(reference_dir, "@stratasync/server"),
        package_version(reference_dir, "fastify"),
        package_version(reference_dir, "@fastify/websocket"),
        package_version(reference_dir, "drizzle-orm"),
        package_version(reference_dir, "postgres"),
        package_version(reference_dir, "redis"),
    ));
    s.push_str(
        "- Everything (PostgreSQL, Redis, the servers and this load generator) shares the same cores; \
         the servers run one at a time.\n\n",
    );
    s.push_str("## Results\n\n");
    s.push_str(&format!(
        "Sizes: bootstrap of {} tasks, {} labels, {} task labels (+1 workspace); delta catch-up through {} actions; \
         mutations {} s after {} s warm-up; fan-out writer at {}/s for {} s; {} bootstrap/catch-up runs (median).\n\n",
        plan.tasks,
        plan.labels,
        plan.tasks,
        plan.actions,
        plan.measure.as_secs_f64(),
        plan.warmup.as_secs_f64(),
        plan.fan_rate,
        plan.fan_duration.as_secs_f64(),
        plan.read_runs
    ));
    s.push_str(
        "The two Rust columns are the same application (`examples/taskboard`) served through the actix-web adapter \
         (`taskboard`) and the axum adapter (`taskboard-axum`). \"Advantage\" is Rust ÷ reference for rates and \
         reference ÷ Rust for times and memory (above 1: Rust is better). Server CPU per delivery is the server's \
         user + system CPU time from the first write to the last delivery, divided by the frames delivered \
         (both nodes in the two-node runs); the split is in parentheses.\n\n",
    );
    s.push_str(table);
    s.push('\n');
    if chart {
        s.push_str("![Latency distributions](latency.svg)\n\n");
    }
    s.push_str("## Details\n\n");
    s.push_str(&format!(
        "- Baseline INSERT+COMMIT: PostgreSQL sessions (share of samples): {}\n",
        baselines.insert_waits
    ));
    for (who, r) in
        [("Rust (actix-web)", columns.rust), ("Rust (axum)", columns.axum), ("Reference", columns.reference)]
    {
        for l in report::details(who, r, plan.subscribers, plan.fan_workspaces) {
            s.push_str(&format!("- {l}\n"));
        }
    }
    s.push('\n');
    if !notes.0.is_empty() {
        s.push_str("## Notes from this run\n\n");
        for n in &notes.0 {
            s.push_str(&format!("- {n}\n"));
        }
        s.push('\n');
    }
    s
}
