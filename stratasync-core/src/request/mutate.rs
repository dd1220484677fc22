//! `POST /sync/mutate` body (docs/protocol.md §4.4).

use super::failure::{Source, ValidationFailure};
use super::issues::{expected, required_string, type_name, Issues, ItemIssue};
use crate::protocol::{MutateRequest, MutationAction, TransactionInput};
use serde_json::Value;

/// The most transactions one request may hold.
pub const MAX_TRANSACTIONS: usize = 100;

/// The most characters (Unicode scalar values) of a `batchId`, `clientId`
/// or `clientTxId`. The pair `(clientId, clientTxId)` is a key of the log's
/// unique index, whose entries PostgreSQL bounds (about 2.7 KB): 255
/// characters each stay below it in any script.
pub const MAX_ID_CHARS: usize = 255;

const BATCH_ID_REQUIRED: &str = "Batch ID is required";
const AT_LEAST_ONE: &str = "At least one transaction is required";
const AT_MOST: &str = "At most 100 transactions are allowed";
const ACTION_OPTIONS: &str = r#"Invalid option: expected one of "INSERT"|"UPDATE"|"DELETE"|"ARCHIVE"|"UNARCHIVE""#;
const CLIENT_ID_REQUIRED: &str = "Client ID is required";
const CLIENT_TX_ID_REQUIRED: &str = "Client transaction ID is required";
const MODEL_ID_REQUIRED: &str = "Model ID is required";
const MODEL_NAME_REQUIRED: &str = "Model name is required";

/// Validates a mutate body (`None`: the request had no body).
///
/// | field | rule | message |
/// |---|---|---|
/// | body | an object | `Invalid input: expected object, received <type>` (`root`) |
/// | `batchId` | non-empty string | `Batch ID is required` |
/// | `batchId` | at most 255 characters, no control character | `Batch ID must be at most 255 characters` / `Batch ID must not contain control characters` |
/// | `transactions` | array of 1–100 items | `At least one transaction is required` / `At most 100 transactions are allowed` |
/// | `action` | `INSERT`, `UPDATE`, `DELETE`, `ARCHIVE` or `UNARCHIVE` | `Invalid option: expected one of "INSERT"\|"UPDATE"\|"DELETE"\|"ARCHIVE"\|"UNARCHIVE"` |
/// | `clientId` | non-empty string | `Client ID is required` |
/// | `clientTxId` | non-empty string | `Client transaction ID is required` |
/// | `clientId`, `clientTxId` | at most 255 characters, no control character | `Client ID must be at most 255 characters`, `Client transaction ID must not contain control characters`, … |
/// | `modelId` | non-empty string | `Model ID is required` |
/// | `modelName` | non-empty string | `Model name is required` |
/// | `payload` | a JSON object | `Invalid input: expected record, received <type>` |
///
/// A missing or non-string value gets the default
/// `Invalid input: expected string, received <type>`. When every issue lies
/// inside `transactions` items, the failure names the first failing
/// transaction's `clientTxId` (if it is a non-empty string), so the client
/// drops that transaction alone (see the [module docs](super)). This holds
/// when the invalid field is that `clientTxId` itself (too long, control
/// characters): it is still named, exactly as sent.
///
/// Control characters are Unicode's `Cc` (U+0000–U+001F, U+007F–U+009F):
/// they have no place in an id, and NUL cannot be stored at all.
pub(crate) fn mutate_body(body: Option<Value>) -> Result<MutateRequest, ValidationFailure> {
    let mut issues = Issues::new();
    let mut obj = match body {
        Some(Value::Object(obj)) => obj,
        other => {
            issues.abort("root", expected("object", type_name(other.as_ref())));
            return Err(issues.into_failure(Source::Body));
        }
    };

    let batch_id = match obj.get("batchId") {
        Some(Value::String(s)) if !s.is_empty() => {
            for message in id_issues(s, "Batch ID") {
                issues.soft("batchId", message);
            }
            s.clone()
        }
        Some(Value::String(_)) => {
            issues.soft("batchId", BATCH_ID_REQUIRED);
            String::new()
        }
        other => {
            issues.abort("batchId", expected("string", type_name(other)));
            String::new()
        }
    };

    let mut transactions = Vec::new();
    let mut items = Vec::new();
    match obj.remove("transactions") {
        Some(Value::Array(list)) => {
            let mark = issues.mark();
            let count = list.len();
            // Items past the limit are not examined: the answer's size stays
            // bounded whatever the body holds (the count is refused anyway).
            for (index, item) in list.into_iter().enumerate().take(MAX_TRANSACTIONS + 1) {
                match transaction(&item) {
                    Ok(tx) => transactions.push(tx),
                    Err(found) => issues.item("transactions", index, found),
                }
                items.push(item);
            }
            if !issues.aborted_since(mark) {
                if count == 0 {
                    issues.soft("transactions", AT_LEAST_ONE);
                } else if count > MAX_TRANSACTIONS {
                    issues.soft("transactions", AT_MOST);
                }
            }
        }
        other => issues.abort("transactions", expected("array", type_name(other.as_ref()))),
    }

    if !issues.is_empty() {
        let client_tx_id = issues.only_items().and_then(|index| match items[index].get("clientTxId") {
            Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
            _ => None,
        });
        let mut failure = issues.into_failure(Source::Body);
        failure.client_tx_id = client_tx_id;
        return Err(failure);
    }
    Ok(MutateRequest { batch_id, transactions })
}

fn transaction(item: &Value) -> Result<TransactionInput, Vec<ItemIssue>> {
    let Value::Object(obj) = item else {
        return Err(vec![ItemIssue::abort(expected("object", type_name(Some(item))))]);
    };
    let mut issues = Vec::new();
    let action = match obj.get("action").and_then(Value::as_str) {
        Some("INSERT") => Some(MutationAction::Insert),
        Some("UPDATE") => Some(MutationAction::Update),
        Some("DELETE") => Some(MutationAction::Delete),
        Some("ARCHIVE") => Some(MutationAction::Archive),
        Some("UNARCHIVE") => Some(MutationAction::Unarchive),
        _ => {
            issues.push(ItemIssue::abort(ACTION_OPTIONS));
            None
        }
    };
    let client_id = required_string(obj, "clientId", CLIENT_ID_REQUIRED, &mut issues);
    let client_id = client_id.and_then(|id| bounded_id(id, "Client ID", &mut issues));
    let client_tx_id = required_string(obj, "clientTxId", CLIENT_TX_ID_REQUIRED, &mut issues);
    let client_tx_id = client_tx_id.and_then(|id| bounded_id(id, "Client transaction ID", &mut issues));
    let model_id = required_string(obj, "modelId", MODEL_ID_REQUIRED, &mut issues);
    let model_name = required_string(obj, "modelName", MODEL_NAME_REQUIRED, &mut issues);
    let payload = match obj.get("payload") {
        Some(Value::Object(payload)) => Some(payload.clone()),
        other => {
            issues.push(ItemIssue::abort(expected("record", type_name(other))));
            None
        }
    };
    match (action, client_id, client_tx_id, model_id, model_name, payload) {
        (Some(action), Some(client_id), Some(client_tx_id), Some(model_id), Some(model_name), Some(payload))
            if issues.is_empty() =>
        {
            Ok(TransactionInput { action, client_id, client_tx_id, model_id, model_name, payload })
        }
        _ => Err(issues),
    }
}

/// The content failures of an id (`label` names it in the messages).
fn id_issues(id: &str, label: &str) -> Vec<String> {
    let mut found = Vec::new();
    if id.chars().count() > MAX_ID_CHARS {
        found.push(format!("{label} must be at most {MAX_ID_CHARS} characters"));
    }
    if id.chars().any(char::is_control) {
        found.push(format!("{label} must not contain control characters"));
    }
    found
}

/// `id` if it is a valid id; otherwise its issues are recorded.
fn bounded_id(id: String, label: &str, out: &mut Vec<ItemIssue>) -> Option<String> {
    let found = id_issues(&id, label);
    if found.is_empty() {
        return Some(id);
    }
    out.extend(found.into_iter().map(ItemIssue::soft));
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tx(client_tx_id: &str) -> Value {
        json!({"action": "UPDATE", "clientId": "c1", "clientTxId": client_tx_id, "modelId": "t1",
               "modelName": "Task", "payload": {"title": "x"}})
    }

    fn body(txs: Vec<Value>) -> Option<Value> {
        Some(json!({"batchId": "b1", "transactions": txs}))
    }

    fn failure(body: Option<Value>) -> (Option<String>, Vec<(String, String)>) {
        let failure = mutate_body(body).unwrap_err();
        assert_eq!(failure.source, Source::Body);
        (failure.client_tx_id, failure.details.into_iter().map(|d| (d.field, d.message)).collect())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(f, m)| ((*f).to_owned(), (*m).to_owned())).collect()
    }

    #[test]
    fn parses_a_client_batch() {
        let mut insert = tx("a");
        insert["action"] = json!("INSERT");
        let request = mutate_body(body(vec![insert, tx("b")])).unwrap();
        assert_eq!(request.batch_id, "b1");
        assert_eq!(request.transactions.len(), 2);
        assert_eq!(request.transactions[0].action, MutationAction::Insert);
        assert_eq!(request.transactions[1].client_tx_id, "b");
        assert_eq!(request.transactions[1].payload.get("title"), Some(&json!("x")));
    }

    #[test]
    fn a_huge_invalid_array_gets_a_bounded_answer() {
        // 20,000 invalid transactions: only the first 101 are examined, so
        // the 400 lists the issues of at most 101 items.
        let many: Vec<Value> = (0..20_000).map(|_| json!({})).collect();
        let (_, details) = failure(body(many));
        assert_eq!(details.len(), 101 * 6, "six issues for each examined item");
        // Valid items beyond the limit: the count alone is refused.
        let many: Vec<Value> = (0..20_000).map(|i| tx(&format!("t{i}"))).collect();
        assert_eq!(failure(body(many)), (None, pairs(&[("transactions", AT_MOST)])));
    }

    #[test]
    fn root_and_top_level_fields_name_no_transaction() {
        assert_eq!(failure(None), (None, pairs(&[("root", "Invalid input: expected object, received undefined")])));
        assert_eq!(
            failure(Some(json!("text"))),
            (None, pairs(&[("root", "Invalid input: expected object, received string")]))
        );
        assert_eq!(
            failure(Some(json!({}))),
            (
                None,
                pairs(&[
                    ("batchId", "Invalid input: expected string, received undefined"),
                    ("transactions", "Invalid input: expected array, received undefined"),
                ])
            )
        );
        assert_eq!(
            failure(Some(json!({"batchId": "", "transactions": []}))).1,
            pairs(&[("batchId", BATCH_ID_REQUIRED), ("transactions", AT_LEAST_ONE)])
        );
        let many: Vec<Value> = (0..101).map(|i| tx(&format!("t{i}"))).collect();
        assert_eq!(failure(body(many)), (None, pairs(&[("transactions", AT_MOST)])));
        // A top-level issue besides an item issue: no single transaction to blame.
        let mut bad = tx("x");
        bad["clientId"] = json!("");
        assert_eq!(
            failure(Some(json!({"batchId": "", "transactions": [bad]}))),
            (None, pairs(&[("batchId", BATCH_ID_REQUIRED), ("transactions", CLIENT_ID_REQUIRED)]))
        );
    }

    #[test]
    fn item_failures_name_the_transaction() {
        let mut txs: Vec<Value> = (0..5).map(|i| tx(&format!("tx-{i}"))).collect();
        txs[3]["clientId"] = json!("");
        assert_eq!(failure(body(txs.clone())), (Some("tx-3".into()), pairs(&[("transactions", CLIENT_ID_REQUIRED)])));

        txs[3]["clientId"] = json!("c");
        txs[3]["action"] = json!("UPSERT");
        assert_eq!(failure(body(txs.clone())), (Some("tx-3".into()), pairs(&[("transactions", ACTION_OPTIONS)])));

        txs[3]["action"] = json!("UPDATE");
        txs[3]["payload"] = json!([1]);
        assert_eq!(
            failure(body(txs.clone())),
            (Some("tx-3".into()), pairs(&[("transactions", "Invalid input: expected record, received array")]))
        );

        // Several invalid transactions: the first one is named.
        txs[1]["modelName"] = json!("");
        let (id, details) = failure(body(txs.clone()));
        assert_eq!(id.as_deref(), Some("tx-1"));
        assert_eq!(
            details,
            pairs(&[
                ("transactions", MODEL_NAME_REQUIRED),
                ("transactions", "Invalid input: expected record, received array"),
            ])
        );

        // The failing transaction has no usable id: none is named.
        let mut bad = tx("");
        bad["modelId"] = json!("");
        assert_eq!(
            failure(body(vec![bad])),
            (None, pairs(&[("transactions", CLIENT_TX_ID_REQUIRED), ("transactions", MODEL_ID_REQUIRED)]))
        );
        assert_eq!(
            failure(body(vec![json!(7)])),
            (None, pairs(&[("transactions", "Invalid input: expected object, received number")]))
        );
        let mut no_payload = tx("p");
        no_payload.as_object_mut().unwrap().remove("payload");
        assert_eq!(
            failure(body(vec![no_payload])),
            (Some("p".into()), pairs(&[("transactions", "Invalid input: expected record, received undefined")]))
        );
        let mut null_payload = tx("q");
        null_payload["payload"] = Value::Null;
        assert_eq!(
            failure(body(vec![null_payload])).1,
            pairs(&[("transactions", "Invalid input: expected record, received null")])
        );
    }

    #[test]
    fn ids_are_bounded_and_printable() {
        let long = "x".repeat(MAX_ID_CHARS + 1);
        let mut request = body(vec![tx("a")]).unwrap();
        request["batchId"] = json!(long);
        assert_eq!(
            failure(Some(request.clone())),
            (None, pairs(&[("batchId", "Batch ID must be at most 255 characters")]))
        );
        request["batchId"] = json!("b\u{0}");
        assert_eq!(
            failure(Some(request.clone())),
            (None, pairs(&[("batchId", "Batch ID must not contain control characters")]))
        );
        // 255 characters of four bytes each are fine.
        request["batchId"] = json!("\u{1F600}".repeat(MAX_ID_CHARS));
        assert!(mutate_body(Some(request)).is_ok());

        let mut bad = tx("t-1");
        bad["clientId"] = json!("c".repeat(8192));
        assert_eq!(
            failure(body(vec![tx("t-0"), bad])),
            (Some("t-1".into()), pairs(&[("transactions", "Client ID must be at most 255 characters")]))
        );
        let mut bad = tx("t-1");
        bad["clientId"] = json!("c\u{1b}[2J");
        assert_eq!(
            failure(body(vec![bad])),
            (Some("t-1".into()), pairs(&[("transactions", "Client ID must not contain control characters")]))
        );
    }

    #[test]
    fn an_invalid_client_tx_id_is_still_named() {
        // The published client drops exactly the transaction whose
        // `clientTxId` a 400 names: a bad one must be named as sent.
        let long = format!("{}{}", "t", "x".repeat(65_536));
        assert_eq!(
            failure(body(vec![tx("ok"), tx(&long)])),
            (Some(long.clone()), pairs(&[("transactions", "Client transaction ID must be at most 255 characters")]))
        );
        let nul = "tx\u{0}1";
        assert_eq!(
            failure(body(vec![tx(nul)])),
            (Some(nul.into()), pairs(&[("transactions", "Client transaction ID must not contain control characters")]))
        );
        let both = format!("\u{7f}{}", "x".repeat(300));
        assert_eq!(
            failure(body(vec![tx(&both)])),
            (
                Some(both.clone()),
                pairs(&[
                    ("transactions", "Client transaction ID must be at most 255 characters"),
                    ("transactions", "Client transaction ID must not contain control characters"),
                ])
            )
        );
        // Exactly 255 characters pass.
        assert!(mutate_body(body(vec![tx(&"x".repeat(MAX_ID_CHARS))])).is_ok());
    }

    #[test]
    fn all_messages_of_one_transaction() {
        let bad = json!({"action": 1, "clientId": 2, "clientTxId": "t", "modelId": "", "modelName": null});
        assert_eq!(
            failure(body(vec![bad])),
            (
                Some("t".into()),
                pairs(&[
                    ("transactions", ACTION_OPTIONS),
                    ("transactions", "Invalid input: expected string, received number"),
                    ("transactions", MODEL_ID_REQUIRED),
                    ("transactions", "Invalid input: expected string, received null"),
                    ("transactions", "Invalid input: expected record, received undefined"),
                ])
            )
        );
    }
}

#[cfg(test)]
mod example {
    /// The function's contract in a few lines.
    #[test]
    fn mutate_body_example() {
        use crate::request::mutate_body;
        use serde_json::json;
        let failure = mutate_body(Some(json!({"batchId": "b", "transactions": [
            {"action": "UPDATE", "clientId": "", "clientTxId": "tx-1", "modelId": "t1",
             "modelName": "Task", "payload": {}}]})))
        .unwrap_err();
        assert_eq!(failure.client_tx_id.as_deref(), Some("tx-1"));
        assert_eq!(failure.details[0].message, "Client ID is required");
    }
}
