//! `#[derive(SyncModel)]` (in progress).
use proc_macro::TokenStream;

/// Derives `stratasync_core::SyncModel`.
#[proc_macro_derive(SyncModel, attributes(sync))]
pub fn derive_sync_model(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
