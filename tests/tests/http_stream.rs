//! A bootstrap of more than 100,000 rows over a real TCP port: every row
//! arrives, in keyset order within each model, and the process's resident
//! memory stays flat while it streams.
//!
//! Alone in its own test binary, so no other test shares the process whose
//! memory is measured.

use actix_web::http::{header, StatusCode};
use futures_util::StreamExt;
use serde_json::Value;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::http_support::*;
use stratasync_tests::*;
use taskboard::seed::{seed, SeedOptions};

const TASKS: i64 = 50_000;
/// The generous absolute bound the test asserts on resident-memory growth.
/// It also asserts growth below half the streamed NDJSON (about 24 MiB
/// here), which holding the response in memory would exceed; the measured
/// growth is about 1 MiB.
const MAX_GROWTH_KIB: u64 = 64 * 1024;

#[derive(Default)]
struct Streamed {
    lines: usize,
    bytes: usize,
    chunks: usize,
    metadata: Option<Value>,
    /// Rows per model, in the order the models appeared.
    counts: Vec<(String, u64)>,
    peak_rss_kib: u64,
}

/// The sort key of a row within its model: the keyset cursor.
fn cursor(row: &Value) -> Vec<String> {
    let field = |k: &str| row[k].as_str().unwrap_or_else(|| panic!("{k} in {row}")).to_owned();
    match row["__class"].as_str() {
        Some("TaskLabel") => vec![field("taskId"), field("labelId")],
        _ => vec![field("id")],
    }
}

/// Streams a bootstrap, checking each line as it arrives and keeping no rows.
async fn stream_bootstrap(client: &awc::Client, server: &TestServer, query: &str) -> Streamed {
    let mut res = client
        .get(server.url(&format!("/sync/bootstrap?{query}")))
        .insert_header((header::AUTHORIZATION, bearer("alice")))
        .send()
        .await
        .expect("bootstrap request");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get(header::TRANSFER_ENCODING).unwrap(), "chunked");
    let mut out = Streamed { peak_rss_kib: rss_kib(), ..Streamed::default() };
    let mut pending: Vec<u8> = Vec::new();
    let mut last: Option<(String, Vec<String>)> = None;
    while let Some(chunk) = res.next().await {
        let chunk = chunk.expect("chunk");
        out.chunks += 1;
        out.bytes += chunk.len();
        pending.extend_from_slice(&chunk);
        let complete = pending.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for line in pending[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let value: Value = serde_json::from_slice(line).expect("line is JSON");
            out.lines += 1;
            if out.metadata.is_none() {
                assert!(value.get("lastSyncId").is_some(), "metadata comes first: {value}");
                out.metadata = Some(value);
                continue;
            }
            let class = value["__class"].as_str().unwrap_or_else(|| panic!("row without __class: {value}")).to_owned();
            let key = cursor(&value);
            match out.counts.last_mut() {
                Some((c, n)) if *c == class => *n += 1,
                _ => {
                    assert!(out.counts.iter().all(|(c, _)| *c != class), "{class} rows are not contiguous");
                    out.counts.push((class.clone(), 1));
                }
            }
            if let Some((prev_class, prev_key)) = &last {
                if *prev_class == class {
                    assert!(key > *prev_key, "{class} out of order: {prev_key:?} then {key:?}");
                }
            }
            last = Some((class, key));
            if out.lines.is_multiple_of(5_000) {
                out.peak_rss_kib = out.peak_rss_kib.max(rss_kib());
            }
        }
        pending.drain(..complete);
    }
    assert!(pending.is_empty(), "the stream ends with a newline");
    out.peak_rss_kib = out.peak_rss_kib.max(rss_kib());
    out
}

async fn bootstrap_of_100k_rows_streams_in_order_with_flat_memory(adapter: Adapter) {
    let db = TestDb::new().await;
    let opts = SeedOptions::new(&["alice"], TASKS);
    seed(&db.pool, &opts).await.expect("seed");
    let server = TestServer::start_on(adapter, &db, db.engine()).await;
    let client = client();

    // Warm up connections, pools and the allocator with a small bootstrap.
    let warm = stream_bootstrap(&client, &server, "onlyModels=Workspace%2CLabel").await;
    assert_eq!(warm.counts, [("Workspace".to_owned(), 1), ("Label".to_owned(), opts.labels as u64)]);

    let before = rss_kib();
    let started = std::time::Instant::now();
    let full = stream_bootstrap(&client, &server, "type=full").await;
    let elapsed = started.elapsed();
    let after = rss_kib();

    let expected = [
        ("Workspace".to_owned(), 1),
        ("Task".to_owned(), TASKS as u64),
        ("Label".to_owned(), opts.labels as u64),
        ("TaskLabel".to_owned(), opts.task_labels as u64),
    ];
    assert_eq!(full.counts, expected);
    let rows: u64 = expected.iter().map(|(_, n)| n).sum();
    assert!(rows >= 100_000, "{rows}");
    assert_eq!(full.lines as u64, rows + 1);
    let counts = &full.metadata.as_ref().unwrap()["returnedModelsCount"];
    for (model, n) in &expected {
        assert_eq!(counts[model].as_u64(), Some(*n), "{model}");
    }
    assert!(full.chunks > 10, "the response arrived in {} chunks: it must stream", full.chunks);

    let growth = full.peak_rss_kib.saturating_sub(before);
    println!(
        "bootstrap of {rows} rows ({} MiB of NDJSON, {} chunks) in {elapsed:.2?}: RSS before {before} KiB, \
         peak {} KiB, after {after} KiB, peak growth {growth} KiB ({:.1} MiB)",
        full.bytes / (1024 * 1024),
        full.chunks,
        full.peak_rss_kib,
        growth as f64 / 1024.0
    );
    assert!(growth < MAX_GROWTH_KIB, "resident memory grew by {growth} KiB while streaming {rows} rows");
    let half_of_stream = (full.bytes / 2 / 1024) as u64;
    assert!(
        growth < half_of_stream,
        "memory grew by {growth} KiB for a {} KiB stream: it was buffered",
        full.bytes / 1024
    );
    server.stop().await;
}

on_both_adapters!(bootstrap_of_100k_rows_streams_in_order_with_flat_memory);
