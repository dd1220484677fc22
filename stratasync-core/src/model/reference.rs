//! Foreign references within a sync group (`#[sync(references = Model)]`).
//!
//! A field declared `references = Task` holds the id of a `Task` row. When
//! a mutation writes the field, the generated code checks, in the same
//! database transaction and before it writes, that the referenced row
//! exists **in the group of the row being written**, and locks it
//! `FOR KEY SHARE` (so it cannot be deleted or re-keyed before the commit).
//! A missing row and a row of another group fail alike, with
//! [`MutationError::ForeignKey`], so the check tells nobody whether an id
//! exists elsewhere.
//!
//! The traits here are implemented and used by `#[derive(SyncModel)]` only;
//! their `on_unimplemented` messages are the derive's compile errors for a
//! reference that cannot work.

use crate::error::MutationError;
use crate::model::SyncModel;
use crate::storage::Conn;
use diesel::QueryResult;
use futures_util::future::BoxFuture;

/// The "group" of a `global` model (rows visible to everyone) as a
/// [`Referenceable::Group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Global;

/// A model whose rows can be referenced: it has an id field and is grouped
/// by a field (`group = f`) or `group = global`. Implemented by the derive.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be referenced with `references = ...`",
    note = "a referenced model derives `SyncModel`, has an id field (not `cursor(...)`) and is grouped by \
            a field (`group = f`) or `group = global` (not `group = own`)"
)]
pub trait Referenceable: SyncModel {
    /// The id field's type (without `Option`).
    type Id;
    /// The group field's type (without `Option`), or [`Global`].
    type Group;

    /// Whether the row `id` exists in group `group`; locks it
    /// `FOR KEY SHARE` if so.
    fn lock_in_group<'a>(
        conn: &'a mut Conn,
        id: &'a Self::Id,
        group: &'a Self::Group,
    ) -> BoxFuture<'a, QueryResult<bool>>;
}

/// `Self` is the type `T` (the referencing field holds the referenced id).
#[diagnostic::on_unimplemented(
    message = "a field of type `{T}` cannot reference an id of type `{Self}`",
    note = "the referencing field's type (without `Option`) must be the referenced model's id type"
)]
pub trait ReferenceId<T> {
    /// `value` as the referenced id.
    fn cast(value: &T) -> &Self;
}

impl<T> ReferenceId<T> for T {
    fn cast(value: &T) -> &T {
        value
    }
}

/// `Self` is the group type `G` (both models are grouped the same way).
#[diagnostic::on_unimplemented(
    message = "the referenced model is grouped by `{Self}`, this model by `{G}`",
    note = "a reference stays within the row's sync group: both models need group fields (`group = f`) of the \
            same type, or are both `group = global`"
)]
pub trait ReferenceGroup<G> {
    /// `value` as the referenced model's group.
    fn cast(value: &G) -> &Self;
}

impl<G> ReferenceGroup<G> for G {
    fn cast(value: &G) -> &G {
        value
    }
}

/// Checks (and locks) that row `id` of `R` exists in `group`.
///
/// A plain function returning a boxed future (not an `async fn`), so that
/// rustc checks its bounds at the call only, once, where the derive puts
/// the user's `references = ...` span.
pub fn check_reference<'a, R, T, G>(
    conn: &'a mut Conn,
    id: &'a T,
    group: &'a G,
) -> BoxFuture<'a, Result<(), MutationError>>
where
    R: Referenceable,
    R::Id: ReferenceId<T>,
    R::Group: ReferenceGroup<G>,
{
    let (id, group) = (<R::Id as ReferenceId<T>>::cast(id), <R::Group as ReferenceGroup<G>>::cast(group));
    let found = R::lock_in_group(conn, id, group);
    Box::pin(async move {
        if found.await? {
            Ok(())
        } else {
            Err(MutationError::ForeignKey)
        }
    })
}
