//! The filter context of bootstrap and batch queries (docs/protocol.md §3.3),
//! and the group rules every reader shares: which groups a request covers
//! ([`requested_groups`]) and whether an action is in them
//! ([`in_groups`], the log query's `group_id IS NULL OR group_id =
//! ANY(groups)` in memory).

use std::collections::HashSet;

/// The groups a request covers (§3.3): the `requested` ones among `held`,
/// in request order (duplicates kept), possibly none (then only global
/// actions and rows); all of `held` when none or an empty list were
/// requested. Unlike the reference, a request naming only foreign groups
/// gets no groups, not all of the caller's. Bootstrap, delta pages and
/// WebSocket subscribes all select their groups with it.
pub fn requested_groups(held: &[String], requested: Option<&[String]>) -> Vec<String> {
    match requested {
        None | Some([]) => held.to_vec(),
        Some(requested) => {
            // Linear in both lists, however many groups either holds.
            let held: HashSet<&str> = held.iter().map(String::as_str).collect();
            requested.iter().filter(|g| held.contains(g.as_str())).cloned().collect()
        }
    }
}

/// A set of groups an action's group is looked up in.
pub trait GroupSet {
    /// Whether `group` is one of them.
    fn holds(&self, group: &str) -> bool;
}

impl GroupSet for [String] {
    fn holds(&self, group: &str) -> bool {
        self.iter().any(|g| g == group)
    }
}

impl GroupSet for Vec<String> {
    fn holds(&self, group: &str) -> bool {
        self.as_slice().holds(group)
    }
}

impl GroupSet for HashSet<&str> {
    fn holds(&self, group: &str) -> bool {
        self.contains(group)
    }
}

/// Whether an action of `group` (`None`: a global action) is visible to a
/// reader of `groups`: global, or in one of them. The in-memory form of the
/// log query's filter (`storage::log`), used by replays and delta pages
/// served from the hot tail.
pub fn in_groups<G: GroupSet + ?Sized>(group: Option<&str>, groups: &G) -> bool {
    group.is_none_or(|group| groups.holds(group))
}

/// Who is asking and which groups the request covers. A model's scope
/// (by default `group field IN authorized_group_ids`) is built from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeFilter {
    /// The effective groups, deduplicated, in request order.
    pub authorized_group_ids: Vec<String>,
    /// The effective groups without the user's own id.
    pub workspace_group_ids: Vec<String>,
    /// The caller.
    pub user_id: String,
}

impl ScopeFilter {
    /// The filter for effective groups `groups` of user `user_id`.
    pub fn new(user_id: &str, groups: &[String]) -> Self {
        let authorized_group_ids = crate::auth::dedupe(groups.iter().cloned());
        let workspace_group_ids = authorized_group_ids.iter().filter(|g| *g != user_id).cloned().collect();
        ScopeFilter { authorized_group_ids, workspace_group_ids, user_id: user_id.to_owned() }
    }

    /// The authorized groups parsed as the key type `T`, in order; ids that
    /// the column type cannot hold, or that spell a key in other than its
    /// canonical form (see [`KeyValue`](crate::codec::KeyValue)), are
    /// dropped (they match no row).
    pub fn groups_as<T: crate::codec::KeyValue>(&self) -> Vec<T> {
        self.authorized_group_ids.iter().filter_map(|g| T::parse_key(g)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn requested_groups_keep_held_ones_in_request_order() {
        let held = strings(&["w1", "w2", "alice"]);
        assert_eq!(requested_groups(&held, None), held);
        assert_eq!(requested_groups(&held, Some(&[])), held);
        assert_eq!(requested_groups(&held, Some(&strings(&["w2", "x", "w2", "w1"]))), ["w2", "w2", "w1"]);
        assert!(requested_groups(&held, Some(&strings(&["x"]))).is_empty());
    }

    #[test]
    fn global_actions_are_in_every_set() {
        let groups = strings(&["w1"]);
        let set: HashSet<&str> = ["w1"].into();
        assert!(in_groups(None, groups.as_slice()) && in_groups(None, &set));
        assert!(in_groups(Some("w1"), groups.as_slice()) && in_groups(Some("w1"), &set));
        assert!(!in_groups(Some("w2"), groups.as_slice()) && !in_groups(Some("w2"), &set));
        assert!(!in_groups(Some("w1"), &Vec::<String>::new()));
    }
}
