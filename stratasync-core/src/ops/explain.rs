//! Why a user may or may not see a row or apply a mutation.
//!
//! Nothing here re-implements a rule. A user's groups come from
//! [`auth::context_for`], the resolution every
//! request uses; a mutation is validated by
//! the mutate endpoint's validation and then applied
//! by the model's own mutation code (the registry's, with its hooks,
//! codecs, group and `references` checks) inside a database transaction
//! that is always rolled back. The explanation names the rule behind the
//! outcome and quotes the exact message the server would answer.
//!
//! A dry run runs the model's before-hooks (in the rolled-back
//! transaction): hooks with effects outside the database have them here
//! too. The target row is locked `FOR UPDATE` for the moment of the run,
//! as a real mutation locks it.

use crate::auth::{self, AuthContext, AuthError, AuthUser};
use crate::engine::SyncEngine;
use crate::error::MutationError;
use crate::model::{GroupKey, JsonObject, ModelKind, ModelSpec};
use crate::protocol::{ActionKind, TransactionInput};
use crate::service::group_commit::GroupCommitConfig;
use crate::service::mutate::{Applied, TxInput};
use crate::service::DynModel;
use crate::storage::{log, memberships, Conn, StorageError};
use diesel_async::{AnsiTransactionManager, SimpleAsyncConnection, TransactionManager};
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;

/// A stored row as a mutation finds it (a [`crate::model`] type).
pub use crate::model::Located;

/// Where one of a user's groups comes from (docs/protocol.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupSource {
    /// The application's [`SyncAuth::resolve_groups`](crate::SyncAuth::resolve_groups).
    App,
    /// A row of `sync_group_memberships`.
    Membership,
    /// The user's own id.
    OwnId,
}

impl GroupSource {
    /// How the explanation names it.
    pub const fn as_str(self) -> &'static str {
        match self {
            GroupSource::App => "from the application",
            GroupSource::Membership => "membership",
            GroupSource::OwnId => "own id",
        }
    }
}

/// One group the user holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldGroup {
    /// The group.
    pub group: String,
    /// Where it comes from.
    pub source: GroupSource,
}

/// The rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    /// The request's shape (docs/protocol.md §4.4): the `400` of `/sync/mutate`.
    RequestValidation,
    /// No model has that name.
    UnknownModel,
    /// The transaction is already committed (§5.2 step 1).
    Duplicate,
    /// The row exists or not.
    Existence,
    /// The user holds the row's group, or not; or the row is global.
    Membership,
    /// The model accepts the action, or not.
    ModelActions,
    /// Which payload keys an update may change.
    UpdatableFields,
    /// The row's group key: missing, or changed by an update.
    GroupKey,
    /// A field declared `references = Model` (or a foreign key) names a
    /// row missing from the row's group.
    References,
    /// A payload value its field's codec refuses.
    Validation,
    /// A before-hook refused or failed.
    Hook,
    /// The database refused or failed otherwise.
    Database,
}

impl Rule {
    /// How the explanation names it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::RequestValidation => "request validation",
            Rule::UnknownModel => "unknown model",
            Rule::Duplicate => "duplicate",
            Rule::Existence => "existence",
            Rule::Membership => "membership",
            Rule::ModelActions => "model actions",
            Rule::UpdatableFields => "updatable fields",
            Rule::GroupKey => "group key",
            Rule::References => "references",
            Rule::Validation => "validation",
            Rule::Hook => "hook",
            Rule::Database => "database",
        }
    }
}

/// The answer of [`explain_row`] or [`explain_mutation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The user.
    pub user: String,
    /// The user's groups, in the order requests see them.
    pub groups: Vec<HeldGroup>,
    /// The model.
    pub model: String,
    /// The row's id (as given).
    pub model_id: String,
    /// The mutation's action letter (`None` for a row).
    pub action: Option<char>,
    /// The row's group, or the group an insert would put it in (`None`:
    /// global, or unknown).
    pub group: Option<String>,
    /// Whether the user sees the row / the server would apply the mutation.
    pub allowed: bool,
    /// The rule that decided.
    pub rule: Rule,
    /// Why, in one sentence.
    pub reason: String,
    /// What the server answers a refused mutation (`results[].error`, or
    /// the 400's message).
    pub error: Option<String>,
    /// The field the refusal is about, if one.
    pub field: Option<String>,
    /// What else the model declares that bears on the case.
    pub notes: Vec<String>,
}

/// Why an explanation could not be given (the answer itself is never an error).
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// No model has this name.
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    /// Rows of a join model are named by their key fields, not an id.
    #[error("{0} is a join model without an id column: explain a mutation of it, with its key fields in the payload")]
    CompositeRow(String),
    /// The user's groups could not be resolved.
    #[error("could not resolve the user's groups")]
    Groups(#[source] AuthError),
    /// The database failed.
    #[error("database failure")]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for ExplainError {
    fn from(e: diesel::result::Error) -> Self {
        ExplainError::Storage(e.into())
    }
}

/// Whether `user_id` sees row `id` of `model`, and which rule decides.
/// The row is looked up as a mutation looks it up.
pub async fn explain_row(
    engine: &SyncEngine,
    user_id: &str,
    model: &str,
    id: &str,
) -> Result<Explanation, ExplainError> {
    let dyn_model = engine.registry.get(model).ok_or_else(|| ExplainError::UnknownModel(model.to_owned()))?;
    let spec = dyn_model.spec();
    if spec.kind == ModelKind::Composite {
        return Err(ExplainError::CompositeRow(spec.name.to_owned()));
    }
    let (user, groups) = user_groups(engine, user_id).await?;
    let mut conn = engine.pool.get().await.map_err(StorageError::from)?;
    let empty = JsonObject::new();
    begin_bounded(&mut conn).await?;
    let located = dyn_model.locate(&mut conn, id, &empty).await;
    AnsiTransactionManager::rollback_transaction(&mut *conn).await?;
    let mut e = Explanation::new(&user, groups, spec, id, None);
    e.notes = model_notes(spec);
    let not_visible = "Invalid mutation: record not found";
    match located {
        Err(MutationError::Unavailable(err)) => return Err(err.into()),
        Err(refused) => e.refuse(refused_rule(&refused), format!("{id:?} is not an id of {model}"), &refused),
        Ok(None) => {
            e.rule = Rule::Existence;
            e.reason = format!("no {model} row has id {id}");
            e.error = Some(not_visible.to_owned());
        }
        Ok(Some(row)) => match row.group {
            Err(refused) => {
                e.refuse(Rule::GroupKey, format!("the row has no group: its {} is empty", group_field(spec)), &refused)
            }
            Ok(group) => {
                e.group = group.clone();
                e.membership(&user, group.as_deref());
                if !e.allowed {
                    e.reason.push_str(": the row is not visible to them, and a mutation of it is refused");
                    e.error = Some(not_visible.to_owned());
                }
            }
        },
    }
    Ok(e)
}

/// What the server would answer `transaction` (one transaction of
/// `POST /sync/mutate`, in its wire format) from `user_id`, and which rule
/// decides: validated and applied by the server's own code in a
/// transaction that is rolled back.
pub async fn explain_mutation(
    engine: &SyncEngine,
    user_id: &str,
    transaction: Value,
) -> Result<Explanation, ExplainError> {
    let text = |key: &str| transaction.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (model_name, model_id) = (text("modelName"), text("modelId"));
    let (user, groups) = user_groups(engine, user_id).await?;
    let tx = match crate::request::mutate_body(Some(json!({ "batchId": "explain", "transactions": [transaction] }))) {
        Ok(mut request) => request.transactions.remove(0),
        Err(failure) => {
            let mut e = Explanation::bare(&user, groups, model_name, model_id, None);
            e.rule = Rule::RequestValidation;
            let issues: Vec<String> = failure.details.iter().map(|d| format!("{}: {}", d.field, d.message)).collect();
            e.reason = format!("the server answers 400 Validation failed ({})", issues.join("; "));
            e.error = failure.details.first().map(|d| d.message.clone());
            e.field = failure.details.first().map(|d| d.field.clone());
            return Ok(e);
        }
    };
    let action = ActionKind::from(tx.action);
    let mut conn = engine.pool.get().await.map_err(StorageError::from)?;
    if let Some((_, sync_id)) = log::find_committed(&mut conn, &tx.client_id, &[&tx.client_tx_id]).await?.first() {
        let mut e = Explanation::bare(&user, groups, model_name, model_id, Some(action));
        e.allowed = true;
        e.rule = Rule::Duplicate;
        e.reason = format!(
            "({}, {}) is already committed as sync id {sync_id}: the server answers success with that id and applies nothing",
            tx.client_id, tx.client_tx_id
        );
        return Ok(e);
    }
    let Some(dyn_model) = engine.registry.get(&tx.model_name) else {
        let mut e = Explanation::bare(&user, groups, model_name, model_id, Some(action));
        let refused = MutationError::UnknownModel(tx.model_name.clone());
        e.refuse(Rule::UnknownModel, format!("no model is named {:?}", tx.model_name), &refused);
        return Ok(e);
    };
    let spec = dyn_model.spec();
    begin_bounded(&mut conn).await?;
    let (located, result) = dry_run(engine, dyn_model.as_ref(), &mut conn, &tx, &user).await;
    AnsiTransactionManager::rollback_transaction(&mut *conn).await?;
    let mut e = Explanation::new(&user, groups, spec, &tx.model_id, Some(action));
    e.notes = model_notes(spec);
    let row_group = located.and_then(|row| row.group.ok());
    e.group = match (&result, action) {
        (Ok(applied), _) => applied.group_id.clone(),
        (Err(_), ActionKind::Insert) => insert_group(spec, &tx),
        (Err(_), _) => row_group.clone().flatten(),
    };
    match result {
        Ok(applied) => e.allowed_mutation(&user, spec, &tx, &applied),
        Err(MutationError::Unavailable(err)) => return Err(err.into()),
        Err(refused) => {
            let rule = refused_rule(&refused);
            let reason = match (&refused, &row_group) {
                (MutationError::RecordNotFound, None) => {
                    e.rule = Rule::Existence;
                    format!("no {} row has id {}", spec.name, tx.model_id)
                }
                (MutationError::RecordNotFound | MutationError::AccessDenied, _) => {
                    let group = e.group.clone().unwrap_or_default();
                    format!("{} does not hold group {group}", user.user_id())
                }
                _ => refusal_reason(spec, &refused, e.group.as_deref()),
            };
            let rule = if e.rule == Rule::Existence { Rule::Existence } else { rule };
            e.field = field_of(&refused, spec);
            e.refuse(rule, reason, &refused);
        }
    }
    Ok(e)
}

/// Opens the dry run's transaction, with the default statement and lock
/// timeouts of the mutation path, so a row held by a long transaction
/// makes the explanation fail instead of wait.
async fn begin_bounded(conn: &mut Conn) -> Result<(), ExplainError> {
    AnsiTransactionManager::begin_transaction(conn).await?;
    let defaults = GroupCommitConfig::default();
    let set = format!(
        "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
        defaults.statement_timeout.as_millis(),
        defaults.lock_timeout.as_millis()
    );
    conn.batch_execute(&set).await?;
    Ok(())
}

/// The located target (for non-inserts) and the outcome of applying `tx`.
async fn dry_run(
    engine: &SyncEngine,
    model: &dyn DynModel,
    conn: &mut Conn,
    tx: &TransactionInput,
    user: &AuthContext,
) -> (Option<Located>, Result<Applied, MutationError>) {
    let action = ActionKind::from(tx.action);
    let located = match action {
        ActionKind::Insert => None,
        // An id the model cannot parse: `apply` reports it.
        _ => model.locate(conn, &tx.model_id, &tx.payload).await.ok().flatten(),
    };
    let input = TxInput {
        action,
        model_id: &tx.model_id,
        payload: &tx.payload,
        user,
        system: false,
        hook_timeout: GroupCommitConfig::default().hook_timeout,
    };
    (located, model.apply(&engine.registry, conn, &input).await)
}

/// The user's context, as requests resolve it, and where each group comes from.
async fn user_groups(engine: &SyncEngine, user_id: &str) -> Result<(AuthContext, Vec<HeldGroup>), ExplainError> {
    let user = auth::context_for(engine.auth.as_ref(), &engine.pool, AuthUser::new(user_id))
        .await
        .map_err(ExplainError::Groups)?;
    let members = memberships::groups_of(&engine.pool, user_id).await?;
    let groups = user
        .groups
        .iter()
        .map(|g| {
            let source = if members.contains(g) {
                GroupSource::Membership
            } else if g == user_id {
                GroupSource::OwnId
            } else {
                GroupSource::App
            };
            HeldGroup { group: g.clone(), source }
        })
        .collect();
    Ok((user, groups))
}

/// The group an insert names in its payload (for the explanation only:
/// the server's own answer decides).
fn insert_group(spec: &ModelSpec, tx: &TransactionInput) -> Option<String> {
    match spec.group {
        GroupKey::Field(key) => match tx.payload.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        },
        GroupKey::OwnId => Some(tx.model_id.clone()),
        GroupKey::Global => None,
    }
}

fn group_field(spec: &ModelSpec) -> &'static str {
    match spec.group {
        GroupKey::Field(key) => key,
        GroupKey::OwnId => spec.id_field.unwrap_or("id"),
        GroupKey::Global => "group",
    }
}

fn letters(spec: &ModelSpec) -> String {
    let all = [ActionKind::Insert, ActionKind::Update, ActionKind::Delete, ActionKind::Archive, ActionKind::Unarchive];
    let allowed: Vec<String> =
        all.iter().filter(|a| spec.actions.contains(**a)).map(|a| a.letter().to_string()).collect();
    if allowed.is_empty() {
        "none".to_owned()
    } else {
        allowed.join(" ")
    }
}

fn names(fields: impl Iterator<Item = &'static str>) -> String {
    let list: Vec<&str> = fields.collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

/// What the model declares about writes.
fn model_notes(spec: &ModelSpec) -> Vec<String> {
    let group = match spec.group {
        GroupKey::Field(key) => format!("the row's group is its {key}"),
        GroupKey::OwnId => "the row's group is its own id".to_owned(),
        GroupKey::Global => "rows are global (no group)".to_owned(),
    };
    vec![
        format!("{}: {group}", spec.name),
        format!("{} allows the actions {}", spec.name, letters(spec)),
        format!("insert fields: {}", names(spec.fields.iter().filter(|f| f.insert).map(|f| f.wire))),
        format!("update fields: {}", names(spec.fields.iter().filter(|f| f.update).map(|f| f.wire))),
    ]
}

fn refused_rule(refused: &MutationError) -> Rule {
    match refused {
        MutationError::RecordNotFound | MutationError::AccessDenied => Rule::Membership,
        MutationError::MissingGroup | MutationError::GroupChange => Rule::GroupKey,
        MutationError::UnknownModel(_) => Rule::UnknownModel,
        MutationError::UnsupportedAction(_)
        | MutationError::UpdateNotConfigured
        | MutationError::ArchiveNotConfigured
        | MutationError::UnarchiveNotConfigured => Rule::ModelActions,
        MutationError::ArchivedAtRequired
        | MutationError::InvalidValue { .. }
        | MutationError::NonCanonicalModelId
        | MutationError::MissingField => Rule::Validation,
        MutationError::AlreadyExists => Rule::Existence,
        MutationError::ForeignKey => Rule::References,
        MutationError::Hook(_) | MutationError::HookPanicked | MutationError::HookTimedOut => Rule::Hook,
        MutationError::Database(_) | MutationError::Unavailable(_) => Rule::Database,
    }
}

fn refusal_reason(spec: &ModelSpec, refused: &MutationError, group: Option<&str>) -> String {
    let model = spec.name;
    match refused {
        MutationError::UnsupportedAction(a) => {
            format!("{model} allows the actions {}, not {}", letters(spec), a.letter())
        }
        MutationError::UpdateNotConfigured => format!("{model} has no update fields"),
        MutationError::ArchiveNotConfigured | MutationError::UnarchiveNotConfigured => {
            format!("{model} has no archive field")
        }
        MutationError::ArchivedAtRequired => "an archive needs archivedAt, an instant in epoch ms".to_owned(),
        MutationError::InvalidValue { kind, field } => {
            format!("field {field} must be a valid {} value", kind.word())
        }
        MutationError::NonCanonicalModelId => "modelId is not in canonical form".to_owned(),
        MutationError::MissingField => "a required column got no value".to_owned(),
        MutationError::AlreadyExists => format!("a {model} row with this id already exists"),
        MutationError::ForeignKey => format!(
            "a field declared `references` (or a foreign key) names a row that is not in group {}",
            group.unwrap_or("(none)")
        ),
        MutationError::MissingGroup => format!("{model} rows need a non-empty {}", group_field(spec)),
        MutationError::GroupChange => {
            format!("{} is the group key of {model}: an update cannot change it", group_field(spec))
        }
        MutationError::Hook(_) | MutationError::HookPanicked | MutationError::HookTimedOut => {
            "a before-hook of the model refused the mutation".to_owned()
        }
        other => format!("the database refused the mutation ({other})"),
    }
}

fn field_of(refused: &MutationError, spec: &ModelSpec) -> Option<String> {
    match refused {
        MutationError::InvalidValue { field, .. } => Some(field.clone()),
        MutationError::ArchivedAtRequired => Some(spec.archive_field.unwrap_or("archivedAt").to_owned()),
        MutationError::NonCanonicalModelId => Some("modelId".to_owned()),
        MutationError::MissingGroup | MutationError::GroupChange => Some(group_field(spec).to_owned()),
        _ => None,
    }
}

impl Explanation {
    fn bare(
        user: &AuthContext,
        groups: Vec<HeldGroup>,
        model: String,
        model_id: String,
        action: Option<ActionKind>,
    ) -> Self {
        Explanation {
            user: user.user_id().to_owned(),
            groups,
            model,
            model_id,
            action: action.map(ActionKind::letter),
            group: None,
            allowed: false,
            rule: Rule::Membership,
            reason: String::new(),
            error: None,
            field: None,
            notes: Vec::new(),
        }
    }

    fn new(user: &AuthContext, groups: Vec<HeldGroup>, spec: &ModelSpec, id: &str, action: Option<ActionKind>) -> Self {
        Explanation::bare(user, groups, spec.name.to_owned(), id.to_owned(), action)
    }

    fn source_of(&self, group: &str) -> Option<GroupSource> {
        self.groups.iter().find(|g| g.group == group).map(|g| g.source)
    }

    /// The membership verdict for a row in `group`, with the same check
    /// requests use ([`AuthContext::has_group`]).
    fn membership(&mut self, user: &AuthContext, group: Option<&str>) {
        self.rule = Rule::Membership;
        match group {
            None => {
                self.allowed = true;
                self.reason = format!("{} rows are global: every user sees them", self.model);
            }
            Some(g) if user.has_group(g) => {
                self.allowed = true;
                let source = self.source_of(g).map_or("", GroupSource::as_str);
                self.reason = format!("{} holds group {g} ({source})", self.user);
            }
            Some(g) => {
                self.allowed = false;
                self.reason = format!("{} does not hold group {g}", self.user);
            }
        }
    }

    fn refuse(&mut self, rule: Rule, reason: String, refused: &MutationError) {
        self.allowed = false;
        self.rule = rule;
        self.reason = reason;
        self.error = Some(refused.to_string());
    }

    fn allowed_mutation(&mut self, user: &AuthContext, spec: &ModelSpec, tx: &TransactionInput, applied: &Applied) {
        self.membership(user, applied.group_id.as_deref());
        let action = ActionKind::from(tx.action);
        let writable = |key: &str| {
            spec.field(key).is_some_and(|f| match action {
                ActionKind::Insert => f.insert || Some(key) == spec.id_field,
                ActionKind::Update => f.update,
                _ => true,
            })
        };
        if matches!(action, ActionKind::Insert | ActionKind::Update) {
            let ignored: Vec<&str> = tx.payload.keys().map(String::as_str).filter(|k| !writable(k)).collect();
            if !ignored.is_empty() {
                let kind = if action == ActionKind::Insert { "insert" } else { "update" };
                self.notes.push(format!(
                    "ignored payload keys (not {kind} fields of {}): {}",
                    spec.name,
                    ignored.join(", ")
                ));
            }
            if action == ActionKind::Update && applied.data.is_empty() {
                self.rule = Rule::UpdatableFields;
                self.reason = format!(
                    "no key of the payload is an update field of {} ({}): the update changes nothing, and is still logged",
                    spec.name,
                    names(spec.fields.iter().filter(|f| f.update).map(|f| f.wire))
                );
            }
        }
        let written: Vec<&str> = applied.data.keys().map(String::as_str).collect();
        self.notes.push(format!("the logged action's data: {}", names_owned(&written)));
        if !applied.cascaded.is_empty() {
            self.notes.push(format!("deletes {} dependent rows with it", applied.cascaded.len()));
        }
    }
}

fn names_owned(list: &[&str]) -> String {
    if list.is_empty() {
        "{}".to_owned()
    } else {
        list.join(", ")
    }
}

/// Aligned text, one `name  value` line per item.
impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self.groups.iter().map(|g| format!("{} ({})", g.group, g.source.as_str())).collect();
        writeln!(f, "{:<8} {}", "user", self.user)?;
        writeln!(f, "{:<8} {}", "groups", groups.join(", "))?;
        let target = match self.action {
            Some(letter) => format!("{letter} {} {}", self.model, self.model_id),
            None => format!("{} {}", self.model, self.model_id),
        };
        writeln!(f, "{:<8} {target}", "target")?;
        writeln!(f, "{:<8} {}", "group", self.group.as_deref().unwrap_or("-"))?;
        let verdict = if self.allowed { "allowed" } else { "refused" };
        writeln!(f, "{:<8} {verdict} by {}: {}", "verdict", self.rule.as_str(), self.reason)?;
        if let Some(error) = &self.error {
            writeln!(f, "{:<8} {error}", "answer")?;
        }
        if let Some(field) = &self.field {
            writeln!(f, "{:<8} {field}", "field")?;
        }
        for note in &self.notes {
            writeln!(f, "{:<8} {note}", "note")?;
        }
        Ok(())
    }
}
