//! `examples/minimal`, the app of the README's "A new app from scratch":
//! the section shows exactly the example's files, and the built binary
//! starts on a database that does not exist yet, serves a mutation and a
//! bootstrap, and stops on SIGTERM.
//!
//! Needs the binary built (`scripts/test.sh` builds it first).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use stratasync_tests::http_support::json_of;

const SECTION: &str = "## A new app from scratch";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is inside the repository").to_owned()
}

/// The code blocks of the README section, by the file named on the line
/// before each (a line ending in "`<path>`:"). Blocks without such a line
/// (shell sessions) are left out.
fn readme_files() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let start = readme.find(&format!("\n{SECTION}\n")).unwrap_or_else(|| panic!("README has no `{SECTION}`"));
    let section = &readme[start + 1..];
    let section = &section[..section[SECTION.len()..].find("\n## ").map_or(section.len(), |i| i + SECTION.len())];
    let mut files = BTreeMap::new();
    let mut lines = section.lines();
    let mut previous = "";
    while let Some(line) = lines.next() {
        if line.starts_with("```") {
            let mut block = String::new();
            for body in lines.by_ref() {
                if body.starts_with("```") {
                    break;
                }
                block.push_str(body);
                block.push('\n');
            }
            let path = previous.trim_end().strip_suffix("`:").and_then(|s| s.rsplit_once('`')).map(|(_, p)| p);
            if let Some(path) = path {
                assert!(files.insert(path.to_owned(), block).is_none(), "{path} is shown twice");
            }
            previous = "";
        } else if !line.trim().is_empty() {
            previous = line;
        }
    }
    files
}

/// Every file of `examples/minimal`, by its path relative to that folder.
fn example_files() -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("read the example folder") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("below the root").to_string_lossy().replace('\\', "/");
                out.insert(relative, std::fs::read_to_string(&path).expect("a text file"));
            }
        }
    }
    let root = repo_root().join("examples/minimal");
    let mut files = BTreeMap::new();
    walk(&root, &root, &mut files);
    files
}

#[test]
fn the_readme_section_shows_exactly_the_example() {
    let shown = readme_files();
    let example = example_files();
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        example.keys().collect::<Vec<_>>(),
        "the README section must show every file of examples/minimal, and only those"
    );
    for (path, text) in &example {
        assert_eq!(&shown[path], text, "README block of {path} differs from examples/minimal/{path}");
    }
}

fn binary() -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/minimal
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("minimal");
    assert!(path.exists(), "{} is missing: run `cargo build -p minimal` first", path.display());
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A database name not yet created; dropped (if the app created it) when
/// the test ends.
struct FreshDatabase {
    name: String,
    url: String,
}

impl FreshDatabase {
    fn new() -> FreshDatabase {
        let name = format!("stratasync_test_minimal_{}", uuid::Uuid::new_v4().simple());
        let admin = stratasync_tests::admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        FreshDatabase { url: format!("{base}/{name}"), name }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let mut conn =
                    AsyncPgConnection::establish(&stratasync_tests::admin_url()).await.expect("connect to PostgreSQL");
                conn.batch_execute(&sql).await.expect("drop the test database");
            });
        })
        .join();
    }
}

/// The `minimal` process, killed on drop if it is still running.
struct App {
    child: Child,
    port: u16,
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Starts the binary and waits until `/health` answers 200.
    async fn start(database_url: &str) -> App {
        let port = free_port();
        let child = Command::new(binary())
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the minimal app");
        let mut app = App { child, port };
        let client = awc::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = app.child.try_wait().expect("process status") {
                panic!("the minimal app exited before serving: {status}");
            }
            if let Ok(Ok(res)) =
                tokio::time::timeout(Duration::from_secs(1), client.get(app.url("/health")).send()).await
            {
                if res.status().is_success() {
                    return app;
                }
            }
            assert!(Instant::now() < deadline, "the minimal app on port {port} did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits (at most 30 s) for the process to exit.
    async fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("process status") {
                return status;
            }
            assert!(Instant::now() < deadline, "the minimal app did not stop on SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn bootstrap_lines(app: &App, user: &str) -> Vec<Value> {
    let mut res = awc::Client::new()
        .get(app.url("/sync/bootstrap?type=full"))
        .insert_header(("Authorization", format!("Bearer token-{user}")))
        .send()
        .await
        .expect("bootstrap request");
    assert_eq!(res.status(), 200);
    let body = res.body().await.expect("bootstrap body");
    body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(json_of).collect()
}

#[actix_web::test]
async fn the_minimal_app_creates_its_database_serves_and_stops() {
    let db = FreshDatabase::new();
    let mut app = App::start(&db.url).await;

    let project = "7a1e0000-0000-4000-8000-000000000001";
    let body = json!({"batchId": "b1", "transactions": [{
        "action": "INSERT", "clientId": "curl", "clientTxId": "tx-1", "modelId": project,
        "modelName": "Project", "payload": {"ownerId": "alice", "name": "First project"}}]});
    let mut res = awc::Client::new()
        .post(app.url("/sync/mutate"))
        .insert_header(("Authorization", "Bearer token-alice"))
        .send_json(&body)
        .await
        .expect("mutate request");
    assert_eq!(res.status(), 200);
    let answer = json_of(&res.body().await.expect("mutate body"));
    assert_eq!(
        answer,
        json!({"lastSyncId": "1", "results": [{"clientTxId": "tx-1", "success": true, "syncId": "1"}], "success": true})
    );

    let lines = bootstrap_lines(&app, "alice").await;
    assert_eq!(
        lines,
        [
            // The schema hash of its one model (`ClientSchema::hash`).
            json!({"lastSyncId": "1", "returnedModelsCount": {"Project": 1}, "schemaHash": "b9be2d5899d94fc0",
                   "subscribedSyncGroups": ["alice"]}),
            json!({"__class": "Project", "id": project, "ownerId": "alice", "name": "First project"}),
        ]
    );
    // The project's group is its owner: nobody else sees it.
    let lines = bootstrap_lines(&app, "bob").await;
    assert_eq!(lines.len(), 1, "bob must see no project: {lines:?}");
    assert_eq!(lines[0]["returnedModelsCount"], json!({"Project": 0}));

    let status = app.terminate().await;
    assert!(status.success(), "the minimal app exited with {status} on SIGTERM");
}
