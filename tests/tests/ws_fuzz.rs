//! Property-based fuzzing (`proptest`) of WebSocket client frames against a
//! real `taskboard` process (and `taskboard-axum`, for the axum adapter:
//! the run is `…::actix` and `…::axum`, the same cases against each): random text, binary, fragmented and control
//! frames, reserved opcodes, unmasked frames, raw garbage, random and
//! huge JSON, malformed subscribes. After every case the server must still
//! be up and deliver another client's live deltas, nothing may have been
//! written, every answer must be a well-formed frame of the protocol, and
//! the process must never have panicked.
//!
//! The seed is fixed; `STRATASYNC_FUZZ_SEED` (a number) varies it and
//! `STRATASYNC_FUZZ_CASES` sets the number of cases (default 128).
//!
//! Needs the binaries built (`scripts/test.sh` builds them first).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use std::cell::{Cell, RefCell};
use stratasync_tests::http_support::Adapter;
use stratasync_tests::process_support::Taskboard;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

const DEFAULT_SEED: u64 = 0x5EED_0010;
const DEFAULT_CASES: u32 = 128;
/// The server's message limit here (`SYNC_WS_MAX_MESSAGE_BYTES`), low
/// enough that huge messages stay cheap to send.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// One thing a client sends.
#[derive(Debug, Clone)]
enum Op {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A message split over a first frame and continuations (one part: a
    /// single frame).
    Fragmented { binary: bool, parts: Vec<Vec<u8>> },
    /// A close (0x8), ping (0x9) or pong (0xA) frame.
    Control { opcode: u8, payload: Vec<u8> },
    /// Any frame header at all: reserved opcodes, unmasked, stray
    /// continuations.
    Raw { fin: bool, opcode: u8, masked: bool, payload: Vec<u8> },
    /// Bytes that are not a frame.
    Garbage(Vec<u8>),
    /// A JSON text of `groups` group names: a subscribe or an array.
    Huge { subscribe: bool, groups: usize },
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!("subscribe")),
        Just(json!("token-alice")),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("type".to_owned()), Just("token".to_owned()), Just("groups".to_owned()), "[a-zA-Z]{0,8}"]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A `subscribe`, valid or not: every field absent, well-typed or not
/// (valid ones are the likeliest, so that cases also replay and go live).
fn subscribe_like() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![6 => Just(json!("subscribe")), 1 => leaf()];
    let token = prop::option::weighted(
        0.9,
        prop_oneof![6 => Just(json!("token-alice")), 1 => Just(json!("token-bob")), 1 => Just(json!("token-")), 1 => leaf()],
    );
    let after = prop::option::of(prop_oneof![
        4 => Just(json!("0")),
        1 => "[0-9]{1,24}".prop_map(Value::from),
        1 => leaf()
    ]);
    let group = prop_oneof![4 => "[a-z0-9-]{0,40}".prop_map(Value::from), 1 => leaf()];
    let groups = prop::option::of(prop_oneof![
        4 => prop::collection::vec(group, 0..8).prop_map(Value::Array),
        1 => (0usize..3000).prop_map(|n| Value::Array((0..n).map(|i| json!(format!("g{i}"))).collect())),
        1 => leaf(),
    ]);
    let extra = prop::option::weighted(0.2, json_value());
    (kind, token, after, groups, extra).prop_map(|(kind, token, after, groups, extra)| {
        let mut object = Map::new();
        object.insert("type".to_owned(), kind);
        for (name, value) in [("token", token), ("afterSyncId", after), ("groups", groups), ("extra", extra)] {
            if let Some(value) = value {
                object.insert(name.to_owned(), value);
            }
        }
        Value::Object(object)
    })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => "\\PC{0,64}",
        1 => any::<String>(),
        2 => json_value().prop_map(|v| v.to_string()),
        4 => subscribe_like().prop_map(|v| v.to_string()),
        // Cut short.
        1 => (subscribe_like(), any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let text = v.to_string();
            let keep = at.index(text.chars().count().max(1));
            text.chars().take(keep).collect()
        }),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => text().prop_map(Op::Text),
        1 => bytes(64).prop_map(Op::Binary),
        1 => subscribe_like().prop_map(|v| Op::Binary(v.to_string().into_bytes())),
        1 => (any::<bool>(), prop::collection::vec(bytes(32), 1..5))
            .prop_map(|(binary, parts)| Op::Fragmented { binary, parts }),
        1 => (text(), any::<prop::sample::Index>()).prop_map(|(text, at)| {
            let bytes = text.into_bytes();
            let at = at.index(bytes.len() + 1);
            Op::Fragmented { binary: false, parts: vec![bytes[..at].to_vec(), bytes[at..].to_vec()] }
        }),
        1 => (prop_oneof![Just(0x8u8), Just(0x9), Just(0xA)], bytes(125))
            .prop_map(|(opcode, payload)| Op::Control { opcode, payload }),
        1 => (any::<bool>(), 0u8..16, any::<bool>(), bytes(64))
            .prop_map(|(fin, opcode, masked, payload)| Op::Raw { fin, opcode, masked, payload }),
        1 => bytes(32).prop_map(Op::Garbage),
        1 => (any::<bool>(), 0usize..40_000).prop_map(|(subscribe, groups)| Op::Huge { subscribe, groups }),
    ]
}

/// The server, and a subscriber whose live deltas must keep arriving.
struct Fuzz {
    db: TestDb,
    ws: String,
    server: Taskboard,
    healthy: tokio::sync::Mutex<WsClient>,
    writes: Cell<i64>,
    /// How the cases ended and what they were answered, for the summary.
    seen: RefCell<std::collections::BTreeMap<String, usize>>,
}

impl Fuzz {
    async fn start(adapter: Adapter) -> Fuzz {
        let db = TestDb::new().await;
        let ws = workspace(&db, &["alice"]).await;
        let max = MAX_MESSAGE_BYTES.to_string();
        let env = [("SYNC_WS_MAX_MESSAGE_BYTES", max.as_str()), ("SYNC_WS_MAX_PENDING_SUBSCRIBES", "2")];
        let server = Taskboard::start_on(adapter, &db.url, &[env[0], env[1], ("RUST_LOG", "warn")]).await;
        let mut healthy = WsClient::connect(&format!("ws://127.0.0.1:{}/sync/ws?token=token-alice", server.port)).await;
        healthy.subscribe_ok("alice", 0, None).await;
        Fuzz {
            db,
            ws,
            server,
            healthy: tokio::sync::Mutex::new(healthy),
            writes: Cell::new(0),
            seen: RefCell::default(),
        }
    }

    /// An honest write through the server; its sync id.
    async fn write(&self) -> u64 {
        let body = json!({"batchId": new_id(), "transactions": [{
            "action": "INSERT", "clientId": "honest", "clientTxId": new_id(), "modelId": new_id(),
            "modelName": "Task", "payload": {"workspaceId": self.ws, "title": "honest"}}]});
        let mut res = awc::Client::new()
            .post(self.server.url("/sync/mutate"))
            .insert_header(("Authorization", "Bearer token-alice"))
            .send_json(&body)
            .await
            .expect("mutate request");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("mutate response");
        self.writes.set(self.writes.get() + 1);
        body["lastSyncId"].as_str().expect("lastSyncId").parse().expect("numeric sync id")
    }

    async fn case(&self, ops: &[Op]) -> Result<(), TestCaseError> {
        let mut socket = RawSocket::connect(self.server.addr(), "/sync/ws?token=token-alice").await;
        // Close codes a close of ours may have the server echo.
        let mut echoed = Vec::new();
        for op in ops {
            let sent = match op {
                Op::Text(text) => socket.try_send_raw(true, 0x1, text.as_bytes(), true).await,
                Op::Binary(bytes) => socket.try_send_raw(true, 0x2, bytes, true).await,
                Op::Fragmented { binary, parts } => send_fragments(&mut socket, *binary, parts).await,
                Op::Control { opcode, payload } => {
                    if let [a, b, ..] = payload[..] {
                        echoed.push(u16::from_be_bytes([a, b]));
                    }
                    socket.try_send_raw(true, *opcode, payload, true).await
                }
                Op::Raw { fin, opcode, masked, payload } => socket.try_send_raw(*fin, *opcode, payload, *masked).await,
                Op::Garbage(bytes) => socket.try_write(bytes).await,
                Op::Huge { subscribe, groups } => {
                    let names: Vec<String> = (0..*groups).map(|i| format!("group-{i}")).collect();
                    let text = if *subscribe {
                        json!({"groups": names, "token": "token-alice", "type": "subscribe"}).to_string()
                    } else {
                        json!(names).to_string()
                    };
                    socket.try_send_raw(true, 0x1, text.as_bytes(), true).await
                }
            };
            if sent.is_err() {
                // The server closed the connection: what it answered is read below.
                break;
            }
        }
        // Meanwhile the server serves another client's live deltas (and
        // the fuzzing socket's subscribes, if any, have time to go live).
        let id = self.write().await;
        let ids = self.healthy.lock().await.deltas_until(id, WAIT).await;
        prop_assert_eq!(ids, vec![id]);

        socket.shutdown_write().await;
        let (code, texts) = socket.until_close().await;
        let mut answers = texts.iter().map(|text| check_answer(text)).collect::<Result<Vec<_>, _>>()?;
        answers.push(format!("close {code:?}"));
        for answer in answers {
            *self.seen.borrow_mut().entry(answer).or_default() += 1;
        }
        if let Some(code) = code {
            prop_assert!([1000, 1002, 1007, 1009].contains(&code) || echoed.contains(&code), "closed with {code}");
        }

        // Nothing was written but the honest writes.
        prop_assert_eq!(self.db.scalar("SELECT count(*) FROM sync_actions").await, self.writes.get());
        prop_assert_eq!(self.db.scalar("SELECT count(*) FROM tasks").await, self.writes.get());
        Ok(())
    }
}

async fn send_fragments(socket: &mut RawSocket, binary: bool, parts: &[Vec<u8>]) -> std::io::Result<()> {
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        let opcode = match (i, binary) {
            (0, true) => 0x2,
            (0, false) => 0x1,
            _ => 0x0,
        };
        socket.try_send_raw(i == last, opcode, part, true).await?;
    }
    Ok(())
}

/// A frame the server may send a fuzzing client: a delta, `subscribed`,
/// or an error frame of the protocol (nothing internal). Returns what it
/// was.
fn check_answer(text: &str) -> Result<String, TestCaseError> {
    let frame: Value = serde_json::from_str(text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    match frame["type"].as_str() {
        Some("delta") => {
            sync_id(&frame);
            Ok("delta".to_owned())
        }
        Some("subscribed") => {
            prop_assert!(frame["afterSyncId"].is_string(), "{text}");
            Ok("subscribed".to_owned())
        }
        Some("error") => {
            let message = frame["message"].as_str().unwrap_or_default();
            let known = [
                "Authentication required",
                "Invalid token",
                "Too many pending subscribes",
                "Subscribe message too large (at most 65536 bytes)",
                "Too many groups in subscribe (at most 1000)",
                "A fresh bootstrap is required before subscribing to deltas",
            ];
            prop_assert!(known.contains(&message), "unexpected error frame {text}");
            Ok(format!("error {message:?}"))
        }
        _ => Err(TestCaseError::fail(format!("unexpected frame {text:.300}"))),
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")),
        Err(_) => default,
    }
}

mod random_client_frames_never_break_the_server {
    use super::*;

    #[test]
    fn actix() {
        run(Adapter::Actix);
    }

    #[test]
    fn axum() {
        run(Adapter::Axum);
    }
}

fn run(adapter: Adapter) {
    // Unoptimized builds need more than a test thread's 2 MiB of stack to
    // build the nested strategies' values and run a case.
    let fuzz = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || fuzz_the_server(adapter))
        .expect("spawn the fuzz thread");
    if let Err(panic) = fuzz.join() {
        std::panic::resume_unwind(panic);
    }
}

fn fuzz_the_server(adapter: Adapter) {
    let seed: u64 = env_number("STRATASYNC_FUZZ_SEED", DEFAULT_SEED);
    let cases: u32 = env_number("STRATASYNC_FUZZ_CASES", DEFAULT_CASES);
    println!("{adapter:?}, seed {seed} ({cases} cases; STRATASYNC_FUZZ_SEED and STRATASYNC_FUZZ_CASES vary them)");
    let system = actix_web::rt::System::new();
    let fuzz = system.block_on(Fuzz::start(adapter));

    let config = Config { cases, failure_persistence: None, max_shrink_iters: 64, ..Config::default() };
    let mut seed_bytes = [0u8; 32];
    for chunk in seed_bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let strategy = prop::collection::vec(op(), 1..8);
    if let Err(failure) = runner.run(&strategy, |ops| system.block_on(fuzz.case(&ops))) {
        panic!("{failure} ({adapter:?}, seed {seed})");
    }

    system.block_on(async {
        let res = awc::Client::new().get(fuzz.server.url("/health")).send().await.expect("health");
        assert_eq!(res.status(), 200);
    });
    let log = fuzz.server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    println!("{cases} cases, {} honest writes delivered; seen: {:?}", fuzz.writes.get(), fuzz.seen.borrow());
}
