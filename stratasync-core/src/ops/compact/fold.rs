//! What a run of actions on one row, in one group, amounts to: the one
//! action a client can apply instead of the whole run and end in the same
//! state.
//!
//! The client applies actions by these rules (docs/protocol.md §9.5):
//! `I` replaces the row with its data, `U`, `A` and `V` merge their data
//! into it (the engine logs `A` as `{archivedAt: ms}` and `V` as
//! `{archivedAt: null}`, so both are merges too), `D` removes it, and an
//! `S` replaces the user's group set. Merges compose (applying `a` then
//! `b` equals applying `a` with `b` merged over it), and a replace or a
//! removal ends what came before, so any run folds into one action:
//!
//! * ends in a removal → that `D` (its data, the last known row, as logged);
//! * a replace followed by merges → one `I` with the merged row (the full
//!   row as of the last action);
//! * merges only (the row's insert is not in the log: written before the
//!   log existed, or by SQL outside the engine) → one `U` with the merged
//!   fields, which applied over the client's row equals the run;
//! * a removal followed by merges (the client then holds a row of the
//!   merged fields alone) → one `I` of those fields;
//! * any other letter → the last action, as it was.
//!
//! Applying the fold to a client that had already applied a prefix of the
//! run gives the same state as applying the rest of the run, because a
//! merge applied twice changes nothing.

use crate::model::JsonObject;
use crate::protocol::ActionKind;

/// The state of a row after a run of actions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Folded {
    /// Replaced: the whole row is known.
    Row(JsonObject),
    /// Only merges so far: the fields they set.
    Fields(JsonObject),
    /// Removed (the `D`'s data), or a letter that replaces everything
    /// (`S`): kept as logged.
    Last(ActionKind, JsonObject),
}

impl Folded {
    /// The fold of a single action.
    pub(crate) fn start(action: ActionKind, data: JsonObject) -> Folded {
        Folded::Fields(JsonObject::new()).then(action, data)
    }

    /// The fold after one more action.
    pub(crate) fn then(self, action: ActionKind, data: JsonObject) -> Folded {
        match (action, self) {
            (ActionKind::Insert, _) => Folded::Row(data),
            (ActionKind::Update | ActionKind::Archive | ActionKind::Unarchive, Folded::Row(row)) => {
                Folded::Row(merge(row, data, action))
            }
            (ActionKind::Update | ActionKind::Archive | ActionKind::Unarchive, Folded::Fields(fields)) => {
                Folded::Fields(merge(fields, data, action))
            }
            // A merge after a removal: the client creates a row of the
            // merged fields alone, which is what an insert of them makes.
            (ActionKind::Update | ActionKind::Archive | ActionKind::Unarchive, Folded::Last(..)) => {
                Folded::Row(merge(JsonObject::new(), data, action))
            }
            (ActionKind::Delete | ActionKind::SyncGroups, _) => Folded::Last(action, data),
        }
    }

    /// The one action that stands for the run.
    pub(crate) fn into_action(self) -> (ActionKind, JsonObject) {
        match self {
            Folded::Row(row) => (ActionKind::Insert, row),
            Folded::Fields(fields) => (ActionKind::Update, fields),
            Folded::Last(action, data) => (action, data),
        }
    }
}

/// `data` merged over `into`, with the archive letters' own field rule.
fn merge(mut into: JsonObject, data: JsonObject, action: ActionKind) -> JsonObject {
    let unarchive = action == ActionKind::Unarchive;
    into.extend(data);
    if unarchive {
        into.insert("archivedAt".into(), serde_json::Value::Null);
    }
    into
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> JsonObject {
        match v {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("test data are objects"),
        }
    }

    fn fold(run: &[(ActionKind, serde_json::Value)]) -> (ActionKind, JsonObject) {
        let mut it = run.iter().cloned();
        let (a, d) = it.next().expect("a run has an action");
        it.fold(Folded::start(a, obj(d)), |f, (a, d)| f.then(a, obj(d))).into_action()
    }

    use ActionKind::*;

    #[test]
    fn an_insert_and_merges_become_the_full_row() {
        let run = [
            (Insert, json!({"id": "t", "title": "a", "priority": 1})),
            (Update, json!({"title": "b"})),
            (Archive, json!({"archivedAt": 5})),
            (Unarchive, json!({"archivedAt": null})),
            (Update, json!({"priority": 2})),
        ];
        assert_eq!(fold(&run), (Insert, obj(json!({"id": "t", "title": "b", "priority": 2, "archivedAt": null}))));
    }

    #[test]
    fn merges_alone_stay_a_merge() {
        let run =
            [(Update, json!({"title": "b"})), (Archive, json!({"archivedAt": 5})), (Update, json!({"title": "c"}))];
        assert_eq!(fold(&run), (Update, obj(json!({"title": "c", "archivedAt": 5}))));
    }

    #[test]
    fn a_removal_ends_the_run_and_a_later_insert_starts_again() {
        let deleted = [(Insert, json!({"id": "t"})), (Update, json!({"title": "b"})), (Delete, json!({"id": "t"}))];
        assert_eq!(fold(&deleted), (Delete, obj(json!({"id": "t"}))));
        let back =
            [(Insert, json!({"id": "t", "x": 1})), (Delete, json!({"id": "t"})), (Insert, json!({"id": "t", "y": 2}))];
        assert_eq!(fold(&back), (Insert, obj(json!({"id": "t", "y": 2}))));
        let partial = [(Delete, json!({"id": "t"})), (Update, json!({"title": "c"}))];
        assert_eq!(fold(&partial), (Insert, obj(json!({"title": "c"}))));
    }

    #[test]
    fn group_changes_keep_the_last() {
        let run = [
            (SyncGroups, json!({"subscribedSyncGroups": ["a"]})),
            (SyncGroups, json!({"subscribedSyncGroups": ["a", "b"]})),
        ];
        assert_eq!(fold(&run), (SyncGroups, obj(json!({"subscribedSyncGroups": ["a", "b"]}))));
    }
}
