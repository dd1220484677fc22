//! `GET /sync/ws` over a real TCP port against the real PostgreSQL:
//! replay then live, re-subscribe, group isolation, a flood of subscribes
//! and the heartbeat (docs/protocol.md §7).

use async_trait::async_trait;
use serde_json::{json, Value};
use std::time::Duration;
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::realtime::{SocketContext, SocketHooks};
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;
use tokio::sync::mpsc;

/// A global action (no group, no client keys) logged with SQL at a fixed
/// time; the hub is woken so live sessions see it at once.
async fn log_raw(db: &TestDb, group: Option<&str>, model_id: &str) -> u64 {
    let (group, client) = match group {
        Some(g) => (format!("'{g}'"), "'c', 'tx-' || gen_random_uuid()"),
        None => ("NULL".to_owned(), "NULL, NULL"),
    };
    db.execute(&format!(
        "INSERT INTO sync_actions (model, model_id, action, data, group_id, client_id, client_tx_id, created_at) \
         VALUES ('Task', '{model_id}', 'U', '{{\"title\": \"x\", \"id\": \"{model_id}\"}}', {group}, {client}, \
                 '2024-06-15T12:00:00.123Z')"
    ))
    .await;
    db.scalar("SELECT max(id) FROM sync_actions").await as u64
}

fn global_frame(id: u64, model_id: &str) -> String {
    format!(
        r#"{{"packet":{{"actions":[{{"action":"U","createdAt":"2024-06-15T12:00:00.123Z","data":{{"id":"{model_id}","title":"x"}},"modelId":"{model_id}","modelName":"Task","syncId":"{id}"}}],"lastSyncId":"{id}"}},"type":"delta"}}"#
    )
}

async fn replay_then_subscribed_then_live_in_order(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    let mut before = insert_tasks(&engine, "alice", &ws, 5).await;
    before.push(log_raw(&db, None, "g1").await);
    before.extend(insert_tasks(&engine, "alice", &ws, 3).await);
    let last_before = *before.last().unwrap();
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;

    let mut socket = server.connect("alice").await;
    socket.subscribe("alice", 0, None).await;
    let mut replayed = Vec::new();
    let subscribed = loop {
        let text = socket.recv_text().await;
        if text.contains(r#""type":"subscribed""#) {
            break text;
        }
        let frame: Value = serde_json::from_str(&text).unwrap();
        let id = sync_id(&frame);
        if id == before[5] {
            // Exact bytes, key order of §7.4/§4.3, absent optional keys.
            assert_eq!(text, global_frame(id, "g1"));
        }
        replayed.push(id);
    };
    assert_eq!(replayed, before, "replay is every visible action after 0, in order");
    assert_eq!(
        subscribed,
        format!(r#"{{"afterSyncId":"{last_before}","groups":["{ws}","alice"],"type":"subscribed"}}"#)
    );

    // Live: single writes, a concurrent burst, and a global action logged
    // outside the engine (reached through the hub's poll/wake).
    let mut live = vec![insert_task(&engine, "alice", &ws, "live-1").await];
    let burst = futures_util::future::join_all((0..4).map(|_| insert_tasks(&engine, "alice", &ws, 3))).await;
    live.extend(burst.into_iter().flatten());
    let global = log_raw(&db, None, "g2").await;
    engine.hub().wake();
    live.push(global);
    live.sort_unstable();
    let frames = socket.deltas(live.len(), WAIT).await;
    let ids: Vec<u64> = frames.iter().map(sync_id).collect();
    assert_eq!(ids, live, "live frames: every action once, ascending");
    assert!(ids[0] > last_before);
    let global_text = serde_json::to_string(frames.last().unwrap()).unwrap();
    assert_eq!(global_text, global_frame(global, "g2"), "live frame bytes (parsed in order)");
    // The insert's frame carries the engine's keys in wire order.
    let first = &frames[0]["packet"]["actions"][0];
    let keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["action", "clientId", "clientTxId", "createdAt", "data", "groupId", "modelId", "modelName", "syncId"]
    );
    assert_eq!(first["groupId"], json!(ws));
    assert_eq!(first["action"], json!("I"));
    // Nothing more than that: the next frame is a later marker.
    let marker = insert_task(&engine, "alice", &ws, "marker").await;
    socket.assert_next_delta(marker).await;
    server.stop().await;
}

async fn resubscribe_on_the_same_socket_replays_from_a_lower_cursor(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    let ids = insert_tasks(&engine, "alice", &ws, 6).await;
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    let mut socket = server.connect("alice").await;

    let (replayed, subscribed) = socket.subscribe_ok("alice", ids[3], None).await;
    assert_eq!(replayed, ids[4..]);
    assert_eq!(subscribed["afterSyncId"], json!(ids[5].to_string()));
    let live = insert_task(&engine, "alice", &ws, "live").await;
    assert_eq!(socket.deltas_until(live, WAIT).await, [live]);

    // Lower cursor: the old one is discarded and everything replays again.
    let (replayed, subscribed) = socket.subscribe_ok("alice", ids[0], None).await;
    let mut expected = ids[1..].to_vec();
    expected.push(live);
    assert_eq!(replayed, expected);
    assert_eq!(subscribed["afterSyncId"], json!(live.to_string()));

    // From 0 with an explicit group list, then live again, once.
    let (replayed, subscribed) = socket.subscribe_ok("alice", 0, Some(&[&ws])).await;
    let mut all = ids.clone();
    all.push(live);
    assert_eq!(replayed, all);
    assert_eq!(subscribed["groups"], json!([ws]));
    let next = insert_task(&engine, "alice", &ws, "after resubscribe").await;
    assert_eq!(socket.deltas_until(next, WAIT).await, [next]);

    // A cursor ahead of everything: nothing replays, `subscribed` echoes it.
    let (replayed, subscribed) = socket.subscribe_ok("alice", next, None).await;
    assert!(replayed.is_empty());
    assert_eq!(subscribed["afterSyncId"], json!(next.to_string()));
    // Live once, from that cursor: the next frame is the next write.
    let marker = insert_task(&engine, "alice", &ws, "marker").await;
    socket.assert_next_delta(marker).await;
    server.stop().await;
}

/// A subscriber: user, requested groups, expected effective groups.
type Case<'a> = (&'a str, Option<Vec<&'a str>>, Vec<&'a str>);

async fn each_socket_gets_only_its_groups_and_global_actions(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let a = workspace(&db, &["alice", "carol"]).await;
    let b = workspace(&db, &["bob", "carol"]).await;
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;

    // (user, requested groups, expected effective groups)
    let a_s = a.as_str();
    let b_s = b.as_str();
    let cases: Vec<Case> = vec![
        ("alice", None, vec![a_s, "alice"]),
        ("bob", None, vec![b_s, "bob"]),
        ("carol", None, vec![a_s, b_s, "carol"]),
        ("carol", Some(vec![b_s, b_s]), vec![b_s]),
        ("dave", None, vec!["dave"]),
        // Not authorized for b: only global actions.
        ("alice", Some(vec![b_s]), vec![]),
        // An empty list means all authorized groups (§3.3, WS row).
        ("alice", Some(vec![]), vec![a_s, "alice"]),
    ];
    let mut sockets = Vec::new();
    for (who, requested, expected) in &cases {
        let mut socket = server.connect(who).await;
        let (replayed, subscribed) = socket.subscribe_ok(who, 0, requested.as_deref()).await;
        assert!(replayed.is_empty());
        assert_eq!(subscribed["groups"], json!(expected), "{who} {requested:?}");
        sockets.push(socket);
    }

    for round in 0..3 {
        insert_task(&engine, "alice", &a, &format!("a{round}")).await;
        insert_tasks(&engine, "bob", &b, 2).await;
        log_raw(&db, Some("alice"), &format!("for-alice-{round}")).await;
        log_raw(&db, Some("dave"), &format!("for-dave-{round}")).await;
        log_raw(&db, None, &format!("global-{round}")).await;
        engine.hub().wake();
    }
    insert_task(&engine, "carol", &b, "carol in b").await;

    for (socket, (who, requested, groups)) in sockets.iter_mut().zip(&cases) {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let expected = visible_ids(&db, &groups).await;
        let got = socket.deltas_until(*expected.last().unwrap(), WAIT).await;
        assert_eq!(got, expected, "{who} {requested:?}");
    }
    // Nothing else either: a global marker is every socket's next frame.
    let marker = global_marker(&db, &[&engine]).await;
    for (socket, (who, requested, _)) in sockets.iter_mut().zip(&cases) {
        assert_eq!(sync_id(&socket.deltas(1, WAIT).await[0]), marker, "{who} {requested:?}");
    }
    server.stop().await;
}

/// Reports every application message the socket's task handed to the
/// hooks: a message seen there proves the task read every frame before it.
struct SeenMessages(mpsc::UnboundedSender<Value>);

#[async_trait]
impl SocketHooks for SeenMessages {
    async fn on_message(&self, _socket: &SocketContext, message: &Value) -> bool {
        let _ = self.0.send(message.clone());
        false
    }
}

/// What one frame of the flood was.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flood {
    Valid,
    BadToken,
    Invalid,
}

async fn a_flood_of_subscribes_gets_one_answer_each(adapter: Adapter) {
    /// Subscribes that may wait behind the one in progress.
    const PENDING: usize = 16;
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    // A replay far larger than the TCP buffers (300 actions of 100 KB):
    // the first subscribe stays in progress until the test reads.
    let last = backlog(&db, Some(&ws), 300, 100_000).await;
    // The live feed starts with the engine: after the history, as on a
    // server (a feed that has it still to read would send it live).
    let engine = db.engine();
    let (messages, mut seen) = mpsc::unbounded_channel();
    let server =
        WsServer::start_on(adapter, &db, SyncEndpoints::new(engine.clone()).socket_hooks(SeenMessages(messages))).await;
    let mut socket = server.connect("alice").await;
    socket.subscribe("alice", 0, None).await;

    // 49 more frames behind it: subscribes from the head (nothing to
    // replay), subscribes with a bad token, and invalid subscribes.
    let flood: Vec<Flood> = (0..49)
        .map(|i| match i % 5 {
            1 => Flood::BadToken,
            4 => Flood::Invalid,
            _ => Flood::Valid,
        })
        .collect();
    for kind in &flood {
        match kind {
            Flood::Valid => socket.subscribe("alice", last, None).await,
            Flood::BadToken => socket.send_text(r#"{"afterSyncId":"0","token":"nope","type":"subscribe"}"#).await,
            Flood::Invalid => socket.send_text(r#"{"afterSyncId":0,"token":"token-alice","type":"subscribe"}"#).await,
        }
    }
    // The socket's task has read all of it once the hook sees this.
    socket.send_text(r#"{"type":"flood_sent"}"#).await;
    let message = tokio::time::timeout(WAIT, seen.recv()).await.expect("the hook saw the last frame").unwrap();
    assert_eq!(message, json!({"type": "flood_sent"}));

    // Invalid subscribes and those beyond the pending limit are answered
    // at once (queued behind the replay's frames); then the first
    // subscribe completes, then each pending one in order.
    const AUTH: &str = r#"{"message":"Authentication required","type":"error"}"#;
    const TOO_MANY: &str = r#"{"message":"Too many pending subscribes","type":"error"}"#;
    const BAD_TOKEN: &str = r#"{"message":"Invalid token","type":"error"}"#;
    let subscribed = format!(r#"{{"afterSyncId":"{last}","groups":["{ws}","alice"],"type":"subscribed"}}"#);
    let (mut at_once, mut later) = (Vec::new(), Vec::new());
    for kind in &flood {
        match kind {
            Flood::Invalid => at_once.push(AUTH.to_owned()),
            _ if later.len() == PENDING => at_once.push(TOO_MANY.to_owned()),
            Flood::Valid => later.push(subscribed.clone()),
            Flood::BadToken => later.push(BAD_TOKEN.to_owned()),
        }
    }
    assert!(at_once.contains(&TOO_MANY.to_owned()), "the flood goes beyond the pending limit");
    // The last pending subscribe is a valid one: the socket ends up live.
    assert_eq!(later.last(), Some(&subscribed));
    let expected: Vec<String> = at_once.into_iter().chain([subscribed.clone()]).chain(later).collect();

    let (mut answers, mut replayed) = (Vec::new(), Vec::new());
    while answers.len() < expected.len() {
        let text = socket.recv_text().await;
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["type"] == json!("delta") {
            assert!(!answers.contains(&subscribed), "a delta after the first `subscribed`: {text:.200}");
            replayed.push(sync_id(&frame));
        } else {
            answers.push(text);
        }
    }
    assert_eq!(answers, expected, "one answer per subscribe, in order");
    assert_eq!(replayed, (1..=last).collect::<Vec<_>>(), "the first subscribe's replay");

    // The last subscribe is live, once.
    let live = insert_task(&engine, "alice", &ws, "after the flood").await;
    socket.assert_next_delta(live).await;
    let marker = insert_task(&engine, "alice", &ws, "marker").await;
    socket.assert_next_delta(marker).await;
    server.stop().await;
}

async fn a_socket_that_does_not_answer_pings_is_closed(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    let every = Duration::from_secs(1);
    let server = WsServer::start_on(adapter, &db, SyncEndpoints::new(engine.clone()).heartbeat(every)).await;

    // A client answering pings stays open and subscribed.
    let mut good = server.connect("alice").await;
    good.subscribe_ok("alice", 0, None).await;
    // A silent one: connected, subscribed, reading, but never answering.
    let mut silent = server.connect("alice").await;
    silent.answer_pings = false;
    silent.subscribe_ok("alice", 0, None).await;
    // The silent socket is closed at the first beat after its unanswered
    // ping (exactly one ping: not earlier, not after more); meanwhile the
    // answering one gets ping after ping and nothing else.
    let (closed, ()) = futures_util::join!(silent.until_close(), good.until_pings(3, WAIT));
    let (code, reason, texts) = closed;
    assert_eq!((code, reason.as_str()), (Some(1011), "Heartbeat timeout"));
    assert!(texts.is_empty(), "{texts:?}");
    assert_eq!(silent.pings, 1, "closed at the beat after one unanswered ping");

    // The answering socket is still alive and live after several beats.
    let live = insert_task(&engine, "alice", &ws, "still here").await;
    good.assert_next_delta(live).await;

    // A silent socket that never subscribes is closed the same way.
    let mut idle = server.connect("alice").await;
    idle.answer_pings = false;
    let (code, reason, texts) = idle.until_close().await;
    assert_eq!((code, reason.as_str()), (Some(1011), "Heartbeat timeout"));
    assert!(texts.is_empty(), "{texts:?}");
    assert_eq!(idle.pings, 1);
    server.stop().await;
}

on_both_adapters!(
    replay_then_subscribed_then_live_in_order,
    resubscribe_on_the_same_socket_replays_from_a_lower_cursor,
    each_socket_gets_only_its_groups_and_global_actions,
    a_flood_of_subscribes_gets_one_answer_each,
    a_socket_that_does_not_answer_pings_is_closed
);
