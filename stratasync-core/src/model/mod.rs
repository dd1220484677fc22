//! The model contract: what `#[derive(SyncModel)]` generates for each model,
//! and the registry that holds an application's models.

pub mod client_schema;
mod hooks;
pub(crate) mod reference;
mod registry;
mod spec;

pub use hooks::{HookContext, HookError, ModelHooks, MutationEvent, NoHooks};
pub use registry::{DynModel, Registry, RegistryBuilder};
pub use spec::{ActionSet, CodecKind, FieldSpec, GroupKey, ModelKind, ModelSpec};

use crate::error::MutationError;
use crate::scope::ScopeFilter;
use crate::storage::Conn;
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

/// A JSON object (payloads, mutation data).
pub type JsonObject = Map<String, Value>;

/// A Diesel model that takes part in sync.
///
/// Implemented by `#[derive(SyncModel)]`; the generated code names the
/// Diesel `table!` columns, so the schema is checked by the compiler. The
/// storage methods are the storage seam for PostgreSQL: the engine never
/// builds SQL for application tables itself.
pub trait SyncModel: Sized + Send + Sync + 'static {
    /// Static description of the model.
    const SPEC: &'static ModelSpec;

    /// The hooks run around this model's mutations ([`NoHooks`] by default).
    type Hooks: ModelHooks + Default;

    /// Appends the row's NDJSON line (without the trailing newline):
    /// `{"__class":…,<fields in wire order>,"id":…}`.
    fn write_row(&self, out: &mut Vec<u8>);

    /// The row's wire id: its id field, or its composite id.
    fn sync_id(&self) -> String;

    /// The row's sync group (`None` for global models or a NULL group).
    fn group_id(&self) -> Option<String>;

    /// The row as a wire-form JSON object (fields in wire order, then `id`),
    /// used as the `data` of cascaded deletes.
    fn to_data(&self) -> JsonObject;

    /// Counts the rows visible in `scope`.
    fn count<'a>(conn: &'a mut Conn, scope: &'a ScopeFilter) -> BoxFuture<'a, QueryResult<i64>>;

    /// One keyset page: the rows visible in `scope` after `after` (the last
    /// row of the previous page), at most `limit`, fewer only at the end.
    /// Rows come in cursor order; a model grouped by a field goes group by
    /// group (in the order of `scope`'s groups), in cursor order within
    /// each. Every page is an index range (see the derive's "Paging and
    /// indexes").
    fn page<'a>(
        conn: &'a mut Conn,
        scope: &'a ScopeFilter,
        after: Option<&'a Self>,
        limit: i64,
    ) -> BoxFuture<'a, QueryResult<Vec<Self>>>;

    /// Rows visible in `scope` whose indexed key `key` (wire name) equals
    /// `value`, in cursor order, at most `limit`. `Ok(None)` if `key` is not
    /// an allowed indexed key. A value the column cannot hold matches no row.
    fn by_key<'a>(
        conn: &'a mut Conn,
        scope: &'a ScopeFilter,
        key: &'a str,
        value: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, QueryResult<Option<Vec<Self>>>>;

    /// The mutation target, locked `FOR UPDATE`: by `model_id` for standard
    /// models, by the key fields of `payload` for composite ones. An id the
    /// column cannot hold is `Ok(None)`; another spelling of a valid id
    /// (a UUID in upper case, say) is an error, and so is a composite key
    /// value that does not fit its field.
    fn find<'a>(
        conn: &'a mut Conn,
        model_id: &'a str,
        payload: &'a JsonObject,
    ) -> BoxFuture<'a, Result<Option<Self>, MutationError>>;

    /// The canonical model id of an insert: `model_id` for standard models,
    /// the composite id of the key fields in `data` for composite ones.
    fn canonical_id(model_id: &str, data: &JsonObject) -> Result<String, MutationError>;

    /// Inserts a row from normalized wire data (`id` is `model_id` for
    /// standard models). Absent keys are left to the column default. The
    /// fields declared `references = Model` are checked (and their rows
    /// locked) first, in the row's group.
    fn insert<'a>(
        conn: &'a mut Conn,
        model_id: &'a str,
        data: &'a JsonObject,
    ) -> BoxFuture<'a, Result<(), MutationError>>;

    /// Applies the (non-empty) update `data` to `target`; returns the number
    /// of rows changed. Referencing fields in `data` are checked first, in
    /// `target`'s group.
    fn update<'a>(
        conn: &'a mut Conn,
        target: &'a Self,
        data: &'a JsonObject,
    ) -> BoxFuture<'a, Result<usize, MutationError>>;

    /// Deletes `target`; returns the number of rows deleted.
    fn delete<'a>(conn: &'a mut Conn, target: &'a Self) -> BoxFuture<'a, Result<usize, MutationError>>;

    /// Sets (or clears, with `None`) the archive timestamp of `target`.
    fn set_archived<'a>(
        conn: &'a mut Conn,
        target: &'a Self,
        at: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, Result<usize, MutationError>>;

    /// Rows that the database deletes by `ON DELETE CASCADE` when the row
    /// `parent_id` of model `parent` is deleted, locked `FOR UPDATE`.
    /// Empty unless the model declares `cascade(...)` for `parent`.
    fn cascade_from<'a>(
        conn: &'a mut Conn,
        parent: &'a str,
        parent_id: &'a str,
    ) -> BoxFuture<'a, QueryResult<Vec<Self>>>;
}
