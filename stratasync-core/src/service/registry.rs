//! The registry: an application's models, type-erased for the services.

use super::mutate::{self, Applied, TxInput};
use crate::error::{HookError, MutationError};
use crate::model::client_schema::ClientSchema;
use crate::model::{JsonObject, Located, ModelHooks, ModelSpec, MutationEvent, SyncModel};
use crate::scope::ScopeFilter;
use crate::storage::Conn;
use diesel::QueryResult;
use futures_util::future::BoxFuture;
use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// The last row of a keyset page, kept to ask for the next one.
pub(crate) type Cursor = Option<Box<dyn Any + Send + Sync>>;

/// A model as the services see it: its spec and its storage operations,
/// with rows already serialized.
pub(crate) trait DynModel: Send + Sync {
    /// The model's static description.
    fn spec(&self) -> &'static ModelSpec;

    /// Counts the rows in `scope`.
    fn count<'a>(&'a self, conn: &'a mut Conn, scope: &'a ScopeFilter) -> BoxFuture<'a, QueryResult<i64>>;

    /// Appends the next keyset page as NDJSON lines; returns the row count
    /// and moves `cursor` to the page's last row.
    fn write_page<'a>(
        &'a self,
        conn: &'a mut Conn,
        scope: &'a ScopeFilter,
        cursor: &'a mut Cursor,
        limit: i64,
        out: &'a mut Vec<u8>,
    ) -> BoxFuture<'a, QueryResult<usize>>;

    /// Appends the rows whose indexed key matches as NDJSON lines; `None`
    /// if the key is not allowed.
    fn write_by_key<'a>(
        &'a self,
        conn: &'a mut Conn,
        scope: &'a ScopeFilter,
        key: &'a str,
        value: &'a str,
        limit: i64,
        out: &'a mut Vec<u8>,
    ) -> BoxFuture<'a, QueryResult<Option<usize>>>;

    /// Applies one mutation inside the current transaction (§5.2 steps 3–7).
    fn apply<'a>(
        &'a self,
        registry: &'a Registry,
        conn: &'a mut Conn,
        tx: &'a TxInput<'a>,
    ) -> BoxFuture<'a, Result<Applied, MutationError>>;

    /// The stored row a mutation of `model_id` would target (by the key
    /// fields of `payload` for a composite model), locked as the mutation
    /// locks it, with its group: what [`crate::ops::explain`] reports.
    fn locate<'a>(
        &'a self,
        conn: &'a mut Conn,
        model_id: &'a str,
        payload: &'a JsonObject,
    ) -> BoxFuture<'a, Result<Option<Located>, MutationError>>;

    /// Deletes logged for rows of this model that the database removes when
    /// `parent_id` of `parent` is deleted.
    fn cascade<'a>(
        &'a self,
        conn: &'a mut Conn,
        parent: &'a str,
        parent_id: &'a str,
    ) -> BoxFuture<'a, QueryResult<Vec<mutate::Cascaded>>>;

    /// Runs the model's [`ModelHooks::after_mutation`] hook for `event`.
    fn after_mutation<'a>(&'a self, event: &'a MutationEvent<'a>) -> BoxFuture<'a, Result<(), HookError>>;
}

struct Entry<M: SyncModel> {
    hooks: M::Hooks,
    _model: PhantomData<fn() -> M>,
}

impl<M: SyncModel> DynModel for Entry<M> {
    fn spec(&self) -> &'static ModelSpec {
        M::SPEC
    }

    fn count<'a>(&'a self, conn: &'a mut Conn, scope: &'a ScopeFilter) -> BoxFuture<'a, QueryResult<i64>> {
        M::count(conn, scope)
    }

    fn write_page<'a>(
        &'a self,
        conn: &'a mut Conn,
        scope: &'a ScopeFilter,
        cursor: &'a mut Cursor,
        limit: i64,
        out: &'a mut Vec<u8>,
    ) -> BoxFuture<'a, QueryResult<usize>> {
        Box::pin(async move {
            let after = cursor.as_ref().and_then(|c| c.downcast_ref::<M>());
            let rows = M::page(conn, scope, after, limit).await?;
            write_rows(&rows, out);
            let n = rows.len();
            if let Some(last) = rows.into_iter().last() {
                *cursor = Some(Box::new(last));
            }
            Ok(n)
        })
    }

    fn write_by_key<'a>(
        &'a self,
        conn: &'a mut Conn,
        scope: &'a ScopeFilter,
        key: &'a str,
        value: &'a str,
        limit: i64,
        out: &'a mut Vec<u8>,
    ) -> BoxFuture<'a, QueryResult<Option<usize>>> {
        Box::pin(async move {
            let Some(rows) = M::by_key(conn, scope, key, value, limit).await? else {
                return Ok(None);
            };
            write_rows(&rows, out);
            Ok(Some(rows.len()))
        })
    }

    fn apply<'a>(
        &'a self,
        registry: &'a Registry,
        conn: &'a mut Conn,
        tx: &'a TxInput<'a>,
    ) -> BoxFuture<'a, Result<Applied, MutationError>> {
        Box::pin(mutate::apply::<M>(&self.hooks, registry, conn, tx))
    }

    fn locate<'a>(
        &'a self,
        conn: &'a mut Conn,
        model_id: &'a str,
        payload: &'a JsonObject,
    ) -> BoxFuture<'a, Result<Option<Located>, MutationError>> {
        Box::pin(async move {
            let row = M::find(conn, model_id, payload).await?;
            Ok(row.map(|row| Located { id: row.sync_id(), group: mutate::group_of(&row), data: row.to_data() }))
        })
    }

    fn cascade<'a>(
        &'a self,
        conn: &'a mut Conn,
        parent: &'a str,
        parent_id: &'a str,
    ) -> BoxFuture<'a, QueryResult<Vec<mutate::Cascaded>>> {
        Box::pin(async move {
            let rows = M::cascade_from(conn, parent, parent_id).await?;
            Ok(rows.iter().map(mutate::Cascaded::of::<M>).collect())
        })
    }

    fn after_mutation<'a>(&'a self, event: &'a MutationEvent<'a>) -> BoxFuture<'a, Result<(), HookError>> {
        ModelHooks::<M>::after_mutation(&self.hooks, event)
    }
}

fn write_rows<M: SyncModel>(rows: &[M], out: &mut Vec<u8>) {
    for row in rows {
        row.write_row(out);
        out.push(b'\n');
    }
}

/// The models of an application, in registration order (the bootstrap
/// order when a client does not name models).
#[derive(Clone)]
pub struct Registry {
    models: Arc<Vec<Arc<dyn DynModel>>>,
    by_name: Arc<HashMap<&'static str, usize>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.models.iter().map(|m| m.spec().name)).finish()
    }
}

impl Registry {
    /// Starts a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder { models: Vec::new() }
    }

    /// All models in registration order.
    pub(crate) fn models(&self) -> impl Iterator<Item = &Arc<dyn DynModel>> {
        self.models.iter()
    }

    /// The model with this wire name.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn DynModel>> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }
}

/// Builds a [`Registry`].
pub struct RegistryBuilder {
    models: Vec<Arc<dyn DynModel>>,
}

impl std::fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.models.iter().map(|m| m.spec().name)).finish()
    }
}

impl RegistryBuilder {
    /// Registers `M` with its default hooks.
    pub fn model<M: SyncModel>(self) -> Self {
        self.model_with_hooks::<M>(M::Hooks::default())
    }

    /// Registers `M` with these hooks (for hooks that hold state).
    pub fn model_with_hooks<M: SyncModel>(mut self, hooks: M::Hooks) -> Self {
        self.models.push(Arc::new(Entry::<M> { hooks, _model: PhantomData }));
        self
    }

    /// Finishes the registry.
    ///
    /// # Panics
    /// If two models share a wire name (a programming error).
    pub fn build(self) -> Registry {
        let mut by_name = HashMap::new();
        for (i, m) in self.models.iter().enumerate() {
            let previous = by_name.insert(m.spec().name, i);
            assert!(previous.is_none(), "two sync models are named {:?}", m.spec().name);
        }
        Registry { models: Arc::new(self.models), by_name: Arc::new(by_name) }
    }
}

impl ClientSchema {
    /// The schema of the registry's models, in registration order.
    pub fn from_registry(registry: &Registry) -> Self {
        Self::from_specs(registry.models().map(|model| model.spec()))
    }
}
