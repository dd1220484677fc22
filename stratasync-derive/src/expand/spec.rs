//! `SyncModel::SPEC`, `SyncModel::Changes` and `SyncModel::Hooks`.

use super::{codec, codec_kind, private};
use crate::model::{Field, Group, Kind, Model};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// `const SPEC: &'static ModelSpec = &ModelSpec { ... };`
pub fn spec(model: &Model) -> TokenStream {
    let p = private();
    let name = &model.name;
    let wire = |i: usize| model.fields[i].wire.as_str();
    let kind = match model.kind {
        Kind::Standard { .. } => quote!(#p::ModelKind::Standard),
        Kind::Composite { .. } => quote!(#p::ModelKind::Composite),
    };
    let actions = model.actions.variants().into_iter().map(|a| {
        let a = syn::Ident::new(a, proc_macro2::Span::call_site());
        quote!(.with(#p::ActionKind::#a))
    });
    let group = match model.group {
        Group::Field(i) => {
            let w = wire(i);
            quote!(#p::GroupKey::Field(#w))
        }
        Group::OwnId => quote!(#p::GroupKey::OwnId),
        Group::Global => quote!(#p::GroupKey::Global),
    };
    let fields = model.fields.iter().map(field_spec);
    let indexed_keys = model.batch_keys.iter().map(|&i| wire(i));
    let (id_field, key_fields) = match &model.kind {
        Kind::Standard { id } => {
            let w = wire(id.index);
            (quote!(::std::option::Option::Some(#w)), Vec::new())
        }
        Kind::Composite { keys } => (quote!(::std::option::Option::None), keys.iter().map(|k| wire(k.index)).collect()),
    };
    let archive_field = match model.archive {
        Some(i) => {
            let w = wire(i);
            quote!(::std::option::Option::Some(#w))
        }
        None => quote!(::std::option::Option::None),
    };
    let has_hooks = model.hooks.is_some();
    quote! {
        const SPEC: &'static #p::ModelSpec = &#p::ModelSpec {
            name: #name,
            kind: #kind,
            actions: #p::ActionSet::EMPTY #(#actions)*,
            group: #group,
            fields: &[#(#fields),*],
            indexed_keys: &[#(#indexed_keys),*],
            id_field: #id_field,
            key_fields: &[#(#key_fields),*],
            archive_field: #archive_field,
            hooks: #has_hooks,
        };
    }
}

/// One `FieldSpec { ... }`.
fn field_spec(field: &Field) -> TokenStream {
    let p = private();
    let Field { wire, nullable, insert, update, date_now, .. } = field;
    let kind = codec_kind(field);
    let default = match &field.default {
        Some(expr) => {
            let ty = &field.ty;
            let codec = codec(field);
            // The expression is checked against the field type where the
            // user wrote it.
            let value = quote_spanned!(expr.span()=> let value: #ty = #expr;);
            quote! {
                ::std::option::Option::Some({
                    fn __stratasync_default() -> #p::serde_json::Value {
                        #value
                        #codec::to_json(&value)
                    }
                    __stratasync_default as fn() -> #p::serde_json::Value
                })
            }
        }
        None => quote!(::std::option::Option::None),
    };
    quote! {
        #p::FieldSpec {
            wire: #wire,
            codec: #kind,
            nullable: #nullable,
            insert: #insert,
            update: #update,
            date_now: #date_now,
            default: #default,
        }
    }
}

/// `type Changes = <Model>Changes;` and `type Hooks = ...;`, the hooks
/// spanned at the user's path.
pub fn hooks(model: &Model) -> TokenStream {
    let p = private();
    let changes = super::changes::name(model);
    let hooks = match &model.hooks {
        Some(path) => quote_spanned!(path.span()=> type Hooks = #path;),
        None => quote!(type Hooks = #p::NoHooks;),
    };
    quote! {
        type Changes = #changes;
        #hooks
    }
}
