//! The issue collector shared by the validators, and the default messages.

use super::failure::{FieldIssue, Source, ValidationFailure};
use serde_json::Value;

/// One issue, before grouping.
#[derive(Debug, Clone)]
pub(super) struct Issue {
    pub(super) field: &'static str,
    pub(super) message: String,
    /// A type failure: nothing that depends on the value runs after it.
    pub(super) aborting: bool,
    /// The array item the issue lies in (mutate transactions).
    pub(super) item: Option<usize>,
}

/// Collects issues in the order they are found; never stops early.
#[derive(Debug, Default)]
pub(super) struct Issues {
    list: Vec<Issue>,
}

impl Issues {
    pub(super) fn new() -> Self {
        Issues::default()
    }

    /// A type failure: later whole-object and whole-array checks are skipped.
    pub(super) fn abort(&mut self, field: &'static str, message: impl Into<String>) {
        self.list.push(Issue { field, message: message.into(), aborting: true, item: None });
    }

    /// A content failure: checking goes on.
    pub(super) fn soft(&mut self, field: &'static str, message: impl Into<String>) {
        self.list.push(Issue { field, message: message.into(), aborting: false, item: None });
    }

    /// Adds the issues of array item `index` of `field`.
    pub(super) fn item(&mut self, field: &'static str, index: usize, found: Vec<ItemIssue>) {
        self.list.extend(found.into_iter().map(|i| Issue {
            field,
            message: i.message,
            aborting: i.aborting,
            item: Some(index),
        }));
    }

    /// The current position, for [`Issues::aborted_since`].
    pub(super) fn mark(&self) -> usize {
        self.list.len()
    }

    /// Whether an aborting issue was found since `mark`.
    pub(super) fn aborted_since(&self, mark: usize) -> bool {
        self.list[mark.min(self.list.len())..].iter().any(|i| i.aborting)
    }

    /// Whether any aborting issue was found.
    pub(super) fn aborted(&self) -> bool {
        self.aborted_since(0)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The item every issue lies in, if they all lie in items: the first one.
    pub(super) fn only_items(&self) -> Option<usize> {
        if self.list.iter().all(|i| i.item.is_some()) {
            self.list.first().and_then(|i| i.item)
        } else {
            None
        }
    }

    /// The failure, grouped by field in first-failure order.
    pub(super) fn into_failure(self, source: Source) -> ValidationFailure {
        let mut groups: Vec<(&'static str, Vec<String>)> = Vec::new();
        for issue in self.list {
            match groups.iter_mut().find(|(field, _)| *field == issue.field) {
                Some((_, messages)) => messages.push(issue.message),
                None => groups.push((issue.field, vec![issue.message])),
            }
        }
        let details = groups
            .into_iter()
            .flat_map(|(field, messages)| messages.into_iter().map(move |m| FieldIssue::new(field, m)))
            .collect();
        ValidationFailure { source, details, client_tx_id: None }
    }
}

/// An issue inside one array item, before it is attributed to the array.
#[derive(Debug, Clone)]
pub(super) struct ItemIssue {
    pub(super) message: String,
    pub(super) aborting: bool,
}

impl ItemIssue {
    pub(super) fn abort(message: impl Into<String>) -> Self {
        ItemIssue { message: message.into(), aborting: true }
    }

    pub(super) fn soft(message: impl Into<String>) -> Self {
        ItemIssue { message: message.into(), aborting: false }
    }
}

/// The type name the reference's messages use for a JSON value
/// (`undefined` when the key is missing).
pub(super) fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// `Invalid input: expected <expected>, received <type>`.
pub(super) fn expected(expected: &str, received: &str) -> String {
    format!("Invalid input: expected {expected}, received {received}")
}

/// The default message of a non-empty string rule.
pub(super) const TOO_SMALL_STRING: &str = "Too small: expected string to have >=1 characters";

/// Reads a required non-empty string of an object: a missing or non-string
/// value is an aborting type failure, `""` gets `empty_message`.
pub(super) fn required_string(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    empty_message: &str,
    out: &mut Vec<ItemIssue>,
) -> Option<String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            out.push(ItemIssue::soft(empty_message));
            None
        }
        other => {
            out.push(ItemIssue::abort(expected("string", type_name(other))));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_field_in_first_failure_order() {
        let mut issues = Issues::new();
        issues.soft("a", "a1");
        issues.abort("b", "b1");
        issues.soft("a", "a2");
        let failure = issues.into_failure(Source::Query);
        let pairs: Vec<(&str, &str)> = failure.details.iter().map(|d| (d.field.as_str(), d.message.as_str())).collect();
        assert_eq!(pairs, [("a", "a1"), ("a", "a2"), ("b", "b1")]);
    }
}
