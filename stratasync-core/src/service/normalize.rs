//! Payload → `data` normalization for inserts and updates (docs/protocol.md §5.5),
//! driven by the model's [`FieldSpec`]s.
//!
//! Unlike the reference, every codec checks the JSON type of its input
//! (docs/protocol.md §10 #15): a boolean sent to a string field is
//! `Invalid string value for <field>`, not a stored boolean. Text the
//! database could not store (a NUL character in a string, or anywhere in a
//! JSON value) is refused here too, before any hook or statement sees it;
//! ranges that depend on the column's type (integers, dates) are checked
//! when the typed codec reads the value, still before the statement runs.

use crate::codec::time::{date_only_ms_from_json, instant_ms_from_json, now_ms};
use crate::codec::{is_storable_json, is_storable_text, parse_canonical_uuid};
use crate::error::MutationError;
use crate::model::{CodecKind, FieldSpec, JsonObject, ModelKind, ModelSpec};
use serde_json::Value;

/// Builds the `data` of an insert: `{"id": model_id}` first for standard
/// models, then every insert field in spec order. An absent or null value
/// becomes "now" (`date_now`), the field's default, `null` (nullable
/// fields), `0` (numbers), or is left out so the column default applies.
pub(super) fn normalize_insert(
    spec: &ModelSpec,
    model_id: &str,
    payload: &JsonObject,
) -> Result<JsonObject, MutationError> {
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
                Value::from(ms - ms.rem_euclid(crate::codec::time::DAY_MS))
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
pub(super) fn normalize_update(spec: &ModelSpec, payload: &JsonObject) -> Result<JsonObject, MutationError> {
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
        CodecKind::String => value.as_str().filter(|s| is_storable_text(s)).map(|_| value.clone()),
        CodecKind::Uuid => value.as_str().and_then(parse_canonical_uuid).map(|_| value.clone()),
        CodecKind::Number => value.is_number().then(|| value.clone()),
        CodecKind::Bool => value.is_boolean().then(|| value.clone()),
        CodecKind::Instant => instant_ms_from_json(value).map(Value::from),
        CodecKind::DateOnly => date_only_ms_from_json(value).map(Value::from),
        CodecKind::Json => is_storable_json(value).then(|| value.clone()),
    };
    normal.ok_or_else(|| MutationError::InvalidValue { kind: field.codec, field: field.wire.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ActionSet, GroupKey};
    use serde_json::json;

    const fn field(wire: &'static str, codec: CodecKind, nullable: bool) -> FieldSpec {
        FieldSpec { wire, codec, nullable, insert: true, update: true, date_now: false, default: None }
    }

    static FIELDS: [FieldSpec; 8] = [
        field("title", CodecKind::String, false),
        field("note", CodecKind::String, true),
        field("rank", CodecKind::Number, false),
        field("due", CodecKind::DateOnly, true),
        field("done", CodecKind::Instant, true),
        FieldSpec { date_now: true, update: false, ..field("created", CodecKind::Instant, false) },
        FieldSpec { default: Some(|| json!("blue")), ..field("color", CodecKind::String, false) },
        field("extra", CodecKind::Json, true),
    ];

    static SPEC: ModelSpec = ModelSpec {
        name: "Thing",
        kind: ModelKind::Standard,
        actions: ActionSet::EMPTY,
        group: GroupKey::Global,
        fields: &FIELDS,
        indexed_keys: &[],
        id_field: Some("id"),
        key_fields: &[],
        archive_field: None,
        hooks: false,
    };

    fn obj(v: serde_json::Value) -> JsonObject {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn insert_fills_defaults_in_spec_order() {
        let data = normalize_insert(&SPEC, "t1", &obj(json!({"title": "x", "extra": 1}))).unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "title", "note", "rank", "due", "done", "created", "color", "extra"]);
        assert_eq!(data["note"], json!(null));
        assert_eq!(data["rank"], json!(0));
        assert_eq!(data["color"], json!("blue"));
        assert!(data["created"].as_i64().unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn absent_plain_strings_are_left_to_the_column_default() {
        let data = normalize_insert(&SPEC, "t1", &obj(json!({}))).unwrap();
        assert!(!data.contains_key("title"));
    }

    #[test]
    fn values_are_type_checked() {
        let err = |payload| normalize_insert(&SPEC, "t1", &obj(payload)).unwrap_err().to_string();
        assert_eq!(err(json!({"title": false})), "Invalid string value for title");
        assert_eq!(err(json!({"rank": "1"})), "Invalid number value for rank");
        assert_eq!(err(json!({"due": 86_400_001})), "Invalid dateOnly value for due");
        assert_eq!(err(json!({"due": 0.5})), "Invalid dateOnly value for due");
        assert_eq!(err(json!({"done": "2024-01-01T00:00:00Z"})), "Invalid instant value for done");
        assert_eq!(err(json!({"done": 8.64e15 + 2.0})), "Invalid instant value for done");
        assert_eq!(err(json!({"title": "a\u{0}b"})), "Invalid string value for title");
        assert_eq!(err(json!({"note": "\u{0}"})), "Invalid string value for note");
        assert_eq!(err(json!({"extra": {"k": ["\u{0}"]}})), "Invalid json value for extra");
        assert_eq!(err(json!({"extra": {"\u{0}": 1}})), "Invalid json value for extra");
        let update = normalize_update(&SPEC, &obj(json!({"title": "\u{0}"}))).unwrap_err();
        assert_eq!(update.to_string(), "Invalid string value for title");
        let ok = normalize_insert(&SPEC, "t1", &obj(json!({"done": -1.9, "due": -86_400_000}))).unwrap();
        assert_eq!(ok["done"], json!(-1), "fractions truncate toward zero");
        assert_eq!(ok["due"], json!(-86_400_000), "days before 1970 are allowed");
    }

    #[test]
    fn update_keeps_payload_order_and_nulls_only_where_allowed() {
        let data = normalize_update(&SPEC, &obj(json!({"rank": 2, "created": 5, "note": null, "title": "t"}))).unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(keys, ["rank", "note", "title"], "non-update fields are ignored");
        assert_eq!(data["note"], json!(null));
        let err = normalize_update(&SPEC, &obj(json!({"title": null}))).unwrap_err();
        assert_eq!(err.to_string(), "Invalid string value for title");
        assert_eq!(
            normalize_update(&SPEC, &obj(json!({"done": null}))).unwrap()["done"],
            json!(null),
            "no now default on update"
        );
    }

    #[test]
    fn uuid_fields_take_only_the_canonical_spelling() {
        static UUIDS: [FieldSpec; 1] = [field("owner", CodecKind::Uuid, false)];
        let spec = ModelSpec { fields: &UUIDS, ..SPEC };
        let canonical = "0a0a0a0a-0000-4000-8000-000000000001";
        let data = normalize_insert(&spec, "t1", &obj(json!({"owner": canonical}))).unwrap();
        assert_eq!(data["owner"], json!(canonical));
        for other in ["0A0A0A0A-0000-4000-8000-000000000001", "urn:uuid:0a0a0a0a-0000-4000-8000-000000000001"] {
            let err = normalize_insert(&spec, "t1", &obj(json!({"owner": other}))).unwrap_err();
            assert_eq!(err.to_string(), "Invalid uuid value for owner", "{other}");
            let err = normalize_update(&spec, &obj(json!({"owner": other}))).unwrap_err();
            assert_eq!(err.to_string(), "Invalid uuid value for owner", "{other}");
        }
    }
}
