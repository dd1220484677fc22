//! The read requests, validated: what `request` parses from a query or a
//! body and the services take (bootstrap, batch loads, delta pages).

use super::SyncId;

/// Full or partial bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootstrapKind {
    /// The client's initial state.
    #[default]
    Full,
    /// Rows of newly added groups.
    Partial,
}

/// A validated bootstrap request.
#[derive(Debug, Clone, Default)]
pub struct BootstrapParams {
    /// Full or partial.
    pub kind: BootstrapKind,
    /// The client's floor (required for partial; accepted and not needed
    /// for filtering: rows come from one snapshot, see `service::bootstrap`).
    pub first_sync_id: Option<SyncId>,
    /// Models to stream, in order (`None`: all; `Some([])`: none).
    pub only_models: Option<Vec<String>>,
    /// Requested groups (`None` or empty: all authorized).
    pub sync_groups: Option<Vec<String>>,
    /// The client's `schemaHash` (not echoed: the metadata carries the
    /// server's, `SyncEngine::schema_hash`).
    pub schema_hash: String,
}

/// One batch request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BatchItem {
    /// Rows whose `indexed_key` equals `key_value`, in the caller's groups.
    Indexed {
        /// Wire name of the key field.
        indexed_key: String,
        /// The value.
        key_value: String,
        /// The model.
        model_name: String,
    },
    /// Every row of one group the caller holds.
    Group {
        /// The group.
        group_id: String,
        /// The model.
        model_name: String,
    },
}

/// A validated batch request.
#[derive(Debug, Clone, Default)]
pub struct BatchParams {
    /// The client's floor (accepted; rows come from one snapshot, see
    /// `service::bootstrap`).
    pub first_sync_id: Option<SyncId>,
    /// The requests, answered in order.
    pub requests: Vec<BatchItem>,
}

/// A validated deltas request.
#[derive(Debug, Clone, Default)]
pub struct DeltasParams {
    /// The client's cursor.
    pub after: SyncId,
    /// Page size (`None` or 0: 1000; clamped to 5000).
    pub limit: Option<u64>,
    /// Requested groups (`None` or empty: all authorized).
    pub sync_groups: Option<Vec<String>>,
}
