//! Payload → `data` normalization for inserts and updates (PROTOCOL.md §5.5),
//! driven by the model's [`FieldSpec`]s.
//!
//! Unlike the reference, every codec checks the JSON type of its input
//! (PROTOCOL.md §10 #15): a boolean sent to a string field is
//! `Invalid string value for <field>`, not a stored boolean.

use super::time::{date_only_ms_from_json, instant_ms_from_json, now_ms};
use crate::error::MutationError;
use crate::model::{CodecKind, FieldSpec, JsonObject, ModelKind, ModelSpec};
use serde_json::Value;

/// Builds the `data` of an insert: `{"id": model_id}` first for standard
/// models, then every insert field in spec order. An absent or null value
/// becomes "now" (`date_now`), the field's default, `null` (nullable
/// fields), `0` (numbers), or is left out so the column default applies.
pub fn normalize_insert(spec: &ModelSpec, model_id: &str, payload: &JsonObject) -> Result<JsonObject, MutationError> {
    let mut data = JsonObject::new();
    if spec.kind == ModelKind::Standard {
        data.insert("id".to_owned(), Value::String(model_id.to_owned()));
    }
    for field in spec.fields.iter().filter(|f| f.insert && f.wire != "id") {
        let value = match payload.get(field.wire) {
            None | Some(Value::Null) => absent_insert_value(field),
            Some(v) => Some(check(field, v)?),
        };
        if let Some(value) = value {
            data.insert(field.wire.to_owned(), value);
        }
    }
    Ok(data)
}

fn absent_insert_value(field: &FieldSpec) -> Option<Value> {
    if field.date_now {
        return Some(match field.codec {
            CodecKind::DateOnly => {
                let ms = now_ms();
                Value::from(ms - ms.rem_euclid(super::time::DAY_MS))
            }
            _ => Value::from(now_ms()),
        });
    }
    if let Some(default) = field.default {
        return Some(default());
    }
    if field.nullable {
        return Some(Value::Null);
    }
    (field.codec == CodecKind::Number).then(|| Value::from(0))
}

/// Builds the `data` of an update: the payload keys that are update fields,
/// in payload order, each checked by its codec (`null` only for nullable
/// fields). Other keys are ignored.
pub fn normalize_update(spec: &ModelSpec, payload: &JsonObject) -> Result<JsonObject, MutationError> {
    let mut data = JsonObject::new();
    for (key, value) in payload {
        let Some(field) = spec.field(key).filter(|f| f.update) else {
            continue;
        };
        let value = if value.is_null() && field.nullable { Value::Null } else { check(field, value)? };
        data.insert(field.wire.to_owned(), value);
    }
    Ok(data)
}

/// Checks one present value against its codec and returns its normal form.
fn check(field: &FieldSpec, value: &Value) -> Result<Value, MutationError> {
    let normal = match field.codec {
        CodecKind::String => value.is_string().then(|| value.clone()),
        CodecKind::Uuid => value
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(|u| Value::String(u.hyphenated().to_string())),
        CodecKind::Number => value.is_number().then(|| value.clone()),
        CodecKind::Bool => value.is_boolean().then(|| value.clone()),
        CodecKind::Instant => instant_ms_from_json(value).map(Value::from),
        CodecKind::DateOnly => date_only_ms_from_json(value).map(Value::from),
        CodecKind::Json => Some(value.clone()),
    };
    normal.ok_or_else(|| MutationError::InvalidValue { kind: field.codec, field: field.wire.to_owned() })
}
