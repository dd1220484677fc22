//! Which groups a live session follows, and how a group change (an `S`
//! action, docs/protocol.md §2.5) moves them.
//!
//! A session's groups are fixed by its `subscribe` only until the user's
//! memberships change. The log carries each change as an `S` action whose
//! `subscribedSyncGroups` is the user's whole membership set after it; a
//! session applies it at exactly that sync id (the node's feed and the
//! replay both walk the log in id order), so no action of a removed group
//! after the change reaches it, on any node, and the actions of an added
//! group do.

use super::frame::DeltaFrame;
use crate::protocol::group_change;
use crate::protocol::SyncAction;
use crate::scope::{in_groups, requested_groups};

/// What a session's groups are derived from: its user, the groups its
/// `subscribe` named, and the groups the application adds itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupScope {
    /// The user (an `S` action in this user's own group moves the session).
    pub(crate) user_id: String,
    /// The groups the `subscribe` named (`None`: every authorized group).
    /// A named subset stays a subset: a change can take groups out of it
    /// and give back ones it names, never add others.
    pub(crate) requested: Option<Vec<String>>,
    /// What `SyncAuth::resolve_groups` returned at subscribe: groups the
    /// membership table (and so an `S` action) does not speak about.
    pub(crate) derived: Vec<String>,
}

impl GroupScope {
    /// The session's groups when the user's authorized groups are
    /// `authorized` (§3.3: an empty or absent `groups` means all of them).
    pub(crate) fn select(&self, authorized: &[String]) -> Vec<String> {
        crate::auth::dedupe(requested_groups(authorized, self.requested.as_deref()))
    }

    /// The session's groups when the user's membership set (as an `S`
    /// action lists it) is `members`: the derived groups first, as
    /// authorization orders them (§3.2), then the memberships.
    pub(crate) fn after_change(&self, members: &[String]) -> Vec<String> {
        self.select(&group_change::announced(&self.derived, members))
    }

    /// The membership set of `action` if it is a group change of this
    /// scope's user.
    pub(crate) fn change_in(&self, action: &SyncAction) -> Option<Vec<String>> {
        if !group_change::is_change_of(action, &self.user_id) {
            return None;
        }
        group_change::members(&action.data)
    }

    /// The frame of the user's group change `action` for this session:
    /// `shared` unless the user has derived groups, which their copy lists
    /// first ([`group_change::announce`]).
    pub(crate) fn change_frame(&self, action: &SyncAction, members: &[String], shared: DeltaFrame) -> DeltaFrame {
        match group_change::announce(action, &self.derived, members) {
            Some(told) => DeltaFrame::of(&told),
            None => shared,
        }
    }
}

/// Whether a session of `groups` receives `action` (other than a group
/// change of its own user, which it always receives): a global action, or
/// one of its groups; never someone else's group change.
pub(crate) fn visible(action: &SyncAction, groups: &[String]) -> bool {
    !group_change::is_group_change(action) && in_groups(action.group_id.as_deref(), groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn scope(requested: Option<&[&str]>, derived: &[&str]) -> GroupScope {
        GroupScope { user_id: "alice".into(), requested: requested.map(strings), derived: strings(derived) }
    }

    #[test]
    fn all_groups_follow_the_membership_set_and_keep_derived_ones() {
        let all = scope(None, &["team"]);
        assert_eq!(all.after_change(&strings(&["w1", "w2", "alice"])), ["team", "w1", "w2", "alice"]);
        assert_eq!(all.after_change(&strings(&["w2", "alice"])), ["team", "w2", "alice"]);
        assert_eq!(scope(Some(&[]), &[]).after_change(&strings(&["w1", "alice"])), ["w1", "alice"]);
    }

    #[test]
    fn a_named_subset_only_shrinks_and_regains_what_it_named() {
        let subset = scope(Some(&["w1", "w3"]), &[]);
        assert_eq!(subset.after_change(&strings(&["w1", "w2", "alice"])), ["w1"]);
        assert_eq!(subset.after_change(&strings(&["w2", "alice"])), Vec::<String>::new());
        assert_eq!(subset.after_change(&strings(&["w3", "w1", "alice"])), ["w1", "w3"]);
    }
}
