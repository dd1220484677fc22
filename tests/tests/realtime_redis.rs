//! Two and three nodes sharing PostgreSQL and Redis (docs/protocol.md §6): each
//! node is its own `SyncEngine`, live feed, Redis fan-out and HTTP server
//! on its own port. Delivery always comes from the log; Redis only wakes
//! the other nodes up.

use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use stratasync_core::realtime::redis as fanout;
use stratasync_core::realtime::HubConfig;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

/// How long a delivery through a Redis wake-up may take, at most: far
/// below the one-minute poll of the nodes that rely on Redis, so a
/// delivery within it came through Redis (a liveness bound, not a speed
/// check).
const VIA_REDIS: Duration = Duration::from_secs(20);

/// A node on `adapter`: its own engine and live feed polling every
/// `poll`, fan-out through `redis_url`, on its own port.
async fn node(adapter: Adapter, db: &TestDb, poll: Duration, redis_url: &str) -> WsServer {
    let engine = db
        .engine_builder()
        .hub_config(HubConfig { poll_interval: poll, ..HubConfig::default() })
        .redis_url(redis_url)
        .start()
        .expect("the engine starts");
    WsServer::with_engine_on(adapter, db, engine).await
}

/// The node's id in the messages it publishes.
fn source_id(node: &WsServer) -> &str {
    node.engine.redis_source_id().expect("a fan-out")
}

/// Writes on `writer` until `socket` (on another node) sees one of the
/// writes: the reader's Redis subscriber is then connected. Returns the
/// last write.
async fn warm_up(writer: &WsServer, ws: &str, socket: &mut WsClient) -> u64 {
    for _ in 0..40 {
        let id = insert_task(&writer.engine, "alice", ws, "warm-up").await;
        if let Ok(ids) = socket.try_deltas_until(id, Duration::from_millis(250)).await {
            assert!(ids.ends_with(&[id]));
            return id;
        }
    }
    panic!("the nodes never connected to redis");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `{"action":…,"groups":[…],"sourceId":…}` for the action of a delta frame.
fn redis_message(frame: &Value, source_id: &str) -> String {
    let action = &frame["packet"]["actions"][0];
    let groups: Vec<&Value> = action.get("groupId").into_iter().collect();
    format!(
        r#"{{"action":{},"groups":{},"sourceId":"{source_id}"}}"#,
        serde_json::to_string(action).unwrap(),
        serde_json::to_string(&groups).unwrap()
    )
}

async fn a_mutation_on_one_node_reaches_the_other_through_redis(adapter: Adapter) {
    let db = TestDb::new().await;
    let redis = RedisServer::start().await;
    // Polls every minute: anything faster than that came through Redis.
    let minute = Duration::from_secs(60);
    let one = node(adapter, &db, minute, &redis.url()).await;
    let two = node(adapter, &db, minute, &redis.url()).await;
    assert_ne!(one.addr.port(), two.addr.port());
    for id in [source_id(&one), source_id(&two)] {
        let hex = id.strip_prefix("sync-").expect("sync- prefix");
        assert!(hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(source_id(&one), source_id(&two));
    let a = workspace(&db, &["alice"]).await;
    let b = workspace(&db, &["bob"]).await;

    // A tap on the channel, to check the wire format.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut tap = client.get_async_pubsub().await.unwrap();
    tap.subscribe(fanout::CHANNEL).await.unwrap();
    let mut tap = tap.into_on_message();

    let mut on_two = two.connect("alice").await;
    on_two.subscribe_ok("alice", 0, None).await;
    let mut bob_on_two = two.connect("bob").await;
    bob_on_two.subscribe_ok("bob", 0, None).await;
    let mut on_one = one.connect("alice").await;
    on_one.subscribe_ok("alice", 0, None).await;
    let warm = warm_up(&one, &a, &mut on_two).await;
    on_one.deltas_until(warm, WAIT).await;

    // Latency of node 1 → Redis → node 2 → socket.
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    let mut frames = Vec::new();
    for i in 0..30 {
        let started = Instant::now();
        let id = insert_task(&one.engine, "alice", &a, &format!("measured {i}")).await;
        let committed = started.elapsed();
        let frame = on_two.deltas(1, VIA_REDIS).await.remove(0);
        latencies.push((started.elapsed(), started.elapsed() - committed));
        assert_eq!(sync_id(&frame), id);
        ids.push(id);
        frames.push(frame);
    }
    let mut total: Vec<Duration> = latencies.iter().map(|l| l.0).collect();
    let mut after_commit: Vec<Duration> = latencies.iter().map(|l| l.1).collect();
    total.sort();
    after_commit.sort();
    println!(
        "node 1 -> node 2 over redis, 30 mutations (poll 60 s): commit-to-socket p50 {:?} p90 {:?} max {:?}; \
         mutate-call-to-socket p50 {:?} max {:?}",
        percentile(&after_commit, 0.5),
        percentile(&after_commit, 0.9),
        after_commit.last().unwrap(),
        percentile(&total, 0.5),
        total.last().unwrap()
    );
    // The local socket on node 1 got them too.
    assert_eq!(on_one.deltas_until(*ids.last().unwrap(), WAIT).await, ids);

    // The other direction, and bob's group: bob's first frame on node 2 is
    // his own write (none of alice's, all dispatched before it, leaked).
    let id = insert_task(&two.engine, "bob", &b, "from two").await;
    assert_eq!(bob_on_two.deltas_until(id, WAIT).await, [id]);
    let mut bob_on_one = one.connect("bob").await;
    let (replayed, _) = bob_on_one.subscribe_ok("bob", id, None).await;
    assert!(replayed.is_empty());
    let id = insert_task(&two.engine, "bob", &b, "from two, seen on one").await;
    assert_eq!(bob_on_one.deltas_until(id, VIA_REDIS).await, [id]);

    // Wire format (§6): exactly the reference's message, from node 1.
    let wanted = redis_message(&frames[0], source_id(&one));
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, tap.next()).await.expect("the tap saw node 1's message").unwrap();
        assert_eq!(msg.get_channel_name(), "sync:deltas");
        let payload: String = msg.get_payload().unwrap();
        if payload == wanted {
            break;
        }
    }

    // Another implementation's node (`@stratasync/server`) commits and
    // publishes: node 2 wakes up (the poll is a minute away). Which
    // messages wake a node (not a malformed one, not one carrying its own
    // `sourceId`) is `is_foreign_delta`'s unit test in stratasync-core: a
    // wake-up that finds nothing new has no effect a test could observe.
    let publish = |payload: String| {
        let client = client.clone();
        async move {
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            redis::cmd("PUBLISH").arg(fanout::CHANNEL).arg(payload).exec_async(&mut conn).await.unwrap();
        }
    };
    db.execute(&format!(
        "INSERT INTO sync_actions (model, model_id, action, data, group_id, created_at) \
         VALUES ('Task', 't-ts', 'U', '{{\"title\": \"from ts\"}}', '{a}', '2024-06-15T12:00:00Z')"
    ))
    .await;
    let ts_id = db.scalar("SELECT max(id) FROM sync_actions").await as u64;
    let ts_message = |source: &str, sync_id: Value| {
        json!({"action": {"action": "U", "createdAt": "2024-06-15T12:00:00.000Z", "data": {"title": "from ts"},
                          "groupId": a, "modelId": "t-ts", "modelName": "Task", "syncId": sync_id},
               "groups": [a], "sourceId": source})
        .to_string()
    };
    // Malformed messages and node 2's own do not stop its subscriber: the
    // foreign message after them still wakes it.
    publish("not json".into()).await;
    publish(ts_message("sync-0badbad0", json!(ts_id))).await;
    publish(ts_message(source_id(&two), json!(ts_id.to_string()))).await;
    let started = Instant::now();
    publish(ts_message("sync-7e57c0de", json!(ts_id.to_string()))).await;
    let frame = on_two.deltas(1, VIA_REDIS).await.remove(0);
    println!("a foreign node's message woke node 2 in {:?}", started.elapsed());
    assert_eq!(sync_id(&frame), ts_id);
    assert_eq!(frame["packet"]["actions"][0]["data"], json!({"title": "from ts"}));

    one.stop().await;
    two.stop().await;
}

/// User, requested groups, effective groups.
type Subscriber<'a> = (&'a str, Option<Vec<&'a str>>, Vec<String>);

/// Writes `n` tasks on `node`, alternating between alice's workspace `a`
/// (two of three) and bob's `b`; every one must succeed.
async fn write_tasks(node: &WsServer, a: &str, b: &str, n: usize, phase: &str) {
    for i in 0..n {
        let (who, ws) = if i % 3 == 2 { ("bob", b) } else { ("alice", a) };
        insert_task(&node.engine, who, ws, &format!("{phase} {i}")).await;
    }
}

async fn no_action_is_lost_when_redis_stops_and_restarts(adapter: Adapter) {
    let db = TestDb::new().await;
    let mut redis = RedisServer::start().await;
    let short = Duration::from_millis(200);
    let one = node(adapter, &db, short, &redis.url()).await;
    let two = node(adapter, &db, short, &redis.url()).await;
    // Node 3 polls once a minute: it depends on Redis, and sees the
    // outage's actions only when its subscriber reconnects and catches up
    // from the log.
    let three = node(adapter, &db, Duration::from_secs(60), &redis.url()).await;
    let a = workspace(&db, &["alice", "carol"]).await;
    let b = workspace(&db, &["bob", "carol"]).await;

    let a_s = a.as_str();
    let subscribers: Vec<Subscriber> = vec![
        ("alice", None, vec![a.clone(), "alice".into()]),
        ("bob", None, vec![b.clone(), "bob".into()]),
        ("carol", None, vec![a.clone(), b.clone(), "carol".into()]),
        ("carol", Some(vec![a_s]), vec![a.clone()]),
    ];
    let mut on_two = Vec::new();
    for (who, groups, _) in &subscribers {
        let mut socket = two.connect(who).await;
        socket.subscribe_ok(who, 0, groups.as_deref()).await;
        on_two.push(socket);
    }
    let mut on_three = three.connect("carol").await;
    on_three.subscribe_ok("carol", 0, None).await;
    // Socket 0 on node 2 has read up to `seen`, the others on node 2
    // nothing yet; the socket on node 3 has read up to `seen_three`.
    let seen = warm_up(&one, &a, &mut on_two[0]).await;
    let seen_three = warm_up(&one, &a, &mut on_three).await;

    // Writes on node 1 before, during and after an outage of Redis; every
    // mutation succeeds while it is down.
    write_tasks(&one, &a, &b, 15, "before").await;
    redis.kill();
    write_tasks(&one, &a, &b, 15, "during").await;
    redis.restart().await;
    write_tasks(&one, &a, &b, 15, "after").await;

    // Node 3 got exactly carol's actions after what it had read, in order,
    // once: its subscriber reconnected by itself and the feed caught up.
    let carol = vec![a.clone(), b.clone(), "carol".to_owned()];
    let expected: Vec<u64> = visible_ids(&db, &carol).await.into_iter().filter(|id| *id > seen_three).collect();
    assert_eq!(expected.len(), 45, "every write is carol's to see");
    let caught_up = Instant::now();
    assert_eq!(on_three.deltas_until(*expected.last().unwrap(), VIA_REDIS).await, expected, "node 3");
    println!("node 3 (60 s poll) caught up {} actions {:?} after the writes", expected.len(), caught_up.elapsed());
    // And a new write reaches it through Redis again.
    let fresh = insert_task(&one.engine, "carol", &b, "after the outage").await;
    assert_eq!(on_three.deltas_until(fresh, VIA_REDIS).await, [fresh]);

    // Every subscriber on node 2 (polling every 200 ms) got exactly its
    // actions, in order, once.
    for (i, (socket, (who, groups, effective))) in on_two.iter_mut().zip(&subscribers).enumerate() {
        let read_before = if i == 0 { seen } else { 0 };
        let expected: Vec<u64> = visible_ids(&db, effective).await.into_iter().filter(|id| *id > read_before).collect();
        let got = socket.deltas_until(*expected.last().unwrap(), WAIT).await;
        assert_eq!(got, expected, "{who} {groups:?}");
    }
    // Nothing more: a global marker is every socket's next frame.
    let marker = global_marker(&db, &[&two.engine, &three.engine]).await;
    for (socket, (who, groups, _)) in on_two.iter_mut().zip(&subscribers) {
        assert_eq!(sync_id(&socket.deltas(1, WAIT).await[0]), marker, "{who} {groups:?}");
    }
    assert_eq!(sync_id(&on_three.deltas(1, WAIT).await[0]), marker, "node 3");
    one.stop().await;
    two.stop().await;
    three.stop().await;
}

/// Subscribers of `sync:deltas` on `redis`.
async fn listeners(redis: &RedisServer) -> i64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return -1 };
    let reply: (String, i64) =
        redis::cmd("PUBSUB").arg("NUMSUB").arg(fanout::CHANNEL).query_async(&mut conn).await.unwrap();
    reply.1
}

async fn the_first_commit_after_a_redis_restart_still_wakes_the_other_node(adapter: Adapter) {
    let db = TestDb::new().await;
    let mut redis = RedisServer::start().await;
    let minute = Duration::from_secs(60);
    let one = node(adapter, &db, minute, &redis.url()).await;
    let two = node(adapter, &db, minute, &redis.url()).await;
    let a = workspace(&db, &["alice"]).await;
    let mut on_two = two.connect("alice").await;
    on_two.subscribe_ok("alice", 0, None).await;
    // Node 1's publisher now holds a connection.
    warm_up(&one, &a, &mut on_two).await;

    redis.kill();
    redis.restart().await;
    // Both subscribers are back; node 1 has not published since.
    let deadline = Instant::now() + WAIT;
    while listeners(&redis).await < 2 {
        assert!(Instant::now() < deadline, "the subscribers did not reconnect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let id = insert_task(&one.engine, "alice", &a, "first after the restart").await;
    assert_eq!(on_two.deltas_until(id, VIA_REDIS).await, [id]);
    println!("first commit after a redis restart reached node 2 in {:?}", started.elapsed());
    one.stop().await;
    two.stop().await;
}

on_both_adapters!(
    a_mutation_on_one_node_reaches_the_other_through_redis,
    no_action_is_lost_when_redis_stops_and_restarts,
    the_first_commit_after_a_redis_restart_still_wakes_the_other_node,
);
