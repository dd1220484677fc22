//! The hot tail against PostgreSQL: a client a few thousand actions behind
//! catches up through `/sync/deltas` from a server that keeps the recent
//! actions in memory and from one that keeps none (`SYNC_HOT_TAIL_BYTES=0`),
//! on the same database; then a reconnect storm (many clients resuming at
//! once) against each. The server's `/metrics` say where each page came
//! from (`stratasync_deltas_served_total{source=…,via="http"}`).

use crate::load::{self, catch_up_to_head, http_client};
use crate::pg::Pg;
use crate::pg_work::PgWork;
use crate::servers::Server;
use crate::stats::{self, median, Hist};
use crate::BoxError;
use std::time::{Duration, Instant};

/// Actions a server served to `/sync/deltas`, by source, from `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Served {
    pub memory: f64,
    pub database: f64,
}

impl Served {
    fn since(&self, earlier: &Served) -> Served {
        Served { memory: self.memory - earlier.memory, database: self.database - earlier.database }
    }
}

/// The value of the sample of `name` whose labels include all of `labels`
/// in a Prometheus text exposition (0 when absent: a counter not yet
/// incremented is not exported).
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            if metric != name || !labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))) {
                return None;
            }
            value.parse::<f64>().ok()
        })
        .sum()
}

async fn metrics(client: &reqwest::Client, server: &Server) -> Result<String, BoxError> {
    let resp = client.get(format!("{}/metrics", server.base())).send().await?;
    if !resp.status().is_success() {
        return Err(format!("/metrics answered {}", resp.status()).into());
    }
    Ok(resp.text().await?)
}

/// What `server` has served to `/sync/deltas` so far.
pub(crate) async fn served(client: &reqwest::Client, server: &Server) -> Result<Served, BoxError> {
    let text = metrics(client, server).await?;
    let of = |source| sample(&text, "stratasync_deltas_served_total", &[("source", source), ("via", "http")]);
    Ok(Served { memory: of("memory"), database: of("database") })
}

/// Waits (up to 60 s) until the live feed of every server delivered the
/// log up to `head` (`stratasync_feed_delivered_sync_id`): from then on the
/// hot tail holds every action written since the server started.
pub(crate) async fn wait_for_feeds(client: &reqwest::Client, servers: &[&Server], head: u64) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for server in servers {
        loop {
            let text = metrics(client, server).await?;
            let delivered = sample(&text, "stratasync_feed_delivered_sync_id", &[]);
            if delivered >= head as f64 {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the feed of {} delivered up to {delivered}, not {head}", server.base()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Writes `n` task updates through the server as `user` (batches of 100
/// transactions, over `tasks` in turn); fails on any failed transaction.
pub(crate) async fn write_updates(
    client: &reqwest::Client,
    server: &Server,
    user: &str,
    tasks: &[String],
    n: i64,
) -> Result<(), BoxError> {
    const BATCH: i64 = 100;
    let client_id = format!("bench-log-{}", uuid::Uuid::new_v4());
    let mut written = 0;
    while written < n {
        let take = BATCH.min(n - written);
        let picked: Vec<&str> = (0..take).map(|i| tasks[((written + i) as usize) % tasks.len()].as_str()).collect();
        let body = load::update_body(&client_id, &picked, written as u64);
        let (ids, error, failed) = load::mutate(client, &server.base(), user, body).await?;
        if failed > 0 {
            return Err(format!("{failed} updates failed: {}", error.unwrap_or_default()).into());
        }
        written += ids.len() as i64;
    }
    Ok(())
}

/// One server's catch-up from the cursor, over the rounds.
pub(crate) struct TailRun {
    /// Actions/s of each round.
    pub rates: Vec<f64>,
    pub actions: u64,
    pub pages: u64,
    /// What the server served over the rounds (per `/metrics`).
    pub served: Served,
}

impl TailRun {
    pub fn median(&self) -> f64 {
        median(&self.rates)
    }

    pub fn range(&self) -> (f64, f64) {
        (self.rates.iter().copied().fold(f64::INFINITY, f64::min), self.rates.iter().copied().fold(0.0, f64::max))
    }
}

/// The catch-up from `after` (`expected` actions, ending at `head`), pages
/// of `limit`, `rounds` times on each server in turn.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn catch_up_rounds(
    client: &reqwest::Client,
    hot: &Server,
    cold: &Server,
    user: &str,
    after: u64,
    head: u64,
    expected: u64,
    limit: usize,
    rounds: usize,
) -> Result<(TailRun, TailRun), BoxError> {
    let before = (served(client, hot).await?, served(client, cold).await?);
    let mut runs: Vec<TailRun> =
        (0..2).map(|_| TailRun { rates: Vec::new(), actions: 0, pages: 0, served: Served::default() }).collect();
    for round in 1..=rounds {
        for (i, server) in [hot, cold].into_iter().enumerate() {
            let c = catch_up_to_head(client, &server.base(), user, after, limit).await?;
            if c.actions != expected || c.last != head {
                return Err(format!(
                    "catch-up from {after} read {} actions ending at {}, expected {expected} ending at {head}",
                    c.actions, c.last
                )
                .into());
            }
            let rate = c.actions as f64 / c.took.as_secs_f64();
            eprintln!(
                "    round {round}: {} {} actions in {} pages, {:.1} ms ({rate:.0} actions/s)",
                if i == 0 { "tail:      " } else { "PostgreSQL:" },
                c.actions,
                c.pages,
                c.took.as_secs_f64() * 1000.0
            );
            runs[i].rates.push(rate);
            runs[i].actions = c.actions;
            runs[i].pages = c.pages;
        }
    }
    let after_rounds = (served(client, hot).await?, served(client, cold).await?);
    let mut runs = runs.into_iter();
    let (mut tail, mut cold_run) = (runs.next().ok_or("no run")?, runs.next().ok_or("no run")?);
    tail.served = after_rounds.0.since(&before.0);
    cold_run.served = after_rounds.1.since(&before.1);
    let all = expected as f64 * rounds as f64;
    if tail.served.memory < all || tail.served.database > 0.0 {
        return Err(format!(
            "the server with the hot tail served {} actions from memory and {} from PostgreSQL, expected {all} from memory",
            tail.served.memory, tail.served.database
        )
        .into());
    }
    if cold_run.served.memory > 0.0 {
        return Err(format!("the server without a tail served {} actions from memory", cold_run.served.memory).into());
    }
    Ok((tail, cold_run))
}

/// A reconnect storm against one server.
pub(crate) struct Storm {
    pub clients: usize,
    /// From the release of the first client to the end of the last one.
    pub wall: Duration,
    /// Each client's catch-up time.
    pub per_client: Hist,
    /// PostgreSQL's work for the database over the storm.
    pub pg: PgWork,
    /// The server's CPU time over the storm.
    pub server_cpu: Option<f64>,
    /// What the server served (per `/metrics`).
    pub served: Served,
}

/// `users.len()` clients, each its own user, resume at once from `after`
/// (each must read `expected` actions and end at `head`), on fresh
/// connections. PostgreSQL's counters are read after `settle` (see
/// [`crate::pg_work`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn storm(
    server: &Server,
    pg: &Pg,
    db: &str,
    users: &[String],
    after: u64,
    head: u64,
    expected: u64,
    limit: usize,
    settle: Duration,
) -> Result<Storm, BoxError> {
    let probe = http_client()?;
    tokio::time::sleep(settle).await;
    let pg_before = PgWork::read(pg, db).await?;
    let served_before = served(&probe, server).await?;
    let cpu_before = stats::cpu_seconds(Some(server.pid));
    let client = http_client()?;
    let (go, ready) = tokio::sync::watch::channel(false);
    let mut handles = Vec::with_capacity(users.len());
    for user in users {
        let (client, base, user, mut ready) = (client.clone(), server.base(), user.clone(), ready.clone());
        handles.push(tokio::spawn(async move {
            ready.wait_for(|go| *go).await.map_err(|_| "storm never started")?;
            let c = catch_up_to_head(&client, &base, &user, after, limit).await?;
            if c.actions != expected || c.last != head {
                return Err::<Duration, BoxError>(
                    format!(
                        "{user} read {} actions ending at {}, expected {expected} ending at {head}",
                        c.actions, c.last
                    )
                    .into(),
                );
            }
            Ok::<Duration, BoxError>(c.took)
        }));
    }
    drop(ready);
    let t0 = Instant::now();
    go.send(true).map_err(|_| "no storm client is waiting")?;
    let mut per_client = Hist::new();
    let mut failure = None;
    for h in handles {
        match h.await? {
            Ok(took) => per_client.record(took),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    let wall = t0.elapsed();
    let server_cpu = cpu_before.zip(stats::cpu_seconds(Some(server.pid))).map(|(a, b)| b - a);
    if let Some(e) = failure {
        return Err(e);
    }
    let served = served(&probe, server).await?.since(&served_before);
    tokio::time::sleep(settle).await;
    let pg_work = PgWork::read(pg, db).await?.since(&pg_before);
    Ok(Storm { clients: users.len(), wall, per_client, pg: pg_work, server_cpu, served })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_labels() {
        let text = "# HELP stratasync_deltas_served_total Actions served\n\
                    # TYPE stratasync_deltas_served_total counter\n\
                    stratasync_deltas_served_total{source=\"memory\",via=\"http\"} 5000\n\
                    stratasync_deltas_served_total{via=\"replay\",source=\"memory\"} 7\n\
                    stratasync_deltas_served_total_x{source=\"memory\",via=\"http\"} 1\n\
                    stratasync_feed_delivered_sync_id 123\n";
        let served = |source| sample(text, "stratasync_deltas_served_total", &[("source", source), ("via", "http")]);
        assert_eq!(served("memory"), 5000.0);
        assert_eq!(served("database"), 0.0);
        assert_eq!(sample(text, "stratasync_deltas_served_total", &[("via", "replay")]), 7.0);
        assert_eq!(sample(text, "stratasync_feed_delivered_sync_id", &[]), 123.0);
    }
}
