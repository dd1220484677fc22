//! The fan-out workload: WebSocket subscribers, a writer committing
//! mutations at a fixed rate, and the latency from each mutation to its
//! delivery at every subscriber, with every delivery accounted for.

use crate::load::{mutate, token, update_body};
use crate::pg::{read_log_clock, start_log_clock, Pg};
use crate::stats::unix_us;
use crate::stats::{cpu_seconds, cpu_times, now_ns, Cpu, Hist, Ticker};
use crate::BoxError;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// One subscriber's identity: who it connects as and the group it
/// subscribes to.
#[derive(Debug, Clone)]
pub(crate) struct Subscriber {
    pub user: String,
    pub group: String,
}

/// What one fan-out run needs.
pub(crate) struct FanOut<'a> {
    pub label: String,
    /// Where subscribers connect (`ws://host:port`).
    pub ws_base: String,
    /// Where the writer sends mutations (`http://host:port`).
    pub http_base: String,
    pub subscribers: Vec<Subscriber>,
    /// Per group (workspace id): the member the writer writes as, and the
    /// tasks it updates in turn.
    pub groups: Vec<(String, String, Vec<String>)>,
    /// The log head: subscribers start after it (no replay of old actions).
    pub after: u64,
    pub rate: u32,
    pub duration: Duration,
    pub grace: Duration,
    pub stall: Duration,
    pub client: &'a reqwest::Client,
    /// Called once every subscriber is subscribed and idle: returns the
    /// server's resident memory then (for the per-connection figure).
    pub rss: &'a (dyn Fn() -> Option<u64> + Sync),
    /// The server processes (for their CPU time during the run).
    pub server_pids: Vec<u32>,
    /// The server's database (for the log clock).
    pub pg: &'a Pg,
    pub db: &'a str,
}

/// What a fan-out run measured.
pub(crate) struct FanOutResult {
    /// Commit → delivery: from the log insert (timestamped in the database
    /// right before the commit) to the frame's arrival.
    pub latency: Hist,
    /// Mutation request sent → delivery (includes the mutation's own time).
    pub send_latency: Hist,
    /// The writer's mutation request latency (send → response).
    pub write_latency: Hist,
    pub mutations: u64,
    pub mutation_failures: u64,
    pub first_error: Option<String>,
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    /// Distinct actions at least one subscriber did not get.
    pub missing_actions: u64,
    pub duplicates: u64,
    /// Frames that arrived after a frame with a higher sync id (checked in
    /// arrival order, per subscriber).
    pub out_of_order: u64,
    /// Frames for actions the subscriber should not have received.
    pub foreign: u64,
    /// Frames for actions of the subscriber's group that the writer had
    /// given up on (no response within its timeout) but that committed.
    pub late: u64,
    /// Subscribers whose socket closed or failed before the end.
    pub dropped: u64,
    /// Error frames received.
    pub error_frames: u64,
    pub rss_before: Option<u64>,
    pub rss_idle: Option<u64>,
    pub connect_time: Duration,
    /// CPU used from the first write to the last delivery: by the server
    /// process(es) (user and system) and by this harness (seconds).
    pub server_cpu: Option<Cpu>,
    pub harness_cpu: Option<f64>,
    /// From the first write to the last delivery (or the end of the wait).
    pub wall: Duration,
}

impl FanOutResult {
    /// Server CPU per delivered frame, in microseconds: total, user and
    /// system (the writer's node included in a two-node run).
    pub fn cpu_per_delivery_us(&self) -> Option<Cpu> {
        let cpu = self.server_cpu?;
        (self.delivered > 0).then(|| {
            let per = 1e6 / self.delivered as f64;
            Cpu { user: cpu.user * per, sys: cpu.sys * per }
        })
    }
}

/// How long the fan-out writer waits for one mutation's response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

struct SubOutcome {
    received: Vec<(u64, u64)>,
    dropped: bool,
    error_frames: u64,
}

/// The sync id of a delta frame: its packet's `lastSyncId` (both servers
/// send one action per frame, whose `syncId` it equals).
fn frame_sync_id(text: &str) -> Option<u64> {
    static KEY: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| memchr::memmem::Finder::new(b"\"lastSyncId\":\""));
    let at = key.find(text.as_bytes())? + key.needle().len();
    let rest = &text.as_bytes()[at..];
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

pub(crate) async fn run(f: FanOut<'_>) -> Result<FanOutResult, BoxError> {
    let n = f.subscribers.len();
    let rss_before = (f.rss)();
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<Result<(), String>>(n.max(1));
    let connect_limit = Arc::new(Semaphore::new(50));
    let t_connect = Instant::now();
    eprintln!("    {}: connecting {n} subscribers", f.label);
    let mut subs = Vec::with_capacity(n);
    for s in &f.subscribers {
        let url = format!("{}/sync/ws?token={}", f.ws_base, token(&s.user));
        let subscribe = serde_json::json!({
            "type": "subscribe",
            "token": token(&s.user),
            "afterSyncId": f.after.to_string(),
            "groups": [s.group],
        })
        .to_string();
        let delivered = delivered.clone();
        let mut stop = stop_rx.clone();
        let ready = ready_tx.clone();
        let limit = connect_limit.clone();
        subs.push(tokio::spawn(async move {
            let permit = limit.acquire_owned().await.expect("semaphore open");
            let mut ws = match tokio::time::timeout(
                Duration::from_secs(30),
                // A small read buffer: tungstenite zero-fills its whole read
                // buffer before each read (128 KiB by default), which would
                // make this harness, not the server, the bottleneck.
                tokio_tungstenite::connect_async_with_config(
                    url,
                    Some(WebSocketConfig::default().read_buffer_size(8 * 1024)),
                    true,
                ),
            )
            .await
            {
                Ok(Ok((ws, _))) => ws,
                Ok(Err(e)) => {
                    let _ = ready.send(Err(format!("connect: {e}"))).await;
                    return SubOutcome { received: Vec::new(), dropped: true, error_frames: 0 };
                }
                Err(_) => {
                    let _ = ready.send(Err("connect timed out".into())).await;
                    return SubOutcome { received: Vec::new(), dropped: true, error_frames: 0 };
                }
            };
            if ws.send(Message::Text(subscribe.into())).await.is_err() {
                let _ = ready.send(Err("send subscribe failed".into())).await;
                return SubOutcome { received: Vec::new(), dropped: true, error_frames: 0 };
            }
            let mut out = SubOutcome { received: Vec::with_capacity(4096), dropped: false, error_frames: 0 };
            // Until `subscribed`.
            let subscribed = tokio::time::timeout(Duration::from_secs(60), async {
                while let Some(msg) = ws.next().await {
                    match msg {
                        Ok(Message::Text(t)) => {
                            let t = t.as_str();
                            if t.contains("\"type\":\"subscribed\"") {
                                return Ok(());
                            }
                            if t.contains("\"type\":\"error\"") {
                                return Err(format!("error frame: {t}"));
                            }
                            if let Some(id) = frame_sync_id(t) {
                                out.received.push((id, now_ns()));
                                delivered.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(Message::Close(c)) => return Err(format!("closed: {c:?}")),
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Err("socket ended".to_owned())
            })
            .await;
            drop(permit);
            match subscribed {
                Ok(Ok(())) => {
                    let _ = ready.send(Ok(())).await;
                }
                Ok(Err(e)) => {
                    let _ = ready.send(Err(e)).await;
                    out.dropped = true;
                    return out;
                }
                Err(_) => {
                    let _ = ready.send(Err("no `subscribed` within 60 s".into())).await;
                    out.dropped = true;
                    return out;
                }
            }
            loop {
                tokio::select! {
                    biased;
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            let t = t.as_str();
                            if let Some(id) = frame_sync_id(t) {
                                out.received.push((id, now_ns()));
                                delivered.fetch_add(1, Ordering::Relaxed);
                            } else if t.contains("\"type\":\"error\"") {
                                out.error_frames += 1;
                            }
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            out.dropped = true;
                            break;
                        }
                        Some(Ok(_)) => {}
                    },
                    _ = stop.changed() => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                        break;
                    }
                }
            }
            out
        }));
    }
    drop(ready_tx);
    let mut ready_errors = Vec::new();
    for _ in 0..n {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => ready_errors.push(e),
            None => break,
        }
    }
    let connect_time = t_connect.elapsed();
    if !ready_errors.is_empty() {
        let _ = stop_tx.send(true);
        for s in subs {
            let _ = s.await;
        }
        return Err(format!(
            "{} of {n} subscribers failed to subscribe; first: {}",
            ready_errors.len(),
            ready_errors[0]
        )
        .into());
    }
    eprintln!("    {}: {n} subscribed in {:.1} s", f.label, connect_time.as_secs_f64());
    // Idle memory: let the server settle, then read its RSS.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = (f.rss)();

    start_log_clock(f.pg, f.db).await?;
    // The writer: open loop, one mutation every 1/rate s whatever the
    // previous ones are doing, round-robin over the groups.
    let total = (f.rate as f64 * f.duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / f.rate as f64);
    let sent: Arc<Mutex<Vec<(u64, u64, usize)>>> = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let write_latency: Arc<Mutex<Hist>> = Arc::new(Mutex::new(Hist::new()));
    let failures = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let groups = Arc::new(f.groups.clone());
    let server_cpu0: Option<Cpu> = f.server_pids.iter().map(|&p| cpu_times(Some(p))).sum();
    let harness_cpu0 = cpu_seconds(None);
    let start = Instant::now();
    let ticker = Ticker::start(&f.label, delivered.clone(), "deliveries", start, f.duration);
    let mut writers = Vec::with_capacity(total as usize);
    for k in 0..total {
        tokio::time::sleep_until((start + interval * k as u32).into()).await;
        let g = (k as usize) % groups.len();
        let groups = groups.clone();
        let client = f.client.clone();
        let base = f.http_base.clone();
        let sent = sent.clone();
        let failures = failures.clone();
        let first_error = first_error.clone();
        let write_latency = write_latency.clone();
        writers.push(tokio::spawn(async move {
            let (_, user, tasks) = &groups[g];
            let task = tasks[(k as usize / groups.len()) % tasks.len()].as_str();
            let body = update_body("bench-fanout-writer", &[task], k);
            let t_send = now_ns();
            // A write that takes longer than this counts as failed.
            let result = match tokio::time::timeout(WRITE_TIMEOUT, mutate(&client, &base, user, body)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no response within {} s", WRITE_TIMEOUT.as_secs()).into()),
            };
            write_latency.lock().expect("lock").record_us((now_ns() - t_send) / 1000);
            match result {
                Ok((ids, err, _)) => {
                    if let Some(&id) = ids.first() {
                        sent.lock().expect("lock").push((id, t_send, g));
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().expect("lock").get_or_insert(err.unwrap_or_default());
                    }
                }
                Err(e) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().expect("lock").get_or_insert(e.to_string());
                }
            }
        }));
    }
    for w in writers {
        let _ = w.await;
    }
    let sent = std::mem::take(&mut *sent.lock().expect("lock"));
    // Which subscribers expect which actions.
    let mut per_group = vec![0u64; f.groups.len()];
    let group_index: HashMap<&str, usize> = f.groups.iter().enumerate().map(|(i, g)| (g.0.as_str(), i)).collect();
    let sub_group: Vec<usize> = f.subscribers.iter().map(|s| group_index[s.group.as_str()]).collect();
    for &g in &sub_group {
        per_group[g] += 1;
    }
    let expected: u64 = sent.iter().map(|&(_, _, g)| per_group[g]).sum();
    // Wait for the deliveries still on their way: as long as they keep
    // coming (up to `grace`), and `stall` once none arrives any more.
    let grace_end = Instant::now() + f.grace;
    let (mut last_count, mut last_progress) = (delivered.load(Ordering::Relaxed), Instant::now());
    loop {
        let now_count = delivered.load(Ordering::Relaxed);
        if now_count >= expected || Instant::now() >= grace_end {
            break;
        }
        if now_count != last_count {
            (last_count, last_progress) = (now_count, Instant::now());
        } else if last_progress.elapsed() >= f.stall {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = start.elapsed();
    let server_cpu1: Option<Cpu> = f.server_pids.iter().map(|&p| cpu_times(Some(p))).sum();
    let harness_cpu1 = cpu_seconds(None);
    ticker.stop().await;
    let _ = stop_tx.send(true);
    let mut outcomes = Vec::with_capacity(n);
    for s in subs {
        outcomes.push(s.await?);
    }
    let log_times = read_log_clock(f.pg, f.db).await?;

    // Join deliveries with the writer's log.
    let by_id: HashMap<u64, (u64, usize)> = sent.iter().map(|&(id, t, g)| (id, (t, g))).collect();
    let mut latency = Hist::new();
    let mut send_latency = Hist::new();
    let mut untimed = 0u64;
    let (mut matched, mut duplicates, mut foreign, mut dropped, mut error_frames) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut out_of_order = 0u64;
    let mut got: HashMap<u64, u64> = HashMap::new();
    let mut late = 0u64;
    for (i, o) in outcomes.iter().enumerate() {
        if o.dropped {
            dropped += 1;
        }
        error_frames += o.error_frames;
        let order = arrival_order(&o.received);
        duplicates += order.duplicates;
        out_of_order += order.out_of_order;
        for &(id, t) in &order.first_copies {
            match by_id.get(&id) {
                Some(&(t_send, g)) if g == sub_group[i] => {
                    matched += 1;
                    *got.entry(id).or_insert(0) += 1;
                    send_latency.record_us(t.saturating_sub(t_send) / 1000);
                    match log_times.get(&id) {
                        Some(&(logged, _)) => latency.record_us(unix_us(t).saturating_sub(logged).max(0) as u64),
                        None => untimed += 1,
                    }
                }
                Some(_) => foreign += 1,
                // Not in the writer's log: a write the writer gave up on
                // (no response in time) that committed anyway is fine if it
                // belongs to the subscriber's group; anything else is not.
                None => match log_times.get(&id) {
                    Some((_, group)) if group.as_deref().is_none_or(|g| g == f.subscribers[i].group) => late += 1,
                    _ => foreign += 1,
                },
            }
        }
    }
    let first_error = first_error.lock().expect("lock").clone();
    let write_latency = write_latency.lock().expect("lock").clone();
    let missing_actions =
        sent.iter().filter(|&&(id, _, g)| got.get(&id).copied().unwrap_or(0) < per_group[g]).count() as u64;
    if untimed > 0 {
        return Err(format!("{untimed} deliveries of actions the log clock did not timestamp").into());
    }
    Ok(FanOutResult {
        latency,
        send_latency,
        write_latency,
        mutations: sent.len() as u64,
        mutation_failures: failures.load(Ordering::Relaxed),
        first_error,
        expected,
        delivered: matched,
        missing: expected.saturating_sub(matched),
        missing_actions,
        late,
        duplicates,
        out_of_order,
        foreign,
        dropped,
        error_frames,
        rss_before,
        rss_idle,
        connect_time,
        server_cpu: server_cpu1.zip(server_cpu0).map(|(b, a)| b - a),
        harness_cpu: harness_cpu1.zip(harness_cpu0).map(|(b, a)| b - a),
        wall,
    })
}

/// What one socket received, checked in arrival order (never sorted).
struct ArrivalOrder {
    /// Frames whose sync id arrived before on the socket.
    duplicates: u64,
    /// Frames that arrived after a frame with a higher sync id.
    out_of_order: u64,
    /// The first copy of each frame, in arrival order.
    first_copies: Vec<(u64, u64)>,
}

fn arrival_order(received: &[(u64, u64)]) -> ArrivalOrder {
    let mut seen = std::collections::HashSet::with_capacity(received.len());
    let mut order = ArrivalOrder { duplicates: 0, out_of_order: 0, first_copies: Vec::with_capacity(received.len()) };
    let mut highest = 0;
    for &(id, t) in received {
        if !seen.insert(id) {
            order.duplicates += 1;
            continue;
        }
        if id < highest {
            order.out_of_order += 1;
        }
        highest = highest.max(id);
        order.first_copies.push((id, t));
    }
    order
}

/// Server memory with idle subscribers. Connects and subscribes the first
/// half of `subscribers`, lets the server settle, reads its RSS, then does
/// the same with the second half: the increase between the two readings,
/// per connection, is the memory of an idle connection, without the
/// one-time costs of the first connections (lazy initialisation, JIT, heap
/// growth). Returns (RSS of the fresh server, RSS with half, RSS with all).
pub(crate) async fn idle_memory(
    ws_base: &str,
    subscribers: &[Subscriber],
    after: u64,
    settle: Duration,
    rss: &(dyn Fn() -> Option<u64> + Sync),
) -> Result<(u64, u64, u64), BoxError> {
    let fresh = rss().ok_or("no /proc/<pid>/status")?;
    let (first, second) = subscribers.split_at(subscribers.len() / 2);
    let mut sockets = connect_idle(ws_base, first, after).await?;
    tokio::time::sleep(settle).await;
    let half = rss().ok_or("no /proc/<pid>/status")?;
    sockets.extend(connect_idle(ws_base, second, after).await?);
    tokio::time::sleep(settle).await;
    let full = rss().ok_or("no /proc/<pid>/status")?;
    for mut ws in sockets {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    Ok((fresh, half, full))
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect_idle(ws_base: &str, subscribers: &[Subscriber], after: u64) -> Result<Vec<Socket>, BoxError> {
    let limit = Arc::new(Semaphore::new(50));
    let mut tasks = Vec::with_capacity(subscribers.len());
    for s in subscribers {
        let url = format!("{ws_base}/sync/ws?token={}", token(&s.user));
        let subscribe = serde_json::json!({
            "type": "subscribe",
            "token": token(&s.user),
            "afterSyncId": after.to_string(),
            "groups": [s.group],
        })
        .to_string();
        let limit = limit.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
            let (mut ws, _) = tokio::time::timeout(
                Duration::from_secs(30),
                tokio_tungstenite::connect_async_with_config(url, Some(config), true),
            )
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
            ws.send(Message::Text(subscribe.into())).await.map_err(|e| e.to_string())?;
            loop {
                match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"type\":\"subscribed\"") => return Ok(ws),
                    Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"type\":\"error\"") => {
                        return Err(format!("error frame: {}", t.as_str()))
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(e))) => return Err(e.to_string()),
                    Ok(None) => return Err("socket ended".to_owned()),
                    Err(_) => return Err("no `subscribed` within 60 s".to_owned()),
                }
            }
        }));
    }
    let mut sockets = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    for t in tasks {
        match t.await? {
            Ok(ws) => sockets.push(ws),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(
            format!("{} of {} subscribers failed: {e}", subscribers.len() - sockets.len(), subscribers.len()).into()
        );
    }
    Ok(sockets)
}

#[cfg(test)]
mod tests {
    use super::{arrival_order, frame_sync_id};

    #[test]
    fn order_is_checked_as_received() {
        let ids = |ids: &[u64]| ids.iter().map(|&id| (id, 0)).collect::<Vec<_>>();
        let order = arrival_order(&ids(&[3, 4, 7]));
        assert_eq!((order.duplicates, order.out_of_order), (0, 0));
        // 5 after 7: out of order, though the set {3, 5, 7} is complete.
        let order = arrival_order(&ids(&[3, 7, 5]));
        assert_eq!((order.duplicates, order.out_of_order), (0, 1));
        let order = arrival_order(&ids(&[3, 4, 3, 5]));
        assert_eq!((order.duplicates, order.out_of_order), (1, 0));
        assert_eq!(order.first_copies, ids(&[3, 4, 5]));
    }

    #[test]
    fn sync_id_of_a_delta_frame() {
        let frame = r#"{"packet":{"actions":[{"action":"U","createdAt":"2024-01-02T03:04:05.678Z","data":{"title":"x"},"modelId":"t","modelName":"Task","syncId":"123"}],"lastSyncId":"123"},"type":"delta"}"#;
        assert_eq!(frame_sync_id(frame), Some(123));
        assert_eq!(frame_sync_id(r#"{"afterSyncId":"5","groups":[],"type":"subscribed"}"#), None);
        assert_eq!(frame_sync_id(r#"{"lastSyncId":"x"}"#), None);
    }
}
