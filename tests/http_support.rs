//! Support for the HTTP end-to-end tests: the example application's routes
//! on a [`TestDb`], in process or on a real TCP port, and
//! helpers to read responses.

use crate::TestDb;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use stratasync_actix::SyncHttp;
use stratasync_core::SyncEngine;

/// The example application's routes (`/sync/*`, `/health`) over `engine`.
pub fn routes_with(db: &TestDb, engine: SyncEngine) -> impl Fn(&mut actix_web::web::ServiceConfig) + Clone {
    taskboard::server::routes(SyncHttp::new(engine), db.pool.clone())
}

/// The example application's routes over the test database's engine.
pub fn routes(db: &TestDb) -> impl Fn(&mut actix_web::web::ServiceConfig) + Clone {
    routes_with(db, db.engine())
}

/// The example server listening on `127.0.0.1:<random port>`, with one
/// worker thread, in this process.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: ServerHandle,
}

impl TestServer {
    /// Starts the example application over `engine`.
    pub async fn start_with(db: &TestDb, engine: SyncEngine) -> TestServer {
        let routes = routes_with(db, engine);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let server = HttpServer::new(move || App::new().configure(routes.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .expect("listen")
            .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TestServer { addr, handle }
    }

    /// Starts the example application over the test database's engine.
    pub async fn start(db: &TestDb) -> TestServer {
        TestServer::start_with(db, db.engine()).await
    }

    /// The absolute URL of `path` (with its query).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server (gracefully, at most one second).
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// An HTTP client with a generous timeout.
pub fn client() -> awc::Client {
    awc::Client::builder().timeout(Duration::from_secs(120)).finish()
}

/// The `Authorization` header value of the example's development token.
pub fn bearer(user: &str) -> String {
    format!("Bearer token-{user}")
}

/// Parses a response body as JSON.
pub fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// Parses an NDJSON body; every line must end with `\n`.
pub fn lines_of(body: &[u8]) -> Vec<Value> {
    if body.is_empty() {
        return Vec::new();
    }
    assert!(body.ends_with(b"\n"), "NDJSON must end with a newline");
    body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(json_of).collect()
}

/// A validation body with its (opaque) `requestId` checked and removed,
/// for exact comparison.
pub fn without_request_id(mut body: Value) -> Value {
    let id = body.get("requestId").and_then(Value::as_str).unwrap_or_default().to_owned();
    assert!(
        id.strip_prefix("req-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric())),
        "requestId {id:?} is not req-<base36>"
    );
    body.as_object_mut().map(|o| o.remove("requestId"));
    body
}

/// Fails if a response body carries anything internal: SQL, database
/// error text, Rust source paths or panics.
pub fn assert_no_internals(body: &[u8]) {
    let text = String::from_utf8_lossy(body).to_lowercase();
    for needle in [
        "select ",
        "insert ",
        "relation",
        "syntax error",
        "sync_actions",
        "postgres",
        "diesel",
        ".rs:",
        "panicked",
        "/work/",
    ] {
        assert!(!text.contains(needle), "response leaks {needle:?}: {text}");
    }
}

/// The resident memory of this process, in KiB (Linux `VmRSS`). Panics
/// where it cannot be read: a memory test must not pass on a reading of 0.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|e| panic!("the memory test needs /proc/self/status: {e}"));
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/self/status"));
    assert!(kib > 0, "VmRSS reads 0 KiB");
    kib
}

/// Two workspaces, `Alpha` and `Beta`: alice is a member of the first,
/// bob of the second.
pub async fn two_workspaces(db: &TestDb) -> (String, String) {
    let (a, b) = (crate::new_id(), crate::new_id());
    db.execute(&format!(
        "INSERT INTO workspaces (id, name, created_at) VALUES ('{a}', 'Alpha', '2024-06-15T12:00:00Z'), \
                                                              ('{b}', 'Beta', '2024-06-15T12:00:00Z');
         INSERT INTO sync_group_memberships (user_id, group_id, group_type) VALUES
           ('alice', '{a}', 'workspace'), ('bob', '{b}', 'workspace');"
    ))
    .await;
    (a, b)
}

/// One transaction as the client sends it, with a fresh `clientTxId`.
pub fn transaction(action: &str, model: &str, id: &str, payload: Value) -> Value {
    serde_json::json!({"action": action, "clientId": "device-1", "clientTxId": crate::new_id(), "modelId": id,
                       "modelName": model, "payload": payload})
}

/// A mutate body with a fresh `batchId`.
pub fn mutate_body(transactions: Vec<Value>) -> Value {
    serde_json::json!({"batchId": crate::new_id(), "transactions": transactions})
}
