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

/// What an entry costs beyond its frame's JSON: the action it keeps (about
/// the size of its JSON again, counted as such) and the slots.
const ENTRY_OVERHEAD: usize = 128;

/// One dispatched action and its frame.
#[derive(Debug, Clone)]
pub(crate) struct Recent {
    /// The action (for the group filter and group changes).
    pub(crate) action: Arc<SyncAction>,
    /// Its delta frame, serialized once.
    pub(crate) frame: DeltaFrame,
}

impl Recent {
    fn cost(&self) -> usize {
        2 * self.frame.json().len() + ENTRY_OVERHEAD
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

    /// The feed dispatched `recent` (the next action of the log).
    pub(crate) fn push(&mut self, recent: Recent) {
        if self.floor.is_none() {
            return;
        }
        self.end = self.end.max(recent.action.sync_id);
        self.bytes += recent.cost();
        self.entries.push_back(recent);
        while self.bytes > self.limit {
            let Some(old) = self.entries.pop_front() else { break };
            self.bytes -= old.cost();
            self.floor = Some(old.action.sync_id);
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
        let first = self.entries.partition_point(|r| r.action.sync_id <= cursor);
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
        Recent { frame: DeltaFrame::of(&action), action: Arc::new(action) }
    }

    fn ids(since: &Since) -> Vec<u64> {
        since.actions.iter().map(|r| r.action.sync_id.0).collect()
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
