//! `GET /sync/deltas` query (docs/protocol.md §4.3).

use super::bootstrap::{list_key, parse_query, string_key, MAX_SYNC_GROUPS, TOO_MANY_GROUPS};
use super::failure::{Source, ValidationFailure};
use super::issues::Issues;
use crate::protocol::DeltasParams;
use crate::protocol::SyncId;

pub(super) const AFTER_NUMERIC: &str = "After must be a numeric string";
pub(super) const LIMIT_NUMERIC: &str = "Limit must be a numeric string";

/// Parses and validates the deltas query string.
///
/// | key | rule | message | default |
/// |---|---|---|---|
/// | `after` | a sync id (ASCII digits, at most `2^63-1`) | `After must be a numeric string` | 0 |
/// | `limit` | ASCII digits (any size; the service clamps to 5000) | `Limit must be a numeric string` | 1000 |
/// | `syncGroups` | comma list of at most 1000 items | `At most 1000 groups are allowed` | all authorized groups |
///
/// Unknown keys are ignored; a query of more than 64 pairs fails as a
/// whole (`root`); a key given twice gets
/// `Invalid input: expected string, received array`.
pub(crate) fn deltas_query(raw: &str) -> Result<DeltasParams, ValidationFailure> {
    let query = parse_query(raw)?;
    let mut issues = Issues::new();

    let after = match string_key(&query, "after", &mut issues) {
        None => SyncId(0),
        Some(raw) => raw.parse::<SyncId>().unwrap_or_else(|_| {
            issues.soft("after", AFTER_NUMERIC);
            SyncId(0)
        }),
    };
    let limit = match string_key(&query, "limit", &mut issues) {
        None => None,
        Some(raw) if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) => Some(saturating_digits(raw)),
        Some(_) => {
            issues.soft("limit", LIMIT_NUMERIC);
            None
        }
    };
    let sync_groups = list_key(&query, "syncGroups", MAX_SYNC_GROUPS, TOO_MANY_GROUPS, &mut issues);

    if !issues.is_empty() {
        return Err(issues.into_failure(Source::Query));
    }
    Ok(DeltasParams { after, limit, sync_groups })
}

/// The value of an ASCII digit string, saturating at `u64::MAX`.
fn saturating_digits(digits: &str) -> u64 {
    digits.bytes().fold(0u64, |n, b| n.saturating_mul(10).saturating_add(u64::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(raw: &str) -> Vec<(String, String)> {
        let failure = deltas_query(raw).expect_err(raw);
        assert_eq!(failure.source, Source::Query);
        failure.details.into_iter().map(|d| (d.field, d.message)).collect()
    }

    #[test]
    fn defaults_and_values() {
        let p = deltas_query("").unwrap();
        assert_eq!((p.after, p.limit, p.sync_groups), (SyncId(0), None, None));
        let p = deltas_query("after=0007&limit=10&syncGroups=a%2Cb,&useCFCaching=1").unwrap();
        assert_eq!(p.after, SyncId(7));
        assert_eq!(p.limit, Some(10));
        assert_eq!(p.sync_groups, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(deltas_query("limit=99999999999999999999999").unwrap().limit, Some(u64::MAX));
        assert_eq!(deltas_query("limit=0").unwrap().limit, Some(0));
    }

    #[test]
    fn bad_cursors_are_400s() {
        for bad in ["", "abc", "-1", "1.5", "%D9%A1", "9223372036854775808", "123456789012345678901234567890"] {
            assert_eq!(messages(&format!("after={bad}")), [("after".to_owned(), AFTER_NUMERIC.to_owned())], "{bad}");
        }
        assert_eq!(messages("limit=ten"), [("limit".to_owned(), LIMIT_NUMERIC.to_owned())]);
        assert_eq!(
            messages("limit=x&after=y"),
            [("after".to_owned(), AFTER_NUMERIC.to_owned()), ("limit".to_owned(), LIMIT_NUMERIC.to_owned())]
        );
        let groups = vec!["g"; 1001].join(",");
        assert_eq!(messages(&format!("syncGroups={groups}")), [("syncGroups".to_owned(), TOO_MANY_GROUPS.to_owned())]);
        assert_eq!(deltas_query(&format!("syncGroups={}", &groups[2..])).unwrap().sync_groups.unwrap().len(), 1000);
        assert_eq!(
            messages(&"after=1&".repeat(65)),
            [("root".to_owned(), "At most 64 query parameters are allowed".to_owned())]
        );
        assert_eq!(
            messages("after=1&after=2"),
            [("after".to_owned(), "Invalid input: expected string, received array".to_owned())]
        );
    }
}

#[cfg(test)]
mod example {
    /// The function's contract in a few lines.
    #[test]
    fn deltas_query_example() {
        use crate::request::deltas_query;
        use crate::SyncId;
        assert_eq!(deltas_query("after=0042").unwrap().after, SyncId(42));
        assert!(deltas_query("after=-1").is_err());
    }
}
