//! The StrataSync example server (docs/example.md).
//!
//! Run with
//!
//! ```text
//! cargo run -p taskboard                                        # serve on 127.0.0.1:3000
//! cargo run -p taskboard -- seed --tasks 1000 --member alice    # prints the workspace id
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
use taskboard::config::{Cli, Command};
use taskboard::{admin, server};
use tracing_subscriber::EnvFilter;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match &cli.command {
        None => server::serve(&cli.database_url, &cli.serve).await,
        Some(Command::Serve(args)) => server::serve(&cli.database_url, args).await,
        Some(Command::Seed(args)) => server::seed_command(&cli.database_url, args).await.map(|id| println!("{id}")),
        Some(Command::Members(args)) => admin::members(&cli.database_url, args).await.map(|line| println!("{line}")),
        Some(Command::Tasks(args)) => admin::tasks(&cli.database_url, args).await.map(|line| println!("{line}")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain: the top-level messages are deliberately generic.
            let mut message = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            tracing::error!("{message}");
            std::process::ExitCode::FAILURE
        }
    }
}
