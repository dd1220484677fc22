//! Compile-time schema checks: a function that is never called, whose body
//! makes rustc compare every synced field with its column, every cursor
//! column with `NOT NULL`, and a custom scope function with its signature,
//! reporting at the user's tokens.
//!
//! These checks are where a field whose type does not fit its column is
//! reported: once, at the field's type. The code that uses the columns
//! (the trait impls) is guarded by the same facts as `where` clauses
//! ([`guard`]), so it adds no errors of its own about the mismatch.

use super::{column, private};
use crate::model::{Field, Group, Model};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::spanned::Spanned;

pub fn checks(model: &Model) -> TokenStream {
    let p = private();
    let reads = model.fields.iter().enumerate().map(|(i, field)| field_check(model, i, field));
    let cursors = model.kind.cursor().iter().map(|key| {
        let column = respanned_column(model, &model.fields[key.index], key.span);
        quote_spanned!(key.span=> #p::cursor_not_null(#column);)
    });
    // A custom scope has the documented signature (reported at the path,
    // before the errors of the query that uses it).
    let scope = model.scope.as_ref().map(|path| {
        let table = &model.table;
        quote_spanned! {path.span()=>
            let _: for<'s> fn(&'s #p::ScopeFilter) -> #p::Scope<'s, #table::table> = #path;
        }
    });
    quote! {
        #[allow(dead_code, reason = "compile-time schema checks of `#[derive(SyncModel)]`, never called")]
        fn __stratasync_schema_checks() {
            #(#reads)*
            #(#cursors)*
            #scope
        }
    }
}

/// The check of one field against its column: a trait of this field
/// alone, whose message names the field and the column, implemented for
/// the types that read (and, for a field whose values are sent to the
/// column, bind as) the column's SQL type, and required of the field's type
/// at the field's type. `do_not_recommend` makes rustc report the unmet
/// trait itself, once, rather than each of Diesel's traits behind it.
fn field_check(model: &Model, index: usize, field: &Field) -> TokenStream {
    let p = private();
    let (ty, ident) = (&field.ty, &field.ident);
    let column = column(model, field);
    let trait_name = format_ident!("__StratasyncField{}", index);
    let table = model.table.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("::");
    let (field_name, column_name, model_name) = (ident.unraw(), field.column.unraw(), &model.ident);
    let binds = model.binds(index);
    let (verb, traits) =
        if binds { ("read from and written to", "`FromSql` and `ToSql`") } else { ("read from", "`FromSql`") };
    let bounds = field_bounds(model, index, &quote!(T), &quote!(ST));
    let message = format!(
        "field `{field_name}` of `{model_name}` has type `{{Self}}`, which cannot be {verb} \
         its column `{table}::{column_name}` of SQL type `{{ST}}`"
    );
    let label = "not compatible with the column's SQL type `{ST}`".to_owned();
    let note = format!(
        "a synced field's Rust type must be one Diesel maps the SQL type of its column to \
         (Diesel implements {traits} for these pairs): change the field's type, or the column's type in `table!`"
    );
    let check =
        quote_spanned!(ty.span()=> <#ty as #trait_name<<#column as #p::diesel::Expression>::SqlType>>::check(););
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        trait #trait_name<ST> {
            fn check() {}
        }
        #[diagnostic::do_not_recommend]
        impl<T, ST> #trait_name<ST> for T where #(#bounds,)* {}
        #check
    }
}

/// `table::column` with every token at `span`, so an error about the
/// column points at one token (the cursor reference), not at the range
/// from the table name to the field.
fn respanned_column(model: &Model, field: &Field, span: Span) -> TokenStream {
    let mut path = model.table.clone();
    for segment in &mut path.segments {
        segment.ident.set_span(span);
    }
    if let Some(colon) = &mut path.leading_colon {
        colon.spans = [span, span];
    }
    for segment in &mut path.segments.pairs_mut() {
        if let syn::punctuated::Pair::Punctuated(_, colon) = segment {
            colon.spans = [span, span];
        }
    }
    let mut column = field.column.clone();
    column.set_span(span);
    quote_spanned!(span=> #path::#column)
}

/// The `where` clause of every generated item that uses the columns: each
/// field's type reads (and, where the code sends values of it, binds as)
/// its column's SQL type, as the checks above require.
///
/// These bounds name no generic parameter, so rustc would reject a false
/// one where it is written; under `for<'__s>` it is accepted, and the item
/// merely does not apply. Inside the item rustc takes the bounds as given:
/// a mismatched field is reported once, by the check at the field's type,
/// and not again by every query that loads or binds it. (With correct
/// types the bounds hold, and the items apply as if unbounded.)
pub fn guard(model: &Model) -> TokenStream {
    let p = private();
    let bounds = model.fields.iter().enumerate().flat_map(|(i, field)| {
        let ty = &field.ty;
        let column = column(model, field);
        let sql = quote!(<#column as #p::diesel::Expression>::SqlType);
        field_bounds(model, i, &quote!(#ty), &sql)
    });
    quote!(where #(for<'__s> #bounds,)*)
}

/// What the generated code needs of field `index`'s type `ty` and its
/// column's SQL type `sql`: the check of the field requires exactly this,
/// and the guard assumes it. It reads the column (`StaticallySizedRow`,
/// which implies `FromSqlRow`); a field whose values are sent to the
/// column binds as its type (`ToSql`, see `__private::bind`), a nullable
/// group field's inner type as the column's type without `Nullable`; and a
/// field compared with the caller's groups in one `eq_any` is bound there
/// as Diesel's `AsExpression` does, as an array.
fn field_bounds(model: &Model, index: usize, ty: &TokenStream, sql: &TokenStream) -> Vec<TokenStream> {
    let p = private();
    let pg = quote!(#p::diesel::pg::Pg);
    let mut bounds = vec![quote!(#ty: #p::diesel::deserialize::StaticallySizedRow<#sql, #pg>)];
    if model.binds(index) {
        bounds.push(quote!(#ty: #p::diesel::serialize::ToSql<#sql, #pg>));
    }
    let field = &model.fields[index];
    if field.nullable && matches!(model.group, Group::Field(g) if g == index) {
        // A group value is an `&Inner`, bound as `Some(&inner)`.
        let inner = &field.inner_ty;
        let not_null = quote!(<#sql as #p::diesel::sql_types::IntoNotNullable>::NotNullable);
        bounds.push(quote!(#sql: #p::diesel::sql_types::IntoNotNullable));
        bounds.push(quote!(#inner: #p::diesel::serialize::ToSql<#not_null, #pg>));
    }
    if model.in_group_filter(index) {
        let inner = &field.inner_ty;
        let bound = quote!(#p::diesel::internal::derives::as_expression::Bound<#sql, #inner>);
        bounds.push(quote!(#sql: #p::diesel::sql_types::SqlType + #p::diesel::expression::TypedExpressionType));
        bounds.push(quote!(#inner: #p::diesel::expression::AsExpression<#sql, Expression = #bound>));
        bounds.push(quote!(#inner: #p::diesel::serialize::ToSql<#sql, #pg>));
        bounds.push(
            quote!(::std::vec::Vec<#inner>: #p::diesel::serialize::ToSql<#p::diesel::sql_types::Array<#sql>, #pg>),
        );
    }
    bounds
}
