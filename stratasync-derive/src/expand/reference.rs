//! Foreign references within a group: the `Referenceable` impl of a model
//! that can be referenced, and the checks of a model's `references = ...`
//! fields (see `stratasync_core::__private::Referenceable`).

use super::{column, eq_inner, eq_value, private};
use crate::model::{Field, Group, Kind, Model};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens as _};
use syn::spanned::Spanned;

/// `impl Referenceable`, for a model with an id field grouped by a field
/// (other than the id) or global: `SELECT id … WHERE id = $1 AND group = $2
/// FOR KEY SHARE`.
pub fn referenceable(model: &Model, guard: &TokenStream) -> TokenStream {
    let p = private();
    let Kind::Standard { id } = &model.kind else { return TokenStream::new() };
    let id_field = &model.fields[id.index];
    let (group_ty, group_filter) = match model.group {
        Group::Field(g) if g != id.index => {
            let field = &model.fields[g];
            let filter = eq_inner(model, field, quote!(group));
            (field.inner_ty.clone(), quote!(.filter(#filter)))
        }
        Group::Global => (syn::parse_quote!(#p::Global), TokenStream::new()),
        Group::Field(_) | Group::OwnId => return TokenStream::new(),
    };
    let (ident, table, id_ty, id_inner) = (&model.ident, &model.table, &id_field.ty, &id_field.inner_ty);
    let id_column = column(model, id_field);
    let id_filter = eq_value(model, id_field, quote!(id));
    let group = if group_filter.is_empty() { quote!(_group) } else { quote!(group) };
    quote! {
        #[automatically_derived]
        impl #p::Referenceable for #ident #guard {
            type Id = #id_inner;
            type Group = #group_ty;

            fn lock_in_group<'a>(
                conn: &'a mut #p::Conn,
                id: &'a #id_inner,
                #group: &'a #group_ty,
            ) -> #p::BoxFuture<'a, #p::diesel::QueryResult<bool>> {
                #p::boxed(async move {
                    let query = #table::table
                        .select(#id_column)
                        .filter(#id_filter)
                        #group_filter
                        .for_key_share();
                    #p::diesel_async::RunQueryDsl::get_result::<#id_ty>(query, conn)
                        .await
                        .optional()
                        .map(|row| row.is_some())
                })
            }
        }
    }
}

/// The checking function of a `references` field, called by insert and
/// update (one call site, so a reference that cannot work is one error,
/// at the user's `references = ...`).
fn helper_name(field: &Field) -> Ident {
    format_ident!("__stratasync_reference_{}", field.ident)
}

/// The type of this model's group value in a reference check.
fn group_type(model: &Model) -> TokenStream {
    let p = private();
    match model.group {
        Group::Field(g) => {
            let ty = &model.fields[g].inner_ty;
            quote!(#ty)
        }
        // Checked: `group = own` models reference nothing.
        Group::OwnId | Group::Global => quote!(#p::Global),
    }
}

/// One checking function per `references` field.
pub fn helpers(model: &Model) -> TokenStream {
    let p = private();
    let group_ty = group_type(model);
    let helpers = model.fields.iter().filter_map(|field| {
        let path = field.references.as_ref()?;
        let name = helper_name(field);
        let ty = &field.inner_ty;
        // Every token of the call at the user's path (the runtime's path
        // written out, not `#p`, whose tokens carry the macro's span), and
        // the types given, not inferred: rustc then reports an unusable
        // reference with the traits' own messages, at `references = ...`.
        let check = quote_spanned! {path.span()=>
            ::stratasync_core::__private::check_reference::<#path, #ty, #group_ty>(conn, id, group)
        };
        Some(quote! {
            async fn #name(
                conn: &mut #p::Conn,
                id: &#ty,
                group: &#group_ty,
            ) -> ::std::result::Result<(), #p::MutationError> {
                #check.await
            }
        })
    });
    quote!(#(#helpers)*)
}

/// `Option<&Inner>` of a decoded `Option<FieldType>` variable.
fn present(var: &TokenStream, field: &Field) -> TokenStream {
    if field.nullable {
        quote!(#var.as_ref().and_then(::std::option::Option::as_ref))
    } else {
        quote!(#var.as_ref())
    }
}

/// The checks of the `references` fields among `written` (decoded into
/// `__v0`, `__v1`, … in that order), against `group`, an expression of type
/// `Option<&GroupType>`. A field that is absent or null references nothing.
pub fn checks(model: &Model, written: &[&Field], group: TokenStream) -> TokenStream {
    let p = private();
    let checks: Vec<TokenStream> = written
        .iter()
        .enumerate()
        .filter(|(_, field)| field.references.is_some())
        .map(|(i, field)| {
            let value = present(&format_ident!("__v{}", i).into_token_stream(), field);
            let name = helper_name(field);
            quote! {
                if let ::std::option::Option::Some(__reference) = #value {
                    let ::std::option::Option::Some(__group) = __group else {
                        return ::std::result::Result::Err(#p::MutationError::MissingGroup);
                    };
                    #name(conn, __reference, __group).await?;
                }
            }
        })
        .collect();
    if checks.is_empty() {
        return TokenStream::new();
    }
    let group_ty = group_type(model);
    quote! {
        let __group: ::std::option::Option<&#group_ty> = #group;
        #(#checks)*
    }
}

/// This model's group in an insert: the decoded group field among
/// `written`, as `Option<&GroupType>`.
pub fn insert_group(model: &Model, written: &[&Field]) -> TokenStream {
    let p = private();
    match model.group {
        Group::Field(g) => {
            let group = &model.fields[g];
            match written.iter().position(|f| f.ident == group.ident) {
                Some(i) => present(&format_ident!("__v{}", i).into_token_stream(), group),
                None => quote!(::std::option::Option::None),
            }
        }
        Group::OwnId | Group::Global => quote!(::std::option::Option::Some(&#p::Global)),
    }
}

/// This model's group in an update: the target row's.
pub fn update_group(model: &Model) -> TokenStream {
    let p = private();
    match model.group {
        Group::Field(g) => {
            let field = &model.fields[g];
            let ident = &field.ident;
            if field.nullable {
                quote!(target.#ident.as_ref())
            } else {
                quote!(::std::option::Option::Some(&target.#ident))
            }
        }
        Group::OwnId | Group::Global => quote!(::std::option::Option::Some(&#p::Global)),
    }
}
