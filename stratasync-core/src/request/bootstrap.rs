//! `GET /sync/bootstrap` query (docs/protocol.md §4.1).

use super::failure::{Source, ValidationFailure};
use super::issues::{expected, Issues};
use super::query::{comma_list, Query, QueryValue, TooManyPairs};
use crate::protocol::SyncId;
use crate::protocol::{BootstrapKind, BootstrapParams};

pub(super) const TYPE_OPTIONS: &str = r#"Invalid option: expected one of "full"|"partial""#;
pub(super) const BOOL_OPTIONS: &str = r#"Invalid option: expected one of "true"|"false""#;
pub(super) const FIRST_SYNC_ID_NUMERIC: &str = "firstSyncId must be a numeric string";
pub(super) const FIRST_SYNC_ID_REQUIRED: &str = "firstSyncId is required for partial bootstrap";
pub(super) const TOO_MANY_MODELS: &str = "At most 100 models are allowed";
pub(super) const TOO_MANY_GROUPS: &str = "At most 1000 groups are allowed";

/// The most model names `onlyModels` may list.
pub const MAX_ONLY_MODELS: usize = 100;
/// The most groups `syncGroups` may list (bootstrap and deltas).
pub const MAX_SYNC_GROUPS: usize = 1000;

/// Parses a query string, or fails the whole request (a `root` issue)
/// when it holds too many pairs.
pub(super) fn parse_query(raw: &str) -> Result<Query, ValidationFailure> {
    Query::parse(raw).map_err(|e: TooManyPairs| {
        let mut issues = Issues::new();
        issues.abort("root", e.to_string());
        issues.into_failure(Source::Query)
    })
}

/// A comma-list query key of at most `max` items (`message` otherwise).
pub(super) fn list_key(
    query: &Query,
    key: &'static str,
    max: usize,
    message: &str,
    issues: &mut Issues,
) -> Option<Vec<String>> {
    let list = string_key(query, key, issues).map(comma_list)?;
    if list.len() > max {
        issues.soft(key, message);
    }
    Some(list)
}

/// A string-typed query key: absent, one value, or an aborting
/// "received array" issue.
pub(super) fn string_key<'q>(query: &'q Query, key: &'static str, issues: &mut Issues) -> Option<&'q str> {
    match query.get(key) {
        QueryValue::Absent => None,
        QueryValue::One(value) => Some(value),
        QueryValue::Many(_) => {
            issues.abort(key, expected("string", "array"));
            None
        }
    }
}

/// An enum-typed query key: anything but one of `options` (a repeated key
/// included) is an aborting issue with `message`.
fn enum_key<'q>(
    query: &'q Query,
    key: &'static str,
    options: &[&str],
    message: &str,
    issues: &mut Issues,
) -> Option<&'q str> {
    match query.get(key) {
        QueryValue::Absent => None,
        QueryValue::One(value) if options.contains(&value) => Some(value),
        _ => {
            issues.abort(key, message);
            None
        }
    }
}

/// Parses and validates the bootstrap query string.
///
/// | key | rule | message |
/// |---|---|---|
/// | `type` | `full` or `partial` (absent: full) | `Invalid option: expected one of "full"\|"partial"` |
/// | `firstSyncId` | a sync id | `firstSyncId must be a numeric string` |
/// | — | required (non-empty) when `type=partial` | `firstSyncId is required for partial bootstrap` |
/// | `onlyModels` | comma list of at most 100 items; `onlyModels=` gives `Some([])` (no models) | `At most 100 models are allowed` |
/// | `syncGroups` | comma list of at most 1000 items | `At most 1000 groups are allowed` |
/// | `schemaHash` | any string (absent: `""`) | — |
/// | `noSyncPackets` | `true` or `false`, otherwise ignored | `Invalid option: expected one of "true"\|"false"` |
///
/// Unknown keys are ignored. A query of more than
/// [`MAX_QUERY_PAIRS`](super::query::MAX_QUERY_PAIRS) pairs fails as a
/// whole (`root`: `At most 64 query parameters are allowed`). A string key
/// given twice gets
/// `Invalid input: expected string, received array`; an enum key given
/// twice gets its enum message. The partial rule runs only when no type
/// failure was found, and joins the numeric message when `firstSyncId=`.
pub(crate) fn bootstrap_query(raw: &str) -> Result<BootstrapParams, ValidationFailure> {
    let query = parse_query(raw)?;
    let mut issues = Issues::new();

    let kind = match enum_key(&query, "type", &["full", "partial"], TYPE_OPTIONS, &mut issues) {
        Some("partial") => BootstrapKind::Partial,
        _ => BootstrapKind::Full,
    };
    let first_raw = string_key(&query, "firstSyncId", &mut issues);
    let first_sync_id = match first_raw {
        None => None,
        Some(raw) => match raw.parse::<SyncId>() {
            Ok(id) => Some(id),
            Err(_) => {
                issues.soft("firstSyncId", FIRST_SYNC_ID_NUMERIC);
                None
            }
        },
    };
    let only_models = list_key(&query, "onlyModels", MAX_ONLY_MODELS, TOO_MANY_MODELS, &mut issues);
    let sync_groups = list_key(&query, "syncGroups", MAX_SYNC_GROUPS, TOO_MANY_GROUPS, &mut issues);
    let schema_hash = string_key(&query, "schemaHash", &mut issues).unwrap_or_default().to_owned();
    // Accepted and ignored, as in the reference.
    let _ = enum_key(&query, "noSyncPackets", &["true", "false"], BOOL_OPTIONS, &mut issues);

    if !issues.aborted() && kind == BootstrapKind::Partial && first_raw.is_none_or(str::is_empty) {
        issues.soft("firstSyncId", FIRST_SYNC_ID_REQUIRED);
    }
    if !issues.is_empty() {
        return Err(issues.into_failure(Source::Query));
    }
    Ok(BootstrapParams { kind, first_sync_id, only_models, sync_groups, schema_hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(raw: &str) -> Vec<(String, String)> {
        let failure = bootstrap_query(raw).expect_err(raw);
        assert_eq!(failure.source, Source::Query);
        assert_eq!(failure.client_tx_id, None);
        failure.details.into_iter().map(|d| (d.field, d.message)).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(f, m)| ((*f).to_owned(), (*m).to_owned())).collect()
    }

    #[test]
    fn defaults() {
        let p = bootstrap_query("").unwrap();
        assert_eq!(p.kind, BootstrapKind::Full);
        assert_eq!(p.first_sync_id, None);
        assert_eq!(p.only_models, None);
        assert_eq!(p.sync_groups, None);
        assert_eq!(p.schema_hash, "");
    }

    #[test]
    fn client_request_shape() {
        let p = bootstrap_query(
            "type=full&onlyModels=Task%2CLabel&schemaHash=h1&firstSyncId=0007&syncGroups=w1%2C%2Cw2\
             &noSyncPackets=true&useCFCaching=true&noCache=1&modelsHash=x",
        )
        .unwrap();
        assert_eq!(p.kind, BootstrapKind::Full);
        assert_eq!(p.first_sync_id, Some(SyncId(7)));
        assert_eq!(p.only_models.as_deref(), Some(&["Task".to_owned(), "Label".to_owned()][..]));
        assert_eq!(p.sync_groups.as_deref(), Some(&["w1".to_owned(), "w2".to_owned()][..]));
        assert_eq!(p.schema_hash, "h1");
    }

    #[test]
    fn empty_only_models_means_none() {
        assert_eq!(bootstrap_query("onlyModels=").unwrap().only_models, Some(vec![]));
        assert_eq!(bootstrap_query("onlyModels=,,").unwrap().only_models, Some(vec![]));
    }

    #[test]
    fn partial_requires_first_sync_id() {
        assert_eq!(messages("type=partial"), pairs(&[("firstSyncId", FIRST_SYNC_ID_REQUIRED)]));
        assert_eq!(
            messages("type=partial&firstSyncId="),
            pairs(&[("firstSyncId", FIRST_SYNC_ID_NUMERIC), ("firstSyncId", FIRST_SYNC_ID_REQUIRED)])
        );
        assert_eq!(messages("type=partial&firstSyncId=abc"), pairs(&[("firstSyncId", FIRST_SYNC_ID_NUMERIC)]));
        let p = bootstrap_query("type=partial&firstSyncId=0").unwrap();
        assert_eq!((p.kind, p.first_sync_id), (BootstrapKind::Partial, Some(SyncId(0))));
        // A type failure skips the partial rule.
        assert_eq!(messages("type=partial&noSyncPackets=maybe"), pairs(&[("noSyncPackets", BOOL_OPTIONS)]));
    }

    #[test]
    fn sync_ids_are_ascii_digits_in_range() {
        for bad in ["%D9%A1%D9%A2", "9223372036854775808", "99999999999999999999999999", "-1", "1e3", "+1", "%201"] {
            assert_eq!(messages(&format!("firstSyncId={bad}")), pairs(&[("firstSyncId", FIRST_SYNC_ID_NUMERIC)]));
        }
        assert_eq!(
            bootstrap_query("firstSyncId=9223372036854775807").unwrap().first_sync_id,
            Some(SyncId(9_223_372_036_854_775_807))
        );
    }

    #[test]
    fn lists_and_queries_are_bounded() {
        let models: Vec<String> = (0..MAX_ONLY_MODELS).map(|i| format!("M{i}")).collect();
        assert_eq!(
            bootstrap_query(&format!("onlyModels={}", models.join(","))).unwrap().only_models,
            Some(models.clone())
        );
        assert_eq!(messages(&format!("onlyModels={},X", models.join(","))), pairs(&[("onlyModels", TOO_MANY_MODELS)]));
        // Repetitions count: the bound is on the work a request asks for.
        assert_eq!(messages(&format!("onlyModels={}", "Task,".repeat(101))), pairs(&[("onlyModels", TOO_MANY_MODELS)]));
        let groups: Vec<String> = (0..MAX_SYNC_GROUPS).map(|i| format!("g{i}")).collect();
        assert_eq!(
            bootstrap_query(&format!("syncGroups={}", groups.join("%2C"))).unwrap().sync_groups,
            Some(groups.clone())
        );
        assert_eq!(
            messages(&format!("syncGroups={}%2Cx&onlyModels={},X", groups.join("%2C"), models.join(","))),
            pairs(&[("onlyModels", TOO_MANY_MODELS), ("syncGroups", TOO_MANY_GROUPS)])
        );
        let many = "noCache=1&".repeat(65);
        assert_eq!(messages(&many), pairs(&[("root", "At most 64 query parameters are allowed")]));
    }

    #[test]
    fn bad_options_and_repeats() {
        assert_eq!(messages("type=delta"), pairs(&[("type", TYPE_OPTIONS)]));
        assert_eq!(messages("type="), pairs(&[("type", TYPE_OPTIONS)]));
        assert_eq!(messages("type=full&type=full"), pairs(&[("type", TYPE_OPTIONS)]));
        assert_eq!(
            messages("noSyncPackets=yes&onlyModels=a&onlyModels=b&schemaHash=1&schemaHash=2&firstSyncId=x"),
            pairs(&[
                ("firstSyncId", FIRST_SYNC_ID_NUMERIC),
                ("onlyModels", "Invalid input: expected string, received array"),
                ("schemaHash", "Invalid input: expected string, received array"),
                ("noSyncPackets", BOOL_OPTIONS),
            ])
        );
        assert_eq!(
            messages("syncGroups=a&syncGroups=b&firstSyncId=1&firstSyncId=2"),
            pairs(&[
                ("firstSyncId", "Invalid input: expected string, received array"),
                ("syncGroups", "Invalid input: expected string, received array"),
            ])
        );
    }
}

#[cfg(test)]
mod example {
    /// The function's contract in a few lines.
    #[test]
    fn bootstrap_query_example() {
        use crate::request::bootstrap_query;
        let params = bootstrap_query("type=partial&firstSyncId=42&onlyModels=Task%2CLabel").unwrap();
        assert_eq!(params.only_models, Some(vec!["Task".to_owned(), "Label".to_owned()]));
        let failure = bootstrap_query("type=partial").unwrap_err();
        assert_eq!(failure.details[0].message, "firstSyncId is required for partial bootstrap");
    }
}
