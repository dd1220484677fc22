//! The demo workspace of `cargo run -p taskboard`: created once, on an
//! empty database only, and announced with lines that work as printed.
//!
//! The process test runs `taskboard` and `taskboard-axum`; it needs the
//! binaries built (`scripts/test.sh` builds them).

use serde_json::Value;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use stratasync_core::engine::BootstrapParams;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::process_support::binary_of;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;
use taskboard::demo::{self, Demo};

fn count_of(metadata: &Value, model: &str) -> i64 {
    metadata["returnedModelsCount"][model].as_i64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_workspace_is_created_once_and_only_on_an_empty_database() {
    let db = TestDb::new().await;
    // Two nodes starting together on a fresh database: one creates it.
    let (a, b) = tokio::join!(demo::seed_if_empty(&db.pool), demo::seed_if_empty(&db.pool));
    let outcomes = [a.unwrap(), b.unwrap()];
    assert!(outcomes.contains(&Demo::Seeded) && outcomes.contains(&Demo::Present), "{outcomes:?}");
    assert_eq!(demo::seed_if_empty(&db.pool).await.unwrap(), Demo::Present);
    assert_eq!(db.scalar("SELECT count(*) FROM workspaces").await, 1);

    let ws = demo::WORKSPACE_ID.to_string();
    for member in demo::MEMBERS {
        let lines = collect_lines(db.engine().bootstrap(&user(member, &[&ws]), BootstrapParams::default())).await;
        let metadata = &lines[0];
        assert_eq!(metadata["subscribedSyncGroups"][0], ws.as_str());
        let counts: Vec<i64> =
            ["Workspace", "Task", "Label", "TaskLabel"].iter().map(|m| count_of(metadata, m)).collect();
        assert_eq!(counts, [1, 5, 3, 4]);
        assert_eq!(lines.len(), 1 + 13);
    }
    // The memberships are real: the engine resolves them for the token.
    let groups = stratasync_core::storage::memberships::groups_of(&db.pool, "bob").await.unwrap();
    assert_eq!(groups, [ws]);

    // A database with data of its own gets no demo.
    let other = TestDb::new().await;
    workspace(&other, &["carol"]).await;
    assert_eq!(demo::seed_if_empty(&other.pool).await.unwrap(), Demo::Skipped);
    assert_eq!(other.scalar("SELECT count(*) FROM workspaces").await, 1);
    assert_eq!(other.scalar("SELECT count(*) FROM tasks").await, 0);
}

/// A `taskboard` (or `taskboard-axum`) process with its stdout piped,
/// killed on drop.
struct Process(Child, u16);

impl Process {
    fn start(adapter: Adapter, database_url: &str, no_demo: bool) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(binary_of(adapter));
        command
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("WORKERS", "1")
            .env("RUST_LOG", "warn")
            .env_remove("TASKBOARD_TOKENS")
            .env_remove("REDIS_URL")
            .env_remove("TASKBOARD_NO_DEMO")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if no_demo {
            command.arg("--no-demo");
        }
        Process(command.spawn().expect("start taskboard"), port)
    }

    /// Waits until `/health` answers 200.
    async fn healthy(&self) {
        let url = format!("http://127.0.0.1:{}/health", self.1);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Ok(res)) = tokio::time::timeout(Duration::from_secs(1), awc::Client::new().get(&url).send()).await
            {
                if res.status().is_success() {
                    return;
                }
            }
            assert!(std::time::Instant::now() < deadline, "taskboard did not become healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads stdout up to the line containing `needle`; `None` if stdout
    /// ends first.
    async fn line_with(&mut self, needle: &'static str) -> Option<String> {
        let stdout = self.0.stdout.take().expect("stdout piped");
        let read = tokio::task::spawn_blocking(move || {
            std::io::BufReader::new(stdout).lines().map_while(Result::ok).find(|l| l.contains(needle))
        });
        tokio::time::timeout(Duration::from_secs(60), read).await.expect("taskboard printed nothing in 60 s").unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The URL and token of a printed `curl -s "<url>" -H "Authorization: Bearer <token>"` line.
fn url_and_token(line: &str) -> (String, String) {
    let quoted: Vec<&str> = line.split('"').collect();
    let token = quoted[3].strip_prefix("Authorization: Bearer ").expect("a bearer header");
    (quoted[1].to_owned(), token.to_owned())
}

async fn the_server_prints_working_try_it_lines_and_honours_the_opt_out(adapter: Adapter) {
    let db = TestDb::new().await;
    let mut server = Process::start(adapter, &db.url, false);
    let line = server.line_with("/sync/bootstrap").await.expect("a bootstrap line on stdout");
    let (url, token) = url_and_token(&line);
    assert_eq!(token, "token-alice");
    let mut res = awc::Client::new().get(&url).bearer_auth(&token).send().await.expect("the printed URL answers");
    assert!(res.status().is_success(), "{}", res.status());
    let body = res.body().await.unwrap();
    let metadata: Value = serde_json::from_slice(body.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(count_of(&metadata, "Task"), 5);
    drop(server);

    // `--no-demo`: once serving, it has created nothing, and it printed
    // no demo (everything it wrote before it was stopped).
    let empty = TestDb::new().await;
    let mut server = Process::start(adapter, &empty.url, true);
    server.healthy().await;
    assert_eq!(empty.scalar("SELECT count(*) FROM workspaces").await, 0);
    let _ = server.0.kill();
    assert_eq!(server.line_with("Demo workspace").await, None);
}

on_both_adapters!(the_server_prints_working_try_it_lines_and_honours_the_opt_out);
