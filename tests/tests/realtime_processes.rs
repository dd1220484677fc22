//! Two server processes (the `taskboard` binary) on two ports, sharing
//! PostgreSQL and a private Redis: a mutation sent to process 1 reaches a
//! WebSocket subscriber of process 2. Both poll the log only every 60 s,
//! so a fast delivery can only have come through the Redis wake-up.
//!
//! Needs the binary built (`scripts/test.sh` builds it first).

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

fn binary() -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/taskboard
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("taskboard");
    assert!(path.exists(), "{} is missing: run `cargo build -p taskboard` first", path.display());
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A `taskboard` process, killed on drop.
struct Process {
    child: Child,
    port: u16,
}

impl Process {
    async fn start(database_url: &str, redis_url: &str) -> Process {
        let port = free_port();
        let child = Command::new(binary())
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", redis_url)
            .env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("SYNC_POLL_MS", "60000")
            .env("WORKERS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start taskboard");
        let process = Process { child, port };
        let client = awc::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Ok(res)) =
                tokio::time::timeout(Duration::from_secs(1), client.get(process.url("/health")).send()).await
            {
                if res.status().is_success() {
                    return process;
                }
            }
            assert!(Instant::now() < deadline, "taskboard on port {port} did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn insert_over_http(process: &Process, ws: &str, title: &str) -> u64 {
    let body = json!({"batchId": new_id(), "transactions": [{
        "action": "INSERT", "clientId": "p1", "clientTxId": new_id(), "modelId": new_id(), "modelName": "Task",
        "payload": {"workspaceId": ws, "title": title}}]});
    let mut res = awc::Client::new()
        .post(process.url("/sync/mutate"))
        .insert_header(("Authorization", "Bearer token-alice"))
        .send_json(&body)
        .await
        .expect("mutate request");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("mutate response");
    body["lastSyncId"].as_str().expect("lastSyncId").parse().expect("numeric sync id")
}

#[actix_web::test]
async fn a_mutation_on_one_process_reaches_a_subscriber_of_another() {
    let db = TestDb::new().await;
    let redis = RedisServer::start().await;
    let ws = workspace(&db, &["alice"]).await;
    let one = Process::start(&db.url, &redis.url()).await;
    let two = Process::start(&db.url, &redis.url()).await;

    let mut socket = WsClient::connect(&format!("ws://127.0.0.1:{}/sync/ws?token=token-alice", two.port)).await;
    let (replayed, _) = socket.subscribe_ok("alice", 0, None).await;
    assert!(replayed.is_empty());

    // Until process 2's Redis subscriber is connected, wake-ups can be lost
    // (delivery would then wait for the 60 s poll): write until one arrives.
    let mut warmed = false;
    for i in 0..50 {
        let id = insert_over_http(&one, &ws, &format!("warm-up {i}")).await;
        if socket.try_deltas_until(id, Duration::from_millis(300)).await.is_ok() {
            warmed = true;
            break;
        }
    }
    assert!(warmed, "process 2 never received a delta through redis");

    let mut latencies = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        let id = insert_over_http(&one, &ws, &format!("task {i}")).await;
        // Far below the 60 s poll: a delivery within it came through Redis.
        let ids = socket.deltas_until(id, Duration::from_secs(20)).await;
        assert_eq!(ids.last(), Some(&id));
        assert_ascending(&ids, "deltas on process 2");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "process 1 mutate → process 2 socket: p50 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}
