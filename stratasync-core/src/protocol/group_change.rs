//! The group-change action (`S`, docs/protocol.md §2.5): how it is
//! recognized, what it says, and how its user is told it.
//!
//! The log's row lists the user's memberships (plus their own id), which is
//! what the database knows. The groups the application derives itself
//! (`SyncAuth::resolve_groups`) are not in the table, so the action is
//! delivered to its user with those groups first, exactly as bootstrap
//! metadata lists the user's groups; the published client replaces its
//! group set with it and must not lose them.

use super::JsonObject;
use super::RawJson;
use super::{ActionKind, SyncAction};

/// The `modelName` of a group change.
pub const GROUP_CHANGE_MODEL: &str = "SyncGroup";

/// The `data` key of the user's group set.
const KEY: &str = "subscribedSyncGroups";

/// Whether `action` is a group change (of anyone).
pub(crate) fn is_group_change<D>(action: &SyncAction<D>) -> bool {
    action.action == ActionKind::SyncGroups && action.model_name == GROUP_CHANGE_MODEL
}

/// Whether `action` is a group change of `user`.
pub(crate) fn is_change_of<D>(action: &SyncAction<D>, user: &str) -> bool {
    is_group_change(action) && action.group_id.as_deref() == Some(user)
}

/// The membership set a group change's `data` lists.
pub(crate) fn members(data: &JsonObject) -> Option<Vec<String>> {
    data.get(KEY)?.as_array()?.iter().map(|g| g.as_str().map(str::to_owned)).collect()
}

/// The set its user is told: the derived groups, then the memberships.
pub(crate) fn announced(derived: &[String], members: &[String]) -> Vec<String> {
    super::dedupe(derived.iter().chain(members).cloned())
}

/// `action` as its user is told it when they have `derived` groups (the
/// same action when they have none).
pub(crate) fn announce(action: &SyncAction, derived: &[String], members: &[String]) -> Option<SyncAction> {
    if derived.is_empty() {
        return None;
    }
    let mut data = JsonObject::new();
    data.insert(KEY.to_owned(), announced(derived, members).into());
    Some(SyncAction { data, ..action.clone() })
}

/// An action read as JSON text (`/sync/deltas`) as `user`, with `derived`
/// groups, is told it: [`announce`] for their own group changes, any other
/// action as it is.
pub(crate) fn announce_raw(action: SyncAction<RawJson>, user: &str, derived: &[String]) -> SyncAction<RawJson> {
    if derived.is_empty() || !is_change_of(&action, user) {
        return action;
    }
    let Some(set) = serde_json::from_str::<JsonObject>(action.data.get()).ok().as_ref().and_then(members) else {
        return action;
    };
    let mut data = JsonObject::new();
    data.insert(KEY.to_owned(), announced(derived, &set).into());
    match RawJson::from_text(&serde_json::Value::Object(data).to_string()) {
        Ok(data) => SyncAction { data, ..action },
        Err(_) => action,
    }
}
