//! The 400 validation failure and its wire body (docs/protocol.md §4.0).

use serde::Serialize;
use std::fmt;

/// Where the invalid input was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    /// The query string.
    Query,
    /// The request body.
    Body,
}

/// One entry of `details`: a message about one top-level field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FieldIssue {
    /// The top-level key (`"root"` when the body is not an object).
    pub field: String,
    /// The message.
    pub message: String,
}

impl FieldIssue {
    /// An issue about `field`.
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldIssue { field: field.into(), message: message.into() }
    }
}

/// A request that failed validation: `400 {"error":"Validation failed",…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidationFailure {
    /// Query or body.
    pub source: Source,
    /// The issues, grouped by field in first-failure order.
    pub details: Vec<FieldIssue>,
    /// For `/sync/mutate`: the transaction the failure concerns, so the
    /// client drops just that one (see the [module docs](super)).
    pub client_tx_id: Option<String>,
}

impl ValidationFailure {
    /// The response body, with the transport's request id.
    pub(crate) fn body<'a>(&'a self, request_id: &'a str) -> ValidationBody<'a> {
        ValidationBody {
            client_tx_id: self.client_tx_id.as_deref(),
            details: &self.details,
            error: "Validation failed",
            request_id,
            source: self.source,
        }
    }
}

impl fmt::Display for ValidationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Validation failed")?;
        for issue in &self.details {
            write!(f, "; {}: {}", issue.field, issue.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationFailure {}

/// The JSON body of a validation failure; keys in the reference's order:
/// `{"clientTxId"?,"details","error","requestId","source"}`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ValidationBody<'a> {
    /// The transaction the failure concerns (mutate only; absent otherwise).
    #[serde(rename = "clientTxId", skip_serializing_if = "Option::is_none")]
    pub client_tx_id: Option<&'a str>,
    /// The issues.
    pub details: &'a [FieldIssue],
    /// Always `"Validation failed"`.
    pub error: &'static str,
    /// The request's id (its `X-Request-Id`, or `"req-…"`).
    #[serde(rename = "requestId")]
    pub request_id: &'a str,
    /// `"query"` or `"body"`.
    pub source: Source,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_keys_are_sorted_and_client_tx_id_optional() {
        let mut failure = ValidationFailure {
            source: Source::Body,
            details: vec![FieldIssue::new("transactions", "Client ID is required")],
            client_tx_id: None,
        };
        assert_eq!(
            serde_json::to_string(&failure.body("req-1")).unwrap(),
            r#"{"details":[{"field":"transactions","message":"Client ID is required"}],"error":"Validation failed","requestId":"req-1","source":"body"}"#
        );
        failure.client_tx_id = Some("tx-1".into());
        assert_eq!(
            serde_json::to_string(&failure.body("req-2")).unwrap(),
            r#"{"clientTxId":"tx-1","details":[{"field":"transactions","message":"Client ID is required"}],"error":"Validation failed","requestId":"req-2","source":"body"}"#
        );
    }
}
