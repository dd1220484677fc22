//! Many concurrent writers and subscribers on two nodes sharing PostgreSQL
//! and Redis: every subscriber receives exactly the actions of its groups,
//! ascending, without duplicates or gaps, including those that subscribe
//! (replay, then live) while the writes are racing.

use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::protocol::MutationAction::{Insert, Update};
use stratasync_core::SyncEngine;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

const WRITERS: usize = 8;
const MUTATIONS: usize = 50;
const SUBSCRIBERS: usize = 20;

async fn writer(engine: SyncEngine, workspaces: Vec<String>, w: usize) -> usize {
    let admin = user("admin", &workspaces.iter().map(String::as_str).collect::<Vec<_>>());
    let mut mine: Vec<Vec<String>> = vec![Vec::new(); workspaces.len()];
    let mut actions = 0;
    for j in 0..MUTATIONS {
        let k = (w + j) % workspaces.len();
        let ws = &workspaces[k];
        let tx = if j % 5 == 4 && !mine[k].is_empty() {
            tx(Update, "Task", &mine[k][j % mine[k].len()], json!({"title": format!("w{w} j{j} updated")}))
        } else {
            let id = new_id();
            mine[k].push(id.clone());
            tx(Insert, "Task", &id, json!({"workspaceId": ws, "title": format!("w{w} j{j}"), "priority": j}))
        };
        let res = mutate(&engine, &admin, vec![tx]).await;
        assert!(res.success, "{res:?}");
        actions += 1;
    }
    actions
}

async fn concurrent_writers_and_subscribers_get_exactly_their_actions(adapter: Adapter) {
    let db = TestDb::new().await;
    let redis = RedisServer::start().await;
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let engine = db.engine_builder().redis_url(&redis.url()).start().expect("the engine starts");
        nodes.push(WsServer::start_on_workers(adapter, &db, SyncEndpoints::new(engine), 2).await);
    }
    let mut workspaces = Vec::new();
    for _ in 0..4 {
        workspaces.push(workspace(&db, &["admin"]).await);
    }
    // Subscriber i is a member of the workspaces in the bits of i % 15 + 1.
    let member_of = |i: usize| -> Vec<String> {
        (0..4).filter(|k| ((i % 15) + 1) & (1 << k) != 0).map(|k| workspaces[k].clone()).collect()
    };
    for i in 0..SUBSCRIBERS {
        for ws in member_of(i) {
            db.setup(&format!(
                "INSERT INTO sync_group_memberships (user_id, group_id, group_type) VALUES ('s{i}', '{ws}', 'workspace')"
            ))
            .await;
        }
    }
    // Some history to replay.
    let seeded = writer(nodes[0].engine.clone(), workspaces.clone(), 99).await;

    // (requested groups, effective groups) per subscriber.
    let plan: Vec<(Option<Vec<String>>, Vec<String>)> = (0..SUBSCRIBERS)
        .map(|i| {
            let member = member_of(i);
            let me = format!("s{i}");
            let all: Vec<String> = member.iter().cloned().chain([me.clone()]).collect();
            match i % 4 {
                0 => (None, all),
                1 => (Some(Vec::new()), all),
                // Its first workspace, plus one it may not see.
                2 => {
                    let other = workspaces.iter().find(|w| !member.contains(w)).cloned();
                    (Some([member[0].clone()].into_iter().chain(other).collect()), vec![member[0].clone()])
                }
                _ => (
                    Some(vec![me.clone(), member[member.len() - 1].clone()]),
                    vec![me, member[member.len() - 1].clone()],
                ),
            }
        })
        .collect();

    // Targets: set once the writers are done (the last id each subscriber
    // must reach).
    let targets: Rc<RefCell<Vec<Option<u64>>>> = Rc::new(RefCell::new(vec![None; SUBSCRIBERS]));
    let started = Instant::now();
    let readers = (0..SUBSCRIBERS).map(|i| {
        let targets = Rc::clone(&targets);
        let node = &nodes[i % 2];
        let (requested, effective) = plan[i].clone();
        async move {
            // Half subscribe before the writes, half while they race, some
            // from 0 and some from a cursor in the history.
            let after = if i % 3 == 0 { 0 } else { (i as u64) % 7 };
            if i >= SUBSCRIBERS / 2 {
                tokio::time::sleep(Duration::from_millis(40 * (i - SUBSCRIBERS / 2) as u64)).await;
            }
            let who = format!("s{i}");
            let mut socket = node.connect(&who).await;
            let groups: Option<Vec<&str>> = requested.as_ref().map(|g| g.iter().map(String::as_str).collect());
            let (mut ids, subscribed) = socket.subscribe_ok(&who, after, groups.as_deref()).await;
            assert_eq!(subscribed["groups"], json!(effective), "s{i}");
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                let target = targets.borrow()[i];
                if let Some(target) = target {
                    if ids.last().copied().unwrap_or(after) >= target {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "s{i} stuck at {:?}, target {target:?}", ids.last());
                match socket.try_recv_within(Duration::from_millis(50)).await {
                    Some(Incoming::Text(text)) => {
                        let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                        assert_eq!(frame["type"], json!("delta"), "s{i}: {frame}");
                        ids.push(sync_id(&frame));
                    }
                    Some(other) => panic!("s{i}: {other:?}"),
                    None => {}
                }
            }
            (i, after, effective, ids, socket)
        }
    });
    let writers = async {
        let runs = (0..WRITERS).map(|w| writer(nodes[w % 2].engine.clone(), workspaces.clone(), w));
        let counts = futures_util::future::join_all(runs).await;
        let written = counts.iter().sum::<usize>();
        let elapsed = started.elapsed();
        for (i, (_, effective)) in plan.iter().enumerate() {
            let last = visible_ids(&db, effective).await.last().copied().unwrap_or(0);
            targets.borrow_mut()[i] = Some(last);
        }
        (written, elapsed)
    };
    let ((written, write_time), results) = futures_util::join!(writers, futures_util::future::join_all(readers));
    let total_frames: usize = results.iter().map(|r| r.3.len()).sum();
    println!(
        "stress: {seeded} seeded + {written} concurrent mutations ({WRITERS} writers on 2 nodes) in {write_time:?}; \
         {SUBSCRIBERS} subscribers received {total_frames} frames; all delivered after {:?}",
        started.elapsed()
    );
    assert_eq!(written, WRITERS * MUTATIONS);
    let mut sockets = Vec::new();
    for (i, after, effective, ids, socket) in results {
        let expected: Vec<u64> = visible_ids(&db, &effective).await.into_iter().filter(|id| *id > after).collect();
        assert_ascending(&ids, &format!("s{i}"));
        assert_eq!(ids, expected, "s{i} (after {after}, groups {effective:?})");
        sockets.push((i, socket));
    }
    // Nothing after the last expected action either: a global marker is
    // every socket's next frame.
    let marker = global_marker(&db, &[&nodes[0].engine, &nodes[1].engine]).await;
    for (i, socket) in &mut sockets {
        assert_eq!(sync_id(&socket.deltas(1, WAIT).await[0]), marker, "s{i}");
    }
    for node in nodes {
        node.stop().await;
    }
}

on_both_adapters!(concurrent_writers_and_subscribers_get_exactly_their_actions);
