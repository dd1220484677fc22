//! The results table (stdout and `bench/RESULTS.md`) and the machine it
//! ran on.

use crate::fanout::FanOutResult;
use crate::load::MutationRun;
use crate::stats::Hist;

/// A figure, or why there is none.
pub(crate) type Outcome<T> = Result<T, String>;

/// Bootstrap figures (medians over the runs).
#[derive(Debug, Clone)]
pub(crate) struct BootstrapSummary {
    pub rows: u64,
    pub rows_per_s: f64,
    pub ttfb_ms: f64,
    pub total_s: f64,
    pub mib: f64,
    /// Peak resident memory of the server (VmHWM) after the runs.
    pub peak_rss: Option<u64>,
}

/// Delta catch-up figures (median over the runs).
#[derive(Debug, Clone)]
pub(crate) struct DeltaSummary {
    pub actions: u64,
    pub pages: u64,
    pub actions_per_s: f64,
    /// Time this harness spent parsing the pages (part of the measured time).
    pub harness_parse_ms: f64,
}

/// Everything measured for one implementation.
pub(crate) struct ServerResults {
    /// Fresh server: RSS before any connection, with half of the fan-out
    /// subscribers connected, subscribed and idle, and with all of them.
    pub memory: Outcome<(u64, u64, u64)>,
    pub bootstrap: Outcome<BootstrapSummary>,
    pub deltas: Outcome<DeltaSummary>,
    pub single: Outcome<MutationRun>,
    pub batch: Outcome<MutationRun>,
    pub fan_one: Outcome<FanOutResult>,
    pub fan_many: Outcome<FanOutResult>,
    pub two_one: Outcome<FanOutResult>,
    pub two_many: Outcome<FanOutResult>,
    /// Server CPU time per phase: (phase, CPU seconds, wall seconds).
    pub cpu: Vec<(String, f64, f64)>,
    /// What the server's database sessions waited on, per phase.
    pub waits: Vec<(String, String)>,
}

impl ServerResults {
    pub fn not_run(reason: &str) -> ServerResults {
        let r = reason.to_owned();
        ServerResults {
            memory: Err(r.clone()),
            bootstrap: Err(r.clone()),
            deltas: Err(r.clone()),
            single: Err(r.clone()),
            batch: Err(r.clone()),
            fan_one: Err(r.clone()),
            fan_many: Err(r.clone()),
            two_one: Err(r.clone()),
            two_many: Err(r),
            cpu: Vec::new(),
            waits: Vec::new(),
        }
    }

    /// Every fan-out run of this server that was measured.
    pub fn fan_runs(&self, workspaces: usize) -> Vec<(String, &FanOutResult)> {
        let mut v = Vec::new();
        for (name, r) in [
            ("1 workspace".to_owned(), &self.fan_one),
            (format!("{workspaces} workspaces"), &self.fan_many),
            ("2 nodes, 1 workspace".to_owned(), &self.two_one),
            (format!("2 nodes, {workspaces} workspaces"), &self.two_many),
        ] {
            if let Ok(f) = r {
                v.push((name, f));
            }
        }
        v
    }
}

/// The baselines.
pub(crate) struct Baselines {
    pub copy: Outcome<BootstrapSummary>,
    pub insert: Outcome<(f64, Hist)>,
    /// What the INSERT baseline's sessions waited on.
    pub insert_waits: String,
}

/// The machine.
pub(crate) struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub postgres: String,
    pub node: String,
    pub load_start: String,
    pub load_end: String,
}

impl Machine {
    pub fn probe(postgres: String, node: String) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu,
            memory_gib: mem_kb / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            postgres,
            node,
            load_start: loadavg(),
            load_end: String::new(),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        vec![
            format!("CPU: {} × {}", self.cores, self.cpu),
            format!("Memory: {:.1} GiB", self.memory_gib),
            format!("Kernel: Linux {}", self.kernel),
            self.postgres.clone(),
            format!("Node: {}", self.node),
            format!("Load average (1/5/15 min) at start: {}; at end: {}", self.load_start, self.load_end),
        ]
    }
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One row of the table.
pub(crate) struct Row {
    pub figure: String,
    pub rust: String,
    pub reference: String,
    pub ratio: String,
    pub baseline: String,
    pub target: String,
}

const NA: &str = "n/a";

fn fmt_num(v: f64) -> String {
    if v >= 100_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1000.0 {
        let s = format!("{v:.0}");
        s
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn fmt_mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / 1024.0 / 1024.0)
}

fn fmt_kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// How a figure compares: which direction is better.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

fn cell(v: &Outcome<f64>, fmt: fn(f64) -> String) -> String {
    match v {
        Ok(x) => fmt(*x),
        Err(reason) => format!("{NA} ({reason})"),
    }
}

/// Rust's advantage: >1 means Rust is better by that factor.
fn advantage(rust: &Outcome<f64>, reference: &Outcome<f64>, better: Better) -> Option<f64> {
    let (r, t) = (*rust.as_ref().ok()?, *reference.as_ref().ok()?);
    let x = match better {
        Better::Higher => r / t,
        Better::Lower => t / r,
    };
    x.is_finite().then_some(x)
}

fn ratio_cell(a: Option<f64>) -> String {
    match a {
        Some(x) if x >= 10.0 => format!("{x:.0}×"),
        Some(x) => format!("{x:.2}×"),
        None => NA.to_owned(),
    }
}

fn verdict(met: Option<bool>, text: &str) -> String {
    match met {
        Some(true) => format!("{text}: met"),
        Some(false) => format!("{text}: **missed**"),
        None => format!("{text}: n/a"),
    }
}

fn row(
    figure: &str,
    rust: Outcome<f64>,
    reference: Outcome<f64>,
    fmt: fn(f64) -> String,
    better: Better,
    baseline: String,
    target: Option<(&str, f64)>,
) -> Row {
    let adv = advantage(&rust, &reference, better);
    let target = match target {
        Some((text, factor)) => verdict(adv.map(|a| a >= factor), text),
        None => String::new(),
    };
    Row {
        figure: figure.to_owned(),
        rust: cell(&rust, fmt),
        reference: cell(&reference, fmt),
        ratio: ratio_cell(adv),
        baseline,
        target,
    }
}

fn map<T, F: Fn(&T) -> f64>(o: &Outcome<T>, f: F) -> Outcome<f64> {
    match o {
        Ok(v) => Ok(f(v)),
        Err(e) => Err(e.clone()),
    }
}

fn map_opt<T, F: Fn(&T) -> Option<f64>>(o: &Outcome<T>, f: F, missing: &str) -> Outcome<f64> {
    match o {
        Ok(v) => f(v).ok_or_else(|| missing.to_owned()),
        Err(e) => Err(e.clone()),
    }
}

fn deliveries(o: &Outcome<FanOutResult>) -> String {
    match o {
        Ok(f) => {
            let mut s = format!("{}/{}", f.delivered, f.expected);
            if f.missing > 0 {
                s.push_str(&format!(" (**{} missing**: {} actions)", f.missing, f.missing_actions));
            }
            if f.duplicates + f.foreign > 0 {
                s.push_str(&format!(" ({} dup, {} foreign)", f.duplicates, f.foreign));
            }
            if f.out_of_order > 0 {
                s.push_str(&format!(" (**{} out of order**)", f.out_of_order));
            }
            if f.mutation_failures > 0 {
                s.push_str(&format!(
                    " (**{} of {} writes failed**)",
                    f.mutation_failures,
                    f.mutations + f.mutation_failures
                ));
            }
            s
        }
        Err(e) => format!("{NA} ({e})"),
    }
}

/// Builds every row from the results.
pub(crate) fn rows(
    rust: &ServerResults,
    reference: &ServerResults,
    base: &Baselines,
    subscribers: usize,
    fan_workspaces: usize,
    clients: usize,
    batch: usize,
) -> Vec<Row> {
    let mut rows = Vec::new();
    // 1. Bootstrap.
    let copy_rate = map(&base.copy, |b| b.rows_per_s);
    let boot_rust = map(&rust.bootstrap, |b| b.rows_per_s);
    let boot_ref = map(&reference.bootstrap, |b| b.rows_per_s);
    let mut r = row(
        "Bootstrap: rows/s",
        boot_rust.clone(),
        boot_ref,
        fmt_num,
        Better::Higher,
        format!("COPY row_to_json: {}", cell(&copy_rate, fmt_num)),
        Some(("≥5× reference", 5.0)),
    );
    let copy_met = match (&boot_rust, &copy_rate) {
        (Ok(a), Ok(c)) => Some(*a * 2.0 >= *c),
        _ => None,
    };
    r.target.push_str("; ");
    r.target.push_str(&verdict(copy_met, "≥½ COPY"));
    rows.push(r);
    rows.push(row(
        "Bootstrap: time to first byte",
        map(&rust.bootstrap, |b| b.ttfb_ms),
        map(&reference.bootstrap, |b| b.ttfb_ms),
        fmt_ms,
        Better::Lower,
        format!("COPY: {}", cell(&map(&base.copy, |b| b.ttfb_ms), fmt_ms)),
        None,
    ));
    rows.push(row(
        "Bootstrap: total time",
        map(&rust.bootstrap, |b| b.total_s * 1000.0),
        map(&reference.bootstrap, |b| b.total_s * 1000.0),
        fmt_ms,
        Better::Lower,
        format!("COPY: {}", cell(&map(&base.copy, |b| b.total_s * 1000.0), fmt_ms)),
        None,
    ));
    rows.push(row(
        "Bootstrap: peak server RSS (VmHWM)",
        map_opt(&rust.bootstrap, |b| b.peak_rss.map(|x| x as f64), "no /proc"),
        map_opt(&reference.bootstrap, |b| b.peak_rss.map(|x| x as f64), "no /proc"),
        fmt_mib,
        Better::Lower,
        String::new(),
        None,
    ));
    // 2. Deltas.
    rows.push(row(
        "Delta catch-up (limit=1000): actions/s",
        map(&rust.deltas, |d| d.actions_per_s),
        map(&reference.deltas, |d| d.actions_per_s),
        fmt_num,
        Better::Higher,
        String::new(),
        Some(("≥5× reference", 5.0)),
    ));
    // 3. Mutations.
    let ins_rate = map(&base.insert, |b| b.0);
    rows.push(row(
        &format!("Mutations, {clients} clients, 1-tx batches: tx/s"),
        map(&rust.single, |m| m.tx_per_s()),
        map(&reference.single, |m| m.tx_per_s()),
        fmt_num,
        Better::Higher,
        format!("INSERT+COMMIT: {}", cell(&ins_rate, fmt_num)),
        Some(("≥5× reference", 5.0)),
    ));
    for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
        rows.push(row(
            &format!("Mutations, 1-tx batches: {name} latency"),
            map(&rust.single, |m| m.latency.ms_at(q)),
            map(&reference.single, |m| m.latency.ms_at(q)),
            fmt_ms,
            Better::Lower,
            format!("INSERT+COMMIT: {}", cell(&map(&base.insert, |b| b.1.ms_at(q)), fmt_ms)),
            None,
        ));
    }
    rows.push(row(
        &format!("Mutations, {clients} clients, {batch}-tx batches: tx/s"),
        map(&rust.batch, |m| m.tx_per_s()),
        map(&reference.batch, |m| m.tx_per_s()),
        fmt_num,
        Better::Higher,
        String::new(),
        Some(("≥10× reference", 10.0)),
    ));
    // 4 and 5. Fan-out.
    let per_ws = subscribers / fan_workspaces.max(1);
    let variants: [(String, &Outcome<FanOutResult>, &Outcome<FanOutResult>); 4] = [
        (format!("Fan-out, {subscribers} subs in 1 workspace"), &rust.fan_one, &reference.fan_one),
        (
            format!("Fan-out, {subscribers} subs over {fan_workspaces} workspaces ({per_ws} each)"),
            &rust.fan_many,
            &reference.fan_many,
        ),
        (format!("2 nodes + Redis, {subscribers} subs in 1 workspace"), &rust.two_one, &reference.two_one),
        (
            format!("2 nodes + Redis, {subscribers} subs over {fan_workspaces} workspaces"),
            &rust.two_many,
            &reference.two_many,
        ),
    ];
    for (name, r, t) in variants {
        let p50 = map(r, |f| f.latency.ms_at(0.5));
        let mut p50_row = row(
            &format!("{name}: commit→delivery p50"),
            p50.clone(),
            map(t, |f| f.latency.ms_at(0.5)),
            fmt_ms,
            Better::Lower,
            String::new(),
            None,
        );
        p50_row.target = verdict(p50.as_ref().ok().map(|v| *v <= 2.0), "≤2 ms");
        rows.push(p50_row);
        rows.push(row(
            &format!("{name}: commit→delivery p99"),
            map(r, |f| f.latency.ms_at(0.99)),
            map(t, |f| f.latency.ms_at(0.99)),
            fmt_ms,
            Better::Lower,
            String::new(),
            Some(("≤⅕ reference", 5.0)),
        ));
        rows.push(row(
            &format!("{name}: mutation sent→delivery p50 / p99"),
            map(r, |f| f.send_latency.ms_at(0.5)),
            map(t, |f| f.send_latency.ms_at(0.5)),
            fmt_ms,
            Better::Lower,
            String::new(),
            None,
        ));
        if let Some(last) = rows.last_mut() {
            let p99 = |o: &Outcome<FanOutResult>| match o {
                Ok(f) => format!(" / {}", fmt_ms(f.send_latency.ms_at(0.99))),
                Err(_) => String::new(),
            };
            last.rust.push_str(&p99(r));
            last.reference.push_str(&p99(t));
        }
        rows.push(row(
            &format!("{name}: commit→delivery max"),
            map(r, |f| f.latency.max_ms()),
            map(t, |f| f.latency.max_ms()),
            fmt_ms,
            Better::Lower,
            String::new(),
            None,
        ));
        let none_missing =
            r.as_ref().ok().map(|f| f.missing == 0 && f.foreign == 0 && f.duplicates == 0 && f.out_of_order == 0);
        rows.push(Row {
            figure: format!("{name}: deliveries received/expected"),
            rust: deliveries(r),
            reference: deliveries(t),
            ratio: String::new(),
            baseline: String::new(),
            target: verdict(none_missing, "none missing"),
        });
    }
    let second_half = (subscribers - subscribers / 2).max(1) as f64;
    let per_conn = |r: &ServerResults| map(&r.memory, |&(_, half, full)| (full as f64 - half as f64) / second_half);
    rows.push(row(
        &format!(
            "Server memory per idle subscribed WebSocket (RSS slope, {} → {subscribers} sockets)",
            subscribers / 2
        ),
        per_conn(rust),
        per_conn(reference),
        fmt_kib,
        Better::Lower,
        String::new(),
        Some(("≤1/10 reference", 10.0)),
    ));
    rows.push(row(
        "Server RSS, fresh and idle (no connections)",
        map(&rust.memory, |m| m.0 as f64),
        map(&reference.memory, |m| m.0 as f64),
        fmt_mib,
        Better::Lower,
        String::new(),
        None,
    ));
    rows
}

/// The rows as a Markdown table.
pub(crate) fn markdown_table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| Figure | Rust (taskboard) | Reference (@stratasync/server) | Rust advantage | PostgreSQL baseline | Target |\n");
    s.push_str("|---|---:|---:|---:|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.figure, r.rust, r.reference, r.ratio, r.baseline, r.target
        ));
    }
    s
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map(|b| format!("{:.0} MiB", b as f64 / 1024.0 / 1024.0)).unwrap_or_else(|| NA.to_owned())
}

/// Per-run details below the table: what was counted, so the figures can
/// be checked.
pub(crate) fn details(who: &str, r: &ServerResults, subscribers: usize, workspaces: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok((fresh, half, full)) = &r.memory {
        out.push(format!(
            "{who} idle memory: fresh server {}, with {} idle subscribed sockets {}, with {} {}",
            mib(Some(*fresh)),
            subscribers / 2,
            mib(Some(*half)),
            subscribers,
            mib(Some(*full))
        ));
    }
    if let Ok(b) = &r.bootstrap {
        out.push(format!("{who} bootstrap: {} rows, {:.1} MiB of NDJSON per run", b.rows, b.mib));
    }
    if let Ok(d) = &r.deltas {
        out.push(format!(
            "{who} delta catch-up: {} actions in {} pages per run; {:.0} ms of each run is this harness parsing the pages",
            d.actions, d.pages, d.harness_parse_ms
        ));
    }
    for (name, m) in [("1-tx batches", &r.single), ("multi-tx batches", &r.batch)] {
        if let Ok(m) = m {
            let mut s = format!(
                "{who} mutations, {name}: {} transactions committed in the window, {} failed; request latency p50 {:.2} ms, p99 {:.2} ms",
                m.committed,
                m.failed,
                m.latency.ms_at(0.5),
                m.latency.ms_at(0.99)
            );
            if let Some(e) = &m.first_error {
                s.push_str(&format!(" (first failure: {e})"));
            }
            out.push(s);
        }
    }
    for (phase, cpu, wall) in &r.cpu {
        out.push(format!(
            "{who} {phase}: server CPU {cpu:.1} s over {wall:.1} s of wall time ({:.0}% of one core)",
            100.0 * cpu / wall
        ));
    }
    for (phase, waits) in &r.waits {
        out.push(format!("{who} {phase}: PostgreSQL sessions of the server (share of samples): {waits}"));
    }
    for (name, f) in r.fan_runs(workspaces) {
        let mut s = format!(
            "{who} fan-out, {name}: {} mutations committed ({} failed or timed out), {} of {} deliveries (+{} of writes abandoned by the writer that committed later), {} out of order, {} subscribers connected and subscribed in {:.1} s, \
             {} sockets closed early, {} error frames; server RSS {} before the sockets, {} with them idle",
            f.mutations,
            f.mutation_failures,
            f.delivered,
            f.expected,
            f.late,
            f.out_of_order,
            subscribers,
            f.connect_time.as_secs_f64(),
            f.dropped,
            f.error_frames,
            mib(f.rss_before),
            mib(f.rss_idle)
        );
        s.push_str(&format!(
            "; the writer's own mutation requests took p50 {:.2} ms, p99 {:.2} ms; \
             from the mutation request's send to delivery: p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
            f.write_latency.ms_at(0.5),
            f.write_latency.ms_at(0.99),
            f.send_latency.ms_at(0.5),
            f.send_latency.ms_at(0.99),
            f.send_latency.max_ms()
        ));
        if let (Some(sc), Some(hc)) = (f.server_cpu, f.harness_cpu) {
            s.push_str(&format!(
                "; CPU from the first write to the last delivery ({:.1} s): server {:.1} s, harness {:.1} s",
                f.wall.as_secs_f64(),
                sc,
                hc
            ));
        }
        if let Some(e) = &f.first_error {
            s.push_str(&format!(" (first write failure: {e})"));
        }
        out.push(s);
    }
    out
}

/// `text` without the section between the lines `begin` and `end`
/// (markers included), and that section (ending in a newline), if `text`
/// has one: how each separately produced section of `RESULTS.md` is kept
/// or replaced.
pub(crate) fn split_section(text: &str, begin: &str, end: &str) -> (String, Option<String>) {
    let Some(start) = text.find(begin) else { return (text.to_owned(), None) };
    let stop = text[start..].find(end).map_or(text.len(), |e| start + e + end.len());
    let section = format!("{}\n", text[start..stop].trim_end());
    let rest = format!("{}{}", text[..start].trim_end(), &text[stop..]);
    (format!("{}\n", rest.trim_end()), Some(section))
}
