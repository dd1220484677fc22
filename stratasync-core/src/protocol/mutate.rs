//! `POST /sync/mutate` request and response (docs/protocol.md §4.4).

use super::JsonObject;
use super::{ActionKind, SyncId};
use serde::{Deserialize, Serialize};

/// The action names a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MutationAction {
    /// `INSERT`
    Insert,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
    /// `ARCHIVE`
    Archive,
    /// `UNARCHIVE`
    Unarchive,
}

impl From<MutationAction> for ActionKind {
    fn from(a: MutationAction) -> Self {
        match a {
            MutationAction::Insert => ActionKind::Insert,
            MutationAction::Update => ActionKind::Update,
            MutationAction::Delete => ActionKind::Delete,
            MutationAction::Archive => ActionKind::Archive,
            MutationAction::Unarchive => ActionKind::Unarchive,
        }
    }
}

/// One client transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionInput {
    /// The action.
    pub action: MutationAction,
    /// The device id (idempotency key, part 1).
    pub client_id: String,
    /// The transaction id (idempotency key, part 2).
    pub client_tx_id: String,
    /// The target's id (for composite models, whatever the client computed).
    pub model_id: String,
    /// The model's wire name.
    pub model_name: String,
    /// The payload.
    pub payload: JsonObject,
}

/// A batch of transactions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MutateRequest {
    /// An opaque batch id.
    pub batch_id: String,
    /// The transactions, processed in order.
    pub transactions: Vec<TransactionInput>,
}

/// The result of one transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TxResult {
    /// Committed (or a duplicate of a committed transaction).
    Success {
        /// The transaction id.
        #[serde(rename = "clientTxId")]
        client_tx_id: String,
        /// Always `true`.
        success: bool,
        /// The committed sync id.
        #[serde(rename = "syncId")]
        sync_id: SyncId,
        /// After-mutation hook failures.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// Rolled back.
    Failure {
        /// The transaction id.
        #[serde(rename = "clientTxId")]
        client_tx_id: String,
        /// A client-safe message.
        error: String,
        /// Always `false`.
        success: bool,
    },
}

impl TxResult {
    /// A success result.
    pub fn success(client_tx_id: String, sync_id: SyncId, warnings: Vec<String>) -> Self {
        TxResult::Success { client_tx_id, success: true, sync_id, warnings }
    }

    /// A failure result.
    pub fn failure(client_tx_id: String, error: String) -> Self {
        TxResult::Failure { client_tx_id, error, success: false }
    }

    /// The committed sync id, for successes.
    pub fn sync_id(&self) -> Option<SyncId> {
        match self {
            TxResult::Success { sync_id, .. } => Some(*sync_id),
            TxResult::Failure { .. } => None,
        }
    }
}

/// The body of a mutate response.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MutateResponse {
    /// The largest successful sync id, or `"0"`.
    pub last_sync_id: SyncId,
    /// One result per transaction, in request order.
    pub results: Vec<TxResult>,
    /// Whether every transaction succeeded.
    pub success: bool,
}

impl MutateResponse {
    /// Summarizes per-transaction results.
    pub fn from_results(results: Vec<TxResult>) -> Self {
        let last_sync_id = results.iter().filter_map(TxResult::sync_id).max().unwrap_or_default();
        let success = results.iter().all(|r| r.sync_id().is_some());
        MutateResponse { last_sync_id, results, success }
    }
}
