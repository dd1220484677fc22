//! `GET /sync/ws` failures: the upgrade's token and handshake checks, refused and invalid
//! subscribes, stale cursors, group resolution failures, and malformed
//! frames, which may close with a protocol code (1002/1007/1009) but
//! never with an internal error (docs/protocol.md §7.1–7.3, §7.6).

use actix_http::ws::Item;
use async_trait::async_trait;
use awc::ws::Message;
use bytes::Bytes;
use serde_json::json;
use std::time::Duration;
use stratasync_core::auth::{AuthRejection, AuthUser, GroupResolutionError, SyncAuth};
use stratasync_core::SyncEngine;
use stratasync_tests::http_support::{assert_no_internals, json_of, Adapter, RawHttp};
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

async fn the_upgrade_requires_a_valid_token(adapter: Adapter) {
    let db = TestDb::new().await;
    let server = WsServer::with_engine_on(adapter, &db, db.engine()).await;
    let client = awc::Client::new();
    for (query, body) in [
        ("", r#"{"error":"Token required"}"#),
        ("?token=", r#"{"error":"Token required"}"#),
        ("?other=1&token=", r#"{"error":"Token required"}"#),
        ("?token=bogus", r#"{"error":"Invalid token"}"#),
        ("?token=token-", r#"{"error":"Invalid token"}"#),
    ] {
        let url = server.url(&format!("/sync/ws{query}"));
        // A plain GET and a real upgrade attempt get the same 401.
        let mut res = client.get(&url).send().await.expect("response");
        assert_eq!(res.status(), 401, "{query}");
        assert_eq!(res.headers().get("content-type").unwrap(), "application/json; charset=utf-8");
        let got = res.body().await.expect("body");
        assert_eq!(std::str::from_utf8(&got).unwrap(), body, "{query}");
        match awc::Client::new().ws(&url).connect().await {
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => assert_eq!(status, 401),
            Err(e) => panic!("{query}: unexpected {e}"),
            Ok(_) => panic!("{query}: the upgrade must be refused"),
        }
    }
    // A URL-encoded valid token upgrades (`token-al%69ce` is `token-alice`).
    let mut socket = WsClient::connect(&server.url("/sync/ws?x=%20&token=token-al%69ce")).await;
    socket.subscribe_ok("alice", 0, None).await;
    server.stop().await;
}

async fn a_request_that_is_no_handshake_gets_the_same_answer_on_every_adapter(adapter: Adapter) {
    let db = TestDb::new().await;
    let server = WsServer::with_engine_on(adapter, &db, db.engine()).await;
    let url = server.url("/sync/ws?token=token-alice");
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    let required = r#"{"error":"WebSocket handshake required"}"#;
    for (headers, status, body) in [
        (vec![], 426, required),
        (vec![("connection", "upgrade"), ("sec-websocket-version", "13"), ("sec-websocket-key", KEY)], 426, required),
        (vec![("upgrade", "websocket"), ("sec-websocket-version", "13"), ("sec-websocket-key", KEY)], 426, required),
        (
            vec![
                ("upgrade", "websocket"),
                ("connection", "upgrade"),
                ("sec-websocket-version", "8"),
                ("sec-websocket-key", KEY),
            ],
            426,
            r#"{"error":"Unsupported WebSocket version"}"#,
        ),
        (
            vec![("upgrade", "websocket"), ("connection", "upgrade"), ("sec-websocket-version", "13")],
            400,
            r#"{"error":"Invalid Sec-WebSocket-Key"}"#,
        ),
        (
            vec![
                ("upgrade", "websocket"),
                ("connection", "upgrade"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "short"),
            ],
            400,
            r#"{"error":"Invalid Sec-WebSocket-Key"}"#,
        ),
    ] {
        // Over a raw connection: an HTTP client may take a response that
        // says `Connection: upgrade` for a switch and drop its body.
        let mut request = "GET /sync/ws?token=token-alice HTTP/1.1\r\nhost: localhost\r\n".to_owned();
        for (name, value) in &headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut raw = RawHttp::send(server.addr, request.as_bytes()).await;
        let head = raw.head(Duration::from_secs(10)).await;
        assert_eq!(head.status, status, "{headers:?}");
        assert_eq!(head.header("content-type"), Some("application/json; charset=utf-8"));
        if status == 426 {
            assert_eq!(head.header("upgrade"), Some("websocket"), "{headers:?}");
            assert_eq!(head.header("sec-websocket-version"), Some("13"), "{headers:?}");
        }
        let len = head.header("content-length").and_then(|n| n.parse().ok()).expect("a content length");
        let got = raw.read_exact(len, Duration::from_secs(10)).await;
        assert_eq!(std::str::from_utf8(&got).unwrap(), body, "{headers:?}");
    }
    // A token check still comes first, and a real handshake still upgrades.
    let mut res = awc::Client::new().get(server.url("/sync/ws?token=bogus")).send().await.expect("response");
    assert_eq!(res.status(), 401);
    assert_eq!(res.body().await.expect("body"), r#"{"error":"Invalid token"}"#);
    let mut socket = WsClient::connect(&url).await;
    socket.subscribe_ok("alice", 0, None).await;
    server.stop().await;
}

async fn refused_subscribes_answer_with_an_error_frame_and_keep_the_socket(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    let ids = insert_tasks(&engine, "alice", &ws, 2).await;
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    // The upgrade token and the subscribe token are checked separately.
    let mut socket = server.connect("bob").await;

    for invalid in [
        r#"{"type":"subscribe"}"#,
        r#"{"type":"subscribe","token":42}"#,
        r#"{"type":"subscribe","token":"token-alice","afterSyncId":5}"#,
        r#"{"type":"subscribe","token":"token-alice","afterSyncId":"-1"}"#,
        r#"{"type":"subscribe","token":"token-alice","afterSyncId":"1.5"}"#,
        r#"{"type":"subscribe","token":"token-alice","groups":"w1"}"#,
        r#"{"type":"subscribe","token":"token-alice","groups":[1]}"#,
    ] {
        socket.send_text(invalid).await;
        assert_eq!(socket.recv_text().await, r#"{"message":"Authentication required","type":"error"}"#, "{invalid}");
    }
    socket.send_text(r#"{"type":"subscribe","token":"token-","afterSyncId":"0"}"#).await;
    assert_eq!(socket.recv_text().await, r#"{"message":"Invalid token","type":"error"}"#);
    socket.send_text(r#"{"type":"subscribe","token":"nope"}"#).await;
    assert_eq!(socket.recv_text().await, r#"{"message":"Invalid token","type":"error"}"#);

    // None of them subscribed anything: once the feed has handed out a
    // new action (to every session it had), a subscribe replays it, and
    // the replay is the first thing on the socket (a live copy of it would
    // have been queued before).
    let unseen = insert_task(&engine, "alice", &ws, "unseen").await;
    hub_reached(&engine, unseen).await;
    let (replayed, subscribed) = socket.subscribe_ok("alice", ids[0], None).await;
    assert_eq!(replayed, [ids[1], unseen]);
    assert_eq!(subscribed["afterSyncId"], json!(unseen.to_string()));

    // A refused re-subscribe resets the session: no more live frames. The
    // next subscribe (from the new head) gets `subscribed` first.
    socket.send_text(r#"{"type":"subscribe","token":"bad"}"#).await;
    assert_eq!(socket.recv_text().await, r#"{"message":"Invalid token","type":"error"}"#);
    let after_reset = insert_task(&engine, "alice", &ws, "after the reset").await;
    hub_reached(&engine, after_reset).await;
    let (replayed, _) = socket.subscribe_ok("alice", after_reset, None).await;
    assert_eq!(replayed, [0u64; 0], "a live frame reached a reset session");
    server.stop().await;
}

async fn stale_cursors_require_a_bootstrap(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    let ids = insert_tasks(&engine, "alice", &ws, 6).await;
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    let mut socket = server.connect("alice").await;
    const STALE: &str = r#"{"code":"BOOTSTRAP_REQUIRED","message":"A fresh bootstrap is required before subscribing to deltas","type":"error"}"#;

    // Ahead of every id ever allocated (another database's cursor).
    socket.subscribe("alice", ids[5] + 100, None).await;
    assert_eq!(socket.recv_text().await, STALE);

    // Pruned: the log now starts at ids[3].
    db.execute(&format!("DELETE FROM sync_actions WHERE id < {}", ids[3])).await;
    for cursor in [ids[0], ids[1]] {
        socket.subscribe("alice", cursor, None).await;
        assert_eq!(socket.recv_text().await, STALE, "cursor {cursor}");
    }
    // Not subscribed after a stale refusal: once the feed has handed out
    // a new action, the next subscribe's replay is the first thing on the
    // socket. `earliest - 1` misses nothing (unlike the reference, §10
    // #10), and 0 is never stale.
    let unseen = insert_task(&engine, "alice", &ws, "unseen").await;
    hub_reached(&engine, unseen).await;
    let (replayed, _) = socket.subscribe_ok("alice", ids[2], None).await;
    assert_eq!(replayed, [ids[3], ids[4], ids[5], unseen]);
    let (replayed, _) = socket.subscribe_ok("alice", 0, None).await;
    assert_eq!(replayed, [ids[3], ids[4], ids[5], unseen]);
    server.stop().await;
}

/// Tokens `token-<user>`; resolving the groups of `broken` fails.
struct FlakyGroups;

#[async_trait]
impl SyncAuth for FlakyGroups {
    async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
        token.strip_prefix("token-").filter(|u| !u.is_empty()).map(AuthUser::new).ok_or(AuthRejection::Invalid)
    }

    async fn resolve_groups(&self, user_id: &str) -> Result<Vec<String>, GroupResolutionError> {
        match user_id {
            "broken" => Err(GroupResolutionError(Box::new(std::io::Error::other("directory at 10.0.0.7 is down")))),
            _ => Ok(Vec::new()),
        }
    }
}

async fn a_group_lookup_failure_answers_and_closes_1011(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine =
        SyncEngine::builder(db.pool.clone(), taskboard::registry(), FlakyGroups).start().expect("the engine starts");
    let server = WsServer::with_engine_on(adapter, &db, engine).await;
    // The upgrade does not resolve groups.
    let mut socket = server.connect("broken").await;
    socket.subscribe("broken", 0, None).await;
    let (code, reason, texts) = socket.until_close().await;
    assert_eq!(texts, [r#"{"message":"Failed to resolve sync groups","type":"error"}"#]);
    assert_eq!((code, reason.as_str()), (Some(1011), "Failed to resolve sync groups"));
    server.stop().await;
}

/// Sends `message` on a fresh subscribed socket and returns how it closed.
async fn close_after(server: &WsServer, message: Message) -> (Option<u16>, String) {
    let mut socket = server.connect("alice").await;
    socket.subscribe_ok("alice", 0, None).await;
    socket.send(message).await;
    let (code, reason, texts) = socket.until_close().await;
    for text in &texts {
        assert_no_internals(text.as_bytes());
    }
    (code, reason)
}

async fn malformed_frames_never_cause_an_internal_error_close(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;

    // Ignored: not JSON, JSON primitives, objects and arrays without hooks,
    // and subscribed traffic continues.
    let mut socket = server.connect("alice").await;
    for ignored in ["hello", "{", "42", "null", "\"subscribe\"", "[1,2]", r#"{"type":"yjs_update"}"#, ""] {
        socket.send_text(ignored).await;
    }
    // None of them is answered: the first frame is the answer to the next.
    socket.send_text(r#"{"type":"subscribe"}"#).await;
    assert_eq!(socket.recv_text().await, r#"{"message":"Authentication required","type":"error"}"#);
    socket.subscribe_ok("alice", 0, None).await;
    for ignored in ["hello", "42", r#"{"type":"live_editing_cursor"}"#] {
        socket.send_text(ignored).await;
    }
    let live = insert_task(&engine, "alice", &ws, "still live").await;
    assert_eq!(socket.deltas_until(live, WAIT).await, [live]);
    // A binary frame holding UTF-8 JSON is read like a text frame.
    socket.send(Message::Binary(Bytes::from(r#"{"type":"subscribe","token":"token-alice","afterSyncId":"0"}"#))).await;
    let (replayed, _) = socket.until_subscribed().await;
    assert_eq!(replayed.len(), 1);
    // A client close is answered with a close (RFC 6455 §5.5.1). On axum
    // the WebSocket library answers it itself, echoing the client's frame
    // (here one without a code).
    socket.send(Message::Close(None)).await;
    let echo = match adapter {
        Adapter::Actix => Some(1000),
        Adapter::Axum => None,
    };
    assert_eq!(socket.recv().await, Incoming::Close(echo, String::new()));
    let mut socket = server.connect("alice").await;
    socket.send(Message::Close(Some(awc::ws::CloseCode::Away.into()))).await;
    assert_eq!(socket.recv().await, Incoming::Close(Some(1001), String::new()));

    // Invalid UTF-8 in a binary frame: 1007.
    let (code, _) = close_after(&server, Message::Binary(Bytes::from_static(&[0x7b, 0xff, 0xfe, 0x7d]))).await;
    assert_eq!(code, Some(1007));
    // Larger than the 1 MiB frame limit: 1009.
    let (code, _) = close_after(&server, Message::Text("x".repeat(1024 * 1024 + 1).into())).await;
    assert_eq!(code, Some(1009));
    // Raw frames no codec would send: a continuation without a first
    // frame and a reserved opcode are protocol errors (1002); a text frame
    // with invalid UTF-8 is 1007, like a binary one.
    for (fin, opcode, payload, expected) in [
        (true, 0x0, &b"x"[..], &[1002][..]),
        (true, 0x3, &b"x"[..], &[1002][..]),
        (true, 0x1, &[0x7b, 0xc3, 0x28, 0x7d][..], &[1007][..]),
        (false, 0x9, &b"fragmented ping"[..], &[1002][..]),
    ] {
        let mut raw = RawSocket::connect(server.addr, "/sync/ws?token=token-alice").await;
        raw.send_frame(fin, opcode, payload).await;
        let (code, texts) = raw.until_close().await;
        let code = code.unwrap_or_else(|| panic!("opcode {opcode:#x}: no close frame ({texts:?})"));
        assert!(expected.contains(&code), "opcode {opcode:#x}: closed with {code}");
    }
    // A message split over continuations larger than the limit: 1009.
    let mut socket = server.connect("alice").await;
    socket.send(Message::Continuation(Item::FirstText(Bytes::from(vec![b' '; 700 * 1024])))).await;
    socket.send(Message::Continuation(Item::Last(Bytes::from(vec![b' '; 700 * 1024])))).await;
    let (code, _, _) = socket.until_close().await;
    assert_eq!(code, Some(1009));
    // A valid split message is read whole.
    let mut socket = server.connect("alice").await;
    socket.send(Message::Continuation(Item::FirstText(Bytes::from_static(br#"{"type":"subscribe","#)))).await;
    socket.send(Message::Continuation(Item::Last(Bytes::from_static(br#""token":"token-alice"}"#)))).await;
    socket.until_subscribed().await;
    // Unmasked client frames violate the protocol: 1002.
    let mut raw = RawSocket::connect(server.addr, "/sync/ws?token=token-alice").await;
    raw.send_raw(true, 0x1, br#"{"type":"subscribe","token":"token-alice"}"#, false).await;
    let (code, texts) = raw.until_close().await;
    assert_eq!(code, Some(1002), "{texts:?}");

    // The server is fine afterwards.
    let mut socket = server.connect("alice").await;
    socket.subscribe_ok("alice", 0, None).await;
    let res = awc::Client::new().get(server.url("/health")).send().await.unwrap().body().await.unwrap();
    assert_eq!(json_of(&res), json!({"status": "ok"}));
    server.stop().await;
}

async fn a_failing_log_read_answers_replay_failed_and_closes_1011(adapter: Adapter) {
    let db = TestDb::new().await;
    let server = WsServer::with_engine_on(adapter, &db, db.engine()).await;
    let mut socket = server.connect("alice").await;
    db.execute("ALTER TABLE sync_actions RENAME TO sync_actions_away").await;
    socket.subscribe("alice", 3, None).await;
    let (code, reason, texts) = socket.until_close().await;
    assert_eq!(texts, [r#"{"message":"Replay failed","type":"error"}"#]);
    assert_eq!((code, reason.as_str()), (Some(1011), "Replay failed"));
    // Once the log is back, subscribing works again.
    db.execute("ALTER TABLE sync_actions_away RENAME TO sync_actions").await;
    server.connect("alice").await.subscribe_ok("alice", 0, None).await;
    server.stop().await;
}

on_both_adapters!(
    the_upgrade_requires_a_valid_token,
    a_request_that_is_no_handshake_gets_the_same_answer_on_every_adapter,
    refused_subscribes_answer_with_an_error_frame_and_keep_the_socket,
    stale_cursors_require_a_bootstrap,
    a_group_lookup_failure_answers_and_closes_1011,
    malformed_frames_never_cause_an_internal_error_close,
    a_failing_log_read_answers_replay_failed_and_closes_1011
);
