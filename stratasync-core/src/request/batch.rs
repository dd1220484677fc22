//! `POST /sync/batch` body (docs/protocol.md §4.2).

use super::failure::{Source, ValidationFailure};
use super::issues::{expected, required_string, type_name, Issues, ItemIssue, TOO_SMALL_STRING};
use crate::protocol::SyncId;
use crate::protocol::{BatchItem, BatchParams};
use serde_json::{Map, Value};

/// The most requests one batch may hold.
pub const MAX_BATCH_REQUESTS: usize = 100;

const FIRST_SYNC_ID_NUMERIC: &str = "firstSyncId must be a numeric string";
const AT_LEAST_ONE: &str = "At least one request is required";
const AT_MOST: &str = "At most 100 requests are allowed";
const MODEL_NAME_REQUIRED: &str = "Model name is required";
const GROUP_ID_REQUIRED: &str = "Group ID is required";

/// Validates a batch body (`None`: the request had no body).
///
/// | field | rule | message |
/// |---|---|---|
/// | body | an object | `Invalid input: expected object, received <type>` (`root`) |
/// | `firstSyncId` | optional sync id string | `firstSyncId must be a numeric string` |
/// | `requests` | array of 1–100 items | `At least one request is required` / `At most 100 requests are allowed` |
/// | indexed item | `indexedKey`, `keyValue`, `modelName` non-empty strings | `Model name is required`, default messages otherwise |
/// | group item | `groupId`, `modelName` non-empty strings | `Group ID is required`, `Model name is required` |
///
/// An item is tried as indexed, then as group. When both fail, the issues
/// of the one shape that failed on content only (an empty string) are
/// reported; otherwise the item gets `Invalid input`. An item with both
/// `indexedKey` and `keyValue` is indexed; its `groupId` is ignored.
pub(crate) fn batch_body(body: Option<Value>) -> Result<BatchParams, ValidationFailure> {
    let mut issues = Issues::new();
    let Some(Value::Object(obj)) = &body else {
        issues.abort("root", expected("object", type_name(body.as_ref())));
        return Err(issues.into_failure(Source::Body));
    };

    let first_sync_id = match obj.get("firstSyncId") {
        None => None,
        Some(Value::String(raw)) => raw.parse::<SyncId>().map_or_else(
            |_| {
                issues.soft("firstSyncId", FIRST_SYNC_ID_NUMERIC);
                None
            },
            Some,
        ),
        Some(other) => {
            issues.abort("firstSyncId", expected("string", type_name(Some(other))));
            None
        }
    };

    let mut requests = Vec::new();
    match obj.get("requests") {
        Some(Value::Array(items)) => {
            let mark = issues.mark();
            // Items past the limit are not examined: the answer's size stays
            // bounded whatever the body holds (the count is refused anyway).
            for (index, item) in items.iter().enumerate().take(MAX_BATCH_REQUESTS + 1) {
                match batch_item(item) {
                    Ok(item) => requests.push(item),
                    Err(found) => issues.item("requests", index, found),
                }
            }
            if !issues.aborted_since(mark) {
                if items.is_empty() {
                    issues.soft("requests", AT_LEAST_ONE);
                } else if items.len() > MAX_BATCH_REQUESTS {
                    issues.soft("requests", AT_MOST);
                }
            }
        }
        other => issues.abort("requests", expected("array", type_name(other))),
    }

    if !issues.is_empty() {
        return Err(issues.into_failure(Source::Body));
    }
    Ok(BatchParams { first_sync_id, requests })
}

/// One item: indexed if that shape fits, else group, else the issues.
fn batch_item(item: &Value) -> Result<BatchItem, Vec<ItemIssue>> {
    let Value::Object(obj) = item else {
        return Err(vec![ItemIssue::abort("Invalid input")]);
    };
    let indexed = indexed_item(obj);
    let indexed_issues = match indexed {
        Ok(item) => return Ok(item),
        Err(issues) => issues,
    };
    let group_issues = match group_item(obj) {
        Ok(item) => return Ok(item),
        Err(issues) => issues,
    };
    let content_only = |issues: &[ItemIssue]| issues.iter().all(|i| !i.aborting);
    match (content_only(&indexed_issues), content_only(&group_issues)) {
        (true, false) => Err(indexed_issues),
        (false, true) => Err(group_issues),
        _ => Err(vec![ItemIssue::abort("Invalid input")]),
    }
}

fn indexed_item(obj: &Map<String, Value>) -> Result<BatchItem, Vec<ItemIssue>> {
    let mut issues = Vec::new();
    let indexed_key = required_string(obj, "indexedKey", TOO_SMALL_STRING, &mut issues);
    let key_value = required_string(obj, "keyValue", TOO_SMALL_STRING, &mut issues);
    let model_name = required_string(obj, "modelName", MODEL_NAME_REQUIRED, &mut issues);
    match (indexed_key, key_value, model_name) {
        (Some(indexed_key), Some(key_value), Some(model_name)) if issues.is_empty() => {
            Ok(BatchItem::Indexed { indexed_key, key_value, model_name })
        }
        _ => Err(issues),
    }
}

fn group_item(obj: &Map<String, Value>) -> Result<BatchItem, Vec<ItemIssue>> {
    let mut issues = Vec::new();
    let group_id = required_string(obj, "groupId", GROUP_ID_REQUIRED, &mut issues);
    let model_name = required_string(obj, "modelName", MODEL_NAME_REQUIRED, &mut issues);
    match (group_id, model_name) {
        (Some(group_id), Some(model_name)) if issues.is_empty() => Ok(BatchItem::Group { group_id, model_name }),
        _ => Err(issues),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(body: Option<Value>) -> Vec<(String, String)> {
        let failure = batch_body(body).unwrap_err();
        assert_eq!(failure.source, Source::Body);
        assert_eq!(failure.client_tx_id, None);
        failure.details.into_iter().map(|d| (d.field, d.message)).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(f, m)| ((*f).to_owned(), (*m).to_owned())).collect()
    }

    #[test]
    fn parses_both_shapes() {
        let p = batch_body(Some(json!({
            "firstSyncId": "42",
            "extra": true,
            "requests": [
                {"indexedKey": "taskId", "keyValue": "t1", "modelName": "Comment"},
                {"groupId": "w1", "modelName": "Task"},
                {"indexedKey": "id", "keyValue": "x", "modelName": "Task", "groupId": "ignored"},
            ]
        })))
        .unwrap();
        assert_eq!(p.first_sync_id, Some(SyncId(42)));
        assert_eq!(
            p.requests,
            [
                BatchItem::Indexed {
                    indexed_key: "taskId".into(),
                    key_value: "t1".into(),
                    model_name: "Comment".into()
                },
                BatchItem::Group { group_id: "w1".into(), model_name: "Task".into() },
                BatchItem::Indexed { indexed_key: "id".into(), key_value: "x".into(), model_name: "Task".into() },
            ]
        );
    }

    #[test]
    fn root_must_be_an_object() {
        for (body, kind) in [
            (None, "undefined"),
            (Some(json!(null)), "null"),
            (Some(json!([])), "array"),
            (Some(json!("text")), "string"),
            (Some(json!(1)), "number"),
            (Some(json!(true)), "boolean"),
        ] {
            let message = format!("Invalid input: expected object, received {kind}");
            assert_eq!(messages(body), pairs(&[("root", &message)]));
        }
    }

    #[test]
    fn field_messages() {
        assert_eq!(
            messages(Some(json!({}))),
            pairs(&[("requests", "Invalid input: expected array, received undefined")])
        );
        assert_eq!(messages(Some(json!({"requests": []}))), pairs(&[("requests", AT_LEAST_ONE)]));
        let many: Vec<Value> = (0..101).map(|_| json!({"groupId": "g", "modelName": "M"})).collect();
        assert_eq!(messages(Some(json!({"requests": many}))), pairs(&[("requests", AT_MOST)]));
        assert_eq!(
            messages(Some(json!({"firstSyncId": 5, "requests": {}}))),
            pairs(&[
                ("firstSyncId", "Invalid input: expected string, received number"),
                ("requests", "Invalid input: expected array, received object"),
            ])
        );
        for bad in ["x", "", "١", "9223372036854775808"] {
            assert_eq!(
                messages(Some(json!({"firstSyncId": bad, "requests": [{"groupId": "g", "modelName": "M"}]}))),
                pairs(&[("firstSyncId", FIRST_SYNC_ID_NUMERIC)])
            );
        }
    }

    #[test]
    fn item_messages() {
        let one = |item: Value| messages(Some(json!({"requests": [item]})));
        assert_eq!(one(json!({"groupId": "", "modelName": "Task"})), pairs(&[("requests", GROUP_ID_REQUIRED)]));
        assert_eq!(one(json!({"groupId": "g", "modelName": ""})), pairs(&[("requests", MODEL_NAME_REQUIRED)]));
        assert_eq!(
            one(json!({"indexedKey": "id", "keyValue": "x", "modelName": ""})),
            pairs(&[("requests", MODEL_NAME_REQUIRED)])
        );
        assert_eq!(
            one(json!({"indexedKey": "", "keyValue": "", "modelName": "M"})),
            pairs(&[("requests", TOO_SMALL_STRING), ("requests", TOO_SMALL_STRING)])
        );
        // Both shapes fail on content only, or both on types: a failed union.
        assert_eq!(
            one(json!({"indexedKey": "id", "keyValue": "x", "modelName": "", "groupId": "g"})),
            pairs(&[("requests", "Invalid input")])
        );
        assert_eq!(one(json!({})), pairs(&[("requests", "Invalid input")]));
        assert_eq!(one(json!("Task")), pairs(&[("requests", "Invalid input")]));
        assert_eq!(one(json!({"groupId": 1, "modelName": "M"})), pairs(&[("requests", "Invalid input")]));
        // A content-only item failure still lets the length check run.
        let mut many: Vec<Value> = (0..101).map(|_| json!({"groupId": "g", "modelName": "M"})).collect();
        many[3] = json!({"groupId": "", "modelName": "M"});
        assert_eq!(
            messages(Some(json!({"requests": many}))),
            pairs(&[("requests", GROUP_ID_REQUIRED), ("requests", AT_MOST)])
        );
        // A type failure in an item skips it.
        many[3] = json!({});
        assert_eq!(messages(Some(json!({"requests": many}))), pairs(&[("requests", "Invalid input")]));
    }
}

#[cfg(test)]
mod example {
    /// The function's contract in a few lines.
    #[test]
    fn batch_body_example() {
        use crate::request::batch_body;
        use serde_json::json;
        let params = batch_body(Some(json!({"requests": [{"groupId": "w1", "modelName": "Task"}]}))).unwrap();
        assert_eq!(params.requests.len(), 1);
        let failure = batch_body(Some(json!({"requests": []}))).unwrap_err();
        assert_eq!(failure.details[0].message, "At least one request is required");
    }
}
