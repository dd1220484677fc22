//! Tenant isolation under attack: honest writers and WebSocket subscribers
//! run next to a hostile member of their workspace who keeps sending every
//! poison of [`poisons`] at the same time. A request may fail only itself:
//! no honest write fails, no hostile request gets a 5xx (a 5xx tells a
//! client to retry forever), nothing hostile is written, and every honest
//! action reaches the subscribers.
//!
//! The poisons are one table (name, request body, expected answer), so new
//! kinds of hostile input are one row each. `ISOLATION_BATCHES` (default
//! 40) sets how many batches each honest writer sends; the test prints the
//! honest failures and hostile 5xx it counted before asserting.

use actix_web::http::header;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;
use stratasync_tests::http_support::Adapter;
use stratasync_tests::http_support::{bearer, client};
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

/// What the ids of the hostile's targets are.
struct Targets {
    /// The workspace everyone of the test shares.
    ws: String,
    /// A task only the hostile member addresses.
    task: String,
    /// A label only the hostile member addresses.
    label: String,
    /// A task of a workspace the hostile member is not in.
    foreign_task: String,
    /// A label of a workspace the hostile member is not in.
    foreign_label: String,
}

/// How a poison must be answered.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `400 Validation failed` with this message; `names_tx`: the failure
    /// carries the poisoned transaction's `clientTxId`.
    Invalid { message: &'static str, names_tx: bool },
    /// `200` with the transaction's own `success:false` and this error.
    Fails(&'static str),
}

/// One kind of hostile input.
struct Poison {
    name: &'static str,
    /// The whole `/sync/mutate` body.
    body: fn(&Targets) -> Value,
    expect: Expect,
}

/// One transaction of the hostile client, with a fresh `clientTxId`.
fn hostile_tx(action: &str, model: &str, id: &str, payload: Value) -> Value {
    json!({"action": action, "clientId": "mallory-device", "clientTxId": new_id(), "modelId": id,
           "modelName": model, "payload": payload})
}

/// A body of one transaction, its `key` replaced by `value`.
fn with(mut tx: Value, key: &str, value: Value) -> Value {
    tx[key] = value;
    json!({"batchId": new_id(), "transactions": [tx]})
}

fn one(tx: Value) -> Value {
    json!({"batchId": new_id(), "transactions": [tx]})
}

fn new_task(t: &Targets, extra: Value) -> Value {
    let mut payload = json!({"workspaceId": t.ws, "title": "hostile", "priority": 1});
    for (k, v) in extra.as_object().into_iter().flatten() {
        payload[k] = v.clone();
    }
    hostile_tx("INSERT", "Task", &new_id(), payload)
}

/// Milliseconds of UTC midnight, `years` years (of 365.2425 days) from 1970.
fn years_from_epoch_ms(years: i64) -> i64 {
    years * 146_097 / 400 * 86_400_000
}

/// A `TaskLabel` insert into the hostile member's workspace.
fn link(t: &Targets, task: &str, label: &str) -> Value {
    one(hostile_tx("INSERT", "TaskLabel", &new_id(), json!({"taskId": task, "labelId": label, "workspaceId": t.ws})))
}

/// Every poison; each must be answered as its `expect` says.
fn poisons() -> Vec<Poison> {
    const NOT_FOUND: &str = "Invalid mutation: referenced record not found";
    const NON_CANONICAL: &str =
        "Invalid mutation: modelId must be in canonical form (as the server writes it: a UUID in lower case with hyphens, an integer without sign or leading zeros)";
    const NUL_TX: &str = "Client transaction ID must not contain control characters";
    const LONG_TX: &str = "Client transaction ID must be at most 255 characters";
    const NUL_CLIENT: &str = "Client ID must not contain control characters";
    const LONG_CLIENT: &str = "Client ID must be at most 255 characters";
    vec![
        Poison {
            name: "NUL in clientTxId",
            body: |t| with(new_task(t, json!({})), "clientTxId", json!(format!("tx\u{0}{}", new_id()))),
            expect: Expect::Invalid { message: NUL_TX, names_tx: true },
        },
        Poison {
            name: "escape character in clientTxId",
            body: |t| with(new_task(t, json!({})), "clientTxId", json!(format!("tx\u{1b}[2J{}", new_id()))),
            expect: Expect::Invalid { message: NUL_TX, names_tx: true },
        },
        Poison {
            name: "64 KiB clientTxId",
            body: |t| with(new_task(t, json!({})), "clientTxId", json!(format!("{}{}", new_id(), "x".repeat(65_536)))),
            expect: Expect::Invalid { message: LONG_TX, names_tx: true },
        },
        Poison {
            name: "NUL in clientId",
            body: |t| with(new_task(t, json!({})), "clientId", json!("mallory\u{0}device")),
            expect: Expect::Invalid { message: NUL_CLIENT, names_tx: true },
        },
        Poison {
            name: "8 KiB clientId",
            body: |t| with(new_task(t, json!({})), "clientId", json!("m".repeat(8192))),
            expect: Expect::Invalid { message: LONG_CLIENT, names_tx: true },
        },
        Poison {
            name: "256-character batchId",
            body: |t| {
                let mut body = one(new_task(t, json!({})));
                body["batchId"] = json!("b".repeat(256));
                body
            },
            expect: Expect::Invalid { message: "Batch ID must be at most 255 characters", names_tx: false },
        },
        Poison {
            name: "NUL in batchId",
            body: |t| {
                let mut body = one(new_task(t, json!({})));
                body["batchId"] = json!("batch\u{0}");
                body
            },
            expect: Expect::Invalid { message: "Batch ID must not contain control characters", names_tx: false },
        },
        Poison {
            name: "NUL in an inserted title",
            body: |t| one(new_task(t, json!({"title": "a\u{0}b"}))),
            expect: Expect::Fails("Invalid string value for title"),
        },
        Poison {
            name: "NUL in an updated description",
            body: |t| one(hostile_tx("UPDATE", "Task", &t.task, json!({"description": "\u{0}"}))),
            expect: Expect::Fails("Invalid string value for description"),
        },
        Poison {
            name: "NUL in an inserted label color",
            body: |t| {
                one(hostile_tx(
                    "INSERT",
                    "Label",
                    &new_id(),
                    json!({"workspaceId": t.ws, "name": "n", "color": "\u{0}"}),
                ))
            },
            expect: Expect::Fails("Invalid string value for color"),
        },
        Poison {
            name: "NUL in an updated label name",
            body: |t| one(hostile_tx("UPDATE", "Label", &t.label, json!({"name": "x\u{0}"}))),
            expect: Expect::Fails("Invalid string value for name"),
        },
        Poison {
            name: "NUL in the workspace name",
            body: |t| one(hostile_tx("UPDATE", "Workspace", &t.ws, json!({"name": "\u{0}"}))),
            expect: Expect::Fails("Invalid string value for name"),
        },
        Poison {
            name: "priority 2^40 on insert",
            body: |t| one(new_task(t, json!({"priority": 1_099_511_627_776i64}))),
            expect: Expect::Fails("Invalid number value for priority"),
        },
        Poison {
            name: "priority -2^40 on update",
            body: |t| one(hostile_tx("UPDATE", "Task", &t.task, json!({"priority": -1_099_511_627_776i64}))),
            expect: Expect::Fails("Invalid number value for priority"),
        },
        Poison {
            name: "priority 2^31 as a float",
            body: |t| one(hostile_tx("UPDATE", "Task", &t.task, json!({"priority": 2_147_483_648.0}))),
            expect: Expect::Fails("Invalid number value for priority"),
        },
        Poison {
            name: "dueDate 10,000 years before 1970",
            body: |t| one(new_task(t, json!({"dueDate": years_from_epoch_ms(-10_000)}))),
            expect: Expect::Fails("Invalid dateOnly value for dueDate"),
        },
        Poison {
            name: "dueDate at the JavaScript maximum",
            body: |t| one(hostile_tx("UPDATE", "Task", &t.task, json!({"dueDate": 8_640_000_000_000_000i64}))),
            expect: Expect::Fails("Invalid dateOnly value for dueDate"),
        },
        Poison {
            name: "dueDate at the JavaScript minimum",
            body: |t| one(hostile_tx("UPDATE", "Task", &t.task, json!({"dueDate": -8_640_000_000_000_000i64}))),
            expect: Expect::Fails("Invalid dateOnly value for dueDate"),
        },
        Poison {
            name: "completedAt 10,000 years before 1970",
            body: |t| one(new_task(t, json!({"completedAt": years_from_epoch_ms(-10_000) + 1}))),
            expect: Expect::Fails("Invalid instant value for completedAt"),
        },
        Poison {
            name: "completedAt at the JavaScript maximum",
            body: |t| one(hostile_tx("UPDATE", "Task", &t.task, json!({"completedAt": 8.64e15}))),
            expect: Expect::Fails("Invalid instant value for completedAt"),
        },
        Poison {
            name: "archivedAt 200,000 years before 1970",
            body: |t| one(hostile_tx("ARCHIVE", "Task", &t.task, json!({"archivedAt": years_from_epoch_ms(-200_000)}))),
            expect: Expect::Fails("Invalid instant value for archivedAt"),
        },
        Poison {
            name: "NUL in a task id",
            body: |t| {
                one(hostile_tx(
                    "INSERT",
                    "Task",
                    "00000000-0000-4000-8000-\u{0}00000000001",
                    json!({"workspaceId": t.ws, "title": "x"}),
                ))
            },
            expect: Expect::Fails("Invalid uuid value for id"),
        },
        Poison {
            name: "TaskLabel linking another workspace's task",
            body: |t| link(t, &t.foreign_task, &t.label),
            expect: Expect::Fails(NOT_FOUND),
        },
        Poison {
            name: "TaskLabel linking another workspace's label",
            body: |t| link(t, &t.task, &t.foreign_label),
            expect: Expect::Fails(NOT_FOUND),
        },
        Poison {
            name: "TaskLabel linking a task that does not exist",
            body: |t| link(t, &new_id(), &t.label),
            expect: Expect::Fails(NOT_FOUND),
        },
        Poison {
            name: "upper-case modelId on insert",
            body: |t| {
                one(hostile_tx("INSERT", "Task", &new_id().to_uppercase(), json!({"workspaceId": t.ws, "title": "x"})))
            },
            expect: Expect::Fails(NON_CANONICAL),
        },
        Poison {
            name: "urn: modelId on update",
            body: |t| one(hostile_tx("UPDATE", "Task", &format!("urn:uuid:{}", t.task), json!({"title": "x"}))),
            expect: Expect::Fails(NON_CANONICAL),
        },
        Poison {
            name: "braced workspaceId on insert",
            body: |t| one(new_task(t, json!({"workspaceId": format!("{{{}}}", t.ws)}))),
            expect: Expect::Fails("Invalid uuid value for workspaceId"),
        },
    ]
}

/// Whether `response` is what `expect` asks for; `Err` says what differs.
fn check(expect: Expect, sent: &Value, status: u16, body: &Value) -> Result<(), String> {
    match expect {
        Expect::Invalid { message, names_tx } => {
            if status != 400 || body["error"] != json!("Validation failed") {
                return Err(format!("expected 400 Validation failed, got {status} {}", clip(body)));
            }
            if !body["details"].as_array().into_iter().flatten().any(|d| d["message"] == json!(message)) {
                return Err(format!("no detail {message:?} in {}", clip(body)));
            }
            let named = body.get("clientTxId");
            let expected = names_tx.then(|| &sent["transactions"][0]["clientTxId"]);
            if named != expected {
                return Err(format!("clientTxId {} named, expected {}", clip_opt(named), clip_opt(expected)));
            }
            Ok(())
        }
        Expect::Fails(error) => {
            let result = &body["results"][0];
            if status != 200 || body["success"] != json!(false) || result["error"] != json!(error) {
                return Err(format!("expected 200 with error {error:?}, got {status} {}", clip(body)));
            }
            if result["clientTxId"] != sent["transactions"][0]["clientTxId"] {
                return Err("the failure names another transaction".into());
            }
            Ok(())
        }
    }
}

fn clip(v: &Value) -> String {
    v.to_string().chars().take(300).collect()
}

fn clip_opt(v: Option<&Value>) -> String {
    v.map_or_else(|| "none".to_owned(), clip)
}

/// Sends a mutate body as `user`; the status and the JSON body.
async fn post(client: &awc::Client, server: &WsServer, user: &str, body: &Value) -> (u16, Value) {
    let res = client
        .post(server.url("/sync/mutate"))
        .insert_header((header::AUTHORIZATION, bearer(user)))
        .send_json(body)
        .await;
    let mut res = match res {
        Ok(res) => res,
        Err(e) => return (0, json!({"transport error": e.to_string()})),
    };
    let status = res.status().as_u16();
    let bytes = res.body().limit(4 << 20).await.map(|b| b.to_vec()).unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)})))
}

/// An honest writer: `batches` batches, each inserting a task and
/// renaming the previous one. Returns the committed `(clientTxId, syncId)`
/// pairs and the failures.
async fn honest_writer(
    server: &WsServer,
    user: &str,
    ws: &str,
    batches: usize,
) -> (Vec<(String, u64)>, Vec<String>, Vec<String>) {
    let client = client();
    let device = format!("{user}-device");
    let (mut committed, mut failures, mut inserted) = (Vec::new(), Vec::new(), Vec::new());
    let mut previous: Option<String> = None;
    for i in 0..batches {
        let task = new_id();
        let mut txs = vec![json!({"action": "INSERT", "clientId": device, "clientTxId": new_id(), "modelId": task,
                                  "modelName": "Task", "payload": {"workspaceId": ws, "title": format!("{user} {i}"),
                                  "priority": i % 4, "dueDate": 1_718_841_600_000i64}})];
        if let Some(prev) = &previous {
            txs.push(json!({"action": "UPDATE", "clientId": device, "clientTxId": new_id(), "modelId": prev,
                            "modelName": "Task", "payload": {"title": format!("{user} {i} renamed")}}));
        }
        let body = json!({"batchId": new_id(), "transactions": txs});
        let (status, response) = post(&client, server, user, &body).await;
        if status != 200 || response["success"] != json!(true) {
            failures.push(format!("{user} batch {i}: {status} {}", clip(&response)));
            continue;
        }
        for result in response["results"].as_array().into_iter().flatten() {
            let id = result["syncId"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
            committed.push((result["clientTxId"].as_str().unwrap_or_default().to_owned(), id));
        }
        inserted.push(task.clone());
        previous = Some(task);
    }
    (committed, failures, inserted)
}

/// What the hostile member saw: answers that were not as expected, and 5xx.
#[derive(Default)]
struct HostileTally {
    sent: usize,
    server_errors: usize,
    /// Per poison: how often, and the first answer.
    unexpected: BTreeMap<&'static str, (usize, String)>,
    /// The model ids of the rows it tried to insert (none may exist).
    ids: HashSet<String>,
}

async fn hostile(server: &WsServer, targets: &Targets, done: &Cell<bool>, tally: &RefCell<HostileTally>) {
    let client = client();
    let table = poisons();
    let mut pass = 0;
    loop {
        for poison in &table {
            let body = (poison.body)(targets);
            for tx in body["transactions"].as_array().into_iter().flatten() {
                // The ids of the rows it tried to create.
                if tx["action"] == json!("INSERT") {
                    tally.borrow_mut().ids.extend(tx["modelId"].as_str().map(str::to_owned));
                }
            }
            let (status, response) = post(&client, server, "mallory", &body).await;
            let mut t = tally.borrow_mut();
            t.sent += 1;
            if status >= 500 || status == 0 {
                t.server_errors += 1;
            }
            if let Err(why) = check(poison.expect, &body, status, &response) {
                t.unexpected.entry(poison.name).or_insert((0, why)).0 += 1;
            }
        }
        pass += 1;
        if done.get() && pass >= 2 {
            return;
        }
    }
}

/// Reads delta frames until every id of `expected` arrived (bounded);
/// returns the ids received.
async fn deliveries(socket: &mut WsClient, expected: &BTreeSet<u64>) -> BTreeSet<u64> {
    let mut got = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !expected.is_subset(&got) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match socket.try_recv_within(left).await {
            Some(Incoming::Text(text)) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                got.insert(sync_id(&frame));
            }
            Some(other) => panic!("subscriber got {other:?}"),
            None => break,
        }
    }
    got
}

/// The rows only the hostile member addresses, and everything but tasks.
async fn untouched_fingerprint(db: &TestDb, task: &str) -> i64 {
    db.scalar(&format!(
        "SELECT hashtext(coalesce((SELECT string_agg(x, '|' ORDER BY x) FROM ( \
           SELECT row_to_json(w)::text AS x FROM workspaces w UNION ALL \
           SELECT row_to_json(l)::text FROM labels l UNION ALL \
           SELECT row_to_json(tl)::text FROM task_labels tl UNION ALL \
           SELECT row_to_json(t)::text FROM tasks t WHERE id = '{task}') s), ''))"
    ))
    .await
}

async fn a_hostile_member_fails_only_itself(adapter: Adapter) {
    let db = TestDb::new().await;
    let server = WsServer::with_engine_on(adapter, &db, db.engine()).await;
    let ws = workspace(&db, &["alice", "bob", "mallory", "dave"]).await;
    let other = workspace(&db, &["carol", "erin"]).await;
    let (task, label, foreign_task, foreign_label) = (new_id(), new_id(), new_id(), new_id());
    db.execute(&format!(
        "INSERT INTO tasks (id, workspace_id, title, priority) VALUES ('{task}', '{ws}', 'target', 1), \
                ('{foreign_task}', '{other}', 'foreign', 1); \
         INSERT INTO labels (id, workspace_id, name, color) VALUES ('{label}', '{ws}', 'bug', 'red'), \
                ('{foreign_label}', '{other}', 'foreign', 'blue')"
    ))
    .await;
    let targets = Targets { ws: ws.clone(), task: task.clone(), label, foreign_task, foreign_label };
    let before = untouched_fingerprint(&db, &task).await;

    // Subscribers that never write: one per workspace.
    let mut dave = server.connect("dave").await;
    dave.subscribe_ok("dave", 0, None).await;
    let mut erin = server.connect("erin").await;
    erin.subscribe_ok("erin", 0, None).await;

    let batches: usize = std::env::var("ISOLATION_BATCHES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let done = Cell::new(false);
    let tally = RefCell::new(HostileTally::default());
    let honest = async {
        let results = futures_util::future::join_all([
            honest_writer(&server, "alice", &ws, batches),
            honest_writer(&server, "bob", &ws, batches),
            honest_writer(&server, "carol", &other, batches),
        ])
        .await;
        done.set(true);
        results
    };
    let (results, (), ()) = futures_util::join!(
        honest,
        hostile(&server, &targets, &done, &tally),
        hostile(&server, &targets, &done, &tally)
    );

    let tally = tally.into_inner();
    let failures: Vec<&String> = results.iter().flat_map(|(_, f, _)| f).collect();
    let honest_batches = 3 * batches;
    eprintln!(
        "isolation: honest batches {honest_batches}, honest failures {}, hostile requests {}, hostile 5xx {}, \
         hostile answered otherwise than expected {}",
        failures.len(),
        tally.sent,
        tally.server_errors,
        tally.unexpected.values().map(|(n, _)| n).sum::<usize>()
    );
    let unexpected = &tally.unexpected;
    for (name, (count, first)) in unexpected {
        eprintln!("  unexpected {count}x: {name}: {first}");
    }
    for line in failures.iter().take(10) {
        eprintln!("  honest failure: {line}");
    }

    // Nothing hostile written: the log holds exactly the honest actions,
    // the tasks table exactly the seeded and the honest tasks, and the
    // rows the hostile member addressed are unchanged.
    let committed: Vec<&(String, u64)> = results.iter().flat_map(|(c, _, _)| c).collect();
    let logged = db.scalar("SELECT count(*) FROM sync_actions").await as usize;
    let hostile_logged = db.scalar("SELECT count(*) FROM sync_actions WHERE client_id NOT LIKE '%-device' OR client_id = 'mallory-device' OR client_id IS NULL").await;
    let inserted: usize = results.iter().map(|(_, _, i)| i.len()).sum();
    let tasks = db.scalar("SELECT count(*) FROM tasks").await as usize;
    let hostile_ids: Vec<String> = tally.ids.iter().filter(|id| !id.contains('\0')).cloned().collect();
    let hostile_tasks = db
        .scalar(&format!(
            "SELECT count(*) FROM tasks WHERE id::text = ANY(ARRAY[{}]::text[])",
            hostile_ids.iter().map(|i| format!("'{}'", i.replace('\'', "''"))).collect::<Vec<_>>().join(",")
        ))
        .await;
    let after = untouched_fingerprint(&db, &task).await;

    // Every honest action reaches the subscribers of its workspace.
    let honest_ids: BTreeSet<u64> = committed.iter().map(|(_, id)| *id).collect();
    let ws_ids = group_ids(&db, &ws).await;
    let other_ids = group_ids(&db, &other).await;
    let dave_got = deliveries(&mut dave, &ws_ids).await;
    let erin_got = deliveries(&mut erin, &other_ids).await;

    assert!(failures.is_empty(), "{} honest batches failed, e.g. {:?}", failures.len(), failures.first());
    assert_eq!(tally.server_errors, 0, "hostile requests answered 5xx");
    assert!(unexpected.is_empty(), "hostile requests answered otherwise than expected: {unexpected:#?}");
    assert_eq!(hostile_logged, 0, "hostile actions were logged");
    assert_eq!(hostile_tasks, 0, "hostile tasks were stored");
    assert_eq!(logged, committed.len(), "the log holds exactly the honest actions");
    assert_eq!(tasks, 2 + inserted, "the tasks table holds the two targets and the honest tasks");
    assert_eq!(after, before, "rows only the hostile member addressed changed");
    assert_eq!(honest_ids.len(), committed.len(), "every honest transaction has its own sync id");
    assert_eq!(&ws_ids | &other_ids, honest_ids, "the log's group ids are the honest ones");
    assert_eq!(dave_got, ws_ids, "the workspace subscriber got every honest action of its group, and only those");
    assert_eq!(erin_got, other_ids, "the other subscriber got every honest action of its group, and only those");
    server.stop().await;
}

/// The ids the log holds for `group`.
async fn group_ids(db: &TestDb, group: &str) -> BTreeSet<u64> {
    stratasync_tests::ws_support::visible_ids(db, &[group.to_owned()]).await.into_iter().collect()
}

on_both_adapters!(a_hostile_member_fails_only_itself);
