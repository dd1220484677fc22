//! Command line and environment of the example server.
//!
//! Every option can be given as a flag or through its environment
//! variable; the defaults run on a fresh local machine.

use clap::{Args, Parser, Subcommand};
use std::collections::HashMap;
use std::time::Duration;
use stratasync_core::service::StreamLimits;
use uuid::Uuid;

/// The default `DATABASE_URL`: a local PostgreSQL, database `taskboard`
/// (created on start if missing).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/taskboard";

/// `taskboard [serve options]` or `taskboard seed …`.
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
    Serve(ServeArgs),
    /// Create a workspace with members, tasks, labels and task labels, and
    /// print its id.
    Seed(SeedArgs),
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
    /// it, live deltas reach this process's WebSockets only).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Explicit bearer tokens, `token=userId,token=userId`. When set, they
    /// replace the development scheme (`token-<userId>`).
    #[arg(long, env = "TASKBOARD_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,

    /// How often the live feed polls the log when nothing woke it, in
    /// milliseconds (the safety net behind local commits and Redis).
    #[arg(long, env = "SYNC_POLL_MS", default_value_t = 500)]
    pub poll_ms: u64,

    /// WebSocket ping interval in seconds (a socket that misses a pong is
    /// closed).
    #[arg(long, env = "SYNC_HEARTBEAT_SECS", default_value_t = 30)]
    pub heartbeat_secs: u64,

    /// Worker threads (default: one per CPU core).
    #[arg(long, env = "WORKERS")]
    pub workers: Option<usize>,

    /// Mutation groups committed concurrently, each on its own database
    /// connection (default: the engine's).
    #[arg(long, env = "SYNC_MUTATION_LANES", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub mutation_lanes: Option<u16>,

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
