//! Property-based fuzzing of the HTTP endpoints of the example server (the
//! `taskboard` binary, and `taskboard-axum` for the axum adapter: a real
//! process): random query strings, headers and
//! bodies (garbage, oversized, deeply nested JSON, near-valid requests with
//! wrong types). For every request: no 5xx, no internals in the body, and
//! no write unless a mutation answered `success:true`. Afterwards the
//! process is still up, answers `/health`, and logged no panic.
//!
//! The seed is fixed (`STRATASYNC_FUZZ_SEED`, a number, overrides it) and
//! the case count modest (`STRATASYNC_FUZZ_CASES`, 200 by default). The
//! run is `…::actix` and `…::axum`, the same cases against each. Needs
//! the binaries built (`scripts/test.sh` builds them first).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stratasync_tests::http_support::{assert_no_internals, Adapter};
use stratasync_tests::process_support::binary_of;
use stratasync_tests::*;

/// The liveness bound of one request (never a timing assertion).
const LIVENESS: Duration = Duration::from_secs(60);
/// The server's body limit.
const BODY_LIMIT: usize = 1024 * 1024;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
}

/// The `taskboard` process under test, killed on drop.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(adapter: Adapter, database_url: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let log = std::env::temp_dir().join(format!("stratasync-fuzz-{}.log", uuid::Uuid::new_v4().simple()));
        let child = Command::new(binary_of(adapter))
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("WORKERS", "1")
            .env("RUST_LOG", "warn")
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start taskboard");
        let server = Server { child, port, log };
        let deadline = Instant::now() + LIVENESS;
        while server.health() != Some(200) {
            assert!(Instant::now() < deadline, "taskboard did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn health(&self) -> Option<u16> {
        match send(self.port, b"GET /health HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n") {
            Answer::Response { status, .. } => Some(status),
            Answer::Closed => None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// What the server answered.
#[derive(Debug)]
enum Answer {
    Response {
        status: u16,
        body: Vec<u8>,
    },
    /// The connection failed before a status line arrived.
    Closed,
}

/// Sends raw request bytes on a new connection and reads the answer to
/// the end (the request asks to close).
fn send(port: u16, request: &[u8]) -> Answer {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return Answer::Closed };
    stream.set_read_timeout(Some(LIVENESS)).expect("read timeout");
    stream.set_write_timeout(Some(LIVENESS)).expect("write timeout");
    // An oversized body may be refused before it is all sent.
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    if let Err(e) = &read {
        assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "no answer within {LIVENESS:?}");
    }
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n");
    match (response.get(9..12).and_then(|s| std::str::from_utf8(s).ok()?.parse().ok()), head_end) {
        (Some(status), Some(end)) => Answer::Response { status, body: response[end + 4..].to_vec() },
        _ => Answer::Closed,
    }
}

/// One generated request.
#[derive(Clone)]
struct Case {
    method: &'static str,
    path: &'static str,
    query: Vec<(String, String)>,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl std::fmt::Debug for Case {
    /// The request as text (bytes that are not UTF-8 shown as U+FFFD,
    /// long bodies cut), so a failure can be read and replayed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.bytes()).into_owned();
        let cut: String = text.chars().take(2000).collect();
        write!(f, "{cut:?}")?;
        if cut.len() < text.len() {
            write!(f, " … ({} bytes)", text.len())?;
        }
        Ok(())
    }
}

impl Case {
    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {}", self.method, self.path).into_bytes();
        for (i, (k, v)) in self.query.iter().enumerate() {
            out.push(if i == 0 { b'?' } else { b'&' });
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(body) = &self.body {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(body) = &self.body {
            out.extend_from_slice(body);
        }
        out
    }
}

/// The workspaces the fuzzer aims at: the caller's, another user's, and
/// ids that are not workspaces.
#[derive(Debug, Clone)]
struct Targets {
    own: String,
    foreign: String,
}

/// Short text: identifiers, ids (also in other spellings), numbers at and
/// past the edges, arbitrary Unicode including NUL and other control
/// characters.
fn text(targets: &Targets) -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9_-]{0,12}",
        Just(targets.own.clone()),
        Just(targets.foreign.clone()),
        Just("00000000-0000-4000-8000-000000000000".to_owned()),
        "-?[0-9]{1,25}",
        Just("9223372036854775808".to_owned()),
        "[\\PC]{0,40}",
        "[\\x00-\\x1f\\x7f]{1,4}[a-z]{0,4}",
        Just(targets.own.to_uppercase()),
        Just(format!("{{{}}}", targets.own)),
    ]
    .boxed()
}

/// A query value as it appears on the wire (escapes kept).
fn query_value(targets: &Targets) -> BoxedStrategy<String> {
    prop_oneof![
        text(targets).prop_map(|t| form_encode(&t)),
        "(%[0-9A-Fa-f]{2}|%[g-z]{2}|[a-z,+]|%2C){0,20}",
        proptest::collection::vec(text(targets), 0..30).prop_map(|items| form_encode(&items.join(","))),
        Just("Task,Task,Task,Label,Workspace,TaskLabel,Nope".to_owned()),
    ]
    .boxed()
}

fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn query(targets: &Targets) -> BoxedStrategy<Vec<(String, String)>> {
    let key = prop_oneof![
        Just("type".to_owned()),
        Just("firstSyncId".to_owned()),
        Just("onlyModels".to_owned()),
        Just("syncGroups".to_owned()),
        Just("schemaHash".to_owned()),
        Just("noSyncPackets".to_owned()),
        Just("after".to_owned()),
        Just("limit".to_owned()),
        Just("token".to_owned()),
        "[a-zA-Z%0-9]{1,8}",
    ];
    let few = proptest::collection::vec((key.clone(), query_value(targets)), 0..8);
    let many = proptest::collection::vec((key, query_value(targets)), 60..80);
    prop_oneof![8 => few, 1 => many].boxed()
}

/// Arbitrary JSON, with the protocol's keys among the random ones.
fn json_value(targets: &Targets) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::from(8.64e15)),
        Just(Value::from(-8_640_000_000_000_001i64)),
        (-1e6f64..1e6).prop_map(Value::from),
        text(targets).prop_map(Value::String),
    ];
    let key = prop_oneof![
        Just("batchId".to_owned()),
        Just("transactions".to_owned()),
        Just("requests".to_owned()),
        Just("firstSyncId".to_owned()),
        Just("modelName".to_owned()),
        Just("groupId".to_owned()),
        "[a-zA-Z]{1,10}",
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

/// A value for a model field: often the right type, often not.
fn field_value(targets: &Targets) -> BoxedStrategy<Value> {
    prop_oneof![
        json_value(targets),
        text(targets).prop_map(Value::String),
        (-1000i64..1000).prop_map(Value::from),
        Just(json!(1_700_000_000_000i64)),
        Just(Value::Null),
    ]
    .boxed()
}

/// A mutate body close to what the client sends, with random parts.
fn mutate_like(targets: &Targets) -> BoxedStrategy<Value> {
    let fields = prop_oneof![
        Just("workspaceId"),
        Just("title"),
        Just("description"),
        Just("priority"),
        Just("dueDate"),
        Just("completedAt"),
        Just("archivedAt"),
        Just("name"),
        Just("color"),
        Just("taskId"),
        Just("labelId"),
        Just("id"),
    ];
    let payload = proptest::collection::vec((fields, field_value(targets)), 0..6)
        .prop_map(|entries| Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    let action = prop_oneof![
        Just(json!("INSERT")),
        Just(json!("UPDATE")),
        Just(json!("DELETE")),
        Just(json!("ARCHIVE")),
        Just(json!("UNARCHIVE")),
        field_value(targets),
    ];
    let model = prop_oneof![
        Just(json!("Task")),
        Just(json!("Label")),
        Just(json!("Workspace")),
        Just(json!("TaskLabel")),
        field_value(targets),
    ];
    let transaction = (action, text(targets), text(targets), text(targets), model, payload).prop_map(
        |(action, client_id, tx_id, model_id, model_name, payload)| {
            json!({"action": action, "clientId": client_id, "clientTxId": tx_id, "modelId": model_id,
                   "modelName": model_name, "payload": payload})
        },
    );
    // An insert the validation accepts, with random text and numbers in it.
    let own = targets.own.clone();
    let insert = (text(targets), text(targets), "[a-f0-9]{8}", text(targets), -1000i64..1000).prop_map(
        move |(client_id, tx_id, suffix, title, priority)| {
            json!({"action": "INSERT", "clientId": client_id, "clientTxId": tx_id,
                   "modelId": format!("7a1e0000-0000-4000-8000-0000{suffix}"), "modelName": "Task",
                   "payload": {"workspaceId": own, "title": title, "priority": priority}})
        },
    );
    let batch_id = prop_oneof![field_value(targets), "[a-z0-9-]{1,36}".prop_map(Value::String)];
    let mixed = proptest::collection::vec(prop_oneof![transaction, insert.clone()], 0..4);
    let inserts = proptest::collection::vec(insert, 1..4);
    (batch_id, prop_oneof![mixed, inserts])
        .prop_map(|(batch_id, transactions)| json!({"batchId": batch_id, "transactions": transactions}))
        .boxed()
}

/// A batch body close to what the client sends, with random parts.
fn batch_like(targets: &Targets) -> BoxedStrategy<Value> {
    let item = (field_value(targets), field_value(targets), field_value(targets), field_value(targets)).prop_map(
        |(key, value, model, group)| json!({"indexedKey": key, "keyValue": value, "modelName": model, "groupId": group}),
    );
    (field_value(targets), proptest::collection::vec(item, 0..6))
        .prop_map(|(first, requests)| json!({"firstSyncId": first, "requests": requests}))
        .boxed()
}

fn body(targets: &Targets) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        4 => mutate_like(targets).prop_map(|v| v.to_string().into_bytes()),
        3 => batch_like(targets).prop_map(|v| v.to_string().into_bytes()),
        2 => json_value(targets).prop_map(|v| v.to_string().into_bytes()),
        2 => proptest::collection::vec(any::<u8>(), 0..256),
        1 => (1usize..20_000).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        1 => (1usize..10_000).prop_map(|depth| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()),
        1 => (BODY_LIMIT - 16..BODY_LIMIT + 4096).prop_map(|n| {
            let mut big = format!("{{\"batchId\":\"{}", "x".repeat(n)).into_bytes();
            big.extend_from_slice(b"\"}");
            big
        }),
    ]
    .boxed()
}

fn headers() -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    let auth = prop_oneof![
        Just(None),
        Just(Some(b"Bearer token-alice".to_vec())),
        Just(Some(b"Bearer token-bob".to_vec())),
        Just(Some(b"Bearer token-".to_vec())),
        Just(Some(b"Bearer  a b".to_vec())),
        proptest::collection::vec(32u8..=255, 0..40).prop_map(Some),
    ];
    let content_type = prop_oneof![
        Just(None),
        Just(Some(b"application/json".to_vec())),
        Just(Some(b"application/json; charset=utf-8".to_vec())),
        Just(Some(b"text/plain".to_vec())),
        Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        proptest::collection::vec(32u8..=126, 0..30).prop_map(Some),
    ];
    let extra = proptest::collection::vec(
        ("X-[A-Za-z0-9-]{1,12}", proptest::collection::vec(prop_oneof![32u8..=126, 128u8..=255], 0..64)),
        0..4,
    );
    // Half the requests carry what the client sends: a member's token and
    // JSON, so that the bodies reach validation and beyond.
    let client_auth = prop_oneof![Just(b"Bearer token-alice".to_vec()), Just(b"Bearer token-bob".to_vec())];
    let client =
        (client_auth, proptest::collection::vec(("X-[A-Za-z]{1,8}", "[ -~]{0,16}"), 0..2)).prop_map(|(auth, extra)| {
            let mut headers =
                vec![("Authorization".to_owned(), auth), ("Content-Type".to_owned(), b"application/json".to_vec())];
            headers.extend(extra.into_iter().map(|(n, v)| (n, v.into_bytes())));
            headers
        });
    let random = (auth, content_type, extra).prop_map(|(auth, content_type, extra)| {
        let mut headers = Vec::new();
        if let Some(auth) = auth {
            headers.push(("Authorization".to_owned(), auth));
        }
        if let Some(content_type) = content_type {
            headers.push(("Content-Type".to_owned(), content_type));
        }
        headers.extend(extra);
        headers
    });
    prop_oneof![client, random].boxed()
}

fn case(targets: &Targets) -> BoxedStrategy<Case> {
    let endpoint = prop_oneof![
        3 => Just(("GET", "/sync/bootstrap")),
        3 => Just(("GET", "/sync/deltas")),
        3 => Just(("POST", "/sync/batch")),
        5 => Just(("POST", "/sync/mutate")),
        1 => Just(("POST", "/sync/bootstrap")),
        1 => Just(("GET", "/sync/mutate")),
        1 => Just(("GET", "/health")),
    ];
    (endpoint, query(targets), headers(), proptest::option::weighted(0.8, body(targets)))
        .prop_map(|((method, path), query, headers, body)| Case {
            method,
            path,
            query,
            headers,
            body: if method == "POST" { body } else { None },
        })
        .boxed()
}

/// Whether a response reports a committed mutation.
fn wrote(case: &Case, status: u16, body: &[u8]) -> bool {
    case.path == "/sync/mutate"
        && status == 200
        && serde_json::from_slice::<Value>(body)
            .is_ok_and(|v| v["results"].as_array().is_some_and(|r| r.iter().any(|r| r["success"] == json!(true))))
}

mod random_requests_get_no_5xx_and_write_nothing_when_refused {
    use super::*;

    #[test]
    fn actix() {
        fuzz(Adapter::Actix);
    }

    #[test]
    fn axum() {
        fuzz(Adapter::Axum);
    }
}

fn fuzz(adapter: Adapter) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let db = rt.block_on(TestDb::new());
    let targets = rt.block_on(async {
        let (own, foreign) = http_support::two_workspaces(&db).await;
        db.execute(&format!(
            "INSERT INTO tasks (id, workspace_id, title, priority, created_at) \
             SELECT gen_random_uuid(), '{own}', 'seed ' || g, 1, now() FROM generate_series(1, 20) AS g"
        ))
        .await;
        Targets { own, foreign }
    });
    let mut server = Server::start(adapter, &db.url);
    let fingerprint = std::cell::Cell::new(rt.block_on(db.fingerprint()));
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let writes = std::cell::Cell::new(0u32);

    let seed = env_number("STRATASYNC_FUZZ_SEED", 0x5752_5453);
    let cases = env_number("STRATASYNC_FUZZ_CASES", 200) as u32;
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config { cases, max_shrink_iters: 256, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let result = runner.run(&case(&targets), |case| {
        let oversized = case.body.as_ref().is_some_and(|b| b.len() > BODY_LIMIT);
        match send(server.port, &case.bytes()) {
            Answer::Response { status, body } => {
                *statuses.borrow_mut().entry(status).or_default() += 1;
                prop_assert!(status < 500, "{status} for {case:?}: {}", String::from_utf8_lossy(&body));
                assert_no_internals(&body);
                let now = rt.block_on(db.fingerprint());
                if wrote(&case, status, &body) {
                    writes.set(writes.get() + 1);
                } else {
                    prop_assert_eq!(now, fingerprint.get(), "a refused request ({}) wrote: {:?}", status, case);
                }
                fingerprint.set(now);
            }
            // An oversized body may be refused (413) and the connection
            // closed while it is still being sent.
            Answer::Closed if oversized => {}
            Answer::Closed => return Err(TestCaseError::fail(format!("no answer to {case:?}"))),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{adapter:?}, seed {seed}: {e}");
    }
    let statuses = statuses.into_inner();
    eprintln!(
        "fuzz {adapter:?} seed {seed}, {cases} cases, statuses {statuses:?}, {} committed mutations",
        writes.get()
    );
    // The generator reaches past validation and auth (on a run of any size).
    if cases >= 100 {
        for status in [200, 400, 401] {
            assert!(statuses.contains_key(&status), "no {status} among {statuses:?}");
        }
    }

    assert!(server.child.try_wait().expect("process status").is_none(), "the server exited");
    assert_eq!(server.health(), Some(200), "the server still answers");
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}
