//! Row content checks: what a server streams must be the database's rows
//! in wire form, not only the right number of lines. Run once per server
//! after the timed runs (so they cost no measured time): the bootstrap of
//! the main workspace against every row PostgreSQL holds for it, and the
//! delta catch-up against every action of the log, in order.
//!
//! The expected wire form is built here from SQL, independently of either
//! server: `__class` and camelCase keys, instants and dates as epoch
//! milliseconds (dates at UTC midnight), a composite row's UUIDv5 `id`,
//! action times as ISO-8601 with milliseconds, sync ids as strings. Rows
//! are compared as JSON values (key order aside); an action's absent and
//! `null` optional keys (`clientId`, `clientTxId`, `groupId`) count as the
//! same.

use crate::load::token;
use crate::pg::{Pg, MAIN_USER, MAIN_WORKSPACE};
use crate::BoxError;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The bootstrap rows of the main workspace, in wire form, from SQL.
const BOOTSTRAP_SQL: &str = "\
    SELECT json_build_object('__class', 'Workspace', 'id', id, 'name', name, \
                             'createdAt', floor(extract(epoch FROM created_at) * 1000)::bigint)::text \
      FROM workspaces WHERE id = $1::text::uuid \
    UNION ALL \
    SELECT json_build_object('__class', 'Task', 'id', id, 'workspaceId', workspace_id, 'title', title, \
                             'description', description, 'priority', priority, \
                             'dueDate', floor(extract(epoch FROM due_date) * 1000)::bigint, \
                             'completedAt', floor(extract(epoch FROM completed_at) * 1000)::bigint, \
                             'archivedAt', floor(extract(epoch FROM archived_at) * 1000)::bigint, \
                             'createdAt', floor(extract(epoch FROM created_at) * 1000)::bigint)::text \
      FROM tasks WHERE workspace_id = $1::text::uuid \
    UNION ALL \
    SELECT json_build_object('__class', 'Label', 'id', id, 'workspaceId', workspace_id, 'name', name, \
                             'color', color)::text \
      FROM labels WHERE workspace_id = $1::text::uuid \
    UNION ALL \
    SELECT json_build_object('__class', 'TaskLabel', 'taskId', task_id, 'labelId', label_id, \
                             'workspaceId', workspace_id, \
                             'createdAt', floor(extract(epoch FROM created_at) * 1000)::bigint)::text \
      FROM task_labels WHERE workspace_id = $1::text::uuid";

/// Every action the main user may see, in wire form and sync-id order.
const ACTIONS_SQL: &str = "\
    SELECT json_build_object('action', action, 'clientId', client_id, 'clientTxId', client_tx_id, \
                             'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                             'data', data, 'groupId', group_id, 'modelId', model_id, 'modelName', model, \
                             'syncId', id::text)::text \
      FROM sync_actions WHERE group_id IS NULL OR group_id = ANY($1::text[]) ORDER BY id";

/// `value` with object keys sorted at every level (and, at the top level,
/// keys whose value is `null` left out when `drop_nulls`), as JSON text.
fn canonical(value: &Value, drop_nulls: bool) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut value = sorted(value);
    if let (true, Value::Object(map)) = (drop_nulls, &mut value) {
        map.retain(|_, v| !v.is_null());
    }
    value.to_string()
}

fn digest(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// How the served rows differ from the expected ones (as multisets), with
/// the first served row that is not expected; `None` when they are equal.
fn difference(expected: &[String], served: &[(String, String)]) -> Option<String> {
    let mut wanted: HashMap<u64, i64> = HashMap::new();
    for e in expected {
        *wanted.entry(digest(e)).or_default() += 1;
    }
    let mut unexpected = None;
    for (canonical, raw) in served {
        let n = wanted.entry(digest(canonical)).or_default();
        *n -= 1;
        if *n < 0 && unexpected.is_none() {
            unexpected = Some(raw);
        }
    }
    let missing: i64 = wanted.values().filter(|n| **n > 0).sum();
    let extra: i64 = wanted.values().filter(|n| **n < 0).map(|n| -n).sum();
    (missing > 0 || extra > 0).then(|| {
        let first = unexpected.map(|r| format!("; first unexpected: {}", r.chars().take(300).collect::<String>()));
        format!("{missing} expected rows missing, {extra} unexpected rows{}", first.unwrap_or_default())
    })
}

/// Fetches the full bootstrap of the main user and compares every row
/// with the database's; returns the rows checked.
pub(crate) async fn check_bootstrap(client: &reqwest::Client, base: &str, pg: &Pg, db: &str) -> Result<u64, BoxError> {
    let c = pg.connect(db).await?;
    let ws = MAIN_WORKSPACE.to_string();
    let mut expected = Vec::new();
    for row in c.query(BOOTSTRAP_SQL, &[&ws]).await? {
        let mut value: Value = serde_json::from_str(row.get::<_, &str>(0))?;
        if value["__class"] == "TaskLabel" {
            let (task, label) = (value["taskId"].as_str().unwrap_or(""), value["labelId"].as_str().unwrap_or(""));
            let id = stratasync_core::composite_id::composite_id("TaskLabel", &[task, label]);
            value["id"] = Value::String(id);
        }
        expected.push(canonical(&value, false));
    }
    let body = client.get(format!("{base}/sync/bootstrap?type=full")).bearer_auth(token(MAIN_USER)).send().await?;
    if !body.status().is_success() {
        return Err(format!("bootstrap answered {}", body.status()).into());
    }
    let body = body.text().await?;
    let mut lines = body.lines();
    lines.next().ok_or("an empty bootstrap")?;
    let mut served = Vec::with_capacity(expected.len());
    for line in lines {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("a bootstrap line is not JSON ({e})"))?;
        served.push((canonical(&value, false), line.to_owned()));
    }
    match difference(&expected, &served) {
        None => Ok(served.len() as u64),
        Some(diff) => Err(format!("bootstrap content differs from the database: {diff}").into()),
    }
}

/// Pages through the whole log as the main user and compares every action,
/// in order, with the database's; returns the actions checked.
pub(crate) async fn check_deltas(
    client: &reqwest::Client,
    base: &str,
    pg: &Pg,
    db: &str,
    limit: usize,
) -> Result<u64, BoxError> {
    let c = pg.connect(db).await?;
    let groups = vec![MAIN_WORKSPACE.to_string(), MAIN_USER.to_owned()];
    let mut expected = Vec::new();
    for row in c.query(ACTIONS_SQL, &[&groups]).await? {
        let value: Value = serde_json::from_str(row.get::<_, &str>(0))?;
        expected.push(canonical(&value, true));
    }
    let mut served = Vec::with_capacity(expected.len());
    let mut cursor = "0".to_owned();
    loop {
        let page = client
            .get(format!("{base}/sync/deltas?after={cursor}&limit={limit}"))
            .bearer_auth(token(MAIN_USER))
            .send()
            .await?;
        if !page.status().is_success() {
            return Err(format!("deltas answered {}", page.status()).into());
        }
        let page: Value = serde_json::from_slice(&page.bytes().await?)?;
        for action in page["actions"].as_array().ok_or("a delta page without actions")? {
            served.push(canonical(action, true));
        }
        let next = page["lastSyncId"].as_str().ok_or("a delta page without lastSyncId")?.to_owned();
        if page["hasMore"] != Value::Bool(true) {
            break;
        }
        if next == cursor {
            return Err(format!("delta paging did not advance beyond {cursor}").into());
        }
        cursor = next;
    }
    if let Some(at) = expected.iter().zip(&served).position(|(e, s)| e != s) {
        return Err(format!(
            "delta catch-up differs from the log at action {} of {}: served {}, expected {}",
            at + 1,
            expected.len(),
            served[at].chars().take(300).collect::<String>(),
            expected[at].chars().take(300).collect::<String>()
        )
        .into());
    }
    if served.len() != expected.len() {
        return Err(format!("delta catch-up served {} actions, the log has {}", served.len(), expected.len()).into());
    }
    Ok(served.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn served(rows: &[Value]) -> Vec<(String, String)> {
        rows.iter().map(|r| (canonical(r, false), r.to_string())).collect()
    }

    #[test]
    fn rows_compare_by_content_not_by_key_order() {
        let expected = vec![canonical(&json!({"id": "a", "n": {"x": 1, "y": 2}}), false)];
        assert_eq!(difference(&expected, &served(&[json!({"n": {"y": 2, "x": 1}, "id": "a"})])), None);
        // Top-level nulls are left out only when asked.
        assert_eq!(canonical(&json!({"a": null, "b": 1}), true), r#"{"b":1}"#);
        assert_eq!(canonical(&json!({"a": null, "b": 1}), false), r#"{"a":null,"b":1}"#);
    }

    #[test]
    fn a_changed_missing_or_repeated_row_is_a_difference() {
        let expected: Vec<String> =
            [json!({"id": "a", "v": 1}), json!({"id": "b", "v": 2})].iter().map(|r| canonical(r, false)).collect();
        let changed = difference(&expected, &served(&[json!({"id": "a", "v": 1}), json!({"id": "b", "v": 3})]));
        assert_eq!(
            changed.as_deref(),
            Some(r#"1 expected rows missing, 1 unexpected rows; first unexpected: {"id":"b","v":3}"#)
        );
        let missing = difference(&expected, &served(&[json!({"id": "a", "v": 1})]));
        assert_eq!(missing.as_deref(), Some("1 expected rows missing, 0 unexpected rows"));
        let repeated = difference(
            &expected,
            &served(&[json!({"id": "a", "v": 1}), json!({"id": "b", "v": 2}), json!({"id": "a", "v": 1})]),
        );
        assert!(repeated.is_some_and(|d| d.starts_with("0 expected rows missing, 1 unexpected rows")));
    }
}
