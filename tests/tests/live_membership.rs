//! Live sessions follow membership changes (docs/protocol.md §7.5) and
//! token lifetimes (§7.6): a user's `S` action moves their open sockets'
//! groups at exactly its sync id, in the live feed and in replay, on every
//! node; a token's expiry or a refused re-check closes its socket with 4001.

use futures_util::StreamExt;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::realtime::HubConfig;
use stratasync_core::storage::memberships;
use stratasync_core::{async_trait, AuthRejection, AuthUser, SyncAuth, SyncEngine};
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

/// The actions of the delta frames `socket` receives up to and including
/// sync id `last` (panics on any other frame).
async fn actions_until(socket: &mut WsClient, last: u64) -> Vec<Value> {
    let mut actions = Vec::new();
    loop {
        let frame = socket.deltas(1, WAIT).await.remove(0);
        let action = frame["packet"]["actions"][0].clone();
        let id = sync_id(&frame);
        assert!(id <= last, "delta {id} is past the marker {last}: {frame}");
        actions.push(action);
        if id == last {
            return actions;
        }
    }
}

fn ids(actions: &[Value]) -> Vec<u64> {
    actions.iter().map(|a| a["syncId"].as_str().and_then(|s| s.parse().ok()).expect("syncId")).collect()
}

/// The sync ids of `group`'s actions, ascending.
async fn group_ids(db: &TestDb, group: &str) -> Vec<u64> {
    let groups = [group.to_owned()];
    let global: HashSet<u64> = visible_ids(db, &[]).await.into_iter().collect();
    visible_ids(db, &groups).await.into_iter().filter(|id| !global.contains(id)).collect()
}

/// The sync id of the newest `S` action of `user`.
async fn last_change(db: &TestDb, user: &str) -> u64 {
    db.scalar(&format!("SELECT max(id) FROM sync_actions WHERE action = 'S' AND group_id = '{user}'")).await as u64
}

async fn a_revoked_group_stops_at_its_sync_id_under_concurrent_writes(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice", "bob"]).await;
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    let mut alice = server.connect("alice").await;
    alice.subscribe_ok("alice", 0, None).await;
    let mut bob = server.connect("bob").await;
    bob.subscribe_ok("bob", 0, None).await;

    // Bob writes to the workspace without pause while Alice is removed:
    // a few committed writes before the removal, a few begun after it.
    let stop = Arc::new(AtomicBool::new(false));
    let (committed_tx, mut committed) = tokio::sync::watch::channel(0usize);
    let writer = tokio::spawn({
        let (engine, ws, stop) = (engine.clone(), ws.clone(), stop.clone());
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Acquire) {
                insert_task(&engine, "bob", &ws, &format!("w{n}")).await;
                n += 1;
                committed_tx.send_replace(n);
            }
        }
    });
    committed.wait_for(|n| *n >= 3).await.expect("the writer runs");
    memberships::remove(&db.pool, "alice", &ws).await.unwrap();
    engine.hub().wake();
    // At most one of these was under way during the removal.
    let at_removal = *committed.borrow_and_update();
    committed.wait_for(|n| *n >= at_removal + 3).await.expect("the writer runs");
    stop.store(true, Ordering::Release);
    writer.await.unwrap();
    let marker = global_marker(&db, &[&engine]).await;

    let change = last_change(&db, "alice").await;
    let written = group_ids(&db, &ws).await;
    let (before, after): (Vec<u64>, Vec<u64>) = written.iter().partition(|id| **id < change);
    assert!(!before.is_empty() && !after.is_empty(), "writes on both sides of the change: {before:?} {after:?}");
    let received = actions_until(&mut alice, marker).await;
    let expected: Vec<u64> = before.iter().copied().chain([change, marker]).collect();
    assert_eq!(ids(&received), expected, "every write before the revocation, none after");
    assert_eq!(received[before.len()]["data"]["subscribedSyncGroups"], serde_json::json!(["alice"]));
    // Bob, still a member, got every write and not Alice's change.
    let bob_expected: Vec<u64> = written.iter().copied().chain([marker]).collect();
    assert_eq!(ids(&actions_until(&mut bob, marker).await), bob_expected);
    server.stop().await;
}

async fn a_granted_group_flows_and_a_named_subset_only_regains_what_it_named(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice", "bob"]).await;
    let other = workspace(&db, &["bob"]).await;
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    let mut all = server.connect("alice").await;
    all.subscribe_ok("alice", 0, None).await;
    let mut subset = server.connect("alice").await;
    let (_, subscribed) = subset.subscribe_ok("alice", 0, Some(&[ws.as_str()])).await;
    assert_eq!(subscribed["groups"], serde_json::json!([ws]));

    // A grant through plain SQL, then a write in the new workspace.
    db.execute(&format!(
        "INSERT INTO sync_group_memberships (user_id, group_id, group_type) VALUES ('alice', '{other}', 'workspace')"
    ))
    .await;
    engine.hub().wake();
    let granted = last_change(&db, "alice").await;
    let in_other = insert_task(&engine, "bob", &other, "for alice").await;
    // Out and back in again: a named group comes back, nothing else.
    memberships::remove(&db.pool, "alice", &ws).await.unwrap();
    let removed = last_change(&db, "alice").await;
    let while_out = insert_task(&engine, "bob", &ws, "not for alice").await;
    memberships::add(&db.pool, "alice", &ws, "workspace").await.unwrap();
    let readded = last_change(&db, "alice").await;
    let back_in = insert_task(&engine, "bob", &ws, "for alice again").await;
    let marker = global_marker(&db, &[&engine]).await;
    assert!(granted < in_other && in_other < removed && removed < while_out && while_out < readded);

    assert_eq!(ids(&actions_until(&mut all, marker).await), [granted, in_other, removed, readded, back_in, marker]);
    // The subset session gets its user's changes although it did not name
    // the user's own group, and never the workspace it did not name.
    assert_eq!(ids(&actions_until(&mut subset, marker).await), [granted, removed, readded, back_in, marker]);
    server.stop().await;
}

async fn a_replay_follows_the_changes_it_passes_across_page_boundaries(adapter: Adapter) {
    let db = TestDb::new().await;
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    // 1,500 actions of the workspace (more than a replay page), Alice
    // removed, 1,500 more, Alice back, 10 more.
    let first = backlog(&db, Some(&ws), 1500, 10).await;
    memberships::remove(&db.pool, "alice", &ws).await.unwrap();
    let removed = last_change(&db, "alice").await;
    let hidden = backlog(&db, Some(&ws), 1500, 10).await;
    memberships::add(&db.pool, "alice", &ws, "workspace").await.unwrap();
    let readded = last_change(&db, "alice").await;
    let last = backlog(&db, Some(&ws), 10, 10).await;
    assert!(first < removed && removed < hidden && hidden < readded && readded < last);

    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    let mut alice = server.connect("alice").await;
    let (replayed, subscribed) = alice.subscribe_ok("alice", 0, None).await;
    let expected: Vec<u64> = (1..=first).chain([removed]).chain([readded]).chain(readded + 1..=last).collect();
    assert_eq!(replayed.len(), expected.len());
    assert_eq!(replayed, expected);
    assert_eq!(subscribed["afterSyncId"], last.to_string());
    // From a cursor while she was out: only the change that let her back in
    // and what followed.
    let mut again = server.connect("alice").await;
    let (replayed, _) = again.subscribe_ok("alice", removed, None).await;
    assert_eq!(replayed, (readded..=last).collect::<Vec<_>>());
    // Live, the session has her groups after the last change.
    let live = insert_task(&engine, "bob", &ws, "live").await;
    alice.assert_next_delta(live).await;
    again.assert_next_delta(live).await;
    server.stop().await;
}

async fn a_change_made_through_one_node_moves_a_socket_on_another(adapter: Adapter) {
    let db = TestDb::new().await;
    let redis = RedisServer::start().await;
    // Both nodes poll once a minute: what reaches node 2 came through Redis.
    let node = |db: &TestDb| {
        db.engine_builder()
            .hub_config(HubConfig { poll_interval: Duration::from_secs(60), ..HubConfig::default() })
            .redis_url(&redis.url())
            .start()
            .expect("the engine starts")
    };
    let (one, two) = (node(&db), node(&db));
    let server_one = WsServer::with_engine_on(adapter, &db, one.clone()).await;
    let server_two = WsServer::with_engine_on(adapter, &db, two.clone()).await;
    let ws = workspace(&db, &["alice", "bob"]).await;
    let other = workspace(&db, &["bob"]).await;
    let mut alice = server_two.connect("alice").await;
    alice.subscribe_ok("alice", 0, None).await;
    // Node 2's Redis subscriber is connected once a write on node 1 arrives.
    let mut connected = false;
    for _ in 0..40 {
        let id = insert_task(&one, "bob", &ws, "warm-up").await;
        if alice.try_deltas_until(id, Duration::from_millis(250)).await.is_ok() {
            connected = true;
            break;
        }
    }
    assert!(connected, "node 2 never heard from node 1 through redis");

    // The changes are made outside both nodes (plain SQL and the storage
    // API); the next write on node 1 wakes node 2, whose feed reads them
    // from the log in order.
    db.execute(&format!("DELETE FROM sync_group_memberships WHERE user_id = 'alice' AND group_id = '{ws}'")).await;
    let removed = last_change(&db, "alice").await;
    insert_task(&one, "bob", &ws, "after the revocation").await;
    memberships::add(&db.pool, "alice", &other, "workspace").await.unwrap();
    let granted = last_change(&db, "alice").await;
    let in_other = insert_task(&one, "bob", &other, "for alice").await;
    assert_eq!(ids(&actions_until(&mut alice, in_other).await), [removed, granted, in_other]);
    let marker = global_marker(&db, &[&one, &two]).await;
    alice.assert_next_delta(marker).await;
    server_one.stop().await;
    server_two.stop().await;
}

/// Development tokens (`token-<user>`) that can be revoked; those of users
/// whose id starts with `exp_` expire `ttl` after their first check.
struct ExpiringAuth {
    ttl: Duration,
    revoked: Arc<Mutex<HashSet<String>>>,
    expiries: Mutex<HashMap<String, SystemTime>>,
}

#[async_trait]
impl SyncAuth for ExpiringAuth {
    async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
        let user = token.strip_prefix("token-").filter(|u| !u.is_empty()).ok_or(AuthRejection::Invalid)?;
        if self.revoked.lock().unwrap().contains(user) {
            return Err(AuthRejection::Invalid);
        }
        if !user.starts_with("exp_") {
            return Ok(AuthUser::new(user));
        }
        let expiry =
            *self.expiries.lock().unwrap().entry(user.to_owned()).or_insert_with(|| SystemTime::now() + self.ttl);
        if expiry <= SystemTime::now() {
            return Err(AuthRejection::Expired);
        }
        Ok(AuthUser::new(user).expiring_at(expiry))
    }
}

async fn an_expiring_or_revoked_token_closes_its_socket_with_4001(adapter: Adapter) {
    let db = TestDb::new().await;
    let revoked = Arc::new(Mutex::new(HashSet::new()));
    let auth = ExpiringAuth { ttl: Duration::from_millis(1500), revoked: revoked.clone(), expiries: Mutex::default() };
    let engine = SyncEngine::builder(db.pool.clone(), taskboard::registry(), auth).start().expect("the engine starts");
    let endpoints = SyncEndpoints::new(engine.clone()).token_recheck(Duration::from_millis(200));
    let server = WsServer::start_on(adapter, &db, endpoints).await;
    let mut expiring = server.connect("exp_alice").await;
    expiring.subscribe_ok("exp_alice", 0, None).await;
    let mut doomed = server.connect("carol").await;
    doomed.subscribe_ok("carol", 0, None).await;
    let mut bob = server.connect("bob").await;
    bob.subscribe_ok("bob", 0, None).await;

    // Carol's token is revoked: the next re-check closes her socket.
    revoked.lock().unwrap().insert("carol".to_owned());
    let (code, reason, _) = doomed.until_close().await;
    assert_eq!((code, reason.as_str()), (Some(4001), "Token rejected"));
    // Alice's token reaches its expiry (re-checks accepted it until then).
    let (code, reason, texts) = expiring.until_close().await;
    assert_eq!((code, reason.as_str()), (Some(4001), "Token expired"));
    assert!(texts.is_empty(), "{texts:?}");
    // Bob's socket lives on.
    let marker = global_marker(&db, &[&engine]).await;
    bob.assert_next_delta(marker).await;
    server.stop().await;
}

/// Development tokens; alice also gets a group the application derives.
struct DerivingAuth {
    derived: String,
}

#[async_trait]
impl SyncAuth for DerivingAuth {
    async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
        token.strip_prefix("token-").filter(|u| !u.is_empty()).map(AuthUser::new).ok_or(AuthRejection::Invalid)
    }

    async fn resolve_groups(&self, user_id: &str) -> Result<Vec<String>, stratasync_core::auth::GroupResolutionError> {
        Ok(if user_id == "alice" { vec![self.derived.clone()] } else { Vec::new() })
    }
}

async fn a_group_change_tells_the_user_their_derived_groups_too_and_keeps_them(adapter: Adapter) {
    let db = TestDb::new().await;
    let derived = workspace(&db, &["bob"]).await;
    let joined = workspace(&db, &["bob"]).await;
    let engine = SyncEngine::builder(db.pool.clone(), taskboard::registry(), DerivingAuth { derived: derived.clone() })
        .start()
        .expect("the engine starts");
    let server = WsServer::with_engine_on(adapter, &db, engine.clone()).await;
    let mut alice = server.connect("alice").await;
    let (_, subscribed) = alice.subscribe_ok("alice", 0, None).await;
    assert_eq!(subscribed["groups"], serde_json::json!([derived, "alice"]));

    memberships::add(&db.pool, "alice", &joined, "workspace").await.unwrap();
    engine.hub().wake();
    let change = last_change(&db, "alice").await;
    let in_derived = insert_task(&engine, "bob", &derived, "still hers").await;
    let told = serde_json::json!({"subscribedSyncGroups": [derived, joined, "alice"]});
    let live = actions_until(&mut alice, in_derived).await;
    assert_eq!(ids(&live), [change, in_derived]);
    assert_eq!(live[0]["data"], told, "live");

    // The same in replay, in `/sync/deltas`, and as bootstrap lists them.
    let mut again = server.connect("alice").await;
    again.subscribe("alice", 0, None).await;
    let (replayed, _) = again.until_subscribed().await;
    let replayed: Vec<&Value> = replayed.iter().map(|f| &f["packet"]["actions"][0]).collect();
    assert_eq!(replayed.iter().find(|a| a["action"] == "S").map(|a| &a["data"]), Some(&told), "replay");
    let user = engine.authorize("token-alice").await.unwrap();
    let page = to_json(&engine.deltas(&user, &Default::default()).await.unwrap());
    let actions = page["actions"].as_array().unwrap();
    assert_eq!(actions.iter().find(|a| a["action"] == "S").map(|a| &a["data"]), Some(&told), "deltas: {page}");
    let mut body = Vec::new();
    let mut stream = engine.deltas_stream(&user, &Default::default()).await.unwrap();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    let streamed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(streamed, page, "the streamed page is the same");
    let lines = collect_lines(engine.bootstrap(&user, Default::default())).await;
    assert_eq!(lines[0]["subscribedSyncGroups"], told["subscribedSyncGroups"]);
    server.stop().await;
}

on_both_adapters!(
    a_revoked_group_stops_at_its_sync_id_under_concurrent_writes,
    a_granted_group_flows_and_a_named_subset_only_regains_what_it_named,
    a_replay_follows_the_changes_it_passes_across_page_boundaries,
    a_change_made_through_one_node_moves_a_socket_on_another,
    an_expiring_or_revoked_token_closes_its_socket_with_4001,
    a_group_change_tells_the_user_their_derived_groups_too_and_keeps_them,
);
