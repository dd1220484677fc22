//! The model contract: what `#[derive(SyncModel)]` generates for each model
//! (the registry that holds an application's models is
//! [`Registry`](crate::Registry), in the service layer that runs them).

pub mod client_schema;
mod hooks;
pub(crate) mod reference;
mod spec;
mod storage;

pub use crate::codec::CodecKind;
pub use crate::error::HookError;
pub use hooks::{HookContext, ModelHooks, MutationEvent, NoHooks, SyncChanges};
pub use spec::{ActionSet, FieldSpec, GroupKey, ModelKind, ModelSpec};
#[doc(hidden)]
pub use storage::SyncStorage;

/// A JSON object (payloads, mutation data): a [`crate::protocol`] type.
pub use crate::protocol::JsonObject;

/// A Diesel model that takes part in sync.
///
/// Implemented by `#[derive(SyncModel)]`, together with the hidden
/// `SyncStorage` (the rows' wire form and their Diesel queries, which the
/// engine calls and applications do not): the generated code names the
/// Diesel `table!` columns, so the schema is checked by the compiler, and the
/// engine never builds SQL for application tables itself.
pub trait SyncModel: SyncStorage {
    /// Static description of the model.
    const SPEC: &'static ModelSpec;

    /// The typed changes of an insert or an update, as the model's hooks
    /// see them: the `<Model>Changes` struct the derive generates.
    type Changes: SyncChanges;

    /// The hooks run around this model's mutations ([`NoHooks`] by default;
    /// `#[sync(hooks = Type)]`).
    type Hooks: ModelHooks<Self> + Default;
}

/// A stored row as a mutation finds it (by the registry; what
/// [`crate::ops::explain`] reports).
#[derive(Debug)]
pub struct Located {
    /// The row's sync id.
    pub id: String,
    /// Its group, as a mutation sees it (`Err` when its group column is empty).
    pub group: Result<Option<String>, crate::error::MutationError>,
    /// The row in wire form.
    pub data: JsonObject,
}
