//! How big each workload is: `--size full` (the figures) or
//! `--size small` (a smoke run of a few seconds, for CI).

use std::time::Duration;

/// The two sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Size {
    /// Tiny sizes: checks that everything runs and every delivery arrives.
    Small,
    /// The sizes.
    Full,
}

/// Every knob of one run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub size: Size,
    /// The workloads to measure (`--only`; empty: all).
    pub only: Selection,
    /// Tasks (and task labels: one per task) in the bootstrap workspace.
    pub tasks: i64,
    /// Labels in the bootstrap workspace.
    pub labels: i64,
    /// Sync actions generated for the delta catch-up.
    pub actions: i64,
    /// Bootstrap and delta catch-up repetitions (the median is reported).
    pub read_runs: usize,
    /// Page size of the delta catch-up.
    pub delta_limit: usize,
    /// Concurrent mutation clients.
    pub clients: usize,
    /// Transactions per request in the batch workload.
    pub batch: usize,
    /// Warm-up before each timed mutation phase (not measured).
    pub warmup: Duration,
    /// Length of each timed mutation phase.
    pub measure: Duration,
    /// WebSocket subscribers in each fan-out run.
    pub subscribers: usize,
    /// Workspaces the subscribers are spread over in the second fan-out run.
    pub fan_workspaces: usize,
    /// Tasks per fan-out workspace (the writer updates them in turn).
    pub fan_tasks: i64,
    /// Mutations per second of the fan-out writer.
    pub fan_rate: u32,
    /// How long the writer writes.
    pub fan_duration: Duration,
    /// How long, at most, the harness waits after the writer stops for
    /// deliveries still on their way before it counts them as missing.
    pub fan_grace: Duration,
    /// ... and how long it waits once no delivery has arrived at all.
    pub fan_stall: Duration,
    /// The scale run's sizes, in tasks (each with as many task labels and
    /// a hundredth as many labels), smallest first.
    pub scale_tasks: [i64; 2],
    /// Rounds of the scale run: each measures every size once, in turn, so
    /// a change in the machine's load affects both sizes alike.
    pub scale_rounds: usize,
    /// The log run (`log_section.rs`): tasks of its workspace.
    pub log_tasks: i64,
    /// Updates per task in its log before the servers start (the history
    /// compaction folds).
    pub log_updates: i64,
    /// Actions written after the servers started (the hot tail holds
    /// them); the catch-up client is this many behind.
    pub tail_behind: i64,
    /// Rounds of the tail-against-PostgreSQL catch-up (each server once
    /// per round).
    pub tail_rounds: usize,
    /// Clients of the reconnect storm (each its own user).
    pub storm_clients: usize,
    /// How far behind each storm client resumes, in actions.
    pub storm_behind: i64,
    /// How long to wait, before reading `pg_stat_database`, for the
    /// server's PostgreSQL sessions to publish their statistics (an idle
    /// session does so within 10 s); zero reads at once (partial figures).
    pub pg_stats_settle: Duration,
    /// Catch-up runs from the far cursor before and after compaction.
    pub compact_rounds: usize,
}

impl Plan {
    pub fn new(size: Size) -> Plan {
        match size {
            Size::Full => Plan {
                size,
                only: Selection::default(),
                tasks: 100_000,
                labels: 1_000,
                actions: 100_000,
                read_runs: 3,
                delta_limit: 1000,
                clients: 32,
                batch: 100,
                warmup: Duration::from_secs(2),
                measure: Duration::from_secs(10),
                subscribers: 1000,
                fan_workspaces: 100,
                fan_tasks: 10,
                fan_rate: 200,
                fan_duration: Duration::from_secs(10),
                fan_grace: Duration::from_secs(120),
                fan_stall: Duration::from_secs(5),
                scale_tasks: [100_000, 1_000_000],
                scale_rounds: 5,
                log_tasks: 20_000,
                log_updates: 10,
                tail_behind: 5_000,
                tail_rounds: 7,
                storm_clients: 1000,
                storm_behind: 2_000,
                pg_stats_settle: Duration::from_secs(11),
                compact_rounds: 3,
            },
            Size::Small => Plan {
                size,
                only: Selection::default(),
                tasks: 2_000,
                labels: 20,
                actions: 3_000,
                read_runs: 1,
                delta_limit: 1000,
                clients: 8,
                batch: 10,
                warmup: Duration::from_millis(200),
                measure: Duration::from_millis(1000),
                subscribers: 60,
                fan_workspaces: 6,
                fan_tasks: 5,
                fan_rate: 100,
                fan_duration: Duration::from_millis(1000),
                fan_grace: Duration::from_secs(10),
                fan_stall: Duration::from_secs(3),
                scale_tasks: [1_000, 10_000],
                scale_rounds: 1,
                log_tasks: 200,
                log_updates: 5,
                tail_behind: 500,
                tail_rounds: 1,
                storm_clients: 50,
                storm_behind: 200,
                pg_stats_settle: Duration::ZERO,
                compact_rounds: 1,
            },
        }
    }

    /// Rows a full bootstrap of the main workspace returns (without the
    /// metadata line): the workspace, its tasks, labels and task labels.
    pub fn bootstrap_rows(&self) -> u64 {
        (1 + self.tasks + self.labels + self.tasks) as u64
    }
}

/// Rows a full bootstrap of a scale-run workspace of `tasks` tasks returns:
/// the workspace, its tasks, `tasks / 100` labels and `tasks` task labels.
pub(crate) fn scale_rows(tasks: i64) -> u64 {
    (1 + tasks + scale_labels(tasks) + tasks) as u64
}

/// Labels in a scale-run workspace of `tasks` tasks.
pub(crate) fn scale_labels(tasks: i64) -> i64 {
    (tasks / 100).max(1)
}

/// The workloads `--only` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Workload {
    /// The COPY and INSERT baselines.
    Baselines,
    /// Memory per idle WebSocket.
    Memory,
    /// Bootstrap.
    Bootstrap,
    /// Delta catch-up.
    Deltas,
    /// Both mutation workloads.
    Mutations,
    /// Fan-out on one node.
    Fanout,
    /// Fan-out on two nodes behind Redis.
    TwoNodes,
    /// The scale run: bootstrap at two sizes, ten times apart (Rust and
    /// COPY only).
    Scale,
    /// The log run: catch-up from the hot tail and from PostgreSQL, a
    /// reconnect storm against each, and compaction (Rust only).
    Log,
}

impl Workload {
    /// The workloads of the main table (all but the scale run).
    pub const MAIN: [Workload; 7] = [
        Workload::Baselines,
        Workload::Memory,
        Workload::Bootstrap,
        Workload::Deltas,
        Workload::Mutations,
        Workload::Fanout,
        Workload::TwoNodes,
    ];
}

/// Which workloads this run measures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection(pub Vec<Workload>);

impl Selection {
    pub fn runs(&self, w: Workload) -> bool {
        self.0.is_empty() || self.0.contains(&w)
    }

    /// Whether any workload of the main table runs.
    pub fn runs_main(&self) -> bool {
        Workload::MAIN.iter().any(|w| self.runs(*w))
    }
}
