//! The HTTP workloads: bootstrap, delta catch-up and mutations.

use crate::stats::{Hist, Ticker};
use crate::BoxError;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The HTTP client every workload uses: loopback only, no proxy, Nagle
/// off, and enough idle connections for the concurrency used.
pub(crate) fn http_client() -> Result<reqwest::Client, BoxError> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(300))
        .build()?)
}

pub(crate) fn token(user: &str) -> String {
    format!("token-{user}")
}

/// One full bootstrap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BootstrapRun {
    /// Row lines (without the metadata line).
    pub rows: u64,
    pub bytes: u64,
    /// Until the first body byte.
    pub ttfb: Duration,
    pub total: Duration,
}

/// `GET /sync/bootstrap` (full, all models) as `user`, reading the NDJSON
/// stream to its end.
pub(crate) async fn bootstrap(client: &reqwest::Client, base: &str, user: &str) -> Result<BootstrapRun, BoxError> {
    let t0 = Instant::now();
    let mut resp = client.get(format!("{base}/sync/bootstrap?type=full")).bearer_auth(token(user)).send().await?;
    if !resp.status().is_success() {
        return Err(format!("bootstrap answered {}", resp.status()).into());
    }
    let mut ttfb = None;
    let mut lines = 0u64;
    let mut bytes = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if chunk.is_empty() {
            continue;
        }
        ttfb.get_or_insert_with(|| t0.elapsed());
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        bytes += chunk.len() as u64;
        tail.extend_from_slice(&chunk[chunk.len().saturating_sub(512)..]);
        if tail.len() > 1024 {
            tail.drain(..tail.len() - 512);
        }
    }
    let total = t0.elapsed();
    let tail = String::from_utf8_lossy(&tail);
    if let Some(line) = tail.lines().last().filter(|l| l.contains("\"type\":\"error\"")) {
        return Err(format!("bootstrap ended with an error line: {line}").into());
    }
    Ok(BootstrapRun { rows: lines.saturating_sub(1), bytes, ttfb: ttfb.unwrap_or(total), total })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaPage {
    actions: Vec<IgnoredAny>,
    has_more: bool,
    last_sync_id: String,
}

/// One delta catch-up: pages `/sync/deltas?after=…&limit=…` from `after`
/// until `hasMore` is false. Returns (actions, pages, time, time this
/// harness spent parsing the pages).
pub(crate) async fn catch_up(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    after: u64,
    limit: usize,
) -> Result<(u64, u64, Duration, Duration), BoxError> {
    let c = catch_up_to_head(client, base, user, after, limit).await?;
    Ok((c.actions, c.pages, c.took, c.parsing))
}

/// What one delta catch-up read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CatchUp {
    pub actions: u64,
    pub pages: u64,
    pub took: Duration,
    /// Time this harness spent parsing the pages.
    pub parsing: Duration,
    /// The last page's `lastSyncId` (where the client ends).
    pub last: u64,
}

/// [`catch_up`], also returning where the client ended.
pub(crate) async fn catch_up_to_head(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    after: u64,
    limit: usize,
) -> Result<CatchUp, BoxError> {
    let t0 = Instant::now();
    let mut parsing = Duration::ZERO;
    let mut cursor = after.to_string();
    let mut actions = 0u64;
    let mut pages = 0u64;
    loop {
        let resp = client
            .get(format!("{base}/sync/deltas?after={cursor}&limit={limit}"))
            .bearer_auth(token(user))
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(format!("deltas answered {}", resp.status()).into());
        }
        let body = resp.bytes().await?;
        let tp = Instant::now();
        let page: DeltaPage = serde_json::from_slice(&body)?;
        parsing += tp.elapsed();
        actions += page.actions.len() as u64;
        pages += 1;
        if !page.has_more {
            cursor = page.last_sync_id;
            break;
        }
        if page.last_sync_id == cursor {
            return Err(format!("delta paging did not advance beyond {cursor}").into());
        }
        cursor = page.last_sync_id;
    }
    let last = cursor.parse().map_err(|_| format!("bad lastSyncId {cursor}"))?;
    Ok(CatchUp { actions, pages, took: t0.elapsed(), parsing, last })
}

#[derive(Deserialize)]
struct MutateResponse {
    results: Vec<MutateResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MutateResult {
    success: bool,
    sync_id: Option<String>,
    error: Option<String>,
}

/// The body of a mutate request updating `tasks` (title and priority), one
/// transaction each.
pub(crate) fn update_body(client_id: &str, tasks: &[&str], tag: u64) -> String {
    let mut body = String::with_capacity(64 + tasks.len() * 220);
    body.push_str(&format!("{{\"batchId\":\"{}\",\"transactions\":[", uuid::Uuid::new_v4()));
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"action\":\"UPDATE\",\"clientId\":\"{client_id}\",\"clientTxId\":\"{}\",\"modelId\":\"{task}\",\
             \"modelName\":\"Task\",\"payload\":{{\"title\":\"Edited {tag}-{i}\",\"priority\":{}}}}}",
            uuid::Uuid::new_v4(),
            (tag as usize + i) % 4
        ));
    }
    body.push_str("]}");
    body
}

/// Sends one mutate request; returns the sync ids of its successful
/// transactions and the first error, if any.
pub(crate) async fn mutate(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    body: String,
) -> Result<(Vec<u64>, Option<String>, usize), BoxError> {
    let resp = client
        .post(format!("{base}/sync/mutate"))
        .bearer_auth(token(user))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        return Err(format!("mutate answered {status}: {}", String::from_utf8_lossy(&bytes)).into());
    }
    let parsed: MutateResponse = serde_json::from_slice(&bytes)?;
    let mut ids = Vec::with_capacity(parsed.results.len());
    let mut error = None;
    let mut failed = 0;
    for r in parsed.results {
        match (r.success, r.sync_id) {
            (true, Some(id)) => ids.push(id.parse().map_err(|_| format!("bad syncId {id}"))?),
            _ => {
                failed += 1;
                error.get_or_insert(r.error.unwrap_or_else(|| "failure without a message".to_owned()));
            }
        }
    }
    Ok((ids, error, failed))
}

/// Result of a timed mutation phase.
pub(crate) struct MutationRun {
    /// Transactions that succeeded inside the measured window.
    pub committed: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Request latency (one request = `batch` transactions).
    pub latency: Hist,
}

impl MutationRun {
    pub fn tx_per_s(&self) -> f64 {
        self.committed as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` concurrent clients, each sending mutate requests of `batch`
/// task updates back to back, over its own tasks, for `warmup + measure`.
/// The requests that complete inside the measured window count (and give
/// the latencies); a request still running at its end does not.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn mutations(
    label: &str,
    client: &reqwest::Client,
    base: &str,
    user: &str,
    tasks: &[String],
    clients: usize,
    batch: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<MutationRun, BoxError> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let counter = Arc::new(AtomicU64::new(0));
    let ticker = Ticker::start(label, counter.clone(), "tx", start, warmup + measure);
    let per_client = (tasks.len() / clients).max(1);
    let mut handles = Vec::new();
    for c in 0..clients {
        let own: Vec<String> = tasks.iter().skip(c * per_client).take(per_client).cloned().collect();
        let own = if own.is_empty() { tasks.to_vec() } else { own };
        let client = client.clone();
        let base = base.to_owned();
        let user = user.to_owned();
        let counter = counter.clone();
        handles.push(tokio::spawn(async move {
            let client_id = format!("bench-client-{c}-{}", uuid::Uuid::new_v4());
            let mut hist = Hist::new();
            let (mut committed, mut failed) = (0u64, 0u64);
            let mut first_error = None;
            let mut n = 0u64;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let picked: Vec<&str> =
                    (0..batch).map(|i| own[(n as usize * batch + i) % own.len()].as_str()).collect();
                let body = update_body(&client_id, &picked, n);
                n += 1;
                let (ids, err, bad) = mutate(&client, &base, &user, body).await?;
                let done = Instant::now();
                // Throughput counts what completes inside the window (a
                // request that started during the warm-up included), so
                // long batches are not under-counted.
                if done >= measure_from && done <= end {
                    hist.record(done - t);
                    committed += ids.len() as u64;
                    failed += bad as u64;
                    counter.fetch_add(ids.len() as u64, Ordering::Relaxed);
                    if first_error.is_none() {
                        first_error = err;
                    }
                }
            }
            Ok::<_, BoxError>((committed, failed, first_error, hist))
        }));
    }
    let mut run = MutationRun { committed: 0, failed: 0, first_error: None, elapsed: measure, latency: Hist::new() };
    let mut error = None;
    for h in handles {
        match h.await? {
            Ok((c, f, e, hist)) => {
                run.committed += c;
                run.failed += f;
                if run.first_error.is_none() {
                    run.first_error = e;
                }
                run.latency.merge(&hist);
            }
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    ticker.stop().await;
    match error {
        Some(e) => Err(e),
        None => Ok(run),
    }
}
