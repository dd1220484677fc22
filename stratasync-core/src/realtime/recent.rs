//! The hot tail: the most recent actions the node's feed dispatched, kept
//! in memory (bounded in bytes) with their encoded frames, so a socket that
//! resumes a little behind replays from here instead of reading the log
//! from PostgreSQL (a reconnect storm then costs the database two index
//! lookups per socket).
//!
//! The feed dispatches the log in id order with no gaps, so the tail holds
//! every action with an id in `(floor, end]`: a cursor at or above `floor`
//! can be served from memory alone. Evicting the oldest entry raises
//! `floor` to its id.

use super::frame::DeltaFrame;
use crate::protocol::{SyncAction, SyncId};
use std::collections::VecDeque;
use std::sync::Arc;

/// What an entry costs beyond its frame's JSON and group id: the slot, the
/// frame's handles and allocation headers.
const ENTRY_OVERHEAD: usize = 160;

/// One dispatched action: what a replay needs of it, and its frame.
///
/// Only the frame is kept of an ordinary action (with its group for the
/// filter); a group change keeps the whole action, since a replay reads
/// its set and may tell it differently ([`super::group_scope`]).
#[derive(Debug, Clone)]
pub(crate) struct Recent {
    /// The sync id.
    pub(crate) sync_id: SyncId,
    /// The action's group (`None`: global).
    pub(crate) group_id: Option<String>,
    /// The action, when it is a group change.
    pub(crate) change: Option<Arc<SyncAction>>,
    /// Its delta frame, serialized once.
    pub(crate) frame: DeltaFrame,
}

impl Recent {
    /// The entry of `action`, whose frame is `frame`.
    pub(crate) fn of(action: Arc<SyncAction>, frame: DeltaFrame) -> Self {
        let change = crate::protocol::group_change::is_group_change(&action).then(|| Arc::clone(&action));
        Recent { sync_id: action.sync_id, group_id: action.group_id.clone(), change, frame }
    }

    /// Bytes the entry holds: its frame twice (the JSON, and the socket
    /// encoding cached beside it once it was sent), its group, and a group
    /// change's parsed action (about four times its JSON).
    fn cost(&self) -> usize {
        let json = self.frame.json().len();
        let change = if self.change.is_some() { 4 * json } else { 0 };
        2 * json + self.group_id.as_ref().map_or(0, String::len) + change + ENTRY_OVERHEAD
    }
}

/// The actions after a cursor, as the tail held them.
#[derive(Debug)]
pub(crate) struct Since {
    /// Every action after the cursor, ascending.
    pub(crate) actions: Vec<Recent>,
    /// The id up to which the log was dispatched: the replay's new cursor.
    pub(crate) end: SyncId,
}

/// The recent actions of the feed.
#[derive(Debug)]
pub(crate) struct RecentActions {
    entries: VecDeque<Recent>,
    bytes: usize,
    limit: usize,
    /// Every action after this id is in `entries` (`None`: nothing is
    /// covered yet, before the feed's first read).
    floor: Option<SyncId>,
    /// The log is dispatched up to here.
    end: SyncId,
}

impl RecentActions {
    /// An empty tail of at most `limit` bytes (0: keep nothing).
    pub(crate) fn new(limit: usize) -> Self {
        RecentActions { entries: VecDeque::new(), bytes: 0, limit, floor: None, end: SyncId(0) }
    }

    /// The feed starts at `head`: everything after it will be kept.
    pub(crate) fn start_at(&mut self, head: SyncId) {
        if self.floor.is_none() && self.limit > 0 {
            self.floor = Some(head);
            self.end = head;
        }
    }

    /// Takes `warmed` (the log's latest actions, read before the feed's
    /// first dispatch) unless the feed already started this tail.
    pub(crate) fn start_warm(&mut self, warmed: RecentActions) {
        if self.floor.is_none() && warmed.floor.is_some() {
            *self = warmed;
        }
    }

    /// The feed dispatched `recent` (the next action of the log).
    pub(crate) fn push(&mut self, recent: Recent) {
        if self.floor.is_none() {
            return;
        }
        self.end = self.end.max(recent.sync_id);
        self.bytes += recent.cost();
        self.entries.push_back(recent);
        while self.bytes > self.limit {
            let Some(old) = self.entries.pop_front() else { break };
            self.bytes -= old.cost();
            self.floor = Some(old.sync_id);
        }
    }

    /// The feed read the log up to `at` (rows it skipped included).
    pub(crate) fn reached(&mut self, at: SyncId) {
        if self.floor.is_some() {
            self.end = self.end.max(at);
        }
    }

    /// Every action after `cursor`, if the tail covers it.
    pub(crate) fn since(&self, cursor: SyncId) -> Option<Since> {
        let floor = self.floor?;
        if cursor < floor || cursor > self.end {
            return None;
        }
        let first = self.entries.partition_point(|r| r.sync_id <= cursor);
        Some(Since { actions: self.entries.range(first..).cloned().collect(), end: self.end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ActionKind;

    fn recent(id: u64, group: Option<&str>) -> Recent {
        let action = SyncAction {
            action: ActionKind::Update,
            client_id: None,
            client_tx_id: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            data: Default::default(),
            group_id: group.map(str::to_owned),
            model_id: format!("m{id}"),
            model_name: "Task".into(),
            sync_id: SyncId(id),
        };
        Recent::of(Arc::new(action.clone()), DeltaFrame::of(&action))
    }

    fn ids(since: &Since) -> Vec<u64> {
        since.actions.iter().map(|r| r.sync_id.0).collect()
    }

    #[test]
    fn serves_cursors_at_or_above_its_floor_only() {
        let mut tail = RecentActions::new(1 << 20);
        assert!(tail.since(SyncId(0)).is_none(), "nothing covered before the feed starts");
        tail.start_at(SyncId(10));
        for id in [11, 12, 14] {
            tail.push(recent(id, Some("g")));
        }
        tail.reached(SyncId(15));
        assert!(tail.since(SyncId(9)).is_none());
        let all = tail.since(SyncId(10)).expect("covered");
        assert_eq!((ids(&all), all.end), (vec![11, 12, 14], SyncId(15)));
        assert_eq!(ids(&tail.since(SyncId(12)).expect("covered")), [14]);
        assert!(tail.since(SyncId(15)).expect("covered").actions.is_empty());
        assert!(tail.since(SyncId(16)).is_none(), "a cursor past the feed");
    }

    #[test]
    fn evicts_the_oldest_and_raises_its_floor() {
        let one = recent(1, None).cost();
        let mut tail = RecentActions::new(3 * one);
        tail.start_at(SyncId(0));
        for id in 1..=5 {
            tail.push(recent(id, None));
        }
        assert!(tail.since(SyncId(1)).is_none());
        assert_eq!(ids(&tail.since(SyncId(2)).expect("covered")), [3, 4, 5]);
        let mut off = RecentActions::new(0);
        off.start_at(SyncId(0));
        off.push(recent(1, None));
        assert!(off.since(SyncId(0)).is_none(), "a zero limit keeps nothing");
    }
}
