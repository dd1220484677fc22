//! The StrataSync example server on axum: the same application, flags and
//! environment as `taskboard` (see its documentation and
//! `docs/example.md`), served through `stratasync-axum`.
//!
//! ```text
//! cargo run -p taskboard --bin taskboard-axum                   # serve on 127.0.0.1:3000
//! ```

use clap::Parser;
use taskboard::config::{Cli, Command};
use taskboard::{server, server_axum};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let workers = match &cli.command {
        None => cli.serve.workers,
        Some(Command::Serve(args)) => args.workers,
        Some(_) => None,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        runtime.worker_threads(workers.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            None => server_axum::serve(&cli.database_url, &cli.serve).await,
            Some(Command::Serve(args)) => server_axum::serve(&cli.database_url, args).await,
            Some(Command::Seed(args)) => server::seed_command(&cli.database_url, args).await.map(|id| println!("{id}")),
        }
    });
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
