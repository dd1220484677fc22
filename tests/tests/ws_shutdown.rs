//! Graceful shutdown: `SyncEndpoints::close_sockets` (as `SyncHttp` and
//! `SyncRouter` call it) closes every live socket
//! with 1001, so open WebSockets do not hold a stopping server until its
//! shutdown timeout and clients reconnect elsewhere at once.

use std::time::Duration;
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

async fn shutting_down_closes_sockets_with_going_away(adapter: Adapter) {
    let db = TestDb::new().await;
    let ws = workspace(&db, &["alice"]).await;
    let sync = SyncEndpoints::new(db.engine());
    let server = WsServer::start_on(adapter, &db, sync.clone()).await;
    let mut subscribed = server.connect("alice").await;
    subscribed.subscribe_ok("alice", 0, None).await;
    let mut idle = server.connect("alice").await;
    insert_task(&server.engine, "alice", &ws, "before shutdown").await;
    subscribed.deltas(1, Duration::from_secs(5)).await;

    sync.close_sockets();
    for socket in [&mut subscribed, &mut idle] {
        let (code, reason, _) =
            tokio::time::timeout(Duration::from_secs(5), socket.until_close()).await.expect("closed in time");
        assert_eq!((code, reason.as_str()), (Some(1001), "Server shutting down"));
    }
    server.stop().await;
}

on_both_adapters!(shutting_down_closes_sockets_with_going_away);
