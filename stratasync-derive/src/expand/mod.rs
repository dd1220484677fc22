//! Code generation, from the validated [`Model`] only.
//!
//! Everything but the model's `<Model>Changes` struct (an item of the
//! user's module, so hooks can name it) goes into `const _: () = { ... };`,
//! and names the runtime only through `::stratasync_core::__private`. Calls that depend on a field's
//! type carry the span of that type, and column paths carry the span of the
//! field (or its `column_name`), so rustc reports mismatches at the user's
//! tokens. Everything that uses the columns is guarded by the field/column
//! facts that `schema::checks` asserts (`schema::guard`), so a mismatched
//! field is one error, at its type.

mod changes;
mod reference;
mod row;
mod schema;
mod spec;
mod storage;

use crate::model::{Field, Model};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The generated code for one model.
pub fn expand(model: &Model) -> TokenStream {
    let p = private();
    let ident = &model.ident;
    let spec = spec::spec(model);
    let hooks = spec::hooks(model);
    let row = row::methods(model);
    let storage = storage::methods(model);
    let checks = schema::checks(model);
    let guard = schema::guard(model);
    let helpers = storage::helpers(model, &guard);
    let referenceable = reference::referenceable(model, &guard);
    let reference_helpers = reference::helpers(model);
    let changes = changes::definition(model);
    let changes_conversions = changes::conversions(model);
    quote! {
        #changes

        const _: () = {
            use #p::diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};

            #checks

            #[automatically_derived]
            impl #p::SyncModel for #ident #guard {
                #spec
                #hooks
            }

            #[automatically_derived]
            impl #p::SyncStorage for #ident #guard {
                #row
                #storage
            }

            #changes_conversions

            #referenceable

            #helpers
            #reference_helpers
        };
    }
}

/// The path of the runtime helpers.
fn private() -> TokenStream {
    quote!(::stratasync_core::__private)
}

/// `<Ty as Codec<kind::X>>`, spanned at the field type.
fn codec(field: &Field) -> TokenStream {
    let p = private();
    let ty = &field.ty;
    let marker = field.codec.marker();
    quote_spanned!(ty.span()=> <#ty as #p::Codec<#p::kind::#marker>>)
}

/// `decode(data, "wire", CodecKind::X, <Ty as Codec<kind::X>>::from_json)`:
/// the field of normalized `data` as `Result<Option<Ty>, MutationError>`.
fn decode(field: &Field) -> TokenStream {
    let p = private();
    let (wire, kind, codec) = (&field.wire, codec_kind(field), codec(field));
    quote!(#p::decode(data, #wire, #kind, #codec::from_json))
}

/// `<Ty as KeyValue>`, spanned at the field type.
fn key_value(field: &Field) -> TokenStream {
    let p = private();
    let ty = &field.ty;
    quote_spanned!(ty.span()=> <#ty as #p::KeyValue>)
}

/// `CodecKind::X` of a field.
fn codec_kind(field: &Field) -> TokenStream {
    let p = private();
    let variant = field.codec.variant();
    quote!(#p::CodecKind::#variant)
}

/// `table::column` of a field; the column ident keeps the user's span.
fn column(model: &Model, field: &Field) -> TokenStream {
    let table = &model.table;
    let column = &field.column;
    quote!(#table::#column)
}

/// `column = value` for a value of `field`'s type (`T` or `&T`), bound as
/// a parameter of the column's SQL type (`__private::bind`: only
/// `T: ToSql<SqlType, Pg>` is required, which the guard provides).
fn eq_value(model: &Model, field: &Field, value: TokenStream) -> TokenStream {
    let p = private();
    let column = column(model, field);
    quote!(#column.eq(#p::bind(#column, #value)))
}

/// `column = value` for a `&Inner` value of a field whose type may be
/// `Option<Inner>` (a group value).
fn eq_inner(model: &Model, field: &Field, value: TokenStream) -> TokenStream {
    if field.nullable {
        eq_value(model, field, quote!(::std::option::Option::Some(#value)))
    } else {
        eq_value(model, field, value)
    }
}

/// `s` as a JSON string literal (for the constant parts of a row).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("Task"), "\"Task\"");
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
