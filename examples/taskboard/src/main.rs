//! The StrataSync example server (docs/example.md).
//!
//! Run with
//!
//! ```text
//! cargo run -p taskboard                                        # serve on 127.0.0.1:3000
//! cargo run -p taskboard -- seed --tasks 1000 --member alice    # prints the workspace id
//! cargo run -p taskboard -- migrate                             # creates and migrates the database
//! cargo run -p taskboard -- log stats [--json]                  # what the sync log holds
//! cargo run -p taskboard -- explain --user alice --model Task --id <id>
//! cargo run -p taskboard -- explain --user alice --mutation tx.json   # or `-` for stdin
//! cargo run -p taskboard -- schema --format ts|json [--out FILE]
//! cargo run -p taskboard -- members add --workspace <id> --user carol
//! cargo run -p taskboard -- tasks create --workspace <id> --title "From the server"
//! ```
//!
//! Configuration: `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/taskboard`, created if missing; TLS
//! as its `sslmode` says), `PORT` (3000), `BIND` (127.0.0.1),
//! `TASKBOARD_TOKENS` (`token=userId,…`, replaces the development tokens
//! `token-<userId>`), `REDIS_URL` (optional fan-out across processes;
//! `rediss://` for TLS) and `REDIS_CA_CERT`, `TASKBOARD_NO_DEMO` (do not
//! create the demo workspace on an empty database), `RUST_LOG` (default
//! `info`); the limits of the README's "Limits and isolation"; `--help`
//! lists them all. Logs go to stderr, one line per request among them
//! (tokens redacted); the demo's "try it"
//! lines go to stdout.

use clap::Parser;
use taskboard::cli::{exit_code, run, Framework};
use taskboard::config::Cli;
use tracing_subscriber::EnvFilter;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    exit_code(run(&cli, Framework::Actix).await)
}
