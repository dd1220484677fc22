//! The StrataSync example server on axum: the same application, flags and
//! environment as `taskboard` (see its documentation and
//! `docs/example.md`), served through `stratasync-axum`.
//!
//! ```text
//! cargo run -p taskboard --bin taskboard-axum                   # serve on 127.0.0.1:3000
//! ```

use clap::Parser;
use taskboard::cli::{exit_code, run, Framework};
use taskboard::config::{Cli, Command};
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
    exit_code(runtime.block_on(run(&cli, Framework::Axum)))
}
