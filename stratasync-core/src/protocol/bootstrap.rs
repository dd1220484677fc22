//! Bootstrap NDJSON lines (docs/protocol.md §4.1).

use super::SyncId;
use serde::Serialize;

/// The first line of a bootstrap stream.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapMetadata {
    /// The snapshot's sync id.
    pub last_sync_id: SyncId,
    /// Row count per requested model, in request order.
    pub returned_models_count: serde_json::Map<String, serde_json::Value>,
    /// The server's schema hash (`SyncEngine::schema_hash`).
    pub schema_hash: String,
    /// The effective groups.
    pub subscribed_sync_groups: Vec<String>,
}

/// `{"message":…,"type":"error"}`: the last line of a failed stream, and the
/// WebSocket error frame without a code.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorLine<'a> {
    /// A client-safe message.
    pub message: &'a str,
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl<'a> ErrorLine<'a> {
    /// An error line with this message.
    pub fn new(message: &'a str) -> Self {
        ErrorLine { message, kind: "error" }
    }
}
