//! `#[derive(SyncModel)]` for StrataSync: turns a Diesel model into a sync
//! model. Use it through `stratasync_core` (feature `derive`, on by
//! default), which re-exports it next to the trait it implements.
//!
//! The crate only parses, validates and generates code:
//! `attr` (the grammar) → `check` (the rules, all errors at once, producing
//! a `model::Model`) → `expand` (code generation).

mod attr;
mod case;
mod check;
mod errors;
mod expand;
mod model;
mod suggest;

use proc_macro::TokenStream;

#[doc = include_str!("derive.md")]
#[proc_macro_derive(SyncModel, attributes(sync))]
pub fn derive_sync_model(input: TokenStream) -> TokenStream {
    derive_sync_model_inner(input.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// The derive on `proc_macro2` tokens (callable from unit tests).
fn derive_sync_model_inner(input: proc_macro2::TokenStream) -> syn::Result<proc_macro2::TokenStream> {
    let input: syn::DeriveInput = syn::parse2(input)?;
    let model = check::model(&input)?;
    Ok(expand::expand(&model))
}

#[cfg(test)]
mod tests {
    use super::derive_sync_model_inner;

    #[test]
    fn expands_a_standard_model() {
        let out = derive_sync_model_inner(quote::quote! {
            #[diesel(table_name = tasks)]
            #[sync(name = "Task", group = workspace_id, actions(insert, update, delete), batch_keys(id, workspace_id))]
            struct Task {
                id: Uuid,
                #[sync(insert)]
                workspace_id: Uuid,
                #[sync(insert, update)]
                title: String,
            }
        })
        .unwrap()
        .to_string();
        let (changes, rest) = out.split_once("const _ : () =").expect("the const block");
        assert!(changes.starts_with("# [doc ="), "{out}");
        assert!(changes.contains("struct TaskChanges { # [doc ="), "{out}");
        assert!(!changes.contains(" id :"), "a standard model's id is no change: {out}");
        assert!(rest.contains("type Changes = TaskChanges ;"), "{out}");
        assert!(out.contains(r#"b"{\"__class\":\"Task\",\"id\":""#), "{out}");
    }

    #[test]
    fn reports_errors_as_compile_errors() {
        let err = derive_sync_model_inner(quote::quote! {
            #[sync(group = global)]
            struct Task { id: Uuid }
        })
        .unwrap_err();
        assert!(err.to_string().contains("missing the Diesel table"), "{err}");
    }
}
