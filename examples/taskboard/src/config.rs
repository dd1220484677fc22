//! Command line and environment of the example server.
//!
//! Every option can be given as a flag or through its environment
//! variable; the defaults run on a fresh local machine.

use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;
use stratasync_core::engine::GroupCommitConfig;
use stratasync_core::engine::MutationRateLimit;
use stratasync_core::engine::StreamLimits;
use stratasync_core::realtime::SocketLimits;
use uuid::Uuid;

/// The default `DATABASE_URL`: a local PostgreSQL, database `taskboard`
/// (created on start if missing).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/taskboard";

/// `taskboard [serve options]`, or one of the subcommands.
#[derive(Debug, Clone, Parser)]
#[command(name = "taskboard", version, about = "The StrataSync example server: a small task tracker")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// PostgreSQL connection URL; the database is created if it does not
    /// exist (through the same server's `postgres` database).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// Server options (when no subcommand is given, the server runs).
    #[command(flatten)]
    pub serve: ServeArgs,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the sync server (the default).
    Serve(Box<ServeArgs>),
    /// Create a workspace with members, tasks, labels and task labels, and
    /// print its id.
    Seed(SeedArgs),
    /// Create the database if it is missing and apply the framework's and
    /// the app's pending migrations; print what was applied.
    Migrate,
    /// Inspect the sync log.
    #[command(subcommand)]
    Log(LogCommand),
    /// Say whether a user sees a row or may apply a mutation, and which
    /// rule decides (the server's own checks, in a rolled-back transaction).
    Explain(crate::ops::ExplainArgs),
    /// Print the client's model schema (for `@stratasync/client`) and its hash.
    Schema(crate::ops::SchemaArgs),
    /// Add a user to a workspace or remove them (logs the user's `S` action).
    Members(crate::admin::MembersArgs),
    /// Write tasks as the system, like server code would.
    Tasks(crate::admin::TasksArgs),
}

/// `taskboard log …`.
#[derive(Debug, Clone, Subcommand)]
pub enum LogCommand {
    /// Head, row count, oldest and newest action, actions per model and
    /// per kind, largest groups.
    Stats(crate::ops::LogStatsArgs),
    /// Fold the log below a sync id (each row keeps its latest action) and
    /// remove what is below the retention horizon (clients behind it
    /// bootstrap again). Safe while servers run.
    Compact(crate::ops::CompactArgs),
}

/// Where and how the server listens.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1")]
    pub bind: String,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Redis URL for fan-out across server processes (optional; without
    /// it, live deltas reach this process's WebSockets only). `rediss://`
    /// connects with TLS, trusting the system's root certificates.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// A PEM file of root certificates to trust for a `rediss://` Redis
    /// instead of the system's (a private CA).
    #[arg(long, env = "REDIS_CA_CERT", value_name = "PEM_FILE")]
    pub redis_ca_cert: Option<PathBuf>,

    /// Do not create the demo workspace on an empty database.
    #[arg(long, env = "TASKBOARD_NO_DEMO", value_parser = FalseyValueParser::new())]
    pub no_demo: bool,

    /// Explicit bearer tokens, `token=userId,token=userId`. When set, they
    /// replace the development scheme (`token-<userId>`).
    #[arg(long, env = "TASKBOARD_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,

    /// How often the live feed polls the log when nothing woke it, in
    /// milliseconds (the safety net behind local commits and Redis).
    #[arg(long, env = "SYNC_POLL_MS", default_value_t = 500)]
    pub poll_ms: u64,

    /// Bytes of recent actions the live feed keeps in memory (the hot
    /// tail): a socket resuming from a cursor they cover replays, and a
    /// delta page from one is served, without reading the log. 0 keeps
    /// none.
    #[arg(long, env = "SYNC_HOT_TAIL_BYTES", default_value_t = stratasync_core::realtime::hub::DEFAULT_RECENT_BYTES)]
    pub hot_tail_bytes: usize,

    /// How many of the log's latest actions the hot tail is loaded with at
    /// start-up (within `--hot-tail-bytes`), so clients resuming after a
    /// restart replay from memory. 0 starts it empty.
    #[arg(long, env = "SYNC_HOT_TAIL_WARM", default_value_t = stratasync_core::realtime::hub::DEFAULT_WARM_ACTIONS)]
    pub hot_tail_warm: u64,

    /// Compact the sync log every this many seconds (0: never), by age:
    /// see `--compact-after-secs` and `--retain-secs`, and `taskboard log
    /// compact` for a single run.
    #[arg(long, env = "SYNC_COMPACT_EVERY_SECS", default_value_t = 0)]
    pub compact_every_secs: u64,

    /// With a compaction schedule: fold actions older than this many
    /// seconds.
    #[arg(long, env = "SYNC_COMPACT_AFTER_SECS", default_value_t = 3_600)]
    pub compact_after_secs: u64,

    /// With a compaction schedule: remove actions older than this many
    /// seconds, tombstones included (a client away longer bootstraps
    /// again).
    #[arg(long, env = "SYNC_RETAIN_SECS", default_value_t = 30 * 86_400)]
    pub retain_secs: u64,

    /// WebSocket ping interval in seconds (a socket that misses a pong is
    /// closed).
    #[arg(long, env = "SYNC_HEARTBEAT_SECS", default_value_t = 30)]
    pub heartbeat_secs: u64,

    /// Verify each live WebSocket's token again every this many seconds
    /// (0: never); a refused token closes its socket with 4001.
    #[arg(long, env = "SYNC_TOKEN_RECHECK_SECS", default_value_t = 0)]
    pub token_recheck_secs: u64,

    /// Worker threads (default: one per CPU core).
    #[arg(long, env = "WORKERS")]
    pub workers: Option<usize>,

    /// Mutation groups committed concurrently, each on its own database
    /// connection (default: the engine's).
    #[arg(long, env = "SYNC_MUTATION_LANES", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub mutation_lanes: Option<u16>,

    /// PostgreSQL `statement_timeout` of the mutation transactions, in
    /// milliseconds (0: none). A client transaction whose statement runs
    /// longer fails its request with a retryable 503.
    #[arg(long, env = "SYNC_STATEMENT_TIMEOUT_MS", default_value_t = 5000)]
    pub statement_timeout_ms: u64,

    /// PostgreSQL `lock_timeout` of the mutation transactions, in
    /// milliseconds (0: none). A client transaction that waits longer for a
    /// row lock fails its request with a retryable 503.
    #[arg(long, env = "SYNC_LOCK_TIMEOUT_MS", default_value_t = 2000)]
    pub lock_timeout_ms: u64,

    /// How long each before-hook may run, in milliseconds (0: no limit).
    #[arg(long, env = "SYNC_HOOK_TIMEOUT_MS", default_value_t = 2000)]
    pub hook_timeout_ms: u64,

    /// Per-user mutation rate limit: client transactions per second each
    /// user may sustain (default: no limit). Over it, `/sync/mutate`
    /// answers 429 with `Retry-After`.
    #[arg(long, env = "SYNC_MUTATION_RATE", value_parser = clap::value_parser!(u32).range(1..))]
    pub mutation_rate: Option<u32>,

    /// The burst of the mutation rate limit: transactions a user may send
    /// at once (default: the rate; never below 100, one full request).
    #[arg(long, env = "SYNC_MUTATION_BURST", value_parser = clap::value_parser!(u32).range(1..))]
    pub mutation_burst: Option<u32>,
    /// Streamed responses (bootstraps, batch loads, delta pages) one user
    /// may have open at once; more get 429 with `Retry-After`.
    #[arg(long, env = "SYNC_STREAMS_PER_USER", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub streams_per_user: u16,

    /// Bootstraps and batch loads holding a database connection at once
    /// (default: half the connection pool, so the rest always serves
    /// everything else).
    #[arg(long, env = "SYNC_SNAPSHOT_STREAMS", value_parser = clap::value_parser!(u16).range(1..))]
    pub snapshot_streams: Option<u16>,

    /// Seconds a bootstrap or batch load waits for one of those slots
    /// before answering 503.
    #[arg(long, env = "SYNC_STREAM_SLOT_WAIT_SECS", default_value_t = 5)]
    pub stream_slot_wait_secs: u64,

    /// Seconds a streamed response may wait for its client to read on
    /// before it is aborted (releasing its connection).
    #[arg(long, env = "SYNC_STREAM_STALL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub stream_stall_secs: u64,

    /// WebSocket limits.
    #[command(flatten)]
    pub sockets: SocketArgs,
}

/// What one WebSocket client may make the server hold (unset: the
/// framework's defaults, see `SocketLimits` and `HubConfig`).
#[derive(Debug, Clone, Default, Args)]
pub struct SocketArgs {
    /// Bytes the server may queue for one socket, and buffer for it while
    /// its subscribe replays; a client that falls further behind is closed
    /// with 4008 and resumes from the log when it reconnects (default
    /// 4194304, 4 MiB).
    #[arg(long, env = "SYNC_WS_SEND_BUFFER_BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub send_buffer_bytes: Option<usize>,

    /// Open WebSockets per user; more are refused with 429 and
    /// `Retry-After` (default: no limit).
    #[arg(long, env = "SYNC_WS_MAX_SOCKETS_PER_USER")]
    pub max_sockets_per_user: Option<usize>,

    /// Largest client message in bytes; a larger one closes the socket
    /// with 1009 (default 1048576, 1 MiB).
    #[arg(long, env = "SYNC_WS_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,

    /// Largest `subscribe` message in bytes; a larger one is answered with
    /// an error frame (default 65536).
    #[arg(long, env = "SYNC_WS_MAX_SUBSCRIBE_BYTES")]
    pub max_subscribe_bytes: Option<usize>,

    /// Most groups one `subscribe` may name (default 1000).
    #[arg(long, env = "SYNC_WS_MAX_SUBSCRIBE_GROUPS")]
    pub max_subscribe_groups: Option<usize>,

    /// Subscribes that may wait behind the one in progress (default 16).
    #[arg(long, env = "SYNC_WS_MAX_PENDING_SUBSCRIBES")]
    pub max_pending_subscribes: Option<usize>,

    /// Bytes the waiting subscribes of one socket may hold (default
    /// 262144, 256 KiB).
    #[arg(long, env = "SYNC_WS_MAX_PENDING_SUBSCRIBE_BYTES")]
    pub max_pending_subscribe_bytes: Option<usize>,
}

impl SocketArgs {
    /// The limits these arguments set, the defaults elsewhere.
    pub fn limits(&self) -> SocketLimits {
        let default = SocketLimits::default();
        SocketLimits {
            max_message_bytes: self.max_message_bytes.unwrap_or(default.max_message_bytes),
            max_subscribe_bytes: self.max_subscribe_bytes.unwrap_or(default.max_subscribe_bytes),
            max_subscribe_groups: self.max_subscribe_groups.unwrap_or(default.max_subscribe_groups),
            max_pending_subscribes: self.max_pending_subscribes.unwrap_or(default.max_pending_subscribes),
            max_pending_subscribe_bytes: self
                .max_pending_subscribe_bytes
                .unwrap_or(default.max_pending_subscribe_bytes),
            max_sockets_per_user: self.max_sockets_per_user,
        }
    }
}

/// What `seed` creates.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// Number of tasks (each also gets one label).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(0..=10_000_000))]
    pub tasks: i64,

    /// A member of the workspace (repeat for several users).
    #[arg(long = "member", value_name = "USER_ID", default_value = "alice")]
    pub members: Vec<String>,

    /// Number of labels (default: tasks / 100, at least 1).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub labels: Option<i64>,

    /// The workspace name.
    #[arg(long, default_value = "Demo workspace")]
    pub name: String,

    /// The workspace id (default: a new random one).
    #[arg(long)]
    pub workspace_id: Option<Uuid>,
}

impl ServeArgs {
    /// Group commit as configured: lanes and the mutation timeouts.
    pub fn group_commit(&self) -> GroupCommitConfig {
        let defaults = GroupCommitConfig::default();
        GroupCommitConfig {
            lanes: self.mutation_lanes.map_or(defaults.lanes, usize::from),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            lock_timeout: Duration::from_millis(self.lock_timeout_ms),
            hook_timeout: Duration::from_millis(self.hook_timeout_ms),
            ..defaults
        }
    }

    /// The per-user mutation rate limit, if one is set.
    pub fn mutation_rate_limit(&self) -> Option<MutationRateLimit> {
        let per_second = NonZeroU32::new(self.mutation_rate?)?;
        let burst = self.mutation_burst.and_then(NonZeroU32::new).unwrap_or(per_second);
        Some(MutationRateLimit { per_second, burst })
    }

    /// The limits on streamed responses these options set.
    pub fn stream_limits(&self) -> StreamLimits {
        StreamLimits {
            per_user: self.streams_per_user.into(),
            snapshot_slots: self.snapshot_streams.map(usize::from),
            slot_wait: Duration::from_secs(self.stream_slot_wait_secs),
            stall_timeout: Duration::from_secs(self.stream_stall_secs),
        }
    }

    /// The explicit token table of `TASKBOARD_TOKENS`: `Ok(None)` when it
    /// is unset or blank, an error when it is malformed.
    pub fn token_table(&self) -> Result<Option<HashMap<String, String>>, String> {
        match self.tokens.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(spec) => match crate::DevAuth::parse_tokens(spec) {
                Some(table) if !table.is_empty() => Ok(Some(table)),
                _ => Err("TASKBOARD_TOKENS must look like `token=userId,token=userId`".to_owned()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve() {
        let cli = Cli::try_parse_from(["taskboard"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.bind, "127.0.0.1");
        assert!(cli.serve.port > 0);
        assert_eq!(cli.serve.stream_limits(), StreamLimits::default());
    }

    #[test]
    fn stream_limits() {
        let cli = Cli::try_parse_from([
            "taskboard",
            "--streams-per-user",
            "2",
            "--snapshot-streams",
            "6",
            "--stream-slot-wait-secs",
            "1",
            "--stream-stall-secs",
            "9",
        ])
        .unwrap();
        let limits = cli.serve.stream_limits();
        assert_eq!((limits.per_user, limits.snapshot_slots), (2, Some(6)));
        assert_eq!((limits.slot_wait, limits.stall_timeout), (Duration::from_secs(1), Duration::from_secs(9)));
        assert!(Cli::try_parse_from(["taskboard", "--streams-per-user", "0"]).is_err());
        assert!(Cli::try_parse_from(["taskboard", "--stream-stall-secs", "0"]).is_err());
    }

    #[test]
    fn seed_arguments() {
        let cli = Cli::try_parse_from(["taskboard", "seed", "--tasks", "10", "--member", "alice", "--member", "bob"])
            .unwrap();
        let Some(Command::Seed(seed)) = cli.command else { panic!("seed expected") };
        assert_eq!(seed.tasks, 10);
        assert_eq!(seed.members, ["alice", "bob"]);
        let cli = Cli::try_parse_from(["taskboard", "seed"]).unwrap();
        let Some(Command::Seed(seed)) = cli.command else { panic!("seed expected") };
        assert_eq!(seed.members, ["alice"]);
        assert!(Cli::try_parse_from(["taskboard", "seed", "--tasks", "-1"]).is_err());
    }

    #[test]
    fn operator_commands() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.command);
        assert!(matches!(parse(&["taskboard", "migrate"]), Ok(Some(Command::Migrate))));
        let Ok(Some(Command::Log(LogCommand::Stats(stats)))) = parse(&["taskboard", "log", "stats", "--json"]) else {
            panic!("log stats expected")
        };
        assert!(stats.json);
        assert_eq!(stats.top, 10);
        let Ok(Some(Command::Log(LogCommand::Compact(ids)))) =
            parse(&["taskboard", "log", "compact", "--below", "9", "--horizon", "3"])
        else {
            panic!("log compact expected")
        };
        assert_eq!((ids.below, ids.horizon, ids.older_than_secs), (Some(9), Some(3), None));
        assert!(parse(&["taskboard", "log", "compact", "--older-than-secs", "60", "--retain-secs", "600"]).is_ok());
        // By age needs both ages, and excludes sync ids.
        assert!(parse(&["taskboard", "log", "compact", "--older-than-secs", "60"]).is_err());
        assert!(parse(&[
            "taskboard",
            "log",
            "compact",
            "--below",
            "9",
            "--older-than-secs",
            "1",
            "--retain-secs",
            "1"
        ])
        .is_err());
        let Ok(Some(Command::Explain(row))) =
            parse(&["taskboard", "explain", "--user", "u", "--model", "Task", "--id", "1"])
        else {
            panic!("explain expected")
        };
        assert_eq!((row.model.as_deref(), row.id.as_deref(), row.mutation), (Some("Task"), Some("1"), None));
        assert!(parse(&["taskboard", "explain", "--user", "u", "--mutation", "-"]).is_ok());
        // A row needs both --model and --id; a row and a mutation exclude each other.
        assert!(parse(&["taskboard", "explain", "--user", "u"]).is_err());
        assert!(parse(&["taskboard", "explain", "--user", "u", "--model", "Task"]).is_err());
        assert!(parse(&["taskboard", "explain", "--user", "u", "--id", "1", "--mutation", "-"]).is_err());
        assert!(parse(&["taskboard", "explain", "--model", "Task", "--id", "1"]).is_err(), "--user is required");
        let Ok(Some(Command::Schema(schema))) = parse(&["taskboard", "schema", "--format", "json"]) else {
            panic!("schema expected")
        };
        assert_eq!(schema.format, crate::ops::SchemaFormat::Json);
        assert!(parse(&["taskboard", "schema", "--format", "yaml"]).is_err());
    }

    #[test]
    fn demo_opt_out() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().serve.no_demo;
        // One test touches the variable, so tests running in parallel
        // cannot see it half set.
        std::env::remove_var("TASKBOARD_NO_DEMO");
        assert!(!parse(&["taskboard"]));
        assert!(parse(&["taskboard", "--no-demo"]));
        for (value, off) in [("1", true), ("true", true), ("0", false), ("false", false), ("", false)] {
            std::env::set_var("TASKBOARD_NO_DEMO", value);
            assert_eq!(parse(&["taskboard"]), off, "TASKBOARD_NO_DEMO={value:?}");
        }
        std::env::remove_var("TASKBOARD_NO_DEMO");
    }

    #[test]
    fn mutation_settings() {
        let args = Cli::try_parse_from(["taskboard"]).unwrap().serve;
        let config = args.group_commit();
        assert_eq!(config.lanes, 1);
        assert_eq!(config.statement_timeout, Duration::from_secs(5));
        assert_eq!(config.lock_timeout, Duration::from_secs(2));
        assert_eq!(config.hook_timeout, Duration::from_secs(2));
        assert_eq!(args.mutation_rate_limit(), None, "no rate limit by default");
        let args = Cli::try_parse_from([
            "taskboard",
            "--mutation-lanes",
            "2",
            "--lock-timeout-ms",
            "250",
            "--hook-timeout-ms",
            "0",
            "--mutation-rate",
            "50",
        ])
        .unwrap()
        .serve;
        let config = args.group_commit();
        assert_eq!(
            (config.lanes, config.lock_timeout, config.hook_timeout),
            (2, Duration::from_millis(250), Duration::ZERO)
        );
        let limit = args.mutation_rate_limit().unwrap();
        assert_eq!((limit.per_second.get(), limit.burst.get()), (50, 50));
        assert!(Cli::try_parse_from(["taskboard", "--mutation-rate", "0"]).is_err());
    }

    #[test]
    fn socket_limits() {
        let cli = Cli::try_parse_from(["taskboard"]).unwrap();
        assert_eq!(cli.serve.sockets.limits(), SocketLimits::default());
        assert_eq!(cli.serve.sockets.send_buffer_bytes, None);
        let cli = Cli::try_parse_from([
            "taskboard",
            "--send-buffer-bytes",
            "1024",
            "--max-sockets-per-user",
            "3",
            "--max-subscribe-groups",
            "10",
        ])
        .unwrap();
        assert_eq!(cli.serve.sockets.send_buffer_bytes, Some(1024));
        let limits = cli.serve.sockets.limits();
        assert_eq!((limits.max_sockets_per_user, limits.max_subscribe_groups), (Some(3), 10));
        assert_eq!(limits.max_message_bytes, SocketLimits::default().max_message_bytes);
        assert!(Cli::try_parse_from(["taskboard", "--send-buffer-bytes", "0"]).is_err());
    }

    #[test]
    fn token_table() {
        let mut args = Cli::try_parse_from(["taskboard"]).unwrap().serve;
        args.tokens = Some("  ".into());
        assert_eq!(args.token_table(), Ok(None));
        args.tokens = Some("s3cret=alice".into());
        assert_eq!(args.token_table().unwrap().unwrap().get("s3cret").map(String::as_str), Some("alice"));
        args.tokens = Some("broken".into());
        assert!(args.token_table().is_err());
    }
}
