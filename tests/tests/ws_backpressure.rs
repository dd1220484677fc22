//! Sockets that do not keep up: the replay buffer overflow (4008), app
//! messages and hooks during a long replay, and a live consumer that stops
//! reading (docs/protocol.md §7.5, §7.6, §10 #18).
//!
//! A "long replay" is made deterministic by a backlog far larger than the
//! TCP buffers (300 actions of 100 KB) and a client that does not read:
//! the replay then stalls on the socket until the test reads.

use async_trait::async_trait;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::realtime::{HubConfig, SocketContext, SocketHooks};
use stratasync_core::storage::{self, PoolConfig};
use stratasync_core::{HookError, SyncEngine};
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;
use tokio::sync::mpsc;

const BACKLOG: usize = 300;
const ACTION_BYTES: usize = 100_000;

async fn wait_for(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_replay_buffer_overflow_sends_the_error_and_closes_4008(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    let last_backlog = backlog(&db, Some(&ws), BACKLOG, ACTION_BYTES).await;
    let engine = db
        .engine_builder()
        .hub_config(HubConfig { send_buffer_bytes: 1, ..HubConfig::default() })
        .start()
        .expect("the engine starts");
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;

    let mut socket = server.connect("alice").await;
    socket.subscribe("alice", 0, None).await;
    // The session has joined the feed; its replay is stuck on the socket.
    wait_for("the session to join", WAIT, || engine.hub().session_count() == 1).await;
    let mut writes = Vec::new();
    for i in 0..3 {
        writes.push(insert_task(&engine, "alice", &ws, &format!("during replay {i}")).await);
    }
    // Every write reached the session's buffer (1 byte: the first frame
    // fills it, the second overflows it) before it read any.
    hub_reached(&engine, *writes.last().unwrap()).await;

    let (code, reason, texts) = socket.until_close().await;
    assert_eq!((code, reason.as_str()), (Some(4008), "Replay buffer limit exceeded"));
    let (last, deltas) = texts.split_last().expect("frames before the close");
    assert_eq!(last, r#"{"code":"BUFFER_OVERFLOW","message":"Replay buffer limit exceeded","type":"error"}"#);
    let ids: Vec<u64> = deltas
        .iter()
        .map(|t| {
            let frame: Value = serde_json::from_str(t).unwrap();
            assert_eq!(frame["type"], json!("delta"), "no `subscribed` after an overflow: {t:.200}");
            sync_id(&frame)
        })
        .collect();
    assert_ascending(&ids, "replay before the overflow");
    assert!(ids.len() >= BACKLOG && ids[BACKLOG - 1] == last_backlog, "the replay ran to its end");
    wait_for("the session to leave", WAIT, || engine.hub().session_count() == 0).await;

    // A new socket with room enough subscribes fine from the same cursor.
    let (replayed, subscribed) = server.connect("alice").await.subscribe_ok("alice", last_backlog, None).await;
    assert_eq!(replayed, writes);
    assert_eq!(subscribed["afterSyncId"], json!(writes[2].to_string()));
    server.stop().await;
}

#[derive(Debug)]
enum Event {
    Subscribe { user: String, previous: String },
    Message(Value),
    Close { user: String, groups: Vec<String> },
}

/// Records every hook call; answers `live_editing_ping` messages with a
/// `live_editing_pong` frame; refuses subscribes of `mallory`.
struct Recorder(mpsc::UnboundedSender<Event>);

#[async_trait]
impl SocketHooks for Recorder {
    async fn on_subscribe(&self, socket: &SocketContext, previous: &SocketContext) -> Result<(), HookError> {
        assert!(socket.user_id.starts_with("anonymous-") && socket.groups.is_empty());
        assert_eq!(socket.conn_id, previous.conn_id);
        let _ = self.0.send(Event::Subscribe { user: socket.user_id.clone(), previous: previous.user_id.clone() });
        if previous.user_id == "mallory" {
            return Err(HookError::Reject("no".into()));
        }
        Ok(())
    }

    async fn on_message(&self, socket: &SocketContext, message: &Value) -> bool {
        let _ = self.0.send(Event::Message(message.clone()));
        if message["type"] == json!("live_editing_ping") {
            socket.sender.send(json!({"n": message["n"], "type": "live_editing_pong"}).to_string());
            return true;
        }
        false
    }

    async fn on_close(&self, socket: &SocketContext) {
        let _ = self.0.send(Event::Close { user: socket.user_id.clone(), groups: socket.groups.clone() });
    }
}

async fn app_messages_flow_during_a_long_replay_and_hooks_run(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    let last_backlog = backlog(&db, Some(&ws), BACKLOG, ACTION_BYTES).await;
    let engine = db.engine();
    let (events, mut seen) = mpsc::unbounded_channel();
    let server =
        WsServer::start_on(adapter, &db, SyncEndpoints::new(engine.clone()).socket_hooks(Recorder(events))).await;

    let mut socket = server.connect("alice").await;
    // App messages before any subscribe are ignored.
    socket.send_text(r#"{"type":"live_editing_ping","n":-1}"#).await;
    socket.subscribe("alice", 0, None).await;
    match tokio::time::timeout(WAIT, seen.recv()).await.expect("on_subscribe").unwrap() {
        Event::Subscribe { user, previous } => {
            assert!(user.starts_with("anonymous-"));
            assert!(previous.starts_with("anonymous-"));
        }
        other => panic!("unexpected {other:?}"),
    }
    wait_for("the session to join", WAIT, || engine.hub().session_count() == 1).await;
    // The replay has started sending. It cannot end before this client
    // reads (its 30 MB are far more than the buffers in between hold), and
    // the client reads nothing more until the hook has seen every app
    // message below: they are handled during the replay, even those the
    // hook answers.
    let first = socket.recv_json().await;
    assert_eq!(first["type"], json!("delta"));
    let started = Instant::now();
    for n in 0..5 {
        socket.send_text(json!({"n": n, "type": "live_editing_ping"}).to_string()).await;
        socket.send_text(json!({"n": n, "type": "doc_update"}).to_string()).await;
    }
    let mut got = Vec::new();
    while got.len() < 10 {
        match tokio::time::timeout(Duration::from_secs(3), seen.recv()).await {
            Ok(Some(Event::Message(m))) => got.push(m),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => panic!("only {} of 10 app messages reached the hook during the replay: {got:?}", got.len()),
        }
    }
    println!("10 app messages handled during a stalled replay within {:?}", started.elapsed());
    assert_eq!(got[0], json!({"n": 0, "type": "live_editing_ping"}));
    assert_eq!(got[9], json!({"n": 4, "type": "doc_update"}));

    // Now read: the whole replay, `subscribed`, and the hook's 5 answers
    // somewhere in between.
    let mut pongs = Vec::new();
    let mut ids = vec![sync_id(&first)];
    let subscribed = loop {
        let frame = socket.recv_json().await;
        match frame["type"].as_str() {
            Some("delta") => ids.push(sync_id(&frame)),
            Some("live_editing_pong") => pongs.push(frame["n"].as_i64().unwrap()),
            Some("subscribed") => break frame,
            _ => panic!("unexpected {frame}"),
        }
    };
    assert_eq!(ids.len(), BACKLOG);
    assert_eq!(ids.last(), Some(&last_backlog));
    assert_ascending(&ids, "replay");
    assert_eq!(subscribed["afterSyncId"], json!(last_backlog.to_string()));
    while pongs.len() < 5 {
        let frame = socket.recv_json().await;
        assert_eq!(frame["type"], json!("live_editing_pong"), "{frame}");
        pongs.push(frame["n"].as_i64().unwrap());
    }
    assert_eq!(pongs, [0, 1, 2, 3, 4]);

    // on_subscribe refusal: an error frame, the socket stays open.
    let mut other = server.connect("mallory").await;
    other.subscribe_ok("mallory", 0, Some(&["mallory"])).await;
    other.subscribe("mallory", 0, None).await;
    assert_eq!(other.recv_json().await["type"], json!("error"));
    other.subscribe_ok("alice", last_backlog, None).await;

    // on_close runs with the subscribed identity, for both ends of a close.
    socket.close().await;
    let deadline = Instant::now() + WAIT;
    let mut closes = Vec::new();
    while closes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, seen.recv()).await.expect("on_close in time").unwrap() {
            Event::Close { user, groups } => closes.push((user, groups)),
            Event::Subscribe { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(closes, [("alice".to_owned(), vec![ws.clone(), "alice".to_owned()])]);
    drop(other);
    match tokio::time::timeout(WAIT, seen.recv()).await.expect("on_close after a drop").unwrap() {
        Event::Close { user, .. } => assert_eq!(user, "alice"),
        other => panic!("unexpected {other:?}"),
    }
    server.stop().await;
}

async fn a_live_consumer_that_stops_reading_is_dropped(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db
        .engine_builder()
        .hub_config(HubConfig { send_buffer_bytes: 1 << 20, ..HubConfig::default() })
        .start()
        .expect("the engine starts");
    let ws = workspace(&db, &["alice"]).await;
    let (events, mut seen) = mpsc::unbounded_channel();
    let server =
        WsServer::start_on(adapter, &db, SyncEndpoints::new(engine.clone()).socket_hooks(Recorder(events))).await;

    let mut stalled = server.connect("alice").await;
    stalled.subscribe_ok("alice", 0, None).await;
    let mut healthy = server.connect("alice").await;
    healthy.subscribe_ok("alice", 0, None).await;
    assert_eq!(engine.hub().session_count(), 2);

    // 15 MB of live actions, one at a time; `stalled` reads none of them,
    // `healthy` reads as they come.
    const N: usize = 300;
    let first = db.scalar("SELECT coalesce(max(id), 0) FROM sync_actions").await as u64 + 1;
    let last = first + N as u64 - 1;
    let started = Instant::now();
    let dropped_at = std::cell::Cell::new(None);
    let writer = async {
        for _ in 0..N {
            backlog(&db, Some(&ws), 1, ACTION_BYTES / 2).await;
            engine.hub().wake();
            if dropped_at.get().is_none() && engine.hub().session_count() == 1 {
                dropped_at.set(Some(started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let (ids, ()) = futures_util::join!(healthy.deltas_until(last, Duration::from_secs(30)), writer);
    assert_eq!(ids, (first..=last).collect::<Vec<_>>(), "the healthy consumer gets everything, in order");
    println!(
        "healthy consumer got {} MB in {:?}; the stalled one was dropped after {:?}",
        N * ACTION_BYTES / 2_000_000,
        started.elapsed(),
        dropped_at.get()
    );

    // The stalled one was dropped without reading a byte: it left the feed
    // and its on_close ran.
    wait_for("the stalled consumer to be dropped", WAIT, || engine.hub().session_count() == 1).await;
    loop {
        match tokio::time::timeout(WAIT, seen.recv()).await.expect("on_close").unwrap() {
            Event::Close { user, .. } => break assert_eq!(user, "alice"),
            _ => continue,
        }
    }
    // What it eventually reads ends with the close (or the end of the
    // stream when even the close frame did not fit).
    let mut frames = 0;
    let end = loop {
        match stalled.recv_within(WAIT).await {
            Incoming::Text(_) => frames += 1,
            end => break end,
        }
    };
    println!("the stalled consumer then read {frames} frames and {end:?}");
    if let Incoming::Close(code, reason) = &end {
        assert_eq!((*code, reason.as_str()), (Some(4008), "Send buffer limit exceeded"));
    }
    // The healthy socket is still live.
    let next = insert_task(&engine, "alice", &ws, "after").await;
    assert_eq!(healthy.deltas_until(next, WAIT).await, [next]);
    server.stop().await;
}

async fn stalled_replays_hold_no_database_connection(adapter: Adapter) {
    let db = TestDb::new().await;
    // A pool of 3 and 3 replays stuck on their sockets.
    let config = PoolConfig { max_size: 3, wait_timeout: Duration::from_secs(2), ..PoolConfig::default() };
    let pool = storage::connect(&db.url, &config).unwrap();
    let ws = workspace(&db, &["alice"]).await;
    let last_backlog = backlog(&db, Some(&ws), 200, ACTION_BYTES).await;
    let engine = SyncEngine::builder(pool, taskboard::registry(), taskboard::DevAuth::default())
        .start()
        .expect("the engine starts");
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut socket = server.connect("alice").await;
        socket.subscribe("alice", 0, None).await;
        stalled.push(socket);
    }
    wait_for("the sessions to join", WAIT, || engine.hub().session_count() == 3).await;
    // Every replay has started sending; none can end before its client
    // reads (20 MB each, far more than the buffers in between hold).
    let mut firsts = Vec::new();
    for socket in &mut stalled {
        firsts.push(sync_id(&socket.recv_json().await));
    }

    // Mutations and new subscribers are served meanwhile: were a replay
    // holding its connection, the mutation would wait for the pool's 2 s
    // and fail.
    let started = Instant::now();
    let during = insert_task(&engine, "alice", &ws, "during").await;
    println!("mutation during 3 stalled replays (pool of 3) took {:?}", started.elapsed());
    let mut fresh = server.connect("alice").await;
    let (replayed, _) = fresh.subscribe_ok("alice", last_backlog, None).await;
    assert_eq!(replayed, [during]);
    let after = insert_task(&engine, "alice", &ws, "after").await;
    assert_eq!(fresh.deltas_until(after, WAIT).await, [after]);

    // The stalled replays then complete, in order, and go live.
    let backlog_ids: Vec<u64> = (last_backlog - 199..=last_backlog).collect();
    for (socket, first) in stalled.iter_mut().zip(firsts) {
        let (deltas, subscribed) = socket.until_subscribed().await;
        let ids: Vec<u64> = std::iter::once(first).chain(deltas.iter().map(sync_id)).collect();
        assert_eq!(ids[..200], backlog_ids);
        assert_eq!(ids[200..], [during, after][..ids.len() - 200]);
        let cursor: u64 = subscribed["afterSyncId"].as_str().unwrap().parse().unwrap();
        if cursor < after {
            assert_eq!(socket.deltas_until(after, WAIT).await, [after]);
        }
    }
    // Each is live once: the next write is every socket's next frame.
    let marker = insert_task(&engine, "alice", &ws, "marker").await;
    for socket in stalled.iter_mut().chain([&mut fresh]) {
        socket.assert_next_delta(marker).await;
    }
    server.stop().await;
}

on_both_adapters!(
    a_replay_buffer_overflow_sends_the_error_and_closes_4008,
    app_messages_flow_during_a_long_replay_and_hooks_run,
    a_live_consumer_that_stops_reading_is_dropped,
    stalled_replays_hold_no_database_connection
);
