//! What one WebSocket client may make the server hold ([`SocketLimits`]):
//! subscribes with too many groups or too many bytes, subscribes waiting
//! beyond the limits (in number and in bytes), messages over the size
//! limit, and open sockets per user (on and off).

use async_trait::async_trait;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::realtime::{SocketContext, SocketHooks, SocketLimits};
use stratasync_tests::http_support::json_of;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;
use tokio::sync::mpsc;

/// Hands every application message to the test.
struct Messages(mpsc::UnboundedSender<Value>);

#[async_trait]
impl SocketHooks for Messages {
    async fn on_message(&self, _socket: &SocketContext, message: &Value) -> bool {
        let _ = self.0.send(message.clone());
        true
    }
}

async fn server_with(
    adapter: Adapter,
    db: &TestDb,
    limits: SocketLimits,
) -> (WsServer, mpsc::UnboundedReceiver<Value>) {
    let (messages, seen) = mpsc::unbounded_channel();
    let sync = SyncEndpoints::new(db.engine()).socket_limits(limits).socket_hooks(Messages(messages));
    (WsServer::start_on(adapter, db, sync).await, seen)
}

async fn next_message(seen: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(WAIT, seen.recv()).await.expect("an app message in time").expect("hooks alive")
}

async fn oversized_subscribes_are_refused_and_the_socket_stays_live(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    let limits = SocketLimits {
        max_message_bytes: 16 * 1024,
        max_subscribe_bytes: 1024,
        max_subscribe_groups: 5,
        ..SocketLimits::default()
    };
    let (server, mut seen) = server_with(adapter, &db, limits).await;
    let engine = server.engine.clone();
    let mut socket = server.connect("alice").await;

    // Five groups are fine (those alice is not in are dropped).
    let (_, subscribed) = socket.subscribe_ok("alice", 0, Some(&[ws.as_str(), "alice", "x", "y", "z"])).await;
    assert_eq!(subscribed["groups"], json!([ws, "alice"]));
    // Six are not.
    socket.subscribe("alice", 0, Some(&[ws.as_str(), "alice", "a", "b", "c", "d"])).await;
    assert_eq!(socket.recv_text().await, r#"{"message":"Too many groups in subscribe (at most 5)","type":"error"}"#);
    // Over 1 KiB: a long token, or long group names within the count.
    const TOO_LARGE: &str = r#"{"message":"Subscribe message too large (at most 1024 bytes)","type":"error"}"#;
    socket.send_text(json!({"token": "t".repeat(2000), "type": "subscribe"}).to_string()).await;
    assert_eq!(socket.recv_text().await, TOO_LARGE);
    socket.subscribe("alice", 0, Some(&[&"g".repeat(600), &"h".repeat(600)])).await;
    assert_eq!(socket.recv_text().await, TOO_LARGE);

    // An application message larger than a subscribe may be still reaches
    // the hooks.
    let update = json!({"data": "d".repeat(4000), "type": "doc_update"});
    socket.send_text(update.to_string()).await;
    assert_eq!(next_message(&mut seen).await, update);

    // None of the refusals reset the session: it is still live.
    let live = insert_task(&engine, "alice", &ws, "still live").await;
    assert_eq!(socket.deltas_until(live, WAIT).await, [live]);

    // A message over the message limit closes the socket with 1009.
    socket.send_text(json!({"data": "d".repeat(20_000), "type": "doc_update"}).to_string()).await;
    let (code, _, texts) = socket.until_close().await;
    assert_eq!((code, texts.len()), (Some(1009), 0));
    server.stop().await;
}

/// Reads frames until `n` subscribe answers (`subscribed` or error frames)
/// arrived, skipping deltas; returns how many were `subscribed` and the
/// error messages.
async fn answers(socket: &mut WsClient, n: usize) -> (usize, Vec<String>) {
    let (mut subscribed, mut errors) = (0, Vec::new());
    while subscribed + errors.len() < n {
        let frame = socket.recv_json().await;
        match frame["type"].as_str() {
            Some("delta") => {}
            Some("subscribed") => subscribed += 1,
            Some("error") => errors.push(frame["message"].as_str().expect("message").to_owned()),
            _ => panic!("unexpected {frame}"),
        }
    }
    (subscribed, errors)
}

async fn wait_for_sessions(server: &WsServer, n: usize) {
    let deadline = Instant::now() + WAIT;
    while server.engine.hub().session_count() != n {
        assert!(Instant::now() < deadline, "{} sessions, expected {n}", server.engine.hub().session_count());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn pending_subscribes_beyond_the_limits_each_get_their_answer(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    // A replay of 30 MB stalls on a socket that does not read.
    let last_backlog = backlog(&db, Some(&ws), 300, 100_000).await;
    let limits =
        SocketLimits { max_pending_subscribes: 3, max_pending_subscribe_bytes: 8 * 1024, ..SocketLimits::default() };
    let (server, mut seen) = server_with(adapter, &db, limits).await;

    // In number: one subscribe stalls, three of the next ten wait, seven
    // are refused at once.
    let mut socket = server.connect("alice").await;
    socket.subscribe("alice", 0, None).await;
    wait_for_sessions(&server, 1).await;
    for _ in 0..10 {
        socket.subscribe("alice", last_backlog, None).await;
    }
    // Messages are read in order: once the hooks see this one, all ten
    // subscribes have been taken or refused.
    socket.send_text(r#"{"n":1,"type":"marker"}"#).await;
    assert_eq!(next_message(&mut seen).await, json!({"n": 1, "type": "marker"}));
    let (subscribed, errors) = answers(&mut socket, 11).await;
    assert_eq!(subscribed, 4, "the stalled one and the three that waited");
    assert_eq!(errors, vec!["Too many pending subscribes"; 7]);

    // In bytes (8 KiB): a subscribe naming 5 KB of groups waits, a second
    // one does not fit, a small one does.
    let mut other = server.connect("alice").await;
    other.subscribe("alice", 0, None).await;
    wait_for_sessions(&server, 2).await;
    let long: Vec<String> = (0..5).map(|i| format!("{i}{}", "g".repeat(1000))).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    other.subscribe("alice", last_backlog, Some(&long)).await;
    other.subscribe("alice", last_backlog, Some(&long)).await;
    other.subscribe("alice", last_backlog, None).await;
    other.send_text(r#"{"n":2,"type":"marker"}"#).await;
    assert_eq!(next_message(&mut seen).await, json!({"n": 2, "type": "marker"}));
    let (subscribed, errors) = answers(&mut other, 4).await;
    assert_eq!((subscribed, errors), (3, vec!["Too many pending subscribes".to_owned()]));

    // Both sockets end live on the last subscribe.
    let live = insert_task(&server.engine, "alice", &ws, "after").await;
    assert_eq!(socket.deltas_until(live, WAIT).await, [live]);
    assert_eq!(other.deltas_until(live, WAIT).await, [live]);
    server.stop().await;
}

/// Upgrades as `user` until one succeeds (a closed socket's slot is freed
/// when its task ends); panics after [`WAIT`].
async fn connect_once_freed(server: &WsServer, user: &str) -> WsClient {
    let deadline = Instant::now() + WAIT;
    loop {
        match WsClient::try_connect(&server.ws_url(user)).await {
            Ok(socket) => return socket,
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) if status == 429 => {}
            Err(e) => panic!("upgrade failed: {e}"),
        }
        assert!(Instant::now() < deadline, "{user}'s socket slot was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn the_socket_limit_per_user_answers_429_with_retry_after(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice", "bob"]).await;
    let (server, _) =
        server_with(adapter, &db, SocketLimits { max_sockets_per_user: Some(2), ..SocketLimits::default() }).await;

    let mut first = server.connect("alice").await;
    first.subscribe_ok("alice", 0, None).await;
    let mut second = server.connect("alice").await;
    second.subscribe_ok("alice", 0, None).await;

    // A third: 429 with Retry-After, for a real upgrade and a plain GET.
    match WsClient::try_connect(&server.ws_url("alice")).await {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => assert_eq!(status, 429),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("the third upgrade must be refused"),
    }
    let mut res = awc::Client::new().get(server.ws_url("alice")).send().await.expect("response");
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers().get("retry-after").expect("Retry-After"), "5");
    assert_eq!(res.headers().get("content-type").expect("content type"), "application/json; charset=utf-8");
    assert_eq!(json_of(&res.body().await.expect("body")), json!({"error": "Too many open sockets"}));

    // Other users are not affected, and the open sockets keep working.
    let mut bob = server.connect("bob").await;
    bob.subscribe_ok("bob", 0, None).await;
    let live = insert_task(&server.engine, "alice", &ws, "live").await;
    for socket in [&mut first, &mut second, &mut bob] {
        assert_eq!(socket.deltas_until(live, WAIT).await, [live]);
    }

    // A socket closed normally frees its slot, and so does one whose
    // connection just went away.
    first.close().await;
    let mut third = connect_once_freed(&server, "alice").await;
    assert!(matches!(
        WsClient::try_connect(&server.ws_url("alice")).await,
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) if status == 429
    ));
    drop(second);
    let mut fourth = connect_once_freed(&server, "alice").await;
    for socket in [&mut third, &mut fourth] {
        socket.subscribe_ok("alice", live, None).await;
    }
    server.stop().await;
}

async fn without_a_limit_one_user_opens_many_sockets(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    let (server, _) = server_with(adapter, &db, SocketLimits::default()).await;
    let mut sockets = Vec::new();
    for _ in 0..50 {
        sockets.push(server.connect("alice").await);
    }
    let last = sockets.last_mut().expect("sockets");
    last.subscribe_ok("alice", 0, None).await;
    let live = insert_task(&server.engine, "alice", &ws, "live").await;
    assert_eq!(last.deltas_until(live, WAIT).await, [live]);
    server.stop().await;
}

on_both_adapters!(
    oversized_subscribes_are_refused_and_the_socket_stays_live,
    pending_subscribes_beyond_the_limits_each_get_their_answer,
    the_socket_limit_per_user_answers_429_with_retry_after,
    without_a_limit_one_user_opens_many_sockets
);
