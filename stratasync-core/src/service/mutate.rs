//! Mutations (docs/protocol.md §5): how one client transaction is applied inside
//! the group's database transaction (see [`super::group_commit`] for how
//! batches are grouped, logged and committed).
//!
//! Differences from the reference, on purpose:
//! * a foreign-group row and a missing row both answer `record not found`
//!   (§10 #13); inserts into a foreign group answer `Access denied`;
//! * errors carry stable messages, the cause is logged (§10 #14);
//! * codecs check JSON types (§10 #15); a `D` logs the deleted row as the
//!   server stored it, not whatever the client sent;
//! * a concurrent duplicate waits for the original and returns its sync id
//!   (§10 #12);
//! * a composite delete uses the stored row's group, and a missing row is
//!   `record not found`;
//! * rows removed by `ON DELETE CASCADE` get their own `D` actions;
//! * an insert is logged under the group it is stored in, after its
//!   `before_insert` hook (which may rewrite the group key; access is
//!   checked on the final group), and an update may not change the row's
//!   group key (`Invalid mutation: the group of a record cannot be
//!   changed`), whether the payload or a `before_update` hook tries.
//!
//! Before-hooks run for every action of every model kind, on the shared
//! commit path (see [`super::group_commit`]): each runs within
//! [`TxInput::hook_timeout`], and a panic in one fails its transaction
//! alone (`Mutation rejected by hook`). They must be quick. The typed
//! insert or patch a hook sees is built from the normalized `data` only
//! for a model that declares hooks ([`ModelSpec::hooks`]), and what the
//! hook changed is written back into `data` field by field, so that an
//! unchanged field keeps its exact wire form.

use super::normalize::{normalize_insert, normalize_update};
use super::supervise::before_hook;
use super::Registry;
use crate::auth::AuthContext;
use crate::codec::time::instant_ms_from_json;
use crate::error::MutationError;
use crate::model::{
    CodecKind, GroupKey, HookContext, HookError, JsonObject, ModelHooks, ModelKind, ModelSpec, SyncChanges, SyncModel,
};
use crate::protocol::ActionKind;
use crate::storage::Conn;
use serde_json::Value;
use std::time::Duration;

/// One client transaction as a model sees it.
#[derive(Debug)]
pub(crate) struct TxInput<'a> {
    /// The action.
    pub action: ActionKind,
    /// The client's model id.
    pub model_id: &'a str,
    /// The payload.
    pub payload: &'a JsonObject,
    /// The caller (for a write of the server's own, an empty context: no
    /// user id, no groups).
    pub user: &'a AuthContext,
    /// Whether the server itself writes
    /// ([`Actor::System`](crate::write::Actor::System)): no group check.
    pub system: bool,
    /// How long each before-hook may run; an overrun fails the request
    /// with a retryable error ([`MutationError::HookTimedOut`]).
    pub hook_timeout: Duration,
}

/// A row deleted by the database as a consequence of another delete.
#[derive(Debug, Clone)]
pub(crate) struct Cascaded {
    /// The dependent model.
    pub model: &'static str,
    /// Its sync id.
    pub model_id: String,
    /// Its group.
    pub group_id: Option<String>,
    /// The row as it was.
    pub data: JsonObject,
}

impl Cascaded {
    /// The cascaded delete of `row`.
    pub(crate) fn of<M: SyncModel>(row: &M) -> Self {
        Cascaded { model: M::SPEC.name, model_id: row.sync_id(), group_id: row.group_id(), data: row.to_data() }
    }
}

/// A mutation applied inside the transaction, waiting to be logged.
#[derive(Debug)]
pub(crate) struct Applied {
    /// The model.
    pub model: &'static str,
    /// The canonical model id.
    pub model_id: String,
    /// The group of the action.
    pub group_id: Option<String>,
    /// The action's data.
    pub data: JsonObject,
    /// Dependent rows the database deleted with it.
    pub cascaded: Vec<Cascaded>,
}

impl Applied {
    /// The log rows of this mutation: its cascaded deletes, then its own
    /// `action` (last), tagged with the client's `(clientId, clientTxId)`
    /// when a client sent it.
    pub(crate) fn log_rows(
        &self,
        action: ActionKind,
        client: Option<(&str, &str)>,
    ) -> Vec<crate::storage::log::NewAction> {
        use crate::storage::log::NewAction;
        let mut rows: Vec<NewAction> = self
            .cascaded
            .iter()
            .map(|c| NewAction {
                model: c.model,
                model_id: c.model_id.clone(),
                action: ActionKind::Delete,
                data: c.data.clone(),
                group_id: c.group_id.clone(),
                client_id: None,
                client_tx_id: None,
            })
            .collect();
        rows.push(NewAction {
            model: self.model,
            model_id: self.model_id.clone(),
            action,
            data: self.data.clone(),
            group_id: self.group_id.clone(),
            client_id: client.map(|(c, _)| c.to_owned()),
            client_tx_id: client.map(|(_, t)| t.to_owned()),
        });
        rows
    }
}

/// The group of a stored row, as a mutation of it sees it.
pub(crate) fn group_of<M: SyncModel>(row: &M) -> Result<Option<String>, MutationError> {
    match M::SPEC.group {
        GroupKey::Global => Ok(None),
        GroupKey::OwnId => Ok(Some(row.sync_id())),
        GroupKey::Field(_) => match row.group_id() {
            Some(g) if !g.is_empty() => Ok(Some(g)),
            _ => Err(MutationError::MissingGroup),
        },
    }
}

/// The target of a non-insert action, visible to the caller. A row in a
/// group the caller cannot see is reported exactly like a missing row.
async fn target<M: SyncModel>(conn: &mut Conn, tx: &TxInput<'_>) -> Result<(M, Option<String>), MutationError> {
    let row = M::find(conn, tx.model_id, tx.payload).await?.ok_or(MutationError::RecordNotFound)?;
    let group = group_of(&row)?;
    match &group {
        Some(g) if !tx.system && !tx.user.has_group(g) => Err(MutationError::RecordNotFound),
        _ => Ok((row, group)),
    }
}

fn insert_group(spec_group: GroupKey, canonical: &str, data: &JsonObject) -> Result<Option<String>, MutationError> {
    match spec_group {
        GroupKey::Global => Ok(None),
        GroupKey::OwnId => Ok(Some(canonical.to_owned())),
        GroupKey::Field(k) => match data.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            // An integer group key: its wire form, as `SyncModel::group_id`
            // gives it for the stored row.
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
            _ => Err(MutationError::MissingGroup),
        },
    }
}

fn check_access(tx: &TxInput<'_>, group: &Option<String>) -> Result<(), MutationError> {
    match group {
        Some(g) if !tx.system && !tx.user.has_group(g) => Err(MutationError::AccessDenied),
        _ => Ok(()),
    }
}

/// Refuses an update whose `data` would move the row to another group
/// (the group key's value differs from the row's group). A move needs a
/// delete in the old group and an insert in the new one, which an update
/// does not log.
fn keep_group(spec_group: GroupKey, group: &Option<String>, data: &JsonObject) -> Result<(), MutationError> {
    let GroupKey::Field(key) = spec_group else { return Ok(()) };
    match data.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if group.as_deref() == Some(s.as_str()) => Ok(()),
        Some(_) => Err(MutationError::GroupChange),
    }
}

fn ensure_changed(n: usize) -> Result<(), MutationError> {
    if n == 0 {
        Err(MutationError::RecordNotFound)
    } else {
        Ok(())
    }
}

/// The context of a before-hook of `tx` on the row `model_id`.
fn hook_context<'a>(conn: &'a mut Conn, tx: &'a TxInput<'a>, model_id: &'a str) -> HookContext<'a> {
    HookContext { conn, user: tx.user, system: tx.system, model_id, payload: tx.payload }
}

/// The typed form of `data` for a hook, with its wire form before the
/// hook (to see what the hook changed).
fn typed<M: SyncModel>(data: &JsonObject) -> Result<(M::Changes, JsonObject), MutationError> {
    let changes = M::Changes::from_data(data)?;
    let before = changes.to_data();
    Ok((changes, before))
}

/// Writes what a `before_insert` or `before_update` hook changed back into
/// `data`: a field whose wire form is as it was keeps its value as it was
/// (the client's own), a changed one takes its new value in place, a
/// field the hook set gets appended and one it cleared is removed. A hook
/// that changed nothing leaves `data` untouched, byte for byte.
///
/// A hook may only write the fields the action writes (`insert` fields,
/// `update` fields); for an update the group key is left to
/// [`keep_group`] (a hook may name the row's own group, never another).
/// Another field fails the transaction as a hook failure.
fn merge_changes(
    spec: &ModelSpec,
    action: ActionKind,
    data: &mut JsonObject,
    before: &JsonObject,
    after: JsonObject,
) -> Result<(), MutationError> {
    if *before == after {
        return Ok(());
    }
    let group_key = match spec.group {
        GroupKey::Field(key) => Some(key),
        _ => None,
    };
    let insert = action == ActionKind::Insert;
    for (key, value) in &after {
        if before.get(key) == Some(value) {
            continue;
        }
        let writes =
            spec.field(key).is_some_and(|f| if insert { f.insert } else { f.update || group_key == Some(f.wire) });
        if !writes {
            let (hook, what) = if insert { ("before_insert", "an insert") } else { ("before_update", "an update") };
            let cause = format!("the {hook} hook of {} set `{key}`, which {what} does not write", spec.name);
            return Err(MutationError::Hook(HookError::Internal(cause.into())));
        }
    }
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        data.shift_remove(key);
    }
    for (key, value) in after {
        if before.get(&key) != Some(&value) {
            data.insert(key, value);
        }
    }
    Ok(())
}

/// Applies one transaction of model `M` inside the current savepoint.
pub(crate) async fn apply<M: SyncModel>(
    hooks: &M::Hooks,
    registry: &Registry,
    conn: &mut Conn,
    tx: &TxInput<'_>,
) -> Result<Applied, MutationError> {
    let spec = M::SPEC;
    if !spec.actions.contains(tx.action) {
        return Err(MutationError::UnsupportedAction(tx.action));
    }
    let standard = spec.kind == ModelKind::Standard;
    let applied = |model_id: String, group_id: Option<String>, data: JsonObject| Applied {
        model: spec.name,
        model_id,
        group_id,
        data,
        cascaded: Vec::new(),
    };
    match tx.action {
        ActionKind::Insert => {
            let mut data = normalize_insert(spec, tx.model_id, tx.payload)?;
            let mut canonical = M::canonical_id(tx.model_id, &data)?;
            let mut group = insert_group(spec.group, &canonical, &data)?;
            check_access(tx, &group)?;
            if spec.hooks {
                let (mut insert, before) = typed::<M>(&data)?;
                let mut cx = hook_context(conn, tx, &canonical);
                before_hook(tx.hook_timeout, hooks.before_insert(&mut cx, &mut insert)).await?;
                merge_changes(spec, tx.action, &mut data, &before, insert.to_data())?;
                // The hook may have rewritten the key fields of a
                // composite model (its id) or the group: the row is stored
                // (and logged) under the final ones, in a group the caller
                // must be allowed to write.
                if !standard {
                    canonical = M::canonical_id(tx.model_id, &data)?;
                }
                group = insert_group(spec.group, &canonical, &data)?;
                check_access(tx, &group)?;
            }
            M::insert(conn, &canonical, &data).await?;
            Ok(applied(canonical, group, data))
        }
        ActionKind::Update => {
            if !standard || !spec.fields.iter().any(|f| f.update) {
                return Err(MutationError::UpdateNotConfigured);
            }
            let (row, group) = target::<M>(conn, tx).await?;
            let id = row.sync_id();
            let mut data = normalize_update(spec, tx.payload)?;
            if spec.hooks {
                let (mut patch, before) = typed::<M>(&data)?;
                let mut cx = hook_context(conn, tx, &id);
                before_hook(tx.hook_timeout, hooks.before_update(&mut cx, &row, &mut patch)).await?;
                merge_changes(spec, tx.action, &mut data, &before, patch.to_data())?;
            }
            keep_group(spec.group, &group, &data)?;
            if !data.is_empty() {
                ensure_changed(M::update(conn, &row, &data).await?)?;
            }
            Ok(applied(id, group, data))
        }
        ActionKind::Delete => {
            let (row, group) = target::<M>(conn, tx).await?;
            let id = row.sync_id();
            if spec.hooks {
                let mut cx = hook_context(conn, tx, &id);
                before_hook(tx.hook_timeout, hooks.before_delete(&mut cx, &row)).await?;
            }
            let cascaded = cascade(registry, conn, spec.name, &id).await?;
            ensure_changed(M::delete(conn, &row).await?)?;
            let mut done = applied(id, group, row.to_data());
            done.cascaded = cascaded;
            Ok(done)
        }
        ActionKind::Archive | ActionKind::Unarchive => {
            let archive = tx.action == ActionKind::Archive;
            let field = match spec.archive_field {
                Some(f) if standard => f,
                _ if archive => return Err(MutationError::ArchiveNotConfigured),
                _ => return Err(MutationError::UnarchiveNotConfigured),
            };
            let at = if archive {
                let value = tx.payload.get(field).filter(|v| !v.is_null()).ok_or(MutationError::ArchivedAtRequired)?;
                let invalid = || MutationError::InvalidValue { kind: CodecKind::Instant, field: field.to_owned() };
                let ms = instant_ms_from_json(value).ok_or_else(invalid)?;
                Some((ms, crate::codec::time::instant_from_ms(ms).ok_or_else(invalid)?))
            } else {
                None
            };
            let (row, group) = target::<M>(conn, tx).await?;
            let id = row.sync_id();
            if spec.hooks {
                let mut cx = hook_context(conn, tx, &id);
                let hook =
                    if archive { hooks.before_archive(&mut cx, &row) } else { hooks.before_unarchive(&mut cx, &row) };
                before_hook(tx.hook_timeout, hook).await?;
            }
            ensure_changed(M::set_archived(conn, &row, at.map(|(_, t)| t)).await?)?;
            let mut data = JsonObject::new();
            data.insert(field.to_owned(), at.map_or(Value::Null, |(ms, _)| Value::from(ms)));
            Ok(applied(id, group, data))
        }
        // Not in any model's action set: refused above.
        ActionKind::SyncGroups => Err(MutationError::UnsupportedAction(tx.action)),
    }
}

/// Collects, depth first, every synced row the database will delete with
/// `parent_id` of model `parent`.
fn cascade<'a>(
    registry: &'a Registry,
    conn: &'a mut Conn,
    parent: &'a str,
    parent_id: &'a str,
) -> futures_util::future::BoxFuture<'a, Result<Vec<Cascaded>, MutationError>> {
    Box::pin(async move {
        let mut all = Vec::new();
        for model in registry.models() {
            for row in model.cascade(conn, parent, parent_id).await? {
                all.extend(cascade(registry, conn, row.model, &row.model_id).await?);
                all.push(row);
            }
        }
        Ok(all)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> JsonObject {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn an_update_keeps_the_group() {
        let group = Some("w1".to_owned());
        let key = GroupKey::Field("workspaceId");
        assert!(keep_group(key, &group, &obj(json!({"title": "t"}))).is_ok());
        assert!(keep_group(key, &group, &obj(json!({"workspaceId": "w1"}))).is_ok(), "unchanged");
        for moved in [json!("w2"), json!(null), json!(7), json!("W1")] {
            let err = keep_group(key, &group, &obj(json!({ "workspaceId": moved }))).unwrap_err();
            assert_eq!(err.to_string(), "Invalid mutation: the group of a record cannot be changed");
        }
        assert!(keep_group(GroupKey::OwnId, &group, &obj(json!({"workspaceId": "w2"}))).is_ok());
        assert!(keep_group(GroupKey::Global, &None, &obj(json!({"workspaceId": "w2"}))).is_ok());
    }
}
