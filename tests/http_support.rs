//! Support for the HTTP end-to-end tests: the example application's routes
//! on a [`TestDb`], in process or on a real TCP port, and
//! helpers to read responses.

use crate::TestDb;
use actix_web::{App, HttpServer};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use stratasync_actix::SyncHttp;
use stratasync_axum::SyncRouter;
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::storage::Pool;
use stratasync_core::SyncEngine;

/// The web framework a test server runs the example application on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// `stratasync-actix` (`taskboard::server`).
    Actix,
    /// `stratasync-axum` (`taskboard::server_axum`).
    Axum,
}

/// A running server of either adapter.
pub enum ServerHandle {
    /// An actix-web server.
    Actix(actix_web::dev::ServerHandle),
    /// An axum server task (aborted on stop).
    Axum(tokio::task::JoinHandle<()>),
}

impl ServerHandle {
    /// Starts the example application with `endpoints` on `adapter`, with
    /// `workers` actix worker threads (axum serves on the test's runtime).
    pub fn start(adapter: Adapter, endpoints: SyncEndpoints, pool: Pool, workers: usize) -> (SocketAddr, ServerHandle) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        match adapter {
            Adapter::Actix => {
                let routes = taskboard::server::routes(SyncHttp::from(endpoints), pool);
                let server = HttpServer::new(move || App::new().configure(routes.clone()))
                    .workers(workers)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(listener)
                    .expect("listen")
                    .run();
                let handle = server.handle();
                actix_web::rt::spawn(server);
                (addr, ServerHandle::Actix(handle))
            }
            Adapter::Axum => {
                listener.set_nonblocking(true).expect("non-blocking listener");
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let app = taskboard::server_axum::routes(&SyncRouter::from(endpoints), pool);
                let task = tokio::spawn(async move {
                    axum::serve(listener, app).await.expect("axum server");
                });
                (addr, ServerHandle::Axum(task))
            }
        }
    }

    /// Stops the server (actix: gracefully when `graceful`, at most one
    /// second; axum: at once).
    pub async fn stop(self, graceful: bool) {
        match self {
            ServerHandle::Actix(handle) => handle.stop(graceful).await,
            ServerHandle::Axum(task) => task.abort(),
        }
    }
}

/// The example server listening on `127.0.0.1:<random port>`, with one
/// worker thread, in this process.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: ServerHandle,
}

impl TestServer {
    /// Starts the example application over `engine` on `adapter`.
    pub async fn start_on(adapter: Adapter, db: &TestDb, engine: SyncEngine) -> TestServer {
        let (addr, handle) = ServerHandle::start(adapter, SyncEndpoints::new(engine), db.pool.clone(), 1);
        TestServer { addr, handle }
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
/// bob of the second (set up with [`TestDb::setup`]: no `S` actions).
pub async fn two_workspaces(db: &TestDb) -> (String, String) {
    let (a, b) = (crate::new_id(), crate::new_id());
    db.setup(&format!(
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

/// An HTTP/1.1 exchange over a raw TCP connection that reads nothing
/// unless asked: its receive buffer is tiny, so a response it leaves
/// unread backs up to the server after a few kilobytes.
pub struct RawHttp {
    stream: tokio::net::TcpStream,
}

/// The head of a response read from a [`RawHttp`].
#[derive(Debug, Clone)]
pub struct RawHead {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl RawHead {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl RawHttp {
    /// Connects to `addr` and sends `request` (the complete bytes).
    pub async fn send(addr: SocketAddr, request: &[u8]) -> RawHttp {
        use tokio::io::AsyncWriteExt;
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let mut stream = socket.connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send the request");
        RawHttp { stream }
    }

    /// The status of the response once its status line has arrived
    /// (waiting at most `within`), without taking anything off the socket.
    pub async fn peek_status(&self, within: Duration) -> u16 {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = [0u8; 12];
        loop {
            let n = tokio::time::timeout_at(deadline, self.stream.peek(&mut buf))
                .await
                .expect("a status line in time")
                .expect("peek");
            if n == buf.len() {
                let line = String::from_utf8_lossy(&buf);
                return line[9..12].parse().unwrap_or_else(|_| panic!("not a status line: {line:?}"));
            }
            assert!(n > 0, "the connection closed before a status line");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Reads the response head (at most `within`).
    pub async fn head(&mut self, within: Duration) -> RawHead {
        use tokio::io::AsyncReadExt;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(within, self.stream.read(&mut byte))
                .await
                .expect("the head in time")
                .expect("read the head");
            assert_eq!(n, 1, "the connection closed inside the head: {}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines.next().and_then(|l| l.get(9..12)).and_then(|s| s.parse().ok()).expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        RawHead { status, headers }
    }

    /// Reads a complete chunked body after [`RawHttp::head`] (at most
    /// `within`); panics if the connection closes before its last chunk.
    pub async fn read_chunked_body(&mut self, within: Duration) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut reader = tokio::io::BufReader::new(&mut self.stream);
        let read = async {
            let mut body = Vec::new();
            loop {
                let mut line = Vec::new();
                while !line.ends_with(b"\r\n") {
                    let byte = reader.read_u8().await.expect("a chunk size line");
                    line.push(byte);
                }
                let size = std::str::from_utf8(&line[..line.len() - 2]).expect("ASCII chunk size");
                let size = usize::from_str_radix(size, 16).expect("hexadecimal chunk size");
                let mut chunk = vec![0u8; size + 2];
                reader.read_exact(&mut chunk).await.expect("a whole chunk");
                if size == 0 {
                    return body;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        };
        tokio::time::timeout(within, read).await.expect("the body in time")
    }

    /// Reads a body of exactly `len` bytes (at most `within`).
    pub async fn read_exact(&mut self, len: usize, within: Duration) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut body = vec![0u8; len];
        tokio::time::timeout(within, self.stream.read_exact(&mut body))
            .await
            .expect("the body in time")
            .expect("the whole body");
        body
    }

    /// Reads until the server closes the connection (at most `within`).
    pub async fn read_to_close(&mut self, within: Duration) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut body = Vec::new();
        tokio::time::timeout(within, async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => body.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .expect("the server closed the connection in time");
        body
    }
}

/// `GET path` as `user` (development token), as raw request bytes.
pub fn raw_get(path: &str, user: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer token-{user}\r\n\r\n").into_bytes()
}

/// `POST path` with a JSON `body` as `user`, as raw request bytes.
pub fn raw_post(path: &str, user: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer token-{user}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Backends of this test database in `state` (`'idle in transaction'`,
/// `'active'`, …), other than the one asking.
pub async fn backends_in(db: &TestDb, state: &str) -> i64 {
    db.scalar(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND state = '{state}'"
    ))
    .await
}

/// Waits (at most `within`) until `check` holds; panics with `what`
/// otherwise.
pub async fn wait_for<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
