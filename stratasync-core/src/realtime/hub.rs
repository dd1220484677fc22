//! The node's live feed.
//!
//! One task per node tails `sync_actions` in id order from the database and
//! hands each action's frame to the sessions that may see it. Because ids
//! are allocated in commit order (the log's insert-order lock), reading
//! `id > cursor` never skips an action that commits later, so live sessions
//! get every visible action exactly once, in ascending order, however
//! commits race (docs/protocol.md §10 #1). A batch committed on this node is
//! dispatched straight from the in-process delta bus when it continues the cursor
//! without a gap (its first id is `cursor + 1`, the rest follow one by
//! one): no id can then be missing, and the log read is saved. Anything
//! else (a gap, a lagging bus, Redis messages from other nodes) only wakes
//! the tail up to read the log; a periodic poll covers lost notifications,
//! so a Redis outage costs latency, never deliveries (§10 #2). Sessions are indexed by group and each frame is serialized
//! and encoded as a WebSocket frame once and shared, so a delta for one
//! group costs work proportional to that group's sessions, not to all
//! connections (§10 #3). Each frame goes straight to the socket's
//! outbox, gated there by the session's cursor: a delivery is one lock
//! and at most one wake-up of the socket's writer.
//!
//! A user's group change (an `S` action) goes to that user's sessions only,
//! and moves their groups in the index at its sync id
//! (docs/protocol.md §7.5): the feed dispatches in id order, so no later
//! action of a removed group reaches them, on any node.

use super::frame::DeltaFrame;
use super::group_scope::GroupScope;
use super::outbox::{GoLiveError, Outbox};
use super::recent::{Recent, RecentActions, Since};
use crate::bus::DeltaBus;
use crate::protocol::group_change;
use crate::protocol::{SyncAction, SyncId};
use crate::storage::{log, Pool};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, Notify};

/// The default [`HubConfig::send_buffer_bytes`]: 4 MiB.
pub const DEFAULT_SEND_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// The default [`HubConfig::recent_bytes`]: 16 MiB.
pub const DEFAULT_RECENT_BYTES: usize = 16 * 1024 * 1024;

/// The default [`HubConfig::warm_actions`]: 10,000.
pub const DEFAULT_WARM_ACTIONS: u64 = 10_000;

/// Tuning of the live feed.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How often the tail polls the log without a wake-up.
    pub poll_interval: Duration,
    /// Bytes a socket may have waiting, twice over: live frames buffered
    /// while its subscribe replays the log (more closes it with 4008
    /// `Replay buffer limit exceeded`), and frames queued on the socket
    /// while it is live (more closes it with 4008 `Send buffer limit
    /// exceeded`). Each frame counts its length plus
    /// 64 bytes; one frame larger than the bound
    /// still passes a socket with nothing waiting. A client closed this way
    /// resumes from the log when it reconnects. Default
    /// [`DEFAULT_SEND_BUFFER_BYTES`] (4 MiB).
    pub send_buffer_bytes: usize,
    /// Actions read per query.
    pub page_size: i64,
    /// Bytes of recent actions (and their frames) kept in memory, so a
    /// socket resuming from a cursor they cover replays, and a
    /// `/sync/deltas` page from such a cursor is served, without reading
    /// the log (the hot tail); 0 keeps none. Default [`DEFAULT_RECENT_BYTES`]
    /// (16 MiB).
    pub recent_bytes: usize,
    /// How many of the log's latest actions the hot tail is loaded with
    /// when the feed starts (within [`recent_bytes`](Self::recent_bytes)),
    /// so that the clients resuming after a restart or a deploy (all of
    /// them, at once) replay from memory rather than from the log; 0 starts
    /// the tail empty. Default [`DEFAULT_WARM_ACTIONS`].
    pub warm_actions: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            poll_interval: Duration::from_millis(500),
            send_buffer_bytes: DEFAULT_SEND_BUFFER_BYTES,
            page_size: 1000,
            recent_bytes: DEFAULT_RECENT_BYTES,
            warm_actions: DEFAULT_WARM_ACTIONS,
        }
    }
}

/// The live feed of one node; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("sessions", &self.session_count()).finish_non_exhaustive()
    }
}

struct Inner {
    index: RwLock<Index>,
    wake: Arc<Notify>,
    next_session: AtomicU64,
    dispatched: AtomicU64,
    /// The newest sync id known to be in the log (commits seen on the bus,
    /// rows read, readiness checks).
    head: AtomicU64,
    /// The tail's cursor: the log is delivered up to here.
    cursor: AtomicU64,
    /// Whether the tail's last read of the log succeeded.
    live: AtomicBool,
    /// Set by [`Hub::stop`]: the feed's tasks end.
    stopped: AtomicBool,
    /// The hot tail.
    recent: Mutex<RecentActions>,
    config: HubConfig,
}

#[derive(Default)]
struct Index {
    /// Every session.
    sessions: HashMap<u64, Session>,
    by_group: HashMap<String, Vec<(u64, Outbox)>>,
    /// Sessions by user: where a user's group changes go.
    by_user: HashMap<String, Vec<u64>>,
}

/// One session in the feed.
struct Session {
    outbox: Outbox,
    /// Its groups now.
    groups: Vec<String>,
    /// What its groups follow.
    scope: GroupScope,
    /// The sync id of the last group change applied (0: its subscribe's).
    changed_at: SyncId,
}

/// A session's place in the feed: live frames for its groups (and global
/// ones) reach its socket's [`Outbox`] in ascending sync id order, buffered
/// until [`Subscription::go_live`]. Dropping it leaves the feed.
#[derive(Debug)]
pub(crate) struct Subscription {
    hub: Weak<Inner>,
    id: u64,
    outbox: Outbox,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.outbox.detach(self.id);
        if let Some(inner) = self.hub.upgrade() {
            inner.remove(self.id);
        }
    }
}

impl Subscription {
    /// Whether more live frames arrived during the replay than the buffer
    /// holds: the session must end.
    pub(crate) fn overflowed(&self) -> bool {
        self.outbox.overflowed(self.id)
    }

    /// The replay met a group change at `at`: the session's groups are
    /// `groups` from there on (unless the feed already applied a later
    /// change).
    pub(crate) fn regroup(&self, at: SyncId, groups: &[String]) {
        if let Some(inner) = self.hub.upgrade() {
            inner.index.write().unwrap_or_else(|e| e.into_inner()).set_groups(self.id, at, groups.to_vec());
        }
    }

    /// Every action the feed dispatched after `cursor`, when its hot tail
    /// still holds them all.
    pub(crate) fn recent_since(&self, cursor: SyncId) -> Option<Since> {
        let inner = self.hub.upgrade()?;
        let recent = inner.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.since(cursor)
    }

    /// Ends the replay at `cursor`: queues the buffered frames after it,
    /// then `last(final cursor)` (the `subscribed` frame), and lets later
    /// live frames straight through to the socket. Returns the final
    /// cursor.
    pub(crate) fn go_live(
        &self,
        cursor: SyncId,
        last: impl FnOnce(SyncId) -> super::outgoing::Outgoing,
    ) -> Result<SyncId, GoLiveError> {
        self.outbox.go_live(self.id, cursor, last)
    }
}

impl Hub {
    /// Starts the feed: a task tailing the log of `pool`, woken by every
    /// commit published on `bus`.
    pub fn start(pool: Pool, bus: &DeltaBus, config: HubConfig) -> Hub {
        let wake = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            index: RwLock::new(Index::default()),
            wake: wake.clone(),
            next_session: AtomicU64::new(1),
            dispatched: AtomicU64::new(0),
            head: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
            live: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            recent: Mutex::new(RecentActions::new(config.recent_bytes)),
            config,
        });
        tokio::spawn(sample(Arc::downgrade(&inner), pool.clone()));
        tokio::spawn(tail(Arc::downgrade(&inner), wake, bus.subscribe(), pool));
        Hub { inner }
    }

    /// Joins the feed for `groups` (global actions always arrive, and the
    /// group changes of the scope's user, which move the session's groups):
    /// live frames are buffered in `outbox` from now on, until
    /// [`Subscription::go_live`].
    pub(crate) fn subscribe(&self, scope: &GroupScope, groups: &[String], outbox: &Outbox) -> Subscription {
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        outbox.attach(id);
        let mut index = self.inner.index.write().unwrap_or_else(|e| e.into_inner());
        index.by_user.entry(scope.user_id.clone()).or_default().push(id);
        let session =
            Session { outbox: outbox.clone(), groups: Vec::new(), scope: scope.clone(), changed_at: SyncId(0) };
        index.sessions.insert(id, session);
        index.place(id, crate::auth::dedupe(groups.iter().cloned()));
        Subscription { hub: Arc::downgrade(&self.inner), id, outbox: outbox.clone() }
    }

    /// A new socket's queue, bounded by [`HubConfig::send_buffer_bytes`].
    pub(crate) fn outbox(&self) -> Outbox {
        Outbox::new(self.inner.config.send_buffer_bytes)
    }

    /// Stops the feed: its tasks end now, nothing more is delivered, and it
    /// reports itself not live (readiness). Sockets stay open until they
    /// close; a subscribe after this replays the log and gets nothing live.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        self.inner.live.store(false, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Every action the feed dispatched after `cursor`, when its hot tail
    /// still holds them all (`/sync/deltas` pages from memory).
    pub(crate) fn recent_since(&self, cursor: SyncId) -> Option<Since> {
        self.inner.recent.lock().unwrap_or_else(|e| e.into_inner()).since(cursor)
    }

    /// Wakes the tail (another node committed something).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Sessions currently in the feed.
    pub fn session_count(&self) -> usize {
        self.inner.index.read().map(|i| i.sessions.len()).unwrap_or_default()
    }

    /// The last sync id handed to sessions.
    pub fn dispatched(&self) -> SyncId {
        SyncId(self.inner.dispatched.load(Ordering::Acquire))
    }

    /// Whether the tail's last read of the log succeeded, and the sync id
    /// up to which it delivered the log.
    pub(crate) fn position(&self) -> (bool, u64) {
        (self.inner.live.load(Ordering::Acquire), self.inner.cursor.load(Ordering::Acquire))
    }

    /// The log holds `head` (a readiness check read it).
    pub(crate) fn observe_head(&self, head: u64) {
        self.inner.head.fetch_max(head, Ordering::AcqRel);
    }
}

/// How often the sampler publishes the feed's gauges.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Publishes the gauges of the feed, the sockets and the pool every
/// [`SAMPLE_EVERY`], until the hub is dropped.
async fn sample(hub: Weak<Inner>, pool: Pool) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = hub.upgrade() else { return };
        if inner.stopped.load(Ordering::Acquire) {
            return;
        }
        let cursor = inner.cursor.load(Ordering::Acquire);
        crate::metrics::feed(inner.head.load(Ordering::Acquire).max(cursor), cursor);
        let queued: usize = {
            let index = inner.index.read().unwrap_or_else(|e| e.into_inner());
            index.sessions.values().map(|session| session.outbox.queued_bytes()).sum()
        };
        crate::metrics::send_queue(queued);
        crate::metrics::sample_sent();
        crate::metrics::pool(&pool.status());
    }
}

impl Index {
    /// Files session `id` under `groups` (taking it out of its old ones).
    fn place(&mut self, id: u64, groups: Vec<String>) {
        let Some(session) = self.sessions.get_mut(&id) else { return };
        let old = std::mem::replace(&mut session.groups, groups.clone());
        let outbox = session.outbox.clone();
        for g in old.iter().filter(|g| !groups.contains(g)) {
            unfile(&mut self.by_group, g, id);
        }
        for g in groups.into_iter().filter(|g| !old.contains(g)) {
            self.by_group.entry(g).or_default().push((id, outbox.clone()));
        }
    }

    /// Session `id`'s groups are `groups` from the group change at `at`
    /// on; an older change than the last one applied is ignored (the feed
    /// and a replay may both meet it).
    fn set_groups(&mut self, id: u64, at: SyncId, groups: Vec<String>) {
        let Some(session) = self.sessions.get_mut(&id) else { return };
        if session.changed_at >= at {
            return;
        }
        session.changed_at = at;
        self.place(id, groups);
    }
}

/// Takes session `id` off `group`'s list.
fn unfile(by_group: &mut HashMap<String, Vec<(u64, Outbox)>>, group: &str, id: u64) {
    if let Some(list) = by_group.get_mut(group) {
        if let Some(at) = list.iter().position(|(s, _)| *s == id) {
            list.swap_remove(at);
        }
        if list.is_empty() {
            by_group.remove(group);
        }
    }
}

impl Inner {
    fn remove(&self, id: u64) {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        let Some(session) = index.sessions.remove(&id) else { return };
        for g in &session.groups {
            unfile(&mut index.by_group, g, id);
        }
        if let Some(list) = index.by_user.get_mut(&session.scope.user_id) {
            list.retain(|s| *s != id);
            if list.is_empty() {
                index.by_user.remove(&session.scope.user_id);
            }
        }
    }

    /// Hands one action to its recipients, serializing it once, and keeps
    /// it in the hot tail.
    fn dispatch(&self, action: Arc<SyncAction>) {
        let keep = self.config.recent_bytes > 0;
        let mut frame = keep.then(|| DeltaFrame::of(&action));
        if group_change::is_group_change(&action) {
            self.dispatch_change(&action, &mut frame);
        } else {
            let index = self.index.read().unwrap_or_else(|e| e.into_inner());
            let mut send = |id: u64, outbox: &Outbox| {
                let frame = frame.get_or_insert_with(|| DeltaFrame::of(&action));
                outbox.deliver(id, frame);
            };
            match &action.group_id {
                None => index.sessions.iter().for_each(|(id, session)| send(*id, &session.outbox)),
                Some(group) => {
                    for (id, outbox) in index.by_group.get(group).into_iter().flatten() {
                        send(*id, outbox);
                    }
                }
            }
        }
        self.dispatched.store(action.sync_id.0, Ordering::Release);
        if let (true, Some(frame)) = (keep, frame) {
            self.recent.lock().unwrap_or_else(|e| e.into_inner()).push(Recent::of(action, frame));
        }
    }

    /// A group change reaches its user's sessions (only theirs), which
    /// follow it from its sync id on.
    fn dispatch_change(&self, action: &SyncAction, frame: &mut Option<DeltaFrame>) {
        let Some(user) = &action.group_id else { return };
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        let ids = index.by_user.get(user).cloned().unwrap_or_default();
        for id in ids {
            let Some(session) = index.sessions.get(&id) else { continue };
            let Some(members) = session.scope.change_in(action) else { continue };
            let shared = frame.get_or_insert_with(|| DeltaFrame::of(action)).clone();
            session.outbox.deliver(id, &session.scope.change_frame(action, &members, shared));
            let groups = session.scope.after_change(&members);
            index.set_groups(id, action.sync_id, groups);
        }
    }
}

/// What woke the tail.
enum Woken {
    /// Local commits, in publishing order.
    Commits(Vec<crate::bus::Delta>),
    /// A wake-up, a poll, or a bus that lagged: read the log.
    Read,
}

/// Takes every commit already published after `first`.
fn drain(first: crate::bus::Delta, commits: &mut broadcast::Receiver<crate::bus::Delta>) -> Woken {
    let mut batch = vec![first];
    loop {
        match commits.try_recv() {
            Ok(delta) => batch.push(delta),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => {
                return Woken::Commits(batch)
            }
            Err(broadcast::error::TryRecvError::Lagged(_)) => return Woken::Read,
        }
    }
}

/// The tail loop: starts at the log's head, then dispatches local commits
/// that continue the cursor, and reads `id > cursor` in pages whenever
/// woken otherwise or polled, until the hub is dropped.
async fn tail(hub: Weak<Inner>, wake: Arc<Notify>, mut commits: broadcast::Receiver<crate::bus::Delta>, pool: Pool) {
    let mut cursor: Option<SyncId> = None;
    let mut failing = false;
    let mut bus_open = true;
    let mut woken = Woken::Read;
    let mut next_poll = tokio::time::Instant::now();
    loop {
        let Some(inner) = hub.upgrade() else { return };
        if inner.stopped.load(Ordering::Acquire) {
            inner.live.store(false, Ordering::Release);
            return;
        }
        let poll = inner.config.poll_interval;
        if let Woken::Commits(batch) = &woken {
            if let Some(last) = batch.iter().map(|a| a.sync_id.0).max() {
                inner.head.fetch_max(last, Ordering::AcqRel);
            }
        }
        let direct = match (&woken, cursor) {
            (Woken::Commits(batch), Some(at)) => dispatch_contiguous(&inner, batch, at),
            _ => None,
        };
        if let Some(at) = direct {
            cursor = Some(at);
        } else {
            // The poll runs `poll` after the last read, however many
            // commits were dispatched from the bus meanwhile.
            next_poll = tokio::time::Instant::now() + poll;
            let result = catch_up(&inner, &pool, &mut cursor).await;
            inner.live.store(result.is_ok() && !inner.stopped.load(Ordering::Acquire), Ordering::Release);
            match (result, failing) {
                (Ok(()), true) => {
                    tracing::info!("live feed reading the log again");
                    failing = false;
                }
                (Err(e), false) => {
                    tracing::warn!(error = %e, "live feed cannot read the log; retrying");
                    failing = true;
                }
                _ => {}
            }
        }
        if let Some(at) = cursor {
            inner.cursor.store(at.0, Ordering::Release);
            inner.head.fetch_max(at.0, Ordering::AcqRel);
            inner.recent.lock().unwrap_or_else(|e| e.into_inner()).reached(at);
        }
        drop(inner);
        woken = tokio::select! {
            biased;
            delta = commits.recv(), if bus_open => match delta {
                Ok(delta) => drain(delta, &mut commits),
                Err(broadcast::error::RecvError::Lagged(_)) => Woken::Read,
                Err(broadcast::error::RecvError::Closed) => {
                    bus_open = false;
                    Woken::Read
                }
            },
            () = wake.notified() => Woken::Read,
            () = tokio::time::sleep_until(next_poll) => Woken::Read,
        };
    }
}

/// Dispatches `batch` if it continues `cursor` without a gap (ids at or
/// below the cursor were dispatched already); returns the new cursor, or
/// `None` when the log must be read instead.
fn dispatch_contiguous(inner: &Inner, batch: &[crate::bus::Delta], cursor: SyncId) -> Option<SyncId> {
    let fresh: Vec<&crate::bus::Delta> = batch.iter().filter(|a| a.sync_id > cursor).collect();
    let mut at = cursor;
    for action in &fresh {
        if action.sync_id.0 != at.0 + 1 {
            return None;
        }
        at = action.sync_id;
    }
    for action in fresh {
        inner.dispatch(Arc::clone(action));
    }
    Some(at)
}

/// The hot tail as the feed starts at `head`: the log's last
/// [`HubConfig::warm_actions`] actions up to `head`, read in pages and
/// encoded as the feed would (nothing is dispatched: every session already
/// replays up to where the feed starts). It covers `(head - warm, head]`,
/// less whatever its byte bound evicts.
async fn warm_tail(
    inner: &Inner,
    conn: &crate::storage::Conn,
    head: SyncId,
) -> Result<RecentActions, crate::storage::StorageError> {
    let config = &inner.config;
    let mut tail = RecentActions::new(config.recent_bytes);
    if config.recent_bytes == 0 || config.warm_actions == 0 || head.0 == 0 {
        return Ok(tail);
    }
    let mut at = SyncId(head.0.saturating_sub(config.warm_actions));
    tail.start_at(at);
    log::read_pages(conn, &mut at, Some(head), config.page_size, |action| {
        let action = Arc::new(action);
        let frame = DeltaFrame::of(&action);
        tail.push(Recent::of(action, frame));
    })
    .await?;
    tail.reached(head);
    tracing::debug!(head = head.0, "hot tail warmed");
    Ok(tail)
}

async fn catch_up(inner: &Inner, pool: &Pool, cursor: &mut Option<SyncId>) -> Result<(), crate::storage::StorageError> {
    let mut conn = pool.get().await?;
    let mut at = match *cursor {
        Some(at) => at,
        None => {
            let head = log::head(&mut conn).await?;
            let warmed = warm_tail(inner, &conn, head).await?;
            inner.dispatched.store(head.0, Ordering::Release);
            let mut recent = inner.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.start_warm(warmed);
            recent.start_at(head);
            drop(recent);
            *cursor = Some(head);
            head
        }
    };
    let read = log::read_pages(&conn, &mut at, None, inner.config.page_size, |action| {
        inner.dispatch(Arc::new(action));
    })
    .await;
    // What was dispatched stays dispatched, even if a later page failed.
    *cursor = Some(at);
    Ok(read?)
}
