//! The operator commands: `migrate`, `log stats`, `explain` and `schema`.
//! Each is a thin shell over a documented API of `stratasync-core`
//! (`storage::migrate::run_reporting`, `ops::stats`, `ops::explain`,
//! `model::client_schema`), so any application can offer the same.

use crate::server::BoxError;
use crate::DevAuth;
use clap::{Args, ValueEnum};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;
use stratasync_core::model::client_schema::ClientSchema;
use stratasync_core::ops::compact::{self, Compaction, Retention};
use stratasync_core::ops::{explain as explain_ops, stats};
use stratasync_core::protocol::SyncId;
use stratasync_core::storage::{self, migrate as migrations, PoolConfig};

/// `taskboard log stats` options.
#[derive(Debug, Clone, Args)]
pub struct LogStatsArgs {
    /// Print JSON instead of aligned text.
    #[arg(long)]
    pub json: bool,

    /// How many of the largest groups to list.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(0..=10_000))]
    pub top: i64,
}

/// `taskboard log compact` options: by sync id or by age.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("by_age").args(["older_than_secs", "retain_secs"]).multiple(true).conflicts_with_all(["below", "horizon"]))]
pub struct CompactArgs {
    /// Fold the actions at or below this sync id (default: the log's head).
    #[arg(long)]
    pub below: Option<u64>,

    /// Remove every action below this sync id (default: keep the current
    /// horizon). At most `--below` + 1.
    #[arg(long)]
    pub horizon: Option<u64>,

    /// By age instead: fold the actions older than this many seconds.
    #[arg(long, requires = "retain_secs")]
    pub older_than_secs: Option<u64>,

    /// By age: remove the actions older than this many seconds.
    #[arg(long, requires = "older_than_secs")]
    pub retain_secs: Option<u64>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `taskboard explain` options: a user, and a row or a mutation.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["model", "mutation"]))]
pub struct ExplainArgs {
    /// The user (their groups are resolved as a request's would be).
    #[arg(long)]
    pub user: String,

    /// The row's model (with `--id`).
    #[arg(long, requires = "id")]
    pub model: Option<String>,

    /// The row's id.
    #[arg(long, requires = "model", conflicts_with = "mutation")]
    pub id: Option<String>,

    /// One transaction of `POST /sync/mutate` as JSON
    /// (`{"action","clientId","clientTxId","modelId","modelName","payload"}`),
    /// in a file, or `-` for standard input.
    #[arg(long, value_name = "FILE|-")]
    pub mutation: Option<String>,

    /// Print JSON instead of aligned text.
    #[arg(long)]
    pub json: bool,
}

/// The formats of `taskboard schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormat {
    /// A TypeScript module exporting `schemaHash` and `schema`.
    Ts,
    /// `{"schemaHash": …, "models": {…}}`.
    Json,
}

/// `taskboard schema` options.
#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = SchemaFormat::Ts)]
    pub format: SchemaFormat,

    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `taskboard migrate`: creates the database if missing, applies what is
/// pending and prints one line per applied migration.
pub async fn migrate(database_url: &str) -> Result<(), BoxError> {
    let mut out = std::io::stdout().lock();
    if migrations::create_database_if_missing(database_url).await? {
        writeln!(out, "created the database")?;
    }
    let applied = migrations::run_reporting(database_url, &[&crate::MIGRATIONS]).await?;
    if applied.is_empty() {
        writeln!(out, "nothing to apply: the database is up to date")?;
    }
    for name in applied {
        writeln!(out, "applied {name}")?;
    }
    Ok(())
}

/// `taskboard log stats`.
pub async fn log_stats(database_url: &str, args: &LogStatsArgs) -> Result<(), BoxError> {
    let mut conn = storage::establish(database_url).await?;
    let stats = stats::log_stats(&mut conn, args.top).await?;
    let text = if args.json { format!("{}\n", serde_json::to_string_pretty(&stats)?) } else { stats.to_string() };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `taskboard log compact`.
pub async fn log_compact(database_url: &str, args: &CompactArgs) -> Result<(), BoxError> {
    let mut conn = storage::establish(database_url).await?;
    let report = match (args.older_than_secs, args.retain_secs) {
        (Some(older), Some(retain)) => {
            let retention =
                Retention { compact_after: Duration::from_secs(older), keep_for: Duration::from_secs(retain) };
            compact::compact_by_age(&mut conn, retention).await?
        }
        _ => {
            let plan =
                Compaction { below: SyncId(args.below.unwrap_or(u64::MAX >> 1)), horizon: args.horizon.map(SyncId) };
            compact::compact(&mut conn, plan).await?
        }
    };
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        format!(
            "folded up to {}, horizon {}: {} rows -> {} ({} removed, {} rewritten, {} dedupe keys kept) in {} ms\n",
            report.below,
            report.horizon,
            report.rows_before,
            report.rows_after,
            report.removed,
            report.rewritten,
            report.kept_keys,
            report.millis
        )
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `taskboard explain`.
pub async fn explain(database_url: &str, args: &ExplainArgs) -> Result<(), BoxError> {
    let config = PoolConfig { max_size: 2, ..PoolConfig::default() };
    let engine = crate::engine(storage::connect(database_url, &config)?, DevAuth::default())?;
    let explanation = match (&args.model, &args.id, &args.mutation) {
        (Some(model), Some(id), _) => explain_ops::explain_row(&engine, &args.user, model, id).await?,
        (_, _, Some(source)) => {
            let text = read_source(source)?;
            let transaction: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("the mutation is not JSON: {e}"))?;
            explain_ops::explain_mutation(&engine, &args.user, transaction).await?
        }
        _ => return Err("give --model and --id, or --mutation".into()),
    };
    engine.shutdown().await;
    let text =
        if args.json { format!("{}\n", serde_json::to_string_pretty(&explanation)?) } else { explanation.to_string() };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `taskboard schema`: the client schema of the example's models.
pub fn schema(args: &SchemaArgs) -> Result<(), BoxError> {
    let schema = ClientSchema::from_registry(&crate::registry());
    let text = render_schema(&schema, args.format)?;
    match &args.out {
        Some(path) => std::fs::write(path, text)?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// The schema in `format`, ending with a newline.
pub fn render_schema(schema: &ClientSchema, format: SchemaFormat) -> Result<String, serde_json::Error> {
    Ok(match format {
        SchemaFormat::Ts => schema.to_typescript(),
        SchemaFormat::Json => {
            let mut document = serde_json::Map::new();
            document.insert("schemaHash".into(), schema.hash().into());
            if let serde_json::Value::Object(body) = schema.to_json() {
                document.extend(body);
            }
            format!("{}\n", serde_json::to_string_pretty(&document)?)
        }
    })
}

/// The text of `FILE`, or of standard input for `-`.
fn read_source(source: &str) -> Result<String, BoxError> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(source).map_err(|e| format!("could not read {source}: {e}").into())
    }
}
