//! Support for the realtime tests: the example server with a configurable
//! `SyncEndpoints` on a real TCP port (either adapter), a WebSocket client (`awc`) that never
//! answers pings on its own, mutation helpers, and a private `redis-server`.
//!
//! Every wait is bounded: a missing frame fails the test instead of
//! hanging it.

use crate::http_support::{Adapter, ServerHandle};
use crate::{mutate, tx, user, TestDb};
use actix_codec::Framed;
use awc::ws::{CloseReason, Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::protocol::MutationAction;
use stratasync_core::SyncEngine;

/// The default bound of a single wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// The example application (`/sync/*`, `/health`) on `127.0.0.1:<random>`.
pub struct WsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The engine behind it (shares the bus and the hub with the server).
    pub engine: SyncEngine,
    handle: ServerHandle,
}

impl WsServer {
    /// Starts `endpoints` on `adapter` (one actix worker thread).
    pub async fn start_on(adapter: Adapter, db: &TestDb, endpoints: SyncEndpoints) -> WsServer {
        WsServer::start_on_workers(adapter, db, endpoints, 1).await
    }

    /// Starts `endpoints` on `adapter` with `workers` actix worker threads
    /// (axum serves on the test's runtime).
    pub async fn start_on_workers(adapter: Adapter, db: &TestDb, endpoints: SyncEndpoints, workers: usize) -> WsServer {
        let engine = endpoints.engine().clone();
        let (addr, handle) = ServerHandle::start(adapter, endpoints, db.pool.clone(), workers);
        WsServer { addr, engine, handle }
    }

    /// Starts the plain endpoints of `engine` on `adapter`.
    pub async fn with_engine_on(adapter: Adapter, db: &TestDb, engine: SyncEngine) -> WsServer {
        WsServer::start_on(adapter, db, SyncEndpoints::new(engine)).await
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The WebSocket URL with `?token=token-<user>`.
    pub fn ws_url(&self, user: &str) -> String {
        self.url(&format!("/sync/ws?token=token-{user}"))
    }

    /// A socket connected as `user` (development token `token-<user>`).
    pub async fn connect(&self, user: &str) -> WsClient {
        WsClient::connect(&self.ws_url(user)).await
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// What arrived on a socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame: code and reason.
    Close(Option<u16>, String),
    /// The connection ended without a close frame (or failed).
    Ended(String),
}

/// A WebSocket client. Pings are answered only when `answer_pings` is set
/// (`awc` itself never answers them).
pub struct WsClient {
    io: Framed<BoxedSocket, Codec>,
    /// Whether to answer pings with pongs (default: yes).
    pub answer_pings: bool,
    /// Pings seen.
    pub pings: usize,
}

impl WsClient {
    /// Connects to `url`; panics unless the upgrade succeeds.
    pub async fn connect(url: &str) -> WsClient {
        WsClient::connect_with(awc::Client::new().ws(url)).await
    }

    /// Connects with a prepared request (e.g. `server_mode()`).
    pub async fn connect_with(request: awc::ws::WebsocketsRequest) -> WsClient {
        WsClient::try_connect_with(request).await.expect("upgrade")
    }

    /// Connects to `url`, or returns why the upgrade failed (e.g.
    /// `InvalidResponseStatus(429)`).
    pub async fn try_connect(url: &str) -> Result<WsClient, awc::error::WsClientError> {
        WsClient::try_connect_with(awc::Client::new().ws(url)).await
    }

    async fn try_connect_with(request: awc::ws::WebsocketsRequest) -> Result<WsClient, awc::error::WsClientError> {
        let (res, io) = tokio::time::timeout(WAIT, request.max_frame_size(64 * 1024 * 1024).connect())
            .await
            .expect("upgrade in time")?;
        assert_eq!(res.status(), 101);
        Ok(WsClient { io, answer_pings: true, pings: 0 })
    }

    /// Sends a message.
    pub async fn send(&mut self, message: Message) {
        tokio::time::timeout(WAIT, self.io.send(message)).await.expect("send in time").expect("send");
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.send(Message::Text(text.into().into())).await;
    }

    /// Sends `subscribe` with `token-<user>`, `afterSyncId` and optional groups.
    pub async fn subscribe(&mut self, user: &str, after: u64, groups: Option<&[&str]>) {
        let mut message =
            json!({"afterSyncId": after.to_string(), "token": format!("token-{user}"), "type": "subscribe"});
        if let Some(groups) = groups {
            message["groups"] = json!(groups);
        }
        self.send_text(message.to_string()).await;
    }

    /// The next text, binary or close frame, within `within` (pings are
    /// counted and answered if `answer_pings`). Panics on timeout.
    pub async fn recv_within(&mut self, within: Duration) -> Incoming {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.io.next())
                .await
                .unwrap_or_else(|_| panic!("nothing received within {within:?}"));
            match next {
                None => return Incoming::Ended("stream ended".into()),
                Some(Err(e)) => return Incoming::Ended(e.to_string()),
                Some(Ok(Frame::Text(bytes))) => {
                    return Incoming::Text(String::from_utf8(bytes.to_vec()).expect("text frames are UTF-8"))
                }
                Some(Ok(Frame::Binary(bytes))) => return Incoming::Binary(bytes.to_vec()),
                Some(Ok(Frame::Close(reason))) => {
                    let (code, text) = close_parts(reason);
                    return Incoming::Close(code, text);
                }
                Some(Ok(Frame::Ping(payload))) => {
                    self.pings += 1;
                    if self.answer_pings {
                        let _ = self.io.send(Message::Pong(payload)).await;
                    }
                }
                Some(Ok(Frame::Pong(_))) => {}
                Some(Ok(Frame::Continuation(_))) => panic!("the server sends no continuations"),
            }
        }
    }

    /// The next frame within [`WAIT`].
    pub async fn recv(&mut self) -> Incoming {
        self.recv_within(WAIT).await
    }

    /// The next frame, which must be text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Incoming::Text(text) => text,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame, which must be a JSON text frame.
    pub async fn recv_json(&mut self) -> Value {
        let text = self.recv_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text}"))
    }

    /// Whether a frame arrives within `within` (`None`: none did).
    pub async fn try_recv_within(&mut self, within: Duration) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.io.next()).await.ok()?;
            match next {
                Some(Ok(Frame::Ping(payload))) => {
                    self.pings += 1;
                    if self.answer_pings {
                        let _ = self.io.send(Message::Pong(payload)).await;
                    }
                }
                Some(Ok(Frame::Pong(_))) => {}
                None => return Some(Incoming::Ended("stream ended".into())),
                Some(Err(e)) => return Some(Incoming::Ended(e.to_string())),
                Some(Ok(Frame::Text(bytes))) => return Some(Incoming::Text(String::from_utf8_lossy(&bytes).into())),
                Some(Ok(Frame::Binary(bytes))) => return Some(Incoming::Binary(bytes.to_vec())),
                Some(Ok(Frame::Close(reason))) => {
                    let (code, text) = close_parts(reason);
                    return Some(Incoming::Close(code, text));
                }
                Some(Ok(Frame::Continuation(_))) => panic!("the server sends no continuations"),
            }
        }
    }

    /// Reads until `n` pings have arrived on this socket since it opened
    /// (answering them if `answer_pings`); panics on any other frame or
    /// after `within`.
    pub async fn until_pings(&mut self, n: usize, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.pings < n {
            let next = tokio::time::timeout_at(deadline, self.io.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} pings within {within:?}", self.pings));
            match next {
                Some(Ok(Frame::Ping(payload))) => {
                    self.pings += 1;
                    if self.answer_pings {
                        let _ = self.io.send(Message::Pong(payload)).await;
                    }
                }
                Some(Ok(Frame::Pong(_))) => {}
                other => panic!("expected only pings, got {other:?} after {} pings", self.pings),
            }
        }
    }

    /// Asserts that the next frame is the delta of sync id `id` (a marker
    /// written after everything the test expected: any extra or repeated
    /// frame queued before it shows up here instead).
    pub async fn assert_next_delta(&mut self, id: u64) {
        let frame = self.deltas(1, WAIT).await.remove(0);
        assert_eq!(sync_id(&frame), id, "the next frame is not the marker {id}: {frame}");
    }

    /// Reads delta frames until `subscribed`: the replayed (and flushed)
    /// frames and the `subscribed` frame. Panics on any other frame.
    pub async fn until_subscribed(&mut self) -> (Vec<Value>, Value) {
        let mut deltas = Vec::new();
        loop {
            let frame = self.recv_json().await;
            match frame["type"].as_str() {
                Some("delta") => deltas.push(frame),
                Some("subscribed") => return (deltas, frame),
                _ => panic!("unexpected frame while subscribing: {frame}"),
            }
        }
    }

    /// Subscribes and waits for `subscribed`; returns the replayed sync ids
    /// and the `subscribed` frame.
    pub async fn subscribe_ok(&mut self, user: &str, after: u64, groups: Option<&[&str]>) -> (Vec<u64>, Value) {
        self.subscribe(user, after, groups).await;
        let (deltas, subscribed) = self.until_subscribed().await;
        (deltas.iter().map(sync_id).collect(), subscribed)
    }

    /// Reads exactly `n` delta frames (within `within` overall); panics on
    /// anything else.
    pub async fn deltas(&mut self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match self.try_recv_within(left).await {
                Some(Incoming::Text(text)) => serde_json::from_str::<Value>(&text).expect("JSON frame"),
                Some(other) => panic!("expected a delta, got {other:?} after {} deltas", out.len()),
                None => panic!("only {} of {n} deltas arrived within {within:?}", out.len()),
            };
            assert_eq!(frame["type"], json!("delta"), "{frame}");
            out.push(frame);
        }
        out
    }

    /// Reads delta frames until one with sync id `last` (within `within`);
    /// returns the ids in arrival order.
    pub async fn deltas_until(&mut self, last: u64, within: Duration) -> Vec<u64> {
        match self.try_deltas_until(last, within).await {
            Ok(ids) => ids,
            Err(ids) => {
                panic!("delta {last} did not arrive within {within:?} (got {} ids, last {:?})", ids.len(), ids.last())
            }
        }
    }

    /// Like [`WsClient::deltas_until`], but a timeout returns `Err` with
    /// the ids received so far.
    pub async fn try_deltas_until(&mut self, last: u64, within: Duration) -> Result<Vec<u64>, Vec<u64>> {
        let deadline = Instant::now() + within;
        let mut ids = Vec::new();
        while ids.last() != Some(&last) {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match self.try_recv_within(left).await {
                Some(Incoming::Text(text)) => serde_json::from_str::<Value>(&text).expect("JSON frame"),
                Some(other) => panic!("expected a delta, got {other:?} after ids {ids:?}"),
                None => return Err(ids),
            };
            assert_eq!(frame["type"], json!("delta"), "{frame}");
            let id = sync_id(&frame);
            assert!(id <= last, "delta {id} is past the expected last {last}");
            ids.push(id);
        }
        Ok(ids)
    }

    /// Waits for the close frame (skipping text frames); returns the code
    /// and reason and the text frames seen before it.
    pub async fn until_close(&mut self) -> (Option<u16>, String, Vec<String>) {
        let mut texts = Vec::new();
        loop {
            match self.recv().await {
                Incoming::Text(text) => texts.push(text),
                Incoming::Binary(_) => panic!("the server sends no binary frames"),
                Incoming::Close(code, reason) => return (code, reason, texts),
                Incoming::Ended(why) => panic!("connection ended without a close frame: {why}"),
            }
        }
    }

    /// Closes the socket normally.
    pub async fn close(mut self) {
        let _ = self.io.send(Message::Close(None)).await;
    }
}

fn close_parts(reason: Option<CloseReason>) -> (Option<u16>, String) {
    match reason {
        Some(r) => (Some(u16::from(r.code)), r.description.unwrap_or_default()),
        None => (None, String::new()),
    }
}

/// The `syncId` of a delta frame (also checks `lastSyncId` matches).
pub fn sync_id(frame: &Value) -> u64 {
    let id = frame["packet"]["actions"][0]["syncId"].as_str().unwrap_or_else(|| panic!("not a delta: {frame}"));
    assert_eq!(frame["packet"]["lastSyncId"].as_str(), Some(id), "{frame}");
    assert_eq!(frame["packet"]["actions"].as_array().map(Vec::len), Some(1), "{frame}");
    id.parse().expect("digit sync id")
}

/// Asserts `ids` is strictly ascending (no duplicates).
pub fn assert_ascending(ids: &[u64], what: &str) {
    for pair in ids.windows(2) {
        assert!(pair[0] < pair[1], "{what}: not strictly ascending at {pair:?}: {ids:?}");
    }
}

/// Logs a global action (no group: every session sees it) with SQL and
/// wakes the live feed of each of `engines`; returns its sync id. Used as
/// a marker that every socket must receive next.
pub async fn global_marker(db: &TestDb, engines: &[&SyncEngine]) -> u64 {
    db.execute(
        "INSERT INTO sync_actions (model, model_id, action, data) \
         VALUES ('Task', 'marker', 'U', '{\"title\": \"marker\"}')",
    )
    .await;
    for engine in engines {
        engine.hub().wake();
    }
    db.scalar("SELECT max(id) FROM sync_actions").await as u64
}

/// A workspace row (its id is its sync group) with `members` (set up with
/// [`TestDb::setup`](crate::TestDb::setup): no `S` actions).
pub async fn workspace(db: &TestDb, members: &[&str]) -> String {
    let ws = crate::new_id();
    db.execute(&format!("INSERT INTO workspaces (id, name) VALUES ('{ws}', 'W')")).await;
    for m in members {
        db.setup(&format!(
            "INSERT INTO sync_group_memberships (user_id, group_id, group_type) VALUES ('{m}', '{ws}', 'workspace')"
        ))
        .await;
    }
    ws
}

/// Inserts a task in `ws` as `member` through the engine; returns its sync id.
pub async fn insert_task(engine: &SyncEngine, member: &str, ws: &str, title: &str) -> u64 {
    let id = crate::new_id();
    let res = mutate(
        engine,
        &user(member, &[ws]),
        vec![tx(MutationAction::Insert, "Task", &id, json!({"workspaceId": ws, "title": title, "priority": 1}))],
    )
    .await;
    assert!(res.success, "{res:?}");
    res.last_sync_id.0
}

/// Inserts `n` tasks in one batch; returns their sync ids.
pub async fn insert_tasks(engine: &SyncEngine, member: &str, ws: &str, n: usize) -> Vec<u64> {
    let txs = (0..n)
        .map(|i| {
            tx(MutationAction::Insert, "Task", &crate::new_id(), json!({"workspaceId": ws, "title": format!("t{i}")}))
        })
        .collect();
    let res = mutate(engine, &user(member, &[ws]), txs).await;
    assert!(res.success, "{res:?}");
    res.results.iter().map(|r| r.sync_id().expect("success").0).collect()
}

/// Logs `n` actions of `size` bytes of data each in `group` (`None`:
/// global) directly with SQL, as a backlog for replays; returns the last id.
pub async fn backlog(db: &TestDb, group: Option<&str>, n: usize, size: usize) -> u64 {
    let group = group.map_or("NULL".to_owned(), |g| format!("'{g}'"));
    db.execute(&format!(
        "INSERT INTO sync_actions (model, model_id, action, data, group_id) \
         SELECT 'Task', gen_random_uuid()::text, 'U', jsonb_build_object('title', repeat('x', {size}) || i), {group} \
         FROM generate_series(1, {n}) AS i"
    ))
    .await;
    db.scalar("SELECT max(id) FROM sync_actions").await as u64
}

/// The ids of the log visible to `groups` (group or global), ascending.
pub async fn visible_ids(db: &TestDb, groups: &[String]) -> Vec<u64> {
    let list = groups.iter().map(|g| format!("'{}'", g.replace('\'', "''"))).collect::<Vec<_>>().join(",");
    let condition = match list.is_empty() {
        true => "group_id IS NULL".to_owned(),
        false => format!("group_id IS NULL OR group_id IN ({list})"),
    };
    db.log(&condition)
        .await
        .iter()
        .map(|a| a["syncId"].as_str().and_then(|s| s.parse().ok()).expect("syncId"))
        .collect()
}

/// Waits until the hub of `engine` has handed out `id` (bounded).
pub async fn hub_reached(engine: &SyncEngine, id: u64) {
    let deadline = Instant::now() + WAIT;
    while engine.hub().dispatched().0 < id {
        assert!(Instant::now() < deadline, "hub stuck at {:?}, expected {id}", engine.hub().dispatched());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A `redis-server` child process of this test on its own port, never
/// the shared one. Killed on drop.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    /// Starts one on a free port.
    pub async fn start() -> RedisServer {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("address").port()
        };
        let mut server = RedisServer { port, child: None };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").await.is_ok()
                    && tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await.is_ok_and(|r| r.is_ok())
                    && buf.starts_with(b"+PONG")
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A WebSocket client speaking raw frames over TCP, to send what no codec
/// would (bad continuations, invalid UTF-8 text).
pub struct RawSocket {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawSocket {
    /// Upgrades `path` (with its query) on `addr`.
    pub async fn connect(addr: SocketAddr, path: &str) -> RawSocket {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write upgrade");
        let mut socket = RawSocket { stream, buf: Vec::new() };
        let end = loop {
            if let Some(i) = socket.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            socket.fill().await;
        };
        let head = String::from_utf8_lossy(&socket.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        socket.buf.drain(..end);
        socket
    }

    async fn fill(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await.expect("read in time").unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Sends one masked frame.
    pub async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.send_raw(fin, opcode, payload, true).await;
    }

    /// Sends one frame, masked (as clients must) or not.
    pub async fn send_raw(&mut self, fin: bool, opcode: u8, payload: &[u8], masked: bool) {
        self.try_send_raw(fin, opcode, payload, masked).await.expect("write frame");
    }

    /// Like [`RawSocket::send_raw`], but a write error (the server closed
    /// the connection) is returned.
    pub async fn try_send_raw(&mut self, fin: bool, opcode: u8, payload: &[u8], masked: bool) -> std::io::Result<()> {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => frame.push(mask_bit | n as u8),
            n if n < 65536 => {
                frame.push(mask_bit | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(mask_bit | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let mask = [0x12, 0x34, 0x56, 0x78];
            frame.extend_from_slice(&mask);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        self.try_write(&frame).await
    }

    /// Writes `bytes` to the connection as they are (not as a frame).
    pub async fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        tokio::time::timeout(WAIT, self.stream.write_all(bytes)).await.expect("write in time")
    }

    /// Closes the sending half of the connection: the server reads its end.
    pub async fn shutdown_write(&mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = self.stream.shutdown().await;
    }

    /// Reads frames until a close frame; returns its code and the text
    /// frames before it (`None` code: the connection ended without one).
    pub async fn until_close(&mut self) -> (Option<u16>, Vec<String>) {
        let mut texts = Vec::new();
        loop {
            while self.buf.len() < 2 {
                if !self.fill().await {
                    return (None, texts);
                }
            }
            let opcode = self.buf[0] & 0x0f;
            let (len, header) = match self.buf[1] & 0x7f {
                126 if self.buf.len() >= 4 => (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4),
                127 if self.buf.len() >= 10 => {
                    (u64::from_be_bytes(self.buf[2..10].try_into().expect("8 bytes")) as usize, 10)
                }
                n if n < 126 => (n as usize, 2),
                _ => {
                    if !self.fill().await {
                        return (None, texts);
                    }
                    continue;
                }
            };
            while self.buf.len() < header + len {
                if !self.fill().await {
                    return (None, texts);
                }
            }
            let payload: Vec<u8> = self.buf.drain(..header + len).skip(header).collect();
            match opcode {
                0x1 => texts.push(String::from_utf8_lossy(&payload).into_owned()),
                0x8 => return (payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])), texts),
                _ => {}
            }
        }
    }
}
