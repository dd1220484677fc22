//! The grammar: `#[sync(...)]` on the struct and its fields, and the two
//! keys of `#[diesel(...)]` the derive reads.
//!
//! The darling receivers [`ModelKeys`] and [`FieldKeys`] *are* the grammar:
//! one struct field per key, its type says how the key is written ([`Word`]
//! for a bare word, [`Str`] for `key = "..."`, [`FieldName`] for
//! `key = field`, [`PathValue`] for `key = some::path`, [`IdentList`] for
//! `key(a, b)`, [`ActionList`] for `actions(...)`, [`GroupValue`] for
//! `group = ...`). Each of these value types answers a malformed value with
//! the key's syntax sample.
//!
//! The keys are read one at a time ([`parse_keys`]), so one broken key never
//! hides the mistakes in the others: unknown keys (with a "did you mean"),
//! the old spellings (with the new spelling for that struct), repeated keys
//! and malformed values are all reported, spanned, in one compile, and the
//! keys that did parse still go through the checks. Every keyword also has
//! a constant in [`kw`] for the messages of the later checks, and a syntax
//! sample in [`kw::sample`]; a unit test keeps them in step with the
//! receivers.
//!
//! Parsing never judges combinations of keys: that is `check.rs`.

use crate::errors::Errors;
use crate::model::Actions;
use crate::suggest;
use darling::ast::NestedMeta;
use darling::util::{PreservedStrExpr, SpannedValue};
use darling::FromMeta;
use proc_macro2::{Span, TokenStream, TokenTree};
use std::collections::BTreeSet;
use syn::spanned::Spanned;
use syn::{Attribute, DeriveInput, Expr, Ident, Lit, LitStr, Meta, Path, Type};

/// Every keyword of the grammar, once.
pub mod kw {
    // Model level: `#[sync(...)]` on the struct.
    pub const NAME: &str = "name";
    pub const GROUP: &str = "group";
    pub const ACTIONS: &str = "actions";
    pub const ID: &str = "id";
    pub const CURSOR: &str = "cursor";
    pub const SCOPE: &str = "scope";
    pub const HOOKS: &str = "hooks";
    pub const BATCH_KEYS: &str = "batch_keys";
    pub const CASCADE: &str = "cascade";
    // Keys inside `cascade(...)`; no later check names them in a message.
    #[allow(dead_code, reason = "part of the keyword list; the receiver test uses it")]
    pub const PARENT: &str = "parent";
    #[allow(dead_code, reason = "part of the keyword list; the receiver test uses it")]
    pub const FIELD: &str = "field";
    pub const ARCHIVE_FIELD: &str = "archive_field";

    // The values of `group = ...` besides a field name.
    pub const OWN: &str = "own";
    pub const GLOBAL: &str = "global";

    // The actions of `actions(...)`, in wire order.
    pub const ACTION_INSERT: &str = "insert";
    pub const ACTION_UPDATE: &str = "update";
    pub const ACTION_DELETE: &str = "delete";
    pub const ACTION_ARCHIVE: &str = "archive";
    pub const ACTION_UNARCHIVE: &str = "unarchive";
    pub const ACTION_NAMES: [&str; 5] = [ACTION_INSERT, ACTION_UPDATE, ACTION_DELETE, ACTION_ARCHIVE, ACTION_UNARCHIVE];

    // The old spellings, refused with the new one.
    pub const OLD_GROUP_KEY: &str = "group_key";
    pub const OLD_OWN_GROUP: &str = "own_group";

    // Field level: `#[sync(...)]` on a field.
    pub const INSERT: &str = "insert";
    pub const UPDATE: &str = "update";
    pub const RENAME: &str = "rename";
    pub const SKIP: &str = "skip";
    pub const STRING: &str = "string";
    pub const STRING_NULL: &str = "string_null";
    pub const UUID: &str = "uuid";
    pub const NUMBER: &str = "number";
    pub const BOOLEAN: &str = "boolean";
    pub const INSTANT: &str = "instant";
    pub const DATE_ONLY: &str = "date_only";
    pub const JSON: &str = "json";
    pub const DATE_NOW: &str = "date_now";
    pub const DEFAULT: &str = "default";
    pub const REFERENCES: &str = "references";

    /// The keys of `#[sync(...)]` on the struct.
    pub const MODEL_KEYS: [&str; 10] =
        [NAME, GROUP, ACTIONS, ID, CURSOR, SCOPE, HOOKS, BATCH_KEYS, CASCADE, ARCHIVE_FIELD];

    /// The keys of `#[sync(...)]` on a field.
    pub const FIELD_KEYS: [&str; 15] = [
        INSERT,
        UPDATE,
        RENAME,
        SKIP,
        STRING,
        STRING_NULL,
        UUID,
        NUMBER,
        BOOLEAN,
        INSTANT,
        DATE_ONLY,
        JSON,
        DATE_NOW,
        DEFAULT,
        REFERENCES,
    ];

    // `#[diesel(...)]`.
    pub const DIESEL: &str = "diesel";
    pub const TABLE_NAME: &str = "table_name";
    pub const COLUMN_NAME: &str = "column_name";

    /// A sample of correct syntax for a key that takes a value, quoted in
    /// error messages.
    pub fn sample(key: &str) -> &'static str {
        match key {
            NAME => "name = \"Task\"",
            GROUP => "group = workspace_id",
            ACTIONS => "actions(insert, update, delete, archive, unarchive)",
            ID => "id = task_id",
            CURSOR => "cursor(task_id, label_id)",
            SCOPE => "scope = crate::scopes::tasks_scope",
            HOOKS => "hooks = TaskHooks",
            BATCH_KEYS => "batch_keys(id, workspace_id)",
            CASCADE => "cascade(parent = Task, field = task_id)",
            ARCHIVE_FIELD => "archive_field = archived_at",
            RENAME => "rename = \"wireName\"",
            DEFAULT => "default = 0",
            REFERENCES => "references = Task",
            TABLE_NAME => "#[diesel(table_name = tasks)]",
            COLUMN_NAME => "#[diesel(column_name = title)]",
            // Bare words are their own sample.
            _ => "",
        }
    }
}

/// The keys of `#[sync(...)]` on the struct.
#[derive(Debug, Default, FromMeta)]
pub struct ModelKeys {
    /// `name = "Task"`: the wire name (`__class`).
    pub name: Option<Str>,
    /// `group = workspace_id | own | global`: where a row's group comes from.
    pub group: Option<GroupValue>,
    /// `actions(insert, update, ...)`: the accepted mutations.
    pub actions: Option<ActionList>,
    /// `id = field`: the id (and simple cursor) of a standard model.
    pub id: Option<FieldName>,
    /// `cursor(a, b)`: the composite key of a join-table model.
    pub cursor: Option<IdentList>,
    /// `scope = path::to::fn`: a custom bootstrap/batch filter.
    pub scope: Option<PathValue>,
    /// `hooks = Type`: the model's `ModelHooks`.
    pub hooks: Option<PathValue>,
    /// `batch_keys(a, b)`: fields allowed as `indexedKey`.
    pub batch_keys: Option<IdentList>,
    /// `cascade(parent = Model, field = f)`, repeatable.
    #[darling(multiple)]
    pub cascade: Vec<CascadeAttr>,
    /// `archive_field = archived_at`.
    pub archive_field: Option<FieldName>,
}

/// `cascade(parent = Task, field = task_id)`.
#[derive(Debug, FromMeta)]
pub struct CascadeAttr {
    /// The parent model type.
    pub parent: PathValue,
    /// The field of this model that holds the parent's id.
    pub field: FieldName,
}

/// The keys of `#[sync(...)]` on a field.
#[derive(Debug, Default, FromMeta)]
pub struct FieldKeys {
    /// `insert`: an insert writes this field from the payload.
    pub insert: Word,
    /// `update`: an update may change this field.
    pub update: Word,
    /// `rename = "wireName"`.
    pub rename: Option<Str>,
    /// `skip`: not synced.
    pub skip: Word,
    /// Codec overrides (at most one).
    pub string: Word,
    pub string_null: Word,
    pub uuid: Word,
    pub number: Word,
    pub boolean: Word,
    pub instant: Word,
    pub date_only: Word,
    pub json: Word,
    /// `date_now`: an absent insert value becomes "now".
    pub date_now: Word,
    /// `default = <expr>`: an absent insert value becomes this.
    #[darling(rename = "default")]
    pub default_value: Option<SpannedValue<PreservedStrExpr>>,
    /// `references = Model`: the field holds the id of a row of `Model` in
    /// the same sync group.
    pub references: Option<PathValue>,
}

/// The struct: its `#[sync(...)]` keys, its `#[diesel(...)]` attributes and
/// its fields.
pub struct ModelAttrs {
    pub ident: Ident,
    pub generics: syn::Generics,
    /// The `#[diesel(...)]` attributes.
    pub attrs: Vec<Attribute>,
    pub keys: ModelKeys,
    /// The keys that were written but could not be read (already
    /// reported): the checks stay quiet about them.
    pub broken: BTreeSet<String>,
    pub fields: Vec<FieldAttrs>,
}

impl std::ops::Deref for ModelAttrs {
    type Target = ModelKeys;

    fn deref(&self) -> &ModelKeys {
        &self.keys
    }
}

impl ModelAttrs {
    /// Whether every key of the struct and its fields could be read: the
    /// checks of combinations of keys only run then (a key that is missing
    /// because it was misspelled would make them report nonsense).
    pub fn complete(&self) -> bool {
        self.broken.is_empty() && self.fields.iter().all(|f| f.broken.is_empty())
    }
}

/// A field: its `#[sync(...)]` keys and its `#[diesel(...)]` attributes.
pub struct FieldAttrs {
    pub ident: Ident,
    pub ty: Type,
    /// The `#[diesel(...)]` attributes.
    pub attrs: Vec<Attribute>,
    pub keys: FieldKeys,
    /// The keys that were written but could not be read (already reported).
    pub broken: BTreeSet<String>,
}

impl std::ops::Deref for FieldAttrs {
    type Target = FieldKeys;

    fn deref(&self) -> &FieldKeys {
        &self.keys
    }
}

/// Reads the attributes of a struct with named fields (checked before).
pub fn model_attrs(input: &DeriveInput, errors: &mut Errors) -> ModelAttrs {
    let (keys, broken) = parse_keys::<ModelKeys>(&input.attrs, &kw::MODEL_KEYS, old_model_spelling, errors);
    let fields = match &input.data {
        syn::Data::Struct(data) => data
            .fields
            .iter()
            .filter_map(|field| {
                let ident = field.ident.clone()?;
                let (keys, broken) = parse_keys::<FieldKeys>(&field.attrs, &kw::FIELD_KEYS, |_| None, errors);
                Some(FieldAttrs { ident, ty: field.ty.clone(), attrs: diesel_attrs(&field.attrs), keys, broken })
            })
            .collect(),
        _ => Vec::new(),
    };
    ModelAttrs {
        ident: input.ident.clone(),
        generics: input.generics.clone(),
        attrs: diesel_attrs(&input.attrs),
        keys,
        broken,
        fields,
    }
}

fn diesel_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs.iter().filter(|a| a.path().is_ident(kw::DIESEL)).cloned().collect()
}

/// Reads the keys of every `#[sync(...)]` in `attrs` into `T`, one key at a
/// time: each error is reported and its key left out (and named in the
/// returned set), and the others are still read. `old` answers an old
/// spelling with its error.
fn parse_keys<T: FromMeta + Default>(
    attrs: &[Attribute],
    known: &[&str],
    old: impl Fn(&Meta) -> Option<(&'static str, syn::Error)>,
    errors: &mut Errors,
) -> (T, BTreeSet<String>) {
    let mut broken = BTreeSet::new();
    let mut good: Vec<NestedMeta> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("sync")) {
        let Meta::List(list) = &attr.meta else {
            errors.push(
                darling::Error::custom("write the sync keys in parentheses: `#[sync(key, ...)]`").with_span(&attr.meta),
            );
            broken.insert(String::from("sync"));
            continue;
        };
        let items = match NestedMeta::parse_meta_list(list.tokens.clone()) {
            Ok(items) => items,
            Err(e) => {
                errors.push(e);
                broken.insert(String::from("sync"));
                continue;
            }
        };
        for item in items {
            let NestedMeta::Meta(meta) = &item else {
                errors.push(darling::Error::custom("expected a key, found a literal").with_span(&item));
                broken.insert(String::from("sync"));
                continue;
            };
            let key = meta.path().get_ident().map(ToString::to_string).unwrap_or_default();
            if let Some((new_key, error)) = old(meta) {
                errors.push(error);
                broken.insert(String::from(new_key));
            } else if !known.contains(&key.as_str()) {
                errors.push(unknown_key(meta, known));
                broken.insert(key);
            } else if seen.contains(&key) && key != kw::CASCADE {
                let why = if key == kw::GROUP { ": a model has exactly one sync group" } else { "" };
                errors.push(
                    darling::Error::custom(format!("`{key}` is given twice{why}; keep one")).with_span(meta.path()),
                );
            } else {
                seen.push(key.clone());
                match T::from_list(std::slice::from_ref(&item)) {
                    Ok(_) => good.push(item),
                    Err(e) => {
                        errors.push(e);
                        broken.insert(key);
                    }
                }
            }
        }
    }
    // Each key read alone, so together they read too; should darling still
    // refuse them, its errors are reported and nothing is read.
    let keys = errors.handle(T::from_list(&good)).unwrap_or_else(|| {
        broken.insert(String::from("sync"));
        T::default()
    });
    (keys, broken)
}

/// "unknown key `x`", with the closest key (an old spelling suggests the new
/// key) or the list of keys.
fn unknown_key(meta: &Meta, known: &[&str]) -> darling::Error {
    let key = meta.path().get_ident().map(ToString::to_string).unwrap_or_else(|| {
        let path = meta.path();
        quote::quote!(#path).to_string().replace(' ', "")
    });
    let mut candidates: Vec<&str> = known.to_vec();
    let is_model = known.contains(&kw::GROUP);
    if is_model {
        candidates.extend([kw::OLD_GROUP_KEY, kw::OLD_OWN_GROUP]);
    }
    let hint = match suggest::closest(&key, &candidates) {
        Some(kw::OLD_GROUP_KEY | kw::OLD_OWN_GROUP) => format!("did you mean `{}`?", kw::GROUP),
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("the keys are `{}`", known.join("`, `")),
    };
    let place = if is_model { "on the struct" } else { "on a field" };
    darling::Error::custom(format!("unknown key `{key}` in `#[sync(...)]` {place}: {hint}")).with_span(meta.path())
}

/// The old spellings of the struct keys: `actions = "IUD"`,
/// `group_key = field`, `own_group` and `global` (a key of its own). The
/// error shows the new spelling of exactly what was written, and
/// underlines all of it (`key = value`, not only the key).
fn old_model_spelling(meta: &Meta) -> Option<(&'static str, syn::Error)> {
    let key = meta.path().get_ident()?.to_string();
    let written = quote::quote!(#meta).to_string();
    let (new_key, new) = match (key.as_str(), meta) {
        (kw::ACTIONS, Meta::NameValue(nv)) => {
            let Expr::Lit(syn::ExprLit { lit: Lit::Str(letters), .. }) = &nv.value else { return None };
            let letters = letters.value();
            let mut names = Vec::new();
            let mut unknown = Vec::new();
            for c in letters.chars() {
                match "IUDAV".find(c) {
                    Some(i) if !names.contains(&kw::ACTION_NAMES[i]) => names.push(kw::ACTION_NAMES[i]),
                    Some(_) => {}
                    None => unknown.push(c),
                }
            }
            let mut new = format!("`{}({})`", kw::ACTIONS, names.join(", "));
            if !unknown.is_empty() {
                let unknown: String = unknown.into_iter().collect();
                new.push_str(&format!(
                    " (`{unknown}` is no action; the actions are `{}`)",
                    kw::ACTION_NAMES.join("`, `")
                ));
            }
            let written = format!("{} = {:?}", kw::ACTIONS, letters);
            return Some((
                kw::ACTIONS,
                syn::Error::new_spanned(meta, format!("`{written}` is the old spelling; write {new}")),
            ));
        }
        (kw::OLD_GROUP_KEY, Meta::NameValue(nv)) => {
            let value = &nv.value;
            (kw::GROUP, format!("{} = {}", kw::GROUP, quote::quote!(#value)))
        }
        (kw::OLD_GROUP_KEY, _) => (kw::GROUP, format!("{} = <field>", kw::GROUP)),
        (kw::OLD_OWN_GROUP, _) => (kw::GROUP, format!("{} = {}", kw::GROUP, kw::OWN)),
        (kw::GLOBAL, _) => (kw::GROUP, format!("{} = {}", kw::GROUP, kw::GLOBAL)),
        _ => return None,
    };
    Some((new_key, syn::Error::new_spanned(meta, format!("`{written}` is the old spelling; write `{new}`"))))
}

/// A codec override flag on a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecFlag {
    String,
    StringNull,
    Uuid,
    Number,
    Boolean,
    Instant,
    DateOnly,
    Json,
}

impl CodecFlag {
    /// Every override, in documentation order.
    pub const ALL: [CodecFlag; 8] = [
        CodecFlag::String,
        CodecFlag::StringNull,
        CodecFlag::Uuid,
        CodecFlag::Number,
        CodecFlag::Boolean,
        CodecFlag::Instant,
        CodecFlag::DateOnly,
        CodecFlag::Json,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            CodecFlag::String => kw::STRING,
            CodecFlag::StringNull => kw::STRING_NULL,
            CodecFlag::Uuid => kw::UUID,
            CodecFlag::Number => kw::NUMBER,
            CodecFlag::Boolean => kw::BOOLEAN,
            CodecFlag::Instant => kw::INSTANT,
            CodecFlag::DateOnly => kw::DATE_ONLY,
            CodecFlag::Json => kw::JSON,
        }
    }

    /// The override flags, as "`string`, `string_null`, ...".
    pub fn list() -> String {
        Self::ALL.iter().map(|f| format!("`{}`", f.keyword())).collect::<Vec<_>>().join(", ")
    }
}

impl FieldAttrs {
    /// The codec overrides present on the field, in attribute-key order of
    /// [`CodecFlag::ALL`], with their spans.
    pub fn codec_flags(&self) -> Vec<(CodecFlag, Span)> {
        let flags = [
            (CodecFlag::String, &self.string),
            (CodecFlag::StringNull, &self.string_null),
            (CodecFlag::Uuid, &self.uuid),
            (CodecFlag::Number, &self.number),
            (CodecFlag::Boolean, &self.boolean),
            (CodecFlag::Instant, &self.instant),
            (CodecFlag::DateOnly, &self.date_only),
            (CodecFlag::Json, &self.json),
        ];
        flags.into_iter().filter(|(_, f)| f.is_present()).map(|(c, f)| (c, f.span())).collect()
    }

    /// Every `#[sync]` key present on the field except `skip`, with its span.
    pub fn keys_besides_skip(&self) -> Vec<(&'static str, Span)> {
        let mut keys = Vec::new();
        let mut flag = |key, flag: &Word| {
            if flag.is_present() {
                keys.push((key, flag.span()));
            }
        };
        flag(kw::INSERT, &self.insert);
        flag(kw::UPDATE, &self.update);
        flag(kw::DATE_NOW, &self.date_now);
        keys.extend(self.codec_flags().into_iter().map(|(c, span)| (c.keyword(), span)));
        if let Some(rename) = &self.rename {
            keys.push((kw::RENAME, rename.span()));
        }
        if let Some(default) = &self.default_value {
            keys.push((kw::DEFAULT, default.span()));
        }
        if let Some(references) = &self.references {
            keys.push((kw::REFERENCES, references.span()));
        }
        keys
    }
}

/// The error for a malformed value of `item`'s key: "`key` takes <what>,
/// like `<sample>`", spanned at the value (or the key if there is none).
fn value_error(item: &Meta, what: &str) -> darling::Error {
    let key = item.path().get_ident().map(ToString::to_string).unwrap_or_default();
    let sample = kw::sample(&key);
    let message = if sample.is_empty() {
        format!("`{key}` takes {what}")
    } else {
        format!("`{key}` takes {what}, like `{sample}`")
    };
    match item {
        Meta::NameValue(nv) => darling::Error::custom(message).with_span(&nv.value),
        other => darling::Error::custom(message).with_span(other),
    }
}

/// A bare word: `insert`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Word(Option<Span>);

impl Word {
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }

    /// The span of the word (call site if absent).
    pub fn span(&self) -> Span {
        self.0.unwrap_or_else(Span::call_site)
    }
}

impl FromMeta for Word {
    fn from_none() -> Option<Self> {
        Some(Word(None))
    }

    fn from_meta(item: &Meta) -> darling::Result<Self> {
        match item {
            Meta::Path(path) => Ok(Word(Some(path.span()))),
            other => {
                let key = other.path().get_ident().map(ToString::to_string).unwrap_or_default();
                Err(darling::Error::custom(format!("`{key}` takes no value: write just `{key}`")).with_span(other))
            }
        }
    }
}

/// `key = "string"`.
#[derive(Debug, Clone)]
pub struct Str(pub LitStr);

impl std::ops::Deref for Str {
    type Target = LitStr;

    fn deref(&self) -> &LitStr {
        &self.0
    }
}

impl FromMeta for Str {
    fn from_meta(item: &Meta) -> darling::Result<Self> {
        if let Meta::NameValue(nv) = item {
            if let Expr::Lit(syn::ExprLit { lit: Lit::Str(lit), .. }) = &nv.value {
                return Ok(Str(lit.clone()));
            }
        }
        Err(value_error(item, "a string literal"))
    }
}

/// `key = field_name`.
#[derive(Debug, Clone)]
pub struct FieldName(pub Ident);

impl std::ops::Deref for FieldName {
    type Target = Ident;

    fn deref(&self) -> &Ident {
        &self.0
    }
}

impl FromMeta for FieldName {
    fn from_meta(item: &Meta) -> darling::Result<Self> {
        if let Meta::NameValue(nv) = item {
            if let Expr::Path(path) = &nv.value {
                if let (None, Some(ident)) = (&path.qself, path.path.get_ident()) {
                    return Ok(FieldName(ident.clone()));
                }
            }
        }
        Err(value_error(item, "a field name"))
    }
}

/// `key = some::path`.
#[derive(Debug, Clone)]
pub struct PathValue(pub Path);

impl std::ops::Deref for PathValue {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl FromMeta for PathValue {
    fn from_meta(item: &Meta) -> darling::Result<Self> {
        if let Meta::NameValue(nv) = item {
            if let Expr::Path(path) = &nv.value {
                if path.qself.is_none() {
                    return Ok(PathValue(path.path.clone()));
                }
            }
        }
        Err(value_error(item, "a path"))
    }
}

/// `key(a, b, c)`: a list of field names, with the span of the key.
#[derive(Debug, Clone)]
pub struct IdentList {
    pub span: Span,
    pub idents: Vec<Ident>,
}

impl FromMeta for IdentList {
    fn from_meta(item: &Meta) -> darling::Result<Self> {
        let Meta::List(list) = item else {
            return Err(value_error(item, "a parenthesized list of field names"));
        };
        let nested = NestedMeta::parse_meta_list(list.tokens.clone())?;
        let mut errors = darling::Error::accumulator();
        let mut idents = Vec::with_capacity(nested.len());
        for item in &nested {
            match item {
                NestedMeta::Meta(Meta::Path(path)) if path.get_ident().is_some() => {
                    idents.extend(path.get_ident().cloned());
                }
                other => {
                    let key = list.path.get_ident().map(ToString::to_string).unwrap_or_default();
                    errors.push(
                        darling::Error::custom(format!("expected a field name, like `{}`", kw::sample(&key)))
                            .with_span(other),
                    );
                }
            }
        }
        errors.finish_with(IdentList { span: list.path.span(), idents })
    }
}

/// `group = <field> | own | global`: where a row's sync group comes from.
#[derive(Debug, Clone)]
pub enum GroupValue {
    /// `group = workspace_id`: the value of this field.
    Field(Ident),
    /// `group = own`: the row's own id.
    Own(Span),
    /// `group = global`: everyone's.
    Global(Span),
}

impl GroupValue {
    /// The span of the value.
    pub fn span(&self) -> Span {
        match self {
            GroupValue::Field(ident) => ident.span(),
            GroupValue::Own(span) | GroupValue::Global(span) => *span,
        }
    }
}

impl FromMeta for GroupValue {
    fn from_meta(item: &Meta) -> darling::Result<Self> {
        if let Meta::NameValue(nv) = item {
            if let Expr::Path(path) = &nv.value {
                if let (None, Some(ident)) = (&path.qself, path.path.get_ident()) {
                    return Ok(if ident == kw::OWN {
                        GroupValue::Own(ident.span())
                    } else if ident == kw::GLOBAL {
                        GroupValue::Global(ident.span())
                    } else {
                        GroupValue::Field(ident.clone())
                    });
                }
            }
        }
        Err(value_error(item, &format!("a field name, `{}` or `{}`", kw::OWN, kw::GLOBAL)))
    }
}

/// `actions(insert, update, delete, archive, unarchive)`, with the span of
/// the list for later checks.
#[derive(Debug, Clone)]
pub struct ActionList {
    pub actions: Actions,
    pub span: Span,
}

impl FromMeta for ActionList {
    fn from_meta(item: &Meta) -> darling::Result<Self> {
        let Meta::List(list) = item else {
            return Err(value_error(item, "a parenthesized list of actions"));
        };
        let nested = NestedMeta::parse_meta_list(list.tokens.clone())?;
        let mut errors = darling::Error::accumulator();
        let mut actions = Actions::default();
        for item in &nested {
            let ident = match item {
                NestedMeta::Meta(Meta::Path(path)) => path.get_ident(),
                _ => None,
            };
            let Some(ident) = ident else {
                errors.push(
                    darling::Error::custom(format!("expected an action: one of `{}`", kw::ACTION_NAMES.join("`, `")))
                        .with_span(item),
                );
                continue;
            };
            let name = ident.to_string();
            let slot = match name.as_str() {
                kw::ACTION_INSERT => &mut actions.insert,
                kw::ACTION_UPDATE => &mut actions.update,
                kw::ACTION_DELETE => &mut actions.delete,
                kw::ACTION_ARCHIVE => &mut actions.archive,
                kw::ACTION_UNARCHIVE => &mut actions.unarchive,
                _ => {
                    let hint = match suggest::closest(&name, &kw::ACTION_NAMES) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("the actions are `{}`", kw::ACTION_NAMES.join("`, `")),
                    };
                    errors.push(darling::Error::custom(format!("unknown action `{name}`: {hint}")).with_span(ident));
                    continue;
                }
            };
            if *slot {
                errors.push(
                    darling::Error::custom(format!("action `{name}` is listed twice: list it once")).with_span(ident),
                );
            }
            *slot = true;
        }
        errors.finish_with(ActionList { actions, span: list.span() })
    }
}

/// A `key = value` found in `#[diesel(...)]`: the key's ident and the value
/// tokens.
struct DieselKey {
    key: Ident,
    value: TokenStream,
}

/// The `key = value` items named `key` in the `#[diesel(...)]` attributes.
///
/// Lenient on purpose: the other keys belong to Diesel's derives, which
/// report their own mistakes. Items are split at top-level commas (commas
/// inside `<...>` of a type belong to the type).
fn diesel_keys(attrs: &[Attribute], key: &str) -> Vec<DieselKey> {
    let mut found = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident(kw::DIESEL)) {
        let Meta::List(list) = &attr.meta else { continue };
        let mut item: Vec<TokenTree> = Vec::new();
        let mut depth = 0usize;
        let mut items = Vec::new();
        for tt in list.tokens.clone() {
            match &tt {
                TokenTree::Punct(p) if p.as_char() == ',' && depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
                TokenTree::Punct(p) if p.as_char() == '>' => depth = depth.saturating_sub(1),
                _ => {}
            }
            item.push(tt);
        }
        items.push(item);
        for item in items {
            if let [TokenTree::Ident(ident), TokenTree::Punct(eq), rest @ ..] = &item[..] {
                if ident == key && eq.as_char() == '=' {
                    found.push(DieselKey { key: ident.clone(), value: rest.iter().cloned().collect() });
                }
            }
        }
    }
    found
}

/// `#[diesel(table_name = path)]`: `None` if absent; an error if malformed.
pub fn diesel_table_name(attrs: &[Attribute]) -> darling::Result<Option<Path>> {
    let mut keys = diesel_keys(attrs, kw::TABLE_NAME);
    let Some(last) = keys.pop() else { return Ok(None) };
    syn::parse2::<Path>(last.value).map(Some).map_err(|_| {
        darling::Error::custom(format!("expected a table path, like `{}`", kw::sample(kw::TABLE_NAME)))
            .with_span(&last.key)
    })
}

/// `#[diesel(column_name = ident)]` (or `= "name"`): `None` if absent.
pub fn diesel_column_name(attrs: &[Attribute]) -> darling::Result<Option<Ident>> {
    let mut keys = diesel_keys(attrs, kw::COLUMN_NAME);
    let Some(last) = keys.pop() else { return Ok(None) };
    if let Ok(ident) = syn::parse2::<Ident>(last.value.clone()) {
        return Ok(Some(ident));
    }
    if let Ok(lit) = syn::parse2::<LitStr>(last.value) {
        if let Ok(ident) = lit.parse::<Ident>() {
            return Ok(Some(Ident::new(&ident.to_string(), lit.span())));
        }
    }
    Err(darling::Error::custom(format!("expected a column name, like `{}`", kw::sample(kw::COLUMN_NAME)))
        .with_span(&last.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: syn::DeriveInput) -> (ModelAttrs, Vec<String>) {
        let mut errors = Errors::default();
        let attrs = model_attrs(&input, &mut errors);
        let errors = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (attrs, errors)
    }

    /// Every keyword constant is a key the receivers accept.
    #[test]
    fn keywords_match_receivers() {
        let model: syn::DeriveInput = syn::parse_str(&format!(
            r#"#[sync({name} = "T", {group} = a, {actions}({ai}, {au}, {ad}, {aa}, {av}), {id} = a,
                {cursor}(a), {scope} = s, {hooks} = H, {batch_keys}(a),
                {cascade}({parent} = P, {field} = a), {archive_field} = a)]
            struct T {{
                #[sync({insert}, {update}, {rename} = "x", {skip}, {string}, {string_null}, {uuid}, {number},
                       {boolean}, {instant}, {date_only}, {json}, {date_now}, {default} = 1, {references} = R)]
                a: i32,
            }}"#,
            name = kw::NAME,
            group = kw::GROUP,
            actions = kw::ACTIONS,
            ai = kw::ACTION_INSERT,
            au = kw::ACTION_UPDATE,
            ad = kw::ACTION_DELETE,
            aa = kw::ACTION_ARCHIVE,
            av = kw::ACTION_UNARCHIVE,
            id = kw::ID,
            cursor = kw::CURSOR,
            scope = kw::SCOPE,
            hooks = kw::HOOKS,
            batch_keys = kw::BATCH_KEYS,
            cascade = kw::CASCADE,
            parent = kw::PARENT,
            field = kw::FIELD,
            archive_field = kw::ARCHIVE_FIELD,
            insert = kw::INSERT,
            update = kw::UPDATE,
            rename = kw::RENAME,
            skip = kw::SKIP,
            string = kw::STRING,
            string_null = kw::STRING_NULL,
            uuid = kw::UUID,
            number = kw::NUMBER,
            boolean = kw::BOOLEAN,
            instant = kw::INSTANT,
            date_only = kw::DATE_ONLY,
            json = kw::JSON,
            date_now = kw::DATE_NOW,
            default = kw::DEFAULT,
            references = kw::REFERENCES,
        ))
        .unwrap();
        let (attrs, errors) = parse(model);
        assert_eq!(errors, Vec::<String>::new());
        assert!(attrs.complete());
        let actions = attrs.actions.as_ref().unwrap().actions;
        assert_eq!(actions.variants().len(), kw::ACTION_NAMES.len());
        assert_eq!(attrs.fields[0].codec_flags().len(), CodecFlag::ALL.len());
        assert_eq!(attrs.fields[0].keys_besides_skip().len(), 3 + CodecFlag::ALL.len() + 3);
    }

    #[test]
    fn group_values() {
        for (value, expected) in [("own", "own"), ("global", "global"), ("workspace_id", "field")] {
            let input: syn::DeriveInput =
                syn::parse_str(&format!("#[sync(group = {value})] struct T {{ a: i32 }}")).unwrap();
            let (attrs, errors) = parse(input);
            assert!(errors.is_empty(), "{errors:?}");
            let got = match attrs.group.as_ref().unwrap() {
                GroupValue::Own(_) => "own",
                GroupValue::Global(_) => "global",
                GroupValue::Field(_) => "field",
            };
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn old_spellings_show_the_new_one() {
        let input: syn::DeriveInput = syn::parse_quote! {
            #[sync(group_key = workspace_id, actions = "IUDV")]
            struct T { a: i32 }
        };
        let (attrs, errors) = parse(input);
        assert_eq!(
            errors,
            [
                "`group_key = workspace_id` is the old spelling; write `group = workspace_id`",
                "`actions = \"IUDV\"` is the old spelling; write `actions(insert, update, delete, unarchive)`",
            ]
        );
        assert!(attrs.broken.contains(kw::GROUP) && attrs.broken.contains(kw::ACTIONS));
        for (old, new) in [("own_group", "group = own"), ("global", "group = global")] {
            let input: syn::DeriveInput = syn::parse_str(&format!("#[sync({old})] struct T {{ a: i32 }}")).unwrap();
            assert_eq!(parse(input).1, [format!("`{old}` is the old spelling; write `{new}`")]);
        }
    }

    /// One broken key does not hide the others, nor keep them from being
    /// read.
    #[test]
    fn every_key_is_read_despite_broken_ones() {
        let input: syn::DeriveInput = syn::parse_quote! {
            #[sync(gruop = x, name = 1, actions(insert, udpate), id = a, id = b)]
            struct T {
                #[sync(inesrt, update)]
                a: i32,
            }
        };
        let (attrs, errors) = parse(input);
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].contains("did you mean `group`?"), "{errors:#?}");
        assert!(errors.iter().any(|e| e.contains("did you mean `update`?")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.contains("`id` is given twice; keep one")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.contains("unknown key `inesrt`") && e.contains("`insert`")), "{errors:#?}");
        assert_eq!(attrs.id.as_ref().unwrap().to_string(), "a");
        assert!(attrs.fields[0].update.is_present());
        assert!(!attrs.complete());
    }

    #[test]
    fn samples_cover_value_keys() {
        for key in [
            kw::NAME,
            kw::GROUP,
            kw::ACTIONS,
            kw::ID,
            kw::CURSOR,
            kw::SCOPE,
            kw::HOOKS,
            kw::BATCH_KEYS,
            kw::CASCADE,
            kw::ARCHIVE_FIELD,
            kw::RENAME,
            kw::DEFAULT,
            kw::REFERENCES,
        ] {
            assert!(kw::sample(key).starts_with(key), "{key}");
        }
    }

    #[test]
    fn diesel_keys_are_read_leniently() {
        let input: syn::DeriveInput = syn::parse_quote! {
            #[diesel(check_for_backend(diesel::pg::Pg), table_name = crate::schema::tasks, primary_key(a, b))]
            #[diesel(belongs_to(Workspace, foreign_key = workspace_id))]
            struct T {
                #[diesel(deserialize_as = HashMap<A, B>, column_name = "kind")]
                a: i32,
            }
        };
        let table = diesel_table_name(&input.attrs).unwrap().unwrap();
        assert_eq!(quote::quote!(#table).to_string(), "crate :: schema :: tasks");
        let syn::Data::Struct(data) = &input.data else { unreachable!() };
        let column = diesel_column_name(&data.fields.iter().next().unwrap().attrs).unwrap().unwrap();
        assert_eq!(column, "kind");
    }

    #[test]
    fn ident_list_rejects_non_idents() {
        let input: syn::DeriveInput = syn::parse_quote! {
            #[sync(cursor(a, b::c, "d"))]
            struct T { a: i32 }
        };
        let (attrs, errors) = parse(input);
        assert_eq!(errors.len(), 2);
        assert!(attrs.broken.contains(kw::CURSOR));
    }
}
