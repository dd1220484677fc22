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

/// axum lets go of a connection once it is upgraded, so
/// `axum::serve(..).with_graceful_shutdown(..)` returns while sockets may
/// still be writing their close frames: `SyncRouter::sockets_closed` waits
/// for them, and for nothing else.
#[actix_web::test]
async fn the_axum_router_waits_for_its_sockets_to_close() {
    let db = TestDb::new().await;
    workspace(&db, &["alice"]).await;
    let sync = stratasync_axum::SyncRouter::new(db.engine());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/sync/ws?token=token-alice", listener.local_addr().expect("address"));
    let app = axum::Router::new().nest("/sync", sync.router());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await.expect("axum server");
    });
    let mut subscribed = WsClient::connect(&url).await;
    subscribed.subscribe_ok("alice", 0, None).await;
    let mut idle = WsClient::connect(&url).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sync.sockets_closed()).await.is_err(),
        "sockets_closed resolved while two sockets were open"
    );

    sync.close_sockets();
    stop.send(()).expect("the server runs");
    server.await.expect("axum::serve returned");
    tokio::time::timeout(Duration::from_secs(5), sync.sockets_closed()).await.expect("every socket ended in time");
    for socket in [&mut subscribed, &mut idle] {
        let (code, reason, _) =
            tokio::time::timeout(Duration::from_secs(5), socket.until_close()).await.expect("closed in time");
        assert_eq!((code, reason.as_str()), (Some(1001), "Server shutting down"));
    }
}
