//! The results table (stdout and `bench/RESULTS.md`) and the machine it
//! ran on.

use crate::fanout::FanOutResult;
use crate::load::MutationRun;
use crate::stats::{Cpu, Hist};

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
    /// Server CPU time per phase: (phase, CPU, wall seconds).
    pub cpu: Vec<(String, Cpu, f64)>,
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
    pub axum: String,
    pub reference: String,
    pub ratio: String,
    pub axum_ratio: String,
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

fn fmt_us(v: f64) -> String {
    format!("{v:.2} µs")
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

/// The three columns of the main table: the two Rust adapters and the
/// reference.
pub(crate) struct Columns<'a> {
    pub rust: &'a ServerResults,
    pub axum: &'a ServerResults,
    pub reference: &'a ServerResults,
}

impl Columns<'_> {
    /// A row of one figure, read from each server's results by `get`; the
    /// target (a factor over the reference) is judged for each adapter.
    fn row(
        &self,
        figure: &str,
        get: impl Fn(&ServerResults) -> Outcome<f64>,
        fmt: fn(f64) -> String,
        better: Better,
        baseline: String,
        target: Option<(&str, f64)>,
    ) -> Row {
        let (rust, axum, reference) = (get(self.rust), get(self.axum), get(self.reference));
        let adv = advantage(&rust, &reference, better);
        let axum_adv = advantage(&axum, &reference, better);
        let target = match target {
            Some((text, factor)) => {
                verdicts(text, adv.map(|a| a >= factor), axum_adv.map(|a| a >= factor), self.axum_ran())
            }
            None => String::new(),
        };
        Row {
            figure: figure.to_owned(),
            rust: cell(&rust, fmt),
            axum: cell(&axum, fmt),
            reference: cell(&reference, fmt),
            ratio: ratio_cell(adv),
            axum_ratio: ratio_cell(axum_adv),
            baseline,
            target,
        }
    }

    /// A row with an absolute target (`met` says whether a value meets it).
    fn row_abs(
        &self,
        figure: &str,
        get: impl Fn(&ServerResults) -> Outcome<f64>,
        fmt: fn(f64) -> String,
        better: Better,
        target: (&str, fn(f64) -> bool),
    ) -> Row {
        let mut r = self.row(figure, &get, fmt, better, String::new(), None);
        let met = |o: Outcome<f64>| o.ok().map(target.1);
        r.target = verdicts(target.0, met(get(self.rust)), met(get(self.axum)), self.axum_ran());
        r
    }

    /// Whether the axum server ran at all (else its verdicts are left out).
    fn axum_ran(&self) -> bool {
        self.axum.memory.is_ok() || self.axum.bootstrap.is_ok() || self.axum.single.is_ok() || self.axum.fan_one.is_ok()
    }
}

/// A target's verdict for the actix server and, if it ran, the axum one.
fn verdicts(text: &str, actix: Option<bool>, axum: Option<bool>, axum_ran: bool) -> String {
    if !axum_ran || actix == axum {
        return verdict(actix, text);
    }
    let word = |m: Option<bool>| match m {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "n/a",
    };
    format!("{text}: {} (actix), {} (axum)", word(actix), word(axum))
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
    c: &Columns<'_>,
    base: &Baselines,
    subscribers: usize,
    fan_workspaces: usize,
    clients: usize,
    batch: usize,
) -> Vec<Row> {
    let mut rows = Vec::new();
    // 1. Bootstrap.
    let copy_rate = map(&base.copy, |b| b.rows_per_s);
    let mut r = c.row(
        "Bootstrap: rows/s",
        |s| map(&s.bootstrap, |b| b.rows_per_s),
        fmt_num,
        Better::Higher,
        format!("COPY row_to_json: {}", cell(&copy_rate, fmt_num)),
        Some(("≥5× reference", 5.0)),
    );
    let half_copy = |s: &ServerResults| match (&s.bootstrap, &copy_rate) {
        (Ok(a), Ok(copy)) => Some(a.rows_per_s * 2.0 >= *copy),
        _ => None,
    };
    r.target.push_str("; ");
    r.target.push_str(&verdicts("≥½ COPY", half_copy(c.rust), half_copy(c.axum), c.axum_ran()));
    rows.push(r);
    rows.push(c.row(
        "Bootstrap: time to first byte",
        |s| map(&s.bootstrap, |b| b.ttfb_ms),
        fmt_ms,
        Better::Lower,
        format!("COPY: {}", cell(&map(&base.copy, |b| b.ttfb_ms), fmt_ms)),
        None,
    ));
    rows.push(c.row(
        "Bootstrap: total time",
        |s| map(&s.bootstrap, |b| b.total_s * 1000.0),
        fmt_ms,
        Better::Lower,
        format!("COPY: {}", cell(&map(&base.copy, |b| b.total_s * 1000.0), fmt_ms)),
        None,
    ));
    rows.push(c.row(
        "Bootstrap: peak server RSS (VmHWM)",
        |s| map_opt(&s.bootstrap, |b| b.peak_rss.map(|x| x as f64), "no /proc"),
        fmt_mib,
        Better::Lower,
        String::new(),
        None,
    ));
    // 2. Deltas.
    rows.push(c.row(
        "Delta catch-up (limit=1000): actions/s",
        |s| map(&s.deltas, |d| d.actions_per_s),
        fmt_num,
        Better::Higher,
        String::new(),
        Some(("≥5× reference", 5.0)),
    ));
    // 3. Mutations.
    let ins_rate = map(&base.insert, |b| b.0);
    rows.push(c.row(
        &format!("Mutations, {clients} clients, 1-tx batches: tx/s"),
        |s| map(&s.single, |m| m.tx_per_s()),
        fmt_num,
        Better::Higher,
        format!("INSERT+COMMIT: {}", cell(&ins_rate, fmt_num)),
        Some(("≥5× reference", 5.0)),
    ));
    for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
        rows.push(c.row(
            &format!("Mutations, 1-tx batches: {name} latency"),
            |s| map(&s.single, |m| m.latency.ms_at(q)),
            fmt_ms,
            Better::Lower,
            format!("INSERT+COMMIT: {}", cell(&map(&base.insert, |b| b.1.ms_at(q)), fmt_ms)),
            None,
        ));
    }
    rows.push(c.row(
        &format!("Mutations, {clients} clients, {batch}-tx batches: tx/s"),
        |s| map(&s.batch, |m| m.tx_per_s()),
        fmt_num,
        Better::Higher,
        String::new(),
        Some(("≥10× reference", 10.0)),
    ));
    // 4 and 5. Fan-out.
    let per_ws = subscribers / fan_workspaces.max(1);
    type Pick = fn(&ServerResults) -> &Outcome<FanOutResult>;
    let variants: [(String, Pick); 4] = [
        (format!("Fan-out, {subscribers} subs in 1 workspace"), |s| &s.fan_one),
        (format!("Fan-out, {subscribers} subs over {fan_workspaces} workspaces ({per_ws} each)"), |s| &s.fan_many),
        (format!("2 nodes + Redis, {subscribers} subs in 1 workspace"), |s| &s.two_one),
        (format!("2 nodes + Redis, {subscribers} subs over {fan_workspaces} workspaces"), |s| &s.two_many),
    ];
    for (name, pick) in variants {
        rows.push(c.row_abs(
            &format!("{name}: commit→delivery p50"),
            |s| map(pick(s), |f| f.latency.ms_at(0.5)),
            fmt_ms,
            Better::Lower,
            ("≤2 ms", |v| v <= 2.0),
        ));
        rows.push(c.row(
            &format!("{name}: commit→delivery p99"),
            |s| map(pick(s), |f| f.latency.ms_at(0.99)),
            fmt_ms,
            Better::Lower,
            String::new(),
            Some(("≤⅕ reference", 5.0)),
        ));
        let mut send = c.row(
            &format!("{name}: mutation sent→delivery p50 / p99"),
            |s| map(pick(s), |f| f.send_latency.ms_at(0.5)),
            fmt_ms,
            Better::Lower,
            String::new(),
            None,
        );
        let p99 = |o: &Outcome<FanOutResult>| match o {
            Ok(f) => format!(" / {}", fmt_ms(f.send_latency.ms_at(0.99))),
            Err(_) => String::new(),
        };
        send.rust.push_str(&p99(pick(c.rust)));
        send.axum.push_str(&p99(pick(c.axum)));
        send.reference.push_str(&p99(pick(c.reference)));
        rows.push(send);
        rows.push(c.row(
            &format!("{name}: commit→delivery max"),
            |s| map(pick(s), |f| f.latency.max_ms()),
            fmt_ms,
            Better::Lower,
            String::new(),
            None,
        ));
        let mut cpu = c.row_abs(
            &format!("{name}: server CPU per delivery (user + system)"),
            |s| map_opt(pick(s), |f| f.cpu_per_delivery_us().map(Cpu::total), "no /proc"),
            fmt_us,
            Better::Lower,
            ("≤1.5 µs", |v| v <= 1.5),
        );
        // The target is the one-workspace run's: spread over many
        // workspaces, a hundredth of the frames carry the same idle costs.
        if !name.contains("in 1 workspace") {
            cpu.target = String::new();
        }
        let split = |o: &Outcome<FanOutResult>| match o.as_ref().ok().and_then(FanOutResult::cpu_per_delivery_us) {
            Some(u) => format!(" ({:.2} + {:.2})", u.user, u.sys),
            None => String::new(),
        };
        cpu.rust.push_str(&split(pick(c.rust)));
        cpu.axum.push_str(&split(pick(c.axum)));
        cpu.reference.push_str(&split(pick(c.reference)));
        rows.push(cpu);
        let none_missing = |s: &ServerResults| {
            pick(s).as_ref().ok().map(|f| f.missing == 0 && f.foreign == 0 && f.duplicates == 0 && f.out_of_order == 0)
        };
        rows.push(Row {
            figure: format!("{name}: deliveries received/expected"),
            rust: deliveries(pick(c.rust)),
            axum: deliveries(pick(c.axum)),
            reference: deliveries(pick(c.reference)),
            ratio: String::new(),
            axum_ratio: String::new(),
            baseline: String::new(),
            target: verdicts("none missing", none_missing(c.rust), none_missing(c.axum), c.axum_ran()),
        });
    }
    let second_half = (subscribers - subscribers / 2).max(1) as f64;
    rows.push(c.row(
        &format!(
            "Server memory per idle subscribed WebSocket (RSS slope, {} → {subscribers} sockets)",
            subscribers / 2
        ),
        |s| map(&s.memory, |&(_, half, full)| (full as f64 - half as f64) / second_half),
        fmt_kib,
        Better::Lower,
        String::new(),
        Some(("≤1/10 reference", 10.0)),
    ));
    rows.push(c.row(
        "Server RSS, fresh and idle (no connections)",
        |s| map(&s.memory, |m| m.0 as f64),
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
    s.push_str(
        "| Figure | Rust, actix-web (taskboard) | Rust, axum (taskboard-axum) | Reference (@stratasync/server) \
         | actix advantage | axum advantage | PostgreSQL baseline | Target |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.figure, r.rust, r.axum, r.reference, r.ratio, r.axum_ratio, r.baseline, r.target
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
            "{who} {phase}: server CPU {:.1} s (user {:.1} s, system {:.1} s) over {wall:.1} s of wall time \
             ({:.0}% of one core)",
            cpu.total(),
            cpu.user,
            cpu.sys,
            100.0 * cpu.total() / wall
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
                "; CPU from the first write to the last delivery ({:.1} s): server {:.2} s (user {:.2} s, system {:.2} s), \
                 harness {:.1} s",
                f.wall.as_secs_f64(),
                sc.total(),
                sc.user,
                sc.sys,
                hc
            ));
        }
        if let Some(u) = f.cpu_per_delivery_us() {
            s.push_str(&format!(
                "; server CPU per delivery {:.2} µs (user {:.2} µs, system {:.2} µs)",
                u.total(),
                u.user,
                u.sys
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
