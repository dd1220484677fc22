//! What PostgreSQL can store of a JSON value: its `text` holds no NUL
//! character, and its `jsonb` (the log's `data` column) no `\u0000` in any
//! string or key. A value that breaks this would fail in the database, so
//! the codecs refuse it first, as the transaction's own invalid value.

use serde_json::Value;

/// Whether `text` fits a PostgreSQL `text` column (no NUL character).
pub(crate) fn is_storable_text(text: &str) -> bool {
    !text.contains('\0')
}

/// Whether `value` fits PostgreSQL `jsonb`: no NUL in any string or key.
pub(crate) fn is_storable_json(value: &Value) -> bool {
    match value {
        Value::String(s) => is_storable_text(s),
        Value::Array(items) => items.iter().all(is_storable_json),
        Value::Object(map) => map.iter().all(|(k, v)| is_storable_text(k) && is_storable_json(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_anywhere_is_refused() {
        assert!(is_storable_text("a\u{1}b é"));
        assert!(!is_storable_text("a\u{0}b"));
        assert!(is_storable_json(&json!({"a": [1, "b", {"c": null}]})));
        assert!(!is_storable_json(&json!({"a": [1, "b\u{0}"]})));
        assert!(!is_storable_json(&json!({"a\u{0}": 1})));
        assert!(!is_storable_json(&json!("\u{0}")));
    }
}
