//! What both binaries (`taskboard` on actix-web, `taskboard-axum` on axum)
//! do with the parsed command line: serve through their web framework, or
//! run one of the other commands, which are the same for both.

use crate::config::{Cli, Command, LogCommand};
use crate::server::BoxError;
use crate::{admin, ops, server, server_axum};
use std::process::ExitCode;

/// The web framework `serve` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// actix-web through `stratasync-actix` (the `taskboard` binary).
    Actix,
    /// axum through `stratasync-axum` (the `taskboard-axum` binary).
    Axum,
}

/// Runs the command of `cli` (serving when there is none).
pub async fn run(cli: &Cli, framework: Framework) -> Result<(), BoxError> {
    let serve_args = match &cli.command {
        None => &cli.serve,
        Some(Command::Serve(args)) => args,
        Some(Command::Seed(args)) => {
            return server::seed_command(&cli.database_url, args).await.map(|id| println!("{id}"));
        }
        Some(Command::Migrate) => return ops::migrate(&cli.database_url).await,
        Some(Command::Log(LogCommand::Stats(args))) => return ops::log_stats(&cli.database_url, args).await,
        Some(Command::Log(LogCommand::Compact(args))) => return ops::log_compact(&cli.database_url, args).await,
        Some(Command::Explain(args)) => return ops::explain(&cli.database_url, args).await,
        Some(Command::Schema(args)) => return ops::schema(args),
        Some(Command::Members(args)) => {
            return admin::members(&cli.database_url, args).await.map(|line| println!("{line}"));
        }
        Some(Command::Tasks(args)) => {
            return admin::tasks(&cli.database_url, args).await.map(|line| println!("{line}"));
        }
    };
    match framework {
        Framework::Actix => server::serve(&cli.database_url, serve_args).await,
        Framework::Axum => server_axum::serve(&cli.database_url, serve_args).await,
    }
}

/// The process's exit code for `result`; a failure is logged with its
/// whole chain of causes (the top-level messages are deliberately generic).
pub fn exit_code(result: Result<(), BoxError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}
