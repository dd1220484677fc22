//! Log compaction (`stratasync_core::ops::compact`): a client that resumes
//! from any cursor at or above the retention horizon ends in exactly the
//! state the uncompacted log gives it, without a bootstrap; below the
//! horizon it is told to bootstrap.
//!
//! The history is random (a fixed seed; `STRATASYNC_COMPACTION_SEED`, a
//! number, varies it): inserts, updates, archives, unarchives and deletes
//! of tasks (some of them rows the log never saw inserted), labels, task
//! labels and their cascades, and group changes of a member, written
//! through the engine by several batches. Three users who see different
//! groups read the log through `/sync/deltas` pages as the client applies
//! them (docs/protocol.md §9.5); their state at every sampled cursor is
//! taken from the uncompacted log, then the log is compacted (once beside
//! concurrent writers) and each cursor resumes from the compacted one.

use proptest::prelude::{Rng, RngExt};
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use stratasync_core::auth::AuthContext;
use stratasync_core::engine::DeltasParams;
use stratasync_core::error::ServiceError;
use stratasync_core::ops::compact::{CompactError, Compaction, Retention};
use stratasync_core::protocol::MutationAction::{Archive, Delete, Insert, Unarchive, Update};
use stratasync_core::protocol::{SyncId, TransactionInput, TxResult};
use stratasync_core::SyncEngine;
use stratasync_tests::*;

/// A client's local store: rows by `(model, id)` and its group set.
#[derive(Debug, Clone, Default, PartialEq)]
struct Client {
    rows: BTreeMap<(String, String), Map<String, Value>>,
    groups: Option<Value>,
}

impl Client {
    /// Applies one delivered action as the published client does.
    fn apply(&mut self, action: &Value) {
        let letter = action["action"].as_str().expect("action letter");
        let key = (
            action["modelName"].as_str().expect("model").to_owned(),
            action["modelId"].as_str().expect("id").to_owned(),
        );
        let data = action["data"].as_object().cloned().unwrap_or_default();
        match letter {
            "I" => {
                let mut row = data;
                row.insert("id".into(), json!(key.1));
                self.rows.insert(key, row);
            }
            "U" | "A" | "V" => {
                let row = self.rows.entry(key.clone()).or_insert_with(|| Map::from_iter([("id".into(), json!(key.1))]));
                row.extend(data.clone());
                if letter == "A" {
                    row.insert("archivedAt".into(), data.get("archivedAt").cloned().expect("A carries archivedAt"));
                }
                if letter == "V" {
                    row.insert("archivedAt".into(), Value::Null);
                }
            }
            "D" => {
                self.rows.remove(&key);
            }
            "S" => self.groups = Some(action["data"]["subscribedSyncGroups"].clone()),
            other => panic!("unexpected action letter {other}"),
        }
    }

    /// What differs from `other` (at most five rows), for a readable
    /// failure.
    fn diff(&self, other: &Client) -> String {
        let mut out = Vec::new();
        if self.groups != other.groups {
            out.push(format!("groups {:?} vs {:?}", self.groups, other.groups));
        }
        let keys: std::collections::BTreeSet<_> = self.rows.keys().chain(other.rows.keys()).collect();
        for k in keys {
            let (a, b) = (self.rows.get(k), other.rows.get(k));
            if a != b {
                out.push(format!("{k:?}: {} vs {}", json!(a), json!(b)));
            }
        }
        out.truncate(6);
        out.join("\n")
    }

    fn applied<'a>(mut self, actions: impl IntoIterator<Item = &'a Value>) -> Client {
        for a in actions {
            self.apply(a);
        }
        self
    }
}

fn sync_id(action: &Value) -> u64 {
    action["syncId"].as_str().and_then(|s| s.parse().ok()).expect("syncId")
}

/// Every action `user` sees after `after`, through pages of 7.
async fn read_after(engine: &SyncEngine, user: &AuthContext, after: u64) -> Result<Vec<Value>, ServiceError> {
    let mut cursor = after;
    let mut out = Vec::new();
    loop {
        let page = engine
            .deltas(user, &DeltasParams { after: SyncId(cursor), limit: Some(7), ..DeltasParams::default() })
            .await?;
        let page = to_json(&page);
        out.extend(page["actions"].as_array().expect("actions").iter().cloned());
        cursor = page["lastSyncId"].as_str().and_then(|s| s.parse().ok()).expect("lastSyncId");
        if page["hasMore"] != json!(true) {
            return Ok(out);
        }
    }
}

/// What the generator knows of the rows it wrote.
struct World {
    rng: TestRng,
    workspaces: [String; 2],
    /// Live tasks: id, workspace index, archived.
    tasks: Vec<(String, usize, bool)>,
    labels: Vec<(String, usize)>,
    links: Vec<(String, String, usize)>,
    /// Whether `u_a` is a member of the second workspace, and `u_b` of the
    /// first.
    a_in_b: bool,
    b_in_a: bool,
    /// Every committed transaction and its sync id.
    committed: Vec<(TransactionInput, SyncId)>,
}

impl World {
    fn pick(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    /// One random transaction, or a membership change (`u_a` joins or
    /// leaves the second workspace, `u_b` the first) as `Err` with its SQL.
    fn step(&mut self) -> Option<Result<TransactionInput, String>> {
        let roll = self.rng.random_range(0..100);
        let ws = self.pick(2);
        match roll {
            0..=24 => {
                let id = new_id();
                self.tasks.push((id.clone(), ws, false));
                let title = format!("t{}", self.rng.next_u32() % 1000);
                let priority = self.rng.random_range(0..4);
                Some(tx(
                    Insert,
                    "Task",
                    &id,
                    json!({"workspaceId": self.workspaces[ws], "title": title, "priority": priority}),
                ))
            }
            25..=49 if !self.tasks.is_empty() => {
                let i = self.pick(self.tasks.len());
                let (id, _, _) = self.tasks[i].clone();
                let payload = match self.pick(3) {
                    0 => json!({"title": format!("u{}", self.rng.next_u32() % 1000)}),
                    1 => json!({"priority": self.rng.random_range(0..4)}),
                    _ => json!({"description": format!("d{}", self.rng.next_u32() % 100), "priority": 1}),
                };
                Some(tx(Update, "Task", &id, payload))
            }
            50..=59 if !self.tasks.is_empty() => {
                let i = self.pick(self.tasks.len());
                let (id, _, archived) = self.tasks[i].clone();
                self.tasks[i].2 = !archived;
                Some(if archived {
                    tx(Unarchive, "Task", &id, json!({}))
                } else {
                    tx(
                        Archive,
                        "Task",
                        &id,
                        json!({"archivedAt": 1_700_000_000_000i64 + i64::from(self.rng.next_u32())}),
                    )
                })
            }
            60..=67 if !self.tasks.is_empty() => {
                let i = self.pick(self.tasks.len());
                let (id, _, _) = self.tasks.remove(i);
                self.links.retain(|(t, _, _)| *t != id);
                Some(tx(Delete, "Task", &id, json!({})))
            }
            68..=75 => {
                let id = new_id();
                self.labels.push((id.clone(), ws));
                Some(tx(Insert, "Label", &id, json!({"workspaceId": self.workspaces[ws], "name": "l", "color": "red"})))
            }
            76..=87 => {
                let task = self.tasks.iter().filter(|t| t.1 == ws).map(|t| t.0.clone()).collect::<Vec<_>>();
                let label = self.labels.iter().filter(|l| l.1 == ws).map(|l| l.0.clone()).collect::<Vec<_>>();
                if task.is_empty() || label.is_empty() {
                    return None;
                }
                let (t, l) = (task[self.pick(task.len())].clone(), label[self.pick(label.len())].clone());
                if self.links.iter().any(|(a, b, _)| *a == t && *b == l) {
                    return None;
                }
                self.links.push((t.clone(), l.clone(), ws));
                let payload = json!({"taskId": t, "labelId": l, "workspaceId": self.workspaces[ws]});
                Some(tx(Insert, "TaskLabel", &new_id(), payload))
            }
            88..=93 if !self.links.is_empty() => {
                let i = self.pick(self.links.len());
                let (t, l, ws) = self.links.remove(i);
                Some(tx(
                    Delete,
                    "TaskLabel",
                    &new_id(),
                    json!({"taskId": t, "labelId": l, "workspaceId": self.workspaces[ws]}),
                ))
            }
            94..=99 => {
                let (member, group, joined) = if ws == 0 {
                    ("u_a", &self.workspaces[1], &mut self.a_in_b)
                } else {
                    ("u_b", &self.workspaces[0], &mut self.b_in_a)
                };
                let sql = if *joined {
                    format!("DELETE FROM sync_group_memberships WHERE user_id = '{member}' AND group_id = '{group}'")
                } else {
                    format!(
                        "INSERT INTO sync_group_memberships (user_id, group_id, group_type) \
                         VALUES ('{member}', '{group}', 'workspace')"
                    )
                };
                *joined = !*joined;
                return Some(Err(sql));
            }
            _ => None,
        }
        .map(Ok)
    }

    /// `n` random steps, committed in batches of 1–5 transactions.
    async fn run(&mut self, db: &TestDb, engine: &SyncEngine, n: usize) {
        let root = user("root", &[&self.workspaces[0], &self.workspaces[1]]);
        let mut pending = Vec::new();
        for _ in 0..n {
            match self.step() {
                Some(Ok(t)) => pending.push(t),
                Some(Err(sql)) => db.execute(&sql).await,
                None => {}
            }
            if !pending.is_empty() && (pending.len() >= 5 || self.pick(3) == 0) {
                let batch = std::mem::take(&mut pending);
                let response = mutate(engine, &root, batch.clone()).await;
                for (t, r) in batch.into_iter().zip(&response.results) {
                    match r {
                        TxResult::Success { sync_id, .. } => self.committed.push((t, *sync_id)),
                        other => panic!("the generator's transaction failed: {}", to_json(other)),
                    }
                }
            }
        }
        if !pending.is_empty() {
            for (t, r) in pending.clone().into_iter().zip(mutate(engine, &root, pending).await.results) {
                let TxResult::Success { sync_id, .. } = r else { panic!("the generator's transaction failed") };
                self.committed.push((t, sync_id));
            }
        }
    }
}

/// What each user saw of the uncompacted log, in order.
struct Truth {
    users: Vec<AuthContext>,
    seen: Vec<Vec<Value>>,
}

impl Truth {
    /// Reads on from what each user saw (the log above it is untouched).
    async fn extend(&mut self, engine: &SyncEngine) {
        for (user, seen) in self.users.iter().zip(&mut self.seen) {
            let after = seen.last().map(sync_id).unwrap_or(0);
            seen.extend(read_after(engine, user, after).await.expect("reads the log"));
        }
    }

    /// Checks every user at every cursor in `cursors` against the
    /// compacted log: stale below `horizon - 1`, else converged.
    async fn check(&self, engine: &SyncEngine, cursors: &[u64], horizon: u64) -> usize {
        let mut resumed = 0;
        for (user, seen) in self.users.iter().zip(&self.seen) {
            let end = Client::default().applied(seen);
            for &x in cursors {
                let at_x = Client::default().applied(seen.iter().filter(|a| sync_id(a) <= x));
                let answer = read_after(engine, user, x).await;
                if x + 1 < horizon {
                    assert!(
                        matches!(answer, Err(ServiceError::BootstrapRequired)),
                        "{} at {x} (horizon {horizon}) must bootstrap: {answer:?}",
                        user.user.user_id
                    );
                    continue;
                }
                let rest = answer.unwrap_or_else(|e| panic!("{} at {x}: {e}", user.user.user_id));
                let uncompacted = seen.iter().filter(|a| sync_id(a) > x).count();
                assert!(rest.len() <= uncompacted, "compaction never adds actions");
                assert!(rest.windows(2).all(|w| sync_id(&w[0]) < sync_id(&w[1])), "ascending");
                let resumed_state = at_x.applied(&rest);
                assert!(
                    resumed_state == end,
                    "{} resuming at {x} (horizon {horizon}) diverged from the uncompacted log (resumed vs expected):\n{}",
                    user.user.user_id,
                    resumed_state.diff(&end)
                );
                resumed += 1;
            }
        }
        resumed
    }
}

fn seed() -> u64 {
    std::env::var("STRATASYNC_COMPACTION_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xC0A1_E5CE)
}

/// Cursors to resume from: the edges around `below` and `horizon`, and
/// random ones.
fn cursors(rng: &mut TestRng, head: u64, marks: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = marks.iter().flat_map(|m| [m.saturating_sub(1), *m, m + 1]).collect();
    out.extend((0..20).map(|_| rng.random_range(1..=head)));
    out.retain(|x| (1..=head).contains(x));
    out.sort_unstable();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_resuming_above_the_horizon_converge_to_the_uncompacted_state() {
    let seed = seed();
    eprintln!("STRATASYNC_COMPACTION_SEED={seed}");
    let db = TestDb::new().await;
    let engine = db.engine();
    let (ws_a, ws_b) = (new_id(), new_id());
    db.execute(&format!("INSERT INTO workspaces (id, name) VALUES ('{ws_a}', 'A'), ('{ws_b}', 'B')")).await;
    // Tasks the log never saw inserted (rows older than the log).
    let mut tasks = Vec::new();
    for i in 0..4 {
        let id = new_id();
        let ws = i % 2;
        let w = if ws == 0 { &ws_a } else { &ws_b };
        db.setup(&format!("INSERT INTO tasks (id, workspace_id, title, priority) VALUES ('{id}', '{w}', 'old', 0)"))
            .await;
        tasks.push((id, ws, false));
    }
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut world = World {
        rng: TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
        workspaces: [ws_a.clone(), ws_b.clone()],
        tasks,
        labels: Vec::new(),
        links: Vec::new(),
        a_in_b: false,
        b_in_a: false,
        committed: Vec::new(),
    };
    let mut truth = Truth {
        users: vec![user("u_a", &[&ws_a]), user("u_b", &[&ws_b]), user("u_ab", &[&ws_a, &ws_b])],
        seen: vec![Vec::new(); 3],
    };

    // Round 1: a history, read uncompacted, then compacted below a random
    // point with a random horizon under it.
    world.run(&db, &engine, 400).await;
    truth.extend(&engine).await;
    let head = db.scalar("SELECT max(id) FROM sync_actions").await as u64;
    let rows_before = db.scalar("SELECT count(*) FROM sync_actions").await;
    let below = world.rng.random_range(head / 2..=head);
    let horizon = world.rng.random_range(1..=below / 3);
    let report =
        engine.compact(Compaction { below: SyncId(below), horizon: Some(SyncId(horizon)) }).await.expect("compacts");
    assert_eq!((report.below, report.horizon, report.rows_before), (SyncId(below), SyncId(horizon), rows_before));
    assert!(report.removed > 0 && report.rewritten > 0, "{report:?}");
    let rows_after = db.scalar("SELECT count(*) FROM sync_actions").await;
    assert_eq!(report.rows_after, rows_after);
    assert_eq!(rows_after, rows_before - report.removed as i64);
    // Each run of one row in one group keeps one action at or below `below`.
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM sync_actions WHERE id <= {below} \
             GROUP BY model, model_id, group_id HAVING count(*) > 1) AS r"
        ))
        .await,
        0
    );
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM sync_actions WHERE id < {horizon}")).await, 0);
    let marks = cursors(&mut world.rng, head, &[horizon, below]);
    let resumed = truth.check(&engine, &marks, horizon).await;
    assert!(resumed >= marks.len(), "most cursors resume: {resumed}");

    // A transaction retried after its action was compacted away is
    // answered from its first commit and writes nothing.
    // Folding removed some of the range's committed actions; one of them
    // is retried.
    let (retry, original) = {
        let mut found = None;
        for (t, id) in &world.committed {
            if (horizon..=below).contains(&id.0)
                && db.scalar(&format!("SELECT count(*) FROM sync_actions WHERE id = {}", id.0)).await == 0
            {
                found = Some((t.clone(), *id));
                break;
            }
        }
        found.expect("a compacted transaction")
    };
    let root = user("root", &[&ws_a, &ws_b]);
    let log_rows = db.scalar("SELECT count(*) FROM sync_actions").await;
    let again = mutate(&engine, &root, vec![retry]).await;
    assert!(
        matches!(&again.results[0], TxResult::Success { sync_id, .. } if *sync_id == original),
        "{}",
        to_json(&again)
    );
    assert_eq!(db.scalar("SELECT count(*) FROM sync_actions").await, log_rows, "the retry wrote nothing");

    // Round 2: compaction beside writers, then again over the whole log
    // with a higher horizon.
    world.run(&db, &engine, 150).await;
    truth.extend(&engine).await;
    let head2 = db.scalar("SELECT max(id) FROM sync_actions").await as u64;
    let writer = {
        let engine = engine.clone();
        let mut side = World {
            rng: TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
            workspaces: world.workspaces.clone(),
            tasks: Vec::new(),
            labels: Vec::new(),
            links: Vec::new(),
            a_in_b: false,
            b_in_a: false,
            committed: Vec::new(),
        };
        let root = user("root", &[&ws_a, &ws_b]);
        tokio::spawn(async move {
            // Transactions on its own rows, one per batch (membership
            // changes are the main history's).
            for _ in 0..80 {
                if let Some(Ok(t)) = side.step() {
                    assert!(mutate(&engine, &root, vec![t]).await.success);
                }
            }
        })
    };
    let report = engine.compact(Compaction { below: SyncId(head2), horizon: None }).await.expect("compacts");
    assert_eq!(report.horizon, SyncId(horizon), "the horizon stays where it was");
    writer.await.expect("the writer");
    truth.extend(&engine).await;
    let head3 = db.scalar("SELECT max(id) FROM sync_actions").await as u64;
    let horizon2 = world.rng.random_range(horizon..=head2);
    engine.compact(Compaction { below: SyncId(head3), horizon: Some(SyncId(horizon2)) }).await.expect("compacts");
    let marks = cursors(&mut world.rng, head3, &[horizon, horizon2, head2]);
    truth.check(&engine, &marks, horizon2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_refuses_what_it_cannot_do_and_changes_nothing() {
    let db = TestDb::new().await;
    // No hot tail: the pages below show the log as compaction left it (a
    // node's hot tail keeps the actions it folded until they leave it).
    let hub = stratasync_core::realtime::HubConfig { recent_bytes: 0, ..Default::default() };
    let engine = db.engine_builder().hub_config(hub).start().expect("starts");
    let ws = stratasync_tests::ws_support::workspace(&db, &[]).await;
    let alice = user("alice", &[&ws]);
    let id = new_id();
    assert!(
        mutate(&engine, &alice, vec![tx(Insert, "Task", &id, json!({"workspaceId": ws, "title": "a"}))]).await.success
    );
    for i in 0..5 {
        assert!(
            mutate(&engine, &alice, vec![tx(Update, "Task", &id, json!({"title": format!("t{i}")}))]).await.success
        );
    }
    let fingerprint = "SELECT count(*) + sum(id) + sum(length(data::text)) FROM sync_actions";
    let before = db.scalar(fingerprint).await;

    // A horizon above the folded range would drop actions nobody folded.
    let refused = engine.compact(Compaction { below: SyncId(3), horizon: Some(SyncId(5)) }).await;
    assert!(
        matches!(refused, Err(CompactError::HorizonAboveCompacted { horizon: SyncId(5), limit: SyncId(4) })),
        "{refused:?}"
    );
    // Another compaction holds the lock (on another node, say).
    let mut holder = db.pool.get().await.expect("connection");
    {
        use diesel_async::SimpleAsyncConnection;
        holder.batch_execute("SELECT pg_advisory_lock(hashtext('stratasync:compaction'))").await.expect("lock");
    }
    let busy = engine.compact(Compaction { below: SyncId(6), horizon: None }).await;
    assert!(matches!(busy, Err(CompactError::Busy)), "{busy:?}");
    drop(holder);
    assert_eq!(db.scalar(fingerprint).await, before, "nothing changed");

    // Then it runs: one action of the task is left, the full row at the
    // last update's sync id.
    let report = engine.compact(Compaction { below: SyncId(100), horizon: None }).await.expect("compacts");
    assert_eq!((report.below, report.horizon, report.removed, report.rewritten), (SyncId(6), SyncId(1), 5, 1));
    let page = to_json(&engine.deltas(&alice, &DeltasParams::default()).await.expect("deltas"));
    let actions = page["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 1, "{page}");
    assert_eq!((actions[0]["action"].as_str(), actions[0]["syncId"].as_str()), (Some("I"), Some("6")));
    assert_eq!(actions[0]["data"]["title"], json!("t4"));
    assert_eq!(actions[0]["data"]["workspaceId"], json!(ws));
    // Cursors inside the folded range are not stale (the horizon is 1).
    assert!(engine.deltas(&alice, &DeltasParams { after: SyncId(2), ..DeltasParams::default() }).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_compacts_the_log_by_age() {
    let db = TestDb::new().await;
    let ws = stratasync_tests::ws_support::workspace(&db, &[]).await;
    let alice = user("alice", &[&ws]);
    let retention =
        Retention { compact_after: std::time::Duration::ZERO, keep_for: std::time::Duration::from_secs(3600) };
    let engine = db
        .engine_builder()
        .compaction_schedule(std::time::Duration::from_millis(50), retention)
        .start()
        .expect("starts");
    let id = new_id();
    assert!(
        mutate(&engine, &alice, vec![tx(Insert, "Task", &id, json!({"workspaceId": ws, "title": "a"}))]).await.success
    );
    for i in 0..10 {
        assert!(mutate(&engine, &alice, vec![tx(Update, "Task", &id, json!({"priority": i}))]).await.success);
    }
    // The schedule folds the task's eleven actions into one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while db.scalar("SELECT count(*) FROM sync_actions").await != 1 {
        assert!(std::time::Instant::now() < deadline, "the schedule never compacted the log");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(db.scalar("SELECT id FROM sync_actions").await, 11);
    engine.shutdown().await;
}
