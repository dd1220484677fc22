//! Validation: from the parsed attributes (`attr.rs`) to a [`Model`].
//!
//! Each rule is a small function that says why it exists. Rules never stop
//! at the first mistake: every error goes to one `darling` accumulator
//! (which panics if dropped unchecked), spanned at the offending token, and
//! the user sees them all in one compile.

use crate::attr::{self, kw, ActionList, CodecFlag, FieldAttrs, GroupValue, ModelAttrs};
use crate::case;
use crate::errors::Errors;
use crate::model::{Actions, Cascade, Codec, Field, FieldRef, Group, Kind, Model};
use crate::suggest;
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, LitStr, Path, Type};

/// Diesel's tuple impls stop at 32 elements (`32-column-tables`).
const MAX_WRITE_COLUMNS: usize = 32;

/// A spanned error.
fn error(span: Span, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span, message)
}

/// Parses and validates the derive input.
pub fn model(input: &DeriveInput) -> syn::Result<Model> {
    check_shape(input)?;
    let mut accumulator = Errors::default();
    let errors = &mut accumulator;
    let attrs = attr::model_attrs(input, errors);

    check_not_generic(&attrs, errors);
    let table = table_name(&attrs, errors);
    let fields: Vec<Draft<'_>> = attrs.fields.iter().map(|f| draft(f, errors)).collect();
    check_unique_wire_names(&fields, errors);

    let name = model_name(&attrs, errors);
    let actions = actions(&attrs);
    let group = group(&attrs, &fields, errors);
    let kind = kind(&attrs, &fields, errors);
    let batch_keys = field_list(attrs.batch_keys.as_ref(), kw::BATCH_KEYS, &fields, errors);
    let cascades: Vec<(Path, Option<FieldRef>)> =
        attrs.cascade.iter().map(|c| (c.parent.0.clone(), resolve(&fields, &c.field, kw::CASCADE, errors))).collect();
    let archive = archive_field(&attrs, &fields, errors);

    // Combinations of keys are only judged once every key could be read: a
    // key left out for its own error would make them report nonsense.
    let complete = attrs.complete();
    let (kind, actions, group) = if complete { (kind, actions, group) } else { (None, None, None) };
    if let (Some(kind), Some(actions)) = (&kind, &actions) {
        check_composite_actions(kind, actions, errors);
        check_update_fields(kind, actions, &fields, errors);
        check_archive_actions(&attrs, actions, archive, &fields, errors);
        check_key_fields_inserted(kind, actions, &fields, errors);
        if let Some(group) = &group {
            check_group_inserted(kind, actions, group, &fields, errors);
        }
    }
    if let (Some(kind), Some(group)) = (&kind, &group) {
        check_composite_own_group_scoped(&attrs, kind, group, errors);
        check_references(kind, group, &fields, errors);
        check_group_not_updated(kind, group, &fields, errors);
    }
    if let Some(kind) = &kind {
        check_composite_not_updated(kind, &fields, errors);
        check_id_not_updated(kind, &fields, errors);
        check_write_column_count(&attrs.ident, kind, &fields, errors);
    }

    // Every `None` below has been reported (an incomplete model has errors).
    accumulator.finish()?;
    let synced: Vec<Option<usize>> = fields
        .iter()
        .scan(0, |next, f| {
            Some((!f.skip).then(|| {
                *next += 1;
                *next - 1
            }))
        })
        .collect();
    let map = |r: FieldRef| FieldRef { index: synced[r.index].expect("references to skipped fields are errors"), ..r };
    let index = |r: Option<FieldRef>| map(r.expect("unresolved references are errors")).index;
    let group = match group.expect("reported") {
        DraftGroup::Field(r) => Group::Field(map(r).index),
        DraftGroup::OwnId => Group::OwnId,
        DraftGroup::Global => Group::Global,
    };
    let kind = match kind.expect("reported") {
        Kind::Standard { id } => Kind::Standard { id: map(id) },
        Kind::Composite { keys } => Kind::Composite { keys: keys.into_iter().map(map).collect() },
    };
    Ok(Model {
        ident: attrs.ident.clone(),
        vis: input.vis.clone(),
        name,
        table: table.expect("reported"),
        kind,
        group,
        scope: attrs.scope.as_ref().map(|p| p.0.clone()),
        hooks: attrs.hooks.as_ref().map(|p| p.0.clone()),
        actions: actions.expect("reported").actions,
        batch_keys: batch_keys.into_iter().map(|r| index(Some(r))).collect(),
        cascades: cascades.into_iter().map(|(parent, r)| Cascade { parent, field: index(r) }).collect(),
        archive: archive.map(|r| map(r).index),
        fields: fields.into_iter().filter(|f| !f.skip).map(Draft::into_field).collect(),
    })
}

/// A field after its own checks, before the model-level ones.
struct Draft<'a> {
    attrs: &'a FieldAttrs,
    ident: Ident,
    column: Ident,
    wire: String,
    /// Where the wire name comes from (`rename` value or field ident).
    wire_span: Span,
    /// `None` for skipped fields and fields whose codec is an error.
    codec: Option<Codec>,
    nullable: bool,
    skip: bool,
}

impl Draft<'_> {
    fn insert(&self) -> bool {
        self.attrs.insert.is_present()
    }

    fn into_field(self) -> Field {
        Field {
            ident: self.ident,
            ty: self.attrs.ty.clone(),
            inner_ty: option_inner(&self.attrs.ty).0.clone(),
            column: self.column,
            wire: self.wire,
            codec: self.codec.expect("synced fields have a codec once checks pass"),
            nullable: self.nullable,
            insert: self.attrs.insert.is_present(),
            update: self.attrs.update.is_present(),
            date_now: self.attrs.date_now.is_present(),
            default: self.attrs.default_value.as_ref().map(|d| d.0.clone()),
            references: self.attrs.references.as_ref().map(|r| r.0.clone()),
        }
    }
}

/// A Diesel model is a struct with named fields (one per column). Checked
/// before darling's own shape check to point at the offending token.
fn check_shape(input: &DeriveInput) -> syn::Result<()> {
    let message = "`SyncModel` can only be derived for a struct with named fields (a Diesel model)";
    match &input.data {
        syn::Data::Struct(data) if matches!(data.fields, syn::Fields::Named(_)) => Ok(()),
        syn::Data::Struct(data) => match &data.fields {
            syn::Fields::Unnamed(fields) => Err(error(fields.paren_token.span.join(), message)),
            _ => Err(error(input.ident.span(), message)),
        },
        syn::Data::Enum(data) => Err(error(data.enum_token.span, message)),
        syn::Data::Union(data) => Err(error(data.union_token.span, message)),
    }
}

/// The generated code names the struct in free functions and in a `const`
/// spec; Diesel models are concrete types.
fn check_not_generic(attrs: &ModelAttrs, errors: &mut Errors) {
    if let Some(param) = attrs.generics.params.first() {
        errors.push(error(param.span(), "`SyncModel` cannot be derived for a generic struct"));
    }
}

/// Every query names the Diesel table; the derive reads it from the same
/// attribute as Diesel's own derives so it is written once.
fn table_name(attrs: &ModelAttrs, errors: &mut Errors) -> Option<Path> {
    match errors.handle(attr::diesel_table_name(&attrs.attrs)) {
        Some(Some(table)) => Some(table),
        Some(None) => {
            errors.push(error(
                attrs.ident.span(),
                format!(
                    "missing the Diesel table of `{}`: add `{}` (read by `SyncModel` as well as Diesel's derives)",
                    attrs.ident,
                    kw::sample(kw::TABLE_NAME)
                ),
            ));
            None
        }
        None => None,
    }
}

/// The wire name defaults to the struct name; an empty one could not be
/// told apart on the wire.
fn model_name(attrs: &ModelAttrs, errors: &mut Errors) -> String {
    match &attrs.name {
        Some(lit) if lit.value().is_empty() => {
            errors.push(error(lit.span(), "the model name cannot be empty"));
            String::new()
        }
        Some(lit) => lit.value(),
        None => attrs.ident.to_string(),
    }
}

/// A field's own checks: column, wire name, codec, insert defaults.
fn draft<'a>(attrs: &'a FieldAttrs, errors: &mut Errors) -> Draft<'a> {
    let ident = attrs.ident.clone();
    let column = errors.handle(attr::diesel_column_name(&attrs.attrs)).flatten().unwrap_or_else(|| ident.clone());
    let (wire, wire_span) = match &attrs.rename {
        Some(lit) => {
            check_rename_not_empty(lit, errors);
            (lit.value(), lit.span())
        }
        None => (case::wire_name(&column.to_string()), ident.span()),
    };
    let (_, nullable) = option_inner(&attrs.ty);
    let skip = attrs.skip.is_present();
    let codec = if skip {
        check_skip_alone(attrs, errors);
        None
    } else {
        let codec = field_codec(attrs, errors);
        if let Some(codec) = codec {
            check_insert_defaults(attrs, codec, errors);
        }
        codec
    };
    Draft { attrs, ident, column, wire, wire_span, codec, nullable, skip }
}

/// An empty wire name cannot be a JSON key the client looks up.
fn check_rename_not_empty(lit: &LitStr, errors: &mut Errors) {
    if lit.value().is_empty() {
        errors.push(error(lit.span(), "the wire name cannot be empty"));
    }
}

/// A skipped field is not synced at all, so any other sync key on it would
/// be silently ignored: say so instead.
fn check_skip_alone(attrs: &FieldAttrs, errors: &mut Errors) {
    for (key, span) in attrs.keys_besides_skip() {
        errors.push(error(span, format!("`{key}` cannot be combined with `skip`: a skipped field is not synced")));
    }
}

/// The codec of a field: the override if there is one, else inferred from
/// the Rust type. Two overrides would be ambiguous; `string_null` promises
/// a nullable column, which only an `Option` field can read.
fn field_codec(attrs: &FieldAttrs, errors: &mut Errors) -> Option<Codec> {
    let flags = attrs.codec_flags();
    let (inner, nullable) = option_inner(&attrs.ty);
    if let Some(((first, _), rest)) = flags.split_first() {
        for (other, span) in rest {
            errors.push(error(
                *span,
                format!(
                    "conflicting codecs `{}` and `{}`: a field takes at most one codec attribute",
                    first.keyword(),
                    other.keyword()
                ),
            ));
        }
        let (flag, span) = flags[0];
        if flag == CodecFlag::StringNull && !nullable {
            errors.push(error(
                span,
                format!("`{}` needs an `Option<...>` field: the value can be null", kw::STRING_NULL),
            ));
        }
        return Some(match flag {
            CodecFlag::String | CodecFlag::StringNull => Codec::String,
            CodecFlag::Uuid => Codec::Uuid,
            CodecFlag::Number => Codec::Number,
            CodecFlag::Boolean => Codec::Bool,
            CodecFlag::Instant => Codec::Instant,
            CodecFlag::DateOnly => Codec::DateOnly,
            CodecFlag::Json => Codec::Json,
        });
    }
    let codec = infer_codec(inner);
    if codec.is_none() {
        errors.push(error(
            attrs.ty.span(),
            format!(
                "cannot infer the sync codec of this type: add one of {} to the field's `#[sync(...)]`, or `skip`",
                CodecFlag::list()
            ),
        ));
    }
    codec
}

/// `Option<T>` → (`T`, true); anything else → (itself, false).
fn option_inner(ty: &Type) -> (&Type, bool) {
    let ty = ungroup(ty);
    if let Type::Path(path) = ty {
        if let (None, Some(last)) = (&path.qself, path.path.segments.last()) {
            if last.ident == "Option" {
                if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                    if let [syn::GenericArgument::Type(inner)] = args.args.iter().collect::<Vec<_>>()[..] {
                        return (ungroup(inner), true);
                    }
                }
            }
        }
    }
    (ty, false)
}

fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => ungroup(&g.elem),
        Type::Paren(p) => ungroup(&p.elem),
        ty => ty,
    }
}

/// The codec of a (non-`Option`) field type, from the last path segment.
fn infer_codec(ty: &Type) -> Option<Codec> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    Some(match last.ident.to_string().as_str() {
        "String" => Codec::String,
        "Uuid" => Codec::Uuid,
        "i16" | "i32" | "i64" | "u16" | "u32" | "f32" | "f64" => Codec::Number,
        "DateTime" => Codec::Instant,
        "NaiveDate" => Codec::DateOnly,
        "bool" => Codec::Bool,
        "Value" => Codec::Json,
        _ => return None,
    })
}

/// Insert defaults only apply to insert fields, one default at a time, and
/// "now" only means something for a timestamp or a date.
fn check_insert_defaults(attrs: &FieldAttrs, codec: Codec, errors: &mut Errors) {
    let date_now = attrs.date_now.is_present().then(|| attrs.date_now.span());
    let default = attrs.default_value.as_ref().map(|d| d.span());
    if let (Some(_), Some(span)) = (date_now, default) {
        errors.push(error(
            span,
            format!("`{}` conflicts with `{}`: a field has one insert default", kw::DEFAULT, kw::DATE_NOW),
        ));
    }
    for (key, span) in [(kw::DATE_NOW, date_now), (kw::DEFAULT, default)] {
        if let (Some(span), false) = (span, attrs.insert.is_present()) {
            errors.push(error(
                span,
                format!("`{key}` only applies to insert fields: add `{}` to this field", kw::INSERT),
            ));
        }
    }
    if let (Some(span), false) = (date_now, matches!(codec, Codec::Instant | Codec::DateOnly)) {
        errors.push(error(
            span,
            format!(
                "`{}` needs the `{}` or `{}` codec: \"now\" is a point in time or a day",
                kw::DATE_NOW,
                kw::INSTANT,
                kw::DATE_ONLY
            ),
        ));
    }
}

/// Two fields with one wire name would overwrite each other on the wire.
fn check_unique_wire_names(fields: &[Draft<'_>], errors: &mut Errors) {
    let synced: Vec<&Draft<'_>> = fields.iter().filter(|f| !f.skip).collect();
    for (i, field) in synced.iter().enumerate() {
        if let Some(first) = synced[..i].iter().find(|f| f.wire == field.wire) {
            errors.push(error(
                field.wire_span,
                format!("wire name `{}` is already used by field `{}`", field.wire, first.ident),
            ));
        }
    }
}

/// Looks up a field named by a model-level key. It must exist, and it must
/// be synced: the key's meaning (a group, a cursor, ...) lives on the wire.
fn resolve(fields: &[Draft<'_>], ident: &Ident, key: &str, errors: &mut Errors) -> Option<FieldRef> {
    match fields.iter().position(|f| f.ident == *ident) {
        None => {
            let names: Vec<String> = fields.iter().map(|f| f.ident.to_string()).collect();
            let hint = match suggest::closest(&ident.to_string(), &names) {
                Some(name) => format!("did you mean `{name}`?"),
                None => format!("its fields are `{}`", names.join("`, `")),
            };
            errors.push(error(
                ident.span(),
                format!("`{key}` names `{ident}`, which is not a field of this struct; {hint}"),
            ));
            None
        }
        Some(index) if fields[index].skip => {
            errors.push(error(
                ident.span(),
                format!(
                    "`{key}` names `{ident}`, which is `#[sync({})]`: it must be a synced field; remove `{}` from \
                     `{ident}`, or name another field",
                    kw::SKIP,
                    kw::SKIP
                ),
            ));
            None
        }
        Some(index) => Some(FieldRef { index, span: ident.span() }),
    }
}

/// A list of field references: each must resolve, and naming one twice is
/// a mistake (a cursor column twice would break keyset paging).
fn field_list(list: Option<&attr::IdentList>, key: &str, fields: &[Draft<'_>], errors: &mut Errors) -> Vec<FieldRef> {
    let Some(list) = list else { return Vec::new() };
    let mut refs = Vec::new();
    for (i, ident) in list.idents.iter().enumerate() {
        if list.idents[..i].contains(ident) {
            errors.push(error(ident.span(), format!("`{ident}` is listed twice in `{key}(...)`")));
            continue;
        }
        refs.extend(resolve(fields, ident, key, errors));
    }
    refs
}

/// The group before its field reference is mapped to synced indices.
enum DraftGroup {
    Field(FieldRef),
    OwnId,
    Global,
}

/// Every row must belong to exactly one group (or to everyone): the group
/// decides who receives it.
fn group(attrs: &ModelAttrs, fields: &[Draft<'_>], errors: &mut Errors) -> Option<DraftGroup> {
    match &attrs.group {
        _ if attrs.broken.contains(kw::GROUP) => None,
        None => {
            errors.push(error(
                attrs.ident.span(),
                format!(
                    "missing the sync group of `{}`: add `{}` (rows grouped by a field), `{} = {}` (each row is its \
                     own group) or `{} = {}` (every row is visible to everyone) to `#[sync(...)]`",
                    attrs.ident,
                    kw::sample(kw::GROUP),
                    kw::GROUP,
                    kw::OWN,
                    kw::GROUP,
                    kw::GLOBAL
                ),
            ));
            None
        }
        Some(GroupValue::Field(ident)) => resolve(fields, ident, kw::GROUP, errors).map(DraftGroup::Field),
        Some(GroupValue::Own(_)) => Some(DraftGroup::OwnId),
        Some(GroupValue::Global(_)) => Some(DraftGroup::Global),
    }
}

/// The accepted actions, with the span of `actions(...)` (of the struct
/// name if there is none) for later rules.
struct ParsedActions {
    actions: Actions,
    span: Span,
}

/// The accepted actions (none without `actions(...)`); `None` if the key
/// was written but could not be read (reported already).
fn actions(attrs: &ModelAttrs) -> Option<ParsedActions> {
    if attrs.broken.contains(kw::ACTIONS) {
        return None;
    }
    Some(match &attrs.actions {
        Some(ActionList { actions, span }) => ParsedActions { actions: *actions, span: *span },
        None => ParsedActions { actions: Actions::default(), span: attrs.ident.span() },
    })
}

/// A standard model has one id field; a composite model has a key of
/// several fields and no id field. Saying both is contradictory.
fn kind(attrs: &ModelAttrs, fields: &[Draft<'_>], errors: &mut Errors) -> Option<Kind> {
    if attrs.broken.contains(kw::ID) || attrs.broken.contains(kw::CURSOR) {
        return None;
    }
    if let Some(cursor) = &attrs.cursor {
        if let Some(id) = &attrs.id {
            errors.push(error(
                id.span(),
                format!(
                    "`{}` conflicts with `{}(...)`: a composite model is keyed by its cursor fields, not an id",
                    kw::ID,
                    kw::CURSOR
                ),
            ));
        }
        if cursor.idents.is_empty() {
            errors.push(error(
                cursor.span,
                format!("`{}` needs at least one field, like `{}`", kw::CURSOR, kw::sample(kw::CURSOR)),
            ));
            return None;
        }
        let keys = field_list(Some(cursor), kw::CURSOR, fields, errors);
        return (keys.len() == cursor.idents.len() && attrs.id.is_none()).then_some(Kind::Composite { keys });
    }
    if let Some(id) = &attrs.id {
        return resolve(fields, id, kw::ID, errors).map(|id| Kind::Standard { id });
    }
    match fields.iter().position(|f| f.ident == "id") {
        Some(index) if !fields[index].skip => {
            Some(Kind::Standard { id: FieldRef { index, span: fields[index].ident.span() } })
        }
        Some(index) => {
            errors.push(error(
                fields[index].attrs.skip.span(),
                format!("the id field `id` cannot be `{}`: the id is synced", kw::SKIP),
            ));
            None
        }
        None => {
            errors.push(error(
                attrs.ident.span(),
                format!(
                    "`{}` has no id field: add a field named `id`, `{}`, or `{}` for a join table",
                    attrs.ident,
                    kw::sample(kw::ID),
                    kw::sample(kw::CURSOR)
                ),
            ));
            None
        }
    }
}

/// The archive field: explicit, or the nullable instant field on the wire
/// as `archivedAt`. Archive writes an instant and unarchive writes null, so
/// the field must take both.
fn archive_field(attrs: &ModelAttrs, fields: &[Draft<'_>], errors: &mut Errors) -> Option<FieldRef> {
    let archivable = |f: &Draft<'_>| f.codec == Some(Codec::Instant) && f.nullable;
    let Some(attr::FieldName(ident)) = &attrs.archive_field else {
        return fields
            .iter()
            .position(|f| !f.skip && f.wire == "archivedAt" && archivable(f))
            .map(|index| FieldRef { index, span: fields[index].ident.span() });
    };
    let field = resolve(fields, ident, kw::ARCHIVE_FIELD, errors)?;
    let draft = &fields[field.index];
    if draft.codec.is_some() && !archivable(draft) {
        errors.push(error(
            ident.span(),
            format!(
                "the archive field `{ident}` must be an `Option<...>` field with the `{}` codec: archive sets a \
                 timestamp, unarchive sets null",
                kw::INSTANT
            ),
        ));
        return None;
    }
    Some(field)
}

/// Join-table rows have no id to update or archive by; they are only ever
/// inserted and deleted.
fn check_composite_actions(kind: &Kind, actions: &ParsedActions, errors: &mut Errors) {
    let a = &actions.actions;
    if matches!(kind, Kind::Composite { .. }) && (a.update || a.archive || a.unarchive) {
        errors.push(error(
            actions.span,
            format!(
                "a composite model (with `{}(...)`) accepts only the actions `{}` and `{}`: its rows are inserted \
                 and deleted, never updated or archived; write `{}({})`",
                kw::CURSOR,
                kw::ACTION_INSERT,
                kw::ACTION_DELETE,
                kw::ACTIONS,
                [(a.insert, kw::ACTION_INSERT), (a.delete, kw::ACTION_DELETE)]
                    .into_iter()
                    .filter_map(|(on, name)| on.then_some(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
}

/// An update changes only `update` fields: with none, every `U` would be
/// rejected at run time.
fn check_update_fields(kind: &Kind, actions: &ParsedActions, fields: &[Draft<'_>], errors: &mut Errors) {
    let has_update = fields.iter().any(|f| !f.skip && f.attrs.update.is_present());
    if matches!(kind, Kind::Standard { .. }) && actions.actions.update && !has_update {
        errors.push(error(
            actions.span,
            format!(
                "action `{}` needs at least one field marked `#[sync({})]`: mark the fields an update may \
                 change, or remove `{}` from `{}(...)`",
                kw::ACTION_UPDATE,
                kw::UPDATE,
                kw::ACTION_UPDATE,
                kw::ACTIONS
            ),
        ));
    }
}

/// Archive and unarchive write the archive field; without one they would
/// fail at run time. (A bad explicit `archive_field` is reported already.)
/// A field that would be the archive field but is skipped or of the wrong
/// type is named, with what to change.
fn check_archive_actions(
    attrs: &ModelAttrs,
    actions: &ParsedActions,
    archive: Option<FieldRef>,
    fields: &[Draft<'_>],
    errors: &mut Errors,
) {
    let a = &actions.actions;
    if !(a.archive || a.unarchive) || archive.is_some() || attrs.archive_field.is_some() {
        return;
    }
    let used: Vec<&str> = [(a.archive, kw::ACTION_ARCHIVE), (a.unarchive, kw::ACTION_UNARCHIVE)]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    let (write, need) = if used.len() == 1 { ("writes", "needs") } else { ("write", "need") };
    let used = format!("`{}`", used.join("` and `"));
    let or_drop = format!("or remove {used} from `{}(...)`", kw::ACTIONS);
    let candidate = fields.iter().find(|f| f.wire == "archivedAt");
    let message = match candidate {
        Some(field) if field.skip => format!(
            "{used} {write} the archive field, but `{}` is `#[sync({})]`: remove `{}` from it (the archive \
             timestamp is synced), {or_drop}",
            field.ident,
            kw::SKIP,
            kw::SKIP
        ),
        Some(field) => format!(
            "{used} {write} the archive field, but `{}` is not an `Option<DateTime<Utc>>` (or an `Option<...>` \
             with the `{}` codec): archive sets a timestamp and unarchive sets null; change its type, {or_drop}",
            field.ident,
            kw::INSTANT
        ),
        None => format!(
            "{used} {need} an archive field: add a field `archived_at: Option<DateTime<Utc>>` (wire name \
             `archivedAt`), or name another one with `{}`, {or_drop}",
            kw::sample(kw::ARCHIVE_FIELD)
        ),
    };
    let span = match candidate {
        Some(field) if field.skip => field.attrs.skip.span(),
        Some(field) => field.attrs.ty.span(),
        None => actions.span,
    };
    errors.push(error(span, message));
}

/// The composite id of an insert is computed from the inserted data, so
/// every key field must be an insert field.
fn check_key_fields_inserted(kind: &Kind, actions: &ParsedActions, fields: &[Draft<'_>], errors: &mut Errors) {
    let Kind::Composite { keys } = kind else { return };
    if !actions.actions.insert {
        return;
    }
    for key in keys.iter().filter(|k| !fields[k.index].insert()) {
        errors.push(error(
            key.span,
            format!(
                "key field `{}` must be `#[sync({})]`: the composite id of an insert is computed from its data",
                fields[key.index].ident,
                kw::INSERT
            ),
        ));
    }
}

/// An insert's group is read from its data: the group field must be
/// written by inserts (a standard model's `id` is always in the data).
fn check_group_inserted(
    kind: &Kind,
    actions: &ParsedActions,
    group: &DraftGroup,
    fields: &[Draft<'_>],
    errors: &mut Errors,
) {
    let DraftGroup::Field(group) = group else { return };
    let field = &fields[group.index];
    let in_data = field.insert() || (matches!(kind, Kind::Standard { .. }) && field.wire == "id");
    if actions.actions.insert && !in_data {
        errors.push(error(
            group.span,
            format!(
                "group field `{}` must be `#[sync({})]` when the model accepts `{}`: an insert's group is read \
                 from its data",
                field.ident,
                kw::INSERT,
                kw::ACTION_INSERT
            ),
        ));
    }
}

/// The default scope filters the group column; the group of a composite
/// `group = own` model is its computed id, which no column holds.
fn check_composite_own_group_scoped(attrs: &ModelAttrs, kind: &Kind, group: &DraftGroup, errors: &mut Errors) {
    if matches!((kind, group), (Kind::Composite { .. }, DraftGroup::OwnId)) && attrs.scope.is_none() {
        errors.push(error(
            attrs.group.as_ref().map_or_else(|| attrs.ident.span(), GroupValue::span),
            format!(
                "`{} = {}` on a composite model needs `{}`: its group is the composite id, which no column holds",
                kw::GROUP,
                kw::OWN,
                kw::sample(kw::SCOPE)
            ),
        ));
    }
}

/// An update that changes the group key moves the row into another group:
/// with nothing but the update logged under one group, the old group's
/// clients keep a row they may no longer see, the new group's never get
/// it, and a member could move a row into a group they are not in.
/// (Composite rows and ids have their own rule against `update`.)
fn check_group_not_updated(kind: &Kind, group: &DraftGroup, fields: &[Draft<'_>], errors: &mut Errors) {
    let (Kind::Standard { id }, DraftGroup::Field(group)) = (kind, group) else { return };
    let field = &fields[group.index];
    if group.index != id.index && !field.skip && field.attrs.update.is_present() {
        errors.push(error(
            field.attrs.update.span(),
            format!(
                "the group key `{}` cannot be `{}`: an update would move the row into another group (one the \
                 member may not be in) without the old group's clients being told; remove `{}` and move a row \
                 by deleting it and inserting it into the new group",
                field.ident,
                kw::UPDATE,
                kw::UPDATE
            ),
        ));
    }
}

/// A reference is checked when a mutation writes its field, against the
/// row's group: a field nobody writes would never be checked, and a group
/// that is the row's own id (or the group key itself, which membership
/// checks already) has no other rows to point into.
fn check_references(kind: &Kind, group: &DraftGroup, fields: &[Draft<'_>], errors: &mut Errors) {
    let id = match kind {
        Kind::Standard { id } => Some(id.index),
        Kind::Composite { .. } => None,
    };
    for (index, field) in fields.iter().enumerate().filter(|(_, f)| !f.skip) {
        let Some(path) = &field.attrs.references else { continue };
        let span = path.span();
        let own_id_group = match group {
            DraftGroup::OwnId => true,
            DraftGroup::Field(g) => Some(g.index) == id,
            DraftGroup::Global => false,
        };
        if own_id_group {
            errors.push(error(
                span,
                format!(
                    "`{}` on a model whose group is its own id: no other row shares its group, so there is \
                     nothing to reference; reference rows from a model with `{}` or `{} = {}`",
                    kw::REFERENCES,
                    kw::sample(kw::GROUP),
                    kw::GROUP,
                    kw::GLOBAL
                ),
            ));
        } else if matches!(group, DraftGroup::Field(g) if g.index == index) {
            errors.push(error(
                span,
                format!(
                    "the group key `{}` cannot have `{}`: the group is checked by membership, and a reference \
                     is checked within the group",
                    field.ident,
                    kw::REFERENCES
                ),
            ));
        } else if Some(index) == id {
            errors.push(error(
                span,
                format!("the id field `{}` cannot have `{}`: it names the row itself", field.ident, kw::REFERENCES),
            ));
        } else if !field.insert() && !field.attrs.update.is_present() {
            errors.push(error(
                span,
                format!(
                    "`{}` needs `{}` or `{}` on the field: the reference is checked when a mutation writes it",
                    kw::REFERENCES,
                    kw::INSERT,
                    kw::UPDATE
                ),
            ));
        }
    }
}

/// Join-table rows are never updated (their key is their identity).
fn check_composite_not_updated(kind: &Kind, fields: &[Draft<'_>], errors: &mut Errors) {
    if !matches!(kind, Kind::Composite { .. }) {
        return;
    }
    for field in fields.iter().filter(|f| !f.skip && f.attrs.update.is_present()) {
        errors.push(error(
            field.attrs.update.span(),
            format!("`{}` on a composite model: join-table rows are inserted and deleted, never updated", kw::UPDATE),
        ));
    }
}

/// Updates find their row by id; changing the id would orphan the row's
/// history on the clients.
fn check_id_not_updated(kind: &Kind, fields: &[Draft<'_>], errors: &mut Errors) {
    let Kind::Standard { id } = kind else { return };
    let field = &fields[id.index];
    if field.attrs.update.is_present() {
        errors.push(error(field.attrs.update.span(), format!("the id field cannot be `{}`", kw::UPDATE)));
    }
}

/// Inserts and updates are Diesel tuples, which stop at 32 columns.
fn check_write_column_count(ident: &Ident, kind: &Kind, fields: &[Draft<'_>], errors: &mut Errors) {
    let id = match kind {
        Kind::Standard { id } => Some(id.index),
        Kind::Composite { .. } => None,
    };
    let inserts = fields.iter().enumerate().filter(|(i, f)| !f.skip && (f.insert() || Some(*i) == id)).count();
    let updates = fields.iter().filter(|f| !f.skip && f.attrs.update.is_present()).count();
    for (what, n) in [("insert", inserts), ("update", updates)] {
        if n > MAX_WRITE_COLUMNS {
            errors.push(error(
                ident.span(),
                format!("`{ident}` has {n} {what} columns; `SyncModel` supports at most {MAX_WRITE_COLUMNS}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: DeriveInput) -> Result<Model, String> {
        model(&input).map_err(|e| e.to_string())
    }

    fn errors(input: DeriveInput) -> Vec<String> {
        match model(&input) {
            Ok(_) => panic!("expected errors"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn infers_codecs() {
        let model = check(syn::parse_quote! {
            #[diesel(table_name = t)]
            #[sync(group = global)]
            struct T {
                id: uuid::Uuid,
                a: String,
                b: Option<i32>,
                c: chrono::DateTime<chrono::Utc>,
                d: Option<NaiveDate>,
                e: bool,
                f: serde_json::Value,
                #[sync(instant)]
                g: i64,
            }
        })
        .unwrap();
        let codecs: Vec<(Codec, bool)> = model.fields.iter().map(|f| (f.codec, f.nullable)).collect();
        assert_eq!(
            codecs,
            [
                (Codec::Uuid, false),
                (Codec::String, false),
                (Codec::Number, true),
                (Codec::Instant, false),
                (Codec::DateOnly, true),
                (Codec::Bool, false),
                (Codec::Json, false),
                (Codec::Instant, false),
            ]
        );
    }

    #[test]
    fn collects_every_error() {
        let errors = errors(syn::parse_quote! {
            #[sync(actions(insert, x), group = nope)]
            struct T {
                id: Foo,
                #[sync(string, uuid)]
                a: String,
            }
        });
        assert_eq!(errors.len(), 5, "{errors:#?}");
        // Grammar errors and check errors come together.
        let errors = self::errors(syn::parse_quote! {
            #[diesel(table_name = t)]
            #[sync(group_key = w, actions = "IU")]
            struct T {
                id: i32,
                #[sync(isnert)]
                w: Vec<u8>,
            }
        });
        assert_eq!(errors.len(), 4, "{errors:#?}");
    }

    #[test]
    fn archive_defaults_to_archived_at() {
        let model = check(syn::parse_quote! {
            #[diesel(table_name = t)]
            #[sync(group = global, actions(archive, unarchive))]
            struct T {
                id: i32,
                archived_at: Option<DateTime<Utc>>,
            }
        })
        .unwrap();
        assert_eq!(model.archive, Some(1));
    }

    #[test]
    fn skipped_fields_are_left_out_and_indices_follow() {
        let model = check(syn::parse_quote! {
            #[diesel(table_name = t)]
            #[sync(group = w, batch_keys(w))]
            struct T {
                #[sync(skip)]
                secret: Vec<u8>,
                id: i32,
                w: i32,
            }
        })
        .unwrap();
        assert_eq!(model.fields.len(), 2);
        assert_eq!(model.batch_keys, [1]);
        assert!(matches!(model.group, Group::Field(1)));
        assert!(matches!(model.kind, Kind::Standard { id } if id.index == 0));
    }
}
