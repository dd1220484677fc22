//! Compile-time schema checks: a function that is never called, whose body
//! makes rustc compare every synced field with its column, every cursor
//! column with `NOT NULL`, and a custom scope function with its signature,
//! reporting at the user's tokens.

use super::{column, private};
use crate::model::{Field, Model};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

pub fn checks(model: &Model) -> TokenStream {
    let p = private();
    let reads = model.fields.iter().map(|field| {
        let ty = &field.ty;
        let column = column(model, field);
        quote_spanned!(ty.span()=> #p::column_reads_as::<_, #ty>(#column);)
    });
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
