//! The row methods: `write_row`, `sync_id`, `group_id`, `to_data` and
//! `canonical_id` (no database).

use super::{codec, codec_kind, json_string, key_value, private};
use crate::model::{Group, Kind, Model};
use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The wire name that always holds the row's sync id.
const ID: &str = "id";

pub fn methods(model: &Model) -> TokenStream {
    let write_row = write_row(model);
    let sync_id = sync_id(model);
    let group_id = group_id(model);
    let to_data = to_data(model);
    let canonical_id = canonical_id(model);
    quote! {
        #write_row
        #sync_id
        #group_id
        #to_data
        #canonical_id
    }
}

/// Whether the row has no field on the wire as `id` (then `id` is appended).
fn appends_id(model: &Model) -> bool {
    !model.fields.iter().any(|f| f.wire == ID)
}

/// The NDJSON line: constant byte runs (`{"__class":"Task","title":`) as
/// literals, values through the codecs. No `serde_json::Value` here: this
/// is the bootstrap hot path.
fn write_row(model: &Model) -> TokenStream {
    let p = private();
    let mut steps = Vec::new();
    let mut pending = format!("{{\"__class\":{}", json_string(&model.name));
    let flush = |pending: &mut String, steps: &mut Vec<TokenStream>| {
        let bytes = Literal::byte_string(std::mem::take(pending).as_bytes());
        steps.push(quote!(out.extend_from_slice(#bytes);));
    };
    let sync_id = quote!(#p::write_str(out, &<Self as #p::SyncStorage>::sync_id(self)););
    for field in &model.fields {
        pending.push_str(&format!(",{}:", json_string(&field.wire)));
        flush(&mut pending, &mut steps);
        if field.wire == ID {
            steps.push(sync_id.clone());
        } else {
            let codec = codec(field);
            let ident = &field.ident;
            steps.push(quote!(#codec::write_json(&self.#ident, out);));
        }
    }
    if appends_id(model) {
        pending.push_str(&format!(",{}:", json_string(ID)));
        flush(&mut pending, &mut steps);
        steps.push(sync_id);
    }
    pending.push('}');
    flush(&mut pending, &mut steps);
    quote! {
        fn write_row(&self, out: &mut ::std::vec::Vec<u8>) {
            #(#steps)*
        }
    }
}

/// The id field's key string, or the composite id of the key fields.
fn sync_id(model: &Model) -> TokenStream {
    let p = private();
    let name = &model.name;
    let body = match &model.kind {
        Kind::Standard { id } => {
            let field = &model.fields[id.index];
            let (ty, ident) = (&field.ty, &field.ident);
            quote_spanned!(ty.span()=> #p::key_string::<#ty>(&self.#ident))
        }
        Kind::Composite { keys } => {
            let parts = keys.iter().map(|k| {
                let field = &model.fields[k.index];
                let (ty, ident) = (&field.ty, &field.ident);
                quote_spanned!(ty.span()=> #p::key_string::<#ty>(&self.#ident).as_str())
            });
            quote!(#p::composite_id(#name, &[#(#parts),*]))
        }
    };
    quote! {
        fn sync_id(&self) -> ::std::string::String {
            #body
        }
    }
}

fn group_id(model: &Model) -> TokenStream {
    let p = private();
    let body = match model.group {
        Group::Field(i) => {
            let field = &model.fields[i];
            let key = key_value(field);
            let ident = &field.ident;
            quote!(#key::key_string(&self.#ident))
        }
        Group::OwnId => quote!(::std::option::Option::Some(<Self as #p::SyncStorage>::sync_id(self))),
        Group::Global => quote!(::std::option::Option::None),
    };
    quote! {
        fn group_id(&self) -> ::std::option::Option<::std::string::String> {
            #body
        }
    }
}

/// Like `write_row` but as a JSON object (without `__class`).
fn to_data(model: &Model) -> TokenStream {
    let p = private();
    let sync_id = quote!(#p::serde_json::Value::String(<Self as #p::SyncStorage>::sync_id(self)));
    let mut inserts: Vec<TokenStream> = model
        .fields
        .iter()
        .map(|field| {
            let wire = &field.wire;
            let value = if field.wire == ID {
                sync_id.clone()
            } else {
                let codec = codec(field);
                let ident = &field.ident;
                quote!(#codec::to_json(&self.#ident))
            };
            quote!(data.insert(::std::string::String::from(#wire), #value);)
        })
        .collect();
    if appends_id(model) {
        inserts.push(quote!(data.insert(::std::string::String::from(#ID), #sync_id);));
    }
    quote! {
        fn to_data(&self) -> #p::JsonObject {
            let mut data = #p::JsonObject::new();
            #(#inserts)*
            data
        }
    }
}

/// Standard: `model_id` if the id column can hold it. Composite: the
/// composite id of the key fields in `data`.
fn canonical_id(model: &Model) -> TokenStream {
    let p = private();
    let name = &model.name;
    match &model.kind {
        Kind::Standard { id } => {
            let field = &model.fields[id.index];
            let key = key_value(field);
            let kind = codec_kind(field);
            let ty = &field.ty;
            let error = quote_spanned!(ty.span()=> #p::model_id_error::<#ty>(model_id, #kind));
            quote! {
                fn canonical_id(
                    model_id: &str,
                    _data: &#p::JsonObject,
                ) -> ::std::result::Result<::std::string::String, #p::MutationError> {
                    if #key::parse_key(model_id).is_none() {
                        return ::std::result::Result::Err(#error);
                    }
                    ::std::result::Result::Ok(::std::string::String::from(model_id))
                }
            }
        }
        Kind::Composite { keys } => {
            let reads = keys.iter().enumerate().map(|(i, k)| {
                let field = &model.fields[k.index];
                let var = quote::format_ident!("__key{}", i);
                let (ty, wire, codec, kind) = (&field.ty, &field.wire, codec(field), codec_kind(field));
                quote! {
                    let #var: #ty = data.get(#wire).and_then(#codec::from_json).ok_or_else(|| {
                        #p::MutationError::InvalidValue { kind: #kind, field: ::std::string::String::from(#wire) }
                    })?;
                }
            });
            let parts = keys.iter().enumerate().map(|(i, k)| {
                let ty = &model.fields[k.index].ty;
                let var = quote::format_ident!("__key{}", i);
                quote_spanned!(ty.span()=> #p::key_string::<#ty>(&#var).as_str())
            });
            quote! {
                fn canonical_id(
                    _model_id: &str,
                    data: &#p::JsonObject,
                ) -> ::std::result::Result<::std::string::String, #p::MutationError> {
                    #(#reads)*
                    ::std::result::Result::Ok(#p::composite_id(#name, &[#(#parts),*]))
                }
            }
        }
    }
}
