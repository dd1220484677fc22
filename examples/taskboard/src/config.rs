//! Command line and environment of the example server.
//!
//! Every option can be given as a flag or through its environment
//! variable; the defaults run on a fresh local machine.

use clap::{Args, Parser, Subcommand};
use std::collections::HashMap;
use stratasync_core::realtime::SocketLimits;
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
