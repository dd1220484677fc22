//! Wire types of the sync protocol (docs/protocol.md). Field order in each struct
//! is the key order on the wire.

mod action;
mod bootstrap;
pub(crate) mod group_change;
mod mutate;
mod params;
mod raw_json;
mod sync_id;

pub use action::{iso_millis, ActionKind, DeltaPacket, DeltasResponse, SyncAction};
pub use bootstrap::{BootstrapMetadata, ErrorLine};
pub use group_change::GROUP_CHANGE_MODEL;
pub use mutate::{MutateRequest, MutateResponse, MutationAction, TransactionInput, TxResult};
pub use params::{BatchItem, BatchParams, BootstrapKind, BootstrapParams, DeltasParams};
pub use raw_json::RawJson;
pub use sync_id::{ParseSyncIdError, SyncId};

/// A JSON object (payloads, mutation data, an action's parsed `data`).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Keeps the first occurrence of every string (group lists name each group
/// once).
pub fn dedupe(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().filter(|g| seen.insert(g.clone())).collect()
}
