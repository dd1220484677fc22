//! The validated model: what `check.rs` produces and `expand/` reads.
//!
//! Everything here has passed the checks; the code generator never needs
//! to report an error. Spans of the user's tokens are kept where generated
//! code should point at them.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Expr, Ident, Path, Type, Visibility};

/// A model that derives `SyncModel`.
pub struct Model {
    /// The struct.
    pub ident: Ident,
    /// The struct's visibility (also that of its `<Model>Changes`).
    pub vis: Visibility,
    /// The wire name (`__class`).
    pub name: String,
    /// The Diesel table module (`tasks`, `crate::schema::tasks`).
    pub table: Path,
    /// The synced fields, in struct (= wire) order.
    pub fields: Vec<Field>,
    /// Standard (id field) or composite (key fields).
    pub kind: Kind,
    /// Where a row's group comes from.
    pub group: Group,
    /// `scope = path`: a custom filter replacing the group filter.
    pub scope: Option<Path>,
    /// `hooks = Type`.
    pub hooks: Option<Path>,
    /// Accepted actions.
    pub actions: Actions,
    /// Fields allowed as `indexedKey` (indices into `fields`).
    pub batch_keys: Vec<usize>,
    /// `cascade(parent = P, field = f)`.
    pub cascades: Vec<Cascade>,
    /// The archive timestamp field.
    pub archive: Option<usize>,
}

impl Model {
    /// The fields of `<Model>Changes`, with their indices: every synced
    /// field but the id field of a standard model (the id is the hook
    /// context's `model_id`, never written by a hook).
    pub fn changes_fields(&self) -> impl Iterator<Item = (usize, &Field)> {
        let id = match &self.kind {
            Kind::Standard { id } => Some(id.index),
            Kind::Composite { .. } => None,
        };
        self.fields.iter().enumerate().filter(move |(i, _)| Some(*i) != id)
    }

    /// Whether the generated code sends values of field `index` to its
    /// column (writes it, or compares the column with a value: keys,
    /// cursor, group, cascade, archive), not only reads it.
    pub fn binds(&self, index: usize) -> bool {
        let field = &self.fields[index];
        field.insert
            || field.update
            || self.batch_keys.contains(&index)
            || self.kind.cursor().iter().any(|k| k.index == index)
            || matches!(self.group, Group::Field(g) if g == index)
            || self.cascades.iter().any(|c| c.field == index)
            || self.archive == Some(index)
    }

    /// Whether field `index` is compared with the caller's groups in one
    /// `IN` (`eq_any`) filter: the group field (or the id of a `group =
    /// own` model) of a model without a custom scope.
    pub fn in_group_filter(&self, index: usize) -> bool {
        match (&self.scope, &self.group, &self.kind) {
            (None, Group::Field(g), _) => *g == index,
            (None, Group::OwnId, Kind::Standard { id }) => id.index == index,
            _ => false,
        }
    }
}

/// A reference to a field from a model-level key, with the span of the
/// reference (for errors about that use of the field).
#[derive(Clone, Copy)]
pub struct FieldRef {
    pub index: usize,
    pub span: Span,
}

pub enum Kind {
    /// The id field, which is also the keyset cursor.
    Standard { id: FieldRef },
    /// The composite key, which is also the keyset cursor.
    Composite { keys: Vec<FieldRef> },
}

impl Kind {
    /// The cursor fields, in order.
    pub fn cursor(&self) -> &[FieldRef] {
        match self {
            Kind::Standard { id } => std::slice::from_ref(id),
            Kind::Composite { keys } => keys,
        }
    }
}

pub enum Group {
    Field(usize),
    OwnId,
    Global,
}

pub struct Cascade {
    pub parent: Path,
    pub field: usize,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Actions {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
    pub archive: bool,
    pub unarchive: bool,
}

impl Actions {
    /// The `ActionKind` variant names of the accepted actions.
    pub fn variants(&self) -> Vec<&'static str> {
        [
            (self.insert, "Insert"),
            (self.update, "Update"),
            (self.delete, "Delete"),
            (self.archive, "Archive"),
            (self.unarchive, "Unarchive"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// One synced field.
pub struct Field {
    pub ident: Ident,
    pub ty: Type,
    /// `T` of an `Option<T>` field, else `ty`.
    pub inner_ty: Type,
    /// The Diesel column, spanned at the field ident or `column_name` value.
    pub column: Ident,
    pub wire: String,
    pub codec: Codec,
    /// The Rust type is an `Option`.
    pub nullable: bool,
    pub insert: bool,
    pub update: bool,
    pub date_now: bool,
    pub default: Option<Expr>,
    /// `references = Model`: the referenced model's type (spanned where
    /// the user wrote it).
    pub references: Option<Path>,
}

/// A field codec (`CodecKind` at run time, a `kind::*` marker at compile
/// time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    String,
    Uuid,
    Number,
    Bool,
    Instant,
    DateOnly,
    Json,
}

impl Codec {
    /// The marker type in `stratasync_core::__private::kind`.
    pub fn marker(self) -> TokenStream {
        match self {
            Codec::String => quote!(Str),
            Codec::Uuid => quote!(Uuid),
            Codec::Number => quote!(Number),
            Codec::Bool => quote!(Bool),
            Codec::Instant => quote!(Instant),
            Codec::DateOnly => quote!(DateOnly),
            Codec::Json => quote!(Json),
        }
    }

    /// The `CodecKind` variant.
    pub fn variant(self) -> TokenStream {
        match self {
            Codec::String => quote!(String),
            Codec::Uuid => quote!(Uuid),
            Codec::Number => quote!(Number),
            Codec::Bool => quote!(Bool),
            Codec::Instant => quote!(Instant),
            Codec::DateOnly => quote!(DateOnly),
            Codec::Json => quote!(Json),
        }
    }
}
