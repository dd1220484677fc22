//! The grammar: `#[sync(...)]` on the struct and its fields, and the two
//! keys of `#[diesel(...)]` the derive reads.
//!
//! The darling receiver structs below *are* the grammar: one struct field per
//! key, its type says how the key is written ([`Word`] for a bare word,
//! [`Str`] for `key = "..."`, [`FieldName`] for `key = field`, [`PathValue`]
//! for `key = some::path`, [`IdentList`] for `key(a, b)`). Each of these
//! value types answers a malformed value with the key's syntax sample.
//! Darling reports unknown keys (with a "did you mean"), repeated keys and
//! malformed values, all spanned. Every keyword also has a constant in [`kw`]
//! for the messages of the later checks, and a syntax sample in
//! [`kw::sample`]; a unit test keeps them in step with the receivers.
//!
//! Parsing never judges combinations of keys: that is `check.rs`.

use darling::ast::{Data, NestedMeta};
use darling::util::{Ignored, PreservedStrExpr, SpannedValue};
use darling::{FromDeriveInput, FromField, FromMeta};
use proc_macro2::{Span, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, Lit, LitStr, Meta, Path, Type};

/// Every keyword of the grammar, once.
pub mod kw {
    // Model level: `#[sync(...)]` on the struct.
    pub const NAME: &str = "name";
    pub const GROUP_KEY: &str = "group_key";
    pub const OWN_GROUP: &str = "own_group";
    pub const GLOBAL: &str = "global";
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

    // `#[diesel(...)]`.
    pub const DIESEL: &str = "diesel";
    pub const TABLE_NAME: &str = "table_name";
    pub const COLUMN_NAME: &str = "column_name";

    /// A sample of correct syntax for a key that takes a value, quoted in
    /// error messages.
    pub fn sample(key: &str) -> &'static str {
        match key {
            NAME => "name = \"Task\"",
            GROUP_KEY => "group_key = workspace_id",
            OWN_GROUP => "own_group",
            GLOBAL => "global",
            ACTIONS => "actions = \"IUDAV\"",
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

/// `#[sync(...)]` on the struct, with the struct's fields and its
/// `#[diesel(...)]` attributes.
#[derive(Debug, FromDeriveInput)]
#[darling(attributes(sync), forward_attrs(diesel), supports(struct_named))]
pub struct ModelAttrs {
    pub ident: Ident,
    pub generics: syn::Generics,
    pub data: Data<Ignored, FieldAttrs>,
    /// The forwarded `#[diesel(...)]` attributes.
    pub attrs: Vec<Attribute>,

    /// `name = "Task"`: the wire name (`__class`).
    pub name: Option<Str>,
    /// `group_key = workspace_id`: rows are grouped by this field.
    pub group_key: Option<FieldName>,
    /// `own_group`: a row's own id is its group.
    pub own_group: Word,
    /// `global`: rows are visible to everyone.
    pub global: Word,
    /// `actions = "IUDAV"`: accepted mutation letters.
    pub actions: Option<Str>,
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

/// `#[sync(...)]` on a field, with the field's `#[diesel(...)]` attributes.
#[derive(Debug, FromField)]
#[darling(attributes(sync), forward_attrs(diesel))]
pub struct FieldAttrs {
    pub ident: Option<Ident>,
    pub ty: Type,
    /// The forwarded `#[diesel(...)]` attributes.
    pub attrs: Vec<Attribute>,

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
                other => errors.push(darling::Error::custom("expected a field name").with_span(other)),
            }
        }
        errors.finish_with(IdentList { span: list.path.span(), idents })
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

    fn parse(input: syn::DeriveInput) -> darling::Result<ModelAttrs> {
        ModelAttrs::from_derive_input(&input)
    }

    /// Every keyword constant is a key the receivers accept.
    #[test]
    fn keywords_match_receivers() {
        let model: syn::DeriveInput = syn::parse_str(&format!(
            r#"#[sync({name} = "T", {group_key} = a, {own_group}, {global}, {actions} = "I", {id} = a,
                {cursor}(a), {scope} = s, {hooks} = H, {batch_keys}(a),
                {cascade}({parent} = P, {field} = a), {archive_field} = a)]
            struct T {{
                #[sync({insert}, {update}, {rename} = "x", {skip}, {string}, {string_null}, {uuid}, {number},
                       {boolean}, {instant}, {date_only}, {json}, {date_now}, {default} = 1, {references} = R)]
                a: i32,
            }}"#,
            name = kw::NAME,
            group_key = kw::GROUP_KEY,
            own_group = kw::OWN_GROUP,
            global = kw::GLOBAL,
            actions = kw::ACTIONS,
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
        let attrs = parse(model).unwrap();
        let fields = attrs.data.take_struct().unwrap().fields;
        assert_eq!(fields[0].codec_flags().len(), CodecFlag::ALL.len());
        assert_eq!(fields[0].keys_besides_skip().len(), 3 + CodecFlag::ALL.len() + 3);
    }

    #[test]
    fn samples_cover_value_keys() {
        for key in [
            kw::NAME,
            kw::GROUP_KEY,
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
        let err = parse(input).unwrap_err();
        assert_eq!(err.len(), 2);
    }
}
