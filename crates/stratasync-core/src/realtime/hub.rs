//! The node's live feed.
//!
//! One task per node tails `sync_actions` in id order from the database and
//! hands each action's frame to the sessions that may see it. Because ids
//! are allocated in commit order (see [`crate::storage::log`]), reading
//! `id > cursor` never skips an action that commits later, so live sessions
//! get every visible action exactly once, in ascending order, however
//! commits race (PROTOCOL.md §10 #1). Notifications (local commits, Redis
//! messages from other nodes) only wake the tail up; a periodic poll covers
//! lost notifications, so a Redis outage costs latency, never deliveries
//! (§10 #2). Sessions are indexed by group and each frame is serialized
//! once and shared, so a delta for one group costs work proportional to
//! that group's sessions, not to all connections (§10 #3).

use super::frame::DeltaFrame;
use crate::bus::DeltaBus;
use crate::protocol::{SyncAction, SyncId};
use crate::storage::{log, Pool};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, Notify};

/// Tuning of the live feed.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How often the tail polls the log without a wake-up.
    pub poll_interval: Duration,
    /// Frames a session may have queued (buffered during replay, or unsent
    /// when it is slow) before it overflows.
    pub inbox_capacity: usize,
    /// Actions read per query.
    pub page_size: i64,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig { poll_interval: Duration::from_millis(500), inbox_capacity: 10_000, page_size: 1000 }
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
    config: HubConfig,
}

#[derive(Default)]
struct Index {
    sessions: HashMap<u64, Inbox>,
    by_group: HashMap<String, HashSet<u64>>,
    groups_of: HashMap<u64, Vec<String>>,
}

#[derive(Clone)]
struct Inbox {
    frames: mpsc::Sender<DeltaFrame>,
    overflow: Arc<Notify>,
}

/// A session's place in the feed: live frames for its groups (and global
/// ones) arrive on `frames` in ascending sync id order. Dropping it leaves
/// the feed.
#[derive(Debug)]
pub struct Subscription {
    hub: Weak<Inner>,
    id: u64,
    /// The session's inbox.
    pub frames: mpsc::Receiver<DeltaFrame>,
    /// Signalled when the inbox was full and a frame had to be dropped: the
    /// session must end (buffer overflow or a consumer that is too slow).
    pub overflow: Arc<Notify>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.hub.upgrade() {
            inner.remove(self.id);
        }
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
            config,
        });
        tokio::spawn(forward_commits(bus.subscribe(), wake.clone()));
        tokio::spawn(tail(Arc::downgrade(&inner), wake, pool));
        Hub { inner }
    }

    /// Joins the feed for `groups` (global actions always arrive).
    pub fn subscribe(&self, groups: &[String]) -> Subscription {
        let (tx, rx) = mpsc::channel(self.inner.config.inbox_capacity.max(1));
        let overflow = Arc::new(Notify::new());
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        let mut index = self.inner.index.write().unwrap_or_else(|e| e.into_inner());
        index.sessions.insert(id, Inbox { frames: tx, overflow: overflow.clone() });
        let groups = crate::auth::dedupe(groups.iter().cloned());
        for g in &groups {
            index.by_group.entry(g.clone()).or_default().insert(id);
        }
        index.groups_of.insert(id, groups);
        Subscription { hub: Arc::downgrade(&self.inner), id, frames: rx, overflow }
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
}

impl Inner {
    fn remove(&self, id: u64) {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        index.sessions.remove(&id);
        for g in index.groups_of.remove(&id).unwrap_or_default() {
            if let Some(set) = index.by_group.get_mut(&g) {
                set.remove(&id);
                if set.is_empty() {
                    index.by_group.remove(&g);
                }
            }
        }
    }

    /// Hands one action to its recipients, serializing it once.
    fn dispatch(&self, action: &SyncAction) {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut frame = None;
        let mut send = |inbox: &Inbox| {
            let frame = frame.get_or_insert_with(|| DeltaFrame::of(action));
            if let Err(mpsc::error::TrySendError::Full(_)) = inbox.frames.try_send(frame.clone()) {
                inbox.overflow.notify_one();
            }
        };
        match &action.group_id {
            None => index.sessions.values().for_each(&mut send),
            Some(group) => {
                for id in index.by_group.get(group).into_iter().flatten() {
                    if let Some(inbox) = index.sessions.get(id) {
                        send(inbox);
                    }
                }
            }
        }
        self.dispatched.store(action.sync_id.0, Ordering::Release);
    }
}

async fn forward_commits(mut commits: broadcast::Receiver<crate::bus::Delta>, wake: Arc<Notify>) {
    loop {
        match commits.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => wake.notify_one(),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The tail loop: starts at the log's head, then reads `id > cursor` in
/// pages whenever woken or polled, until the hub is dropped.
async fn tail(hub: Weak<Inner>, wake: Arc<Notify>, pool: Pool) {
    let mut cursor: Option<SyncId> = None;
    let mut failing = false;
    loop {
        let Some(inner) = hub.upgrade() else { return };
        let poll = inner.config.poll_interval;
        let result = catch_up(&inner, &pool, &mut cursor).await;
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
        drop(inner);
        let _ = tokio::time::timeout(poll, wake.notified()).await;
    }
}

async fn catch_up(inner: &Inner, pool: &Pool, cursor: &mut Option<SyncId>) -> Result<(), crate::storage::StorageError> {
    let mut conn = pool.get().await?;
    let mut at = match *cursor {
        Some(at) => at,
        None => {
            let head = log::head(&mut conn).await?;
            inner.dispatched.store(head.0, Ordering::Release);
            *cursor = Some(head);
            head
        }
    };
    loop {
        let page = log::tail(&mut conn, at, inner.config.page_size).await?;
        for action in &page {
            inner.dispatch(action);
            at = action.sync_id;
        }
        *cursor = Some(at);
        if (page.len() as i64) < inner.config.page_size {
            return Ok(());
        }
    }
}
