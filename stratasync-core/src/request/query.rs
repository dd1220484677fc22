//! Query strings as the reference's framework reads them.

use std::borrow::Cow;
use std::collections::HashMap;

/// The most key-value pairs a query string may hold (the published client
/// sends at most nine).
pub const MAX_QUERY_PAIRS: usize = 64;

/// A query string with more than [`MAX_QUERY_PAIRS`] pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("At most {MAX_QUERY_PAIRS} query parameters are allowed")]
pub(super) struct TooManyPairs;

/// A parsed query string: `application/x-www-form-urlencoded` pairs
/// (`+` is a space, percent escapes are decoded, invalid escapes stay as
/// they are, invalid UTF-8 becomes U+FFFD), keys in first-seen order. A key
/// given more than once holds every value, which validation rejects as
/// "received array".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Query {
    pairs: Vec<(String, Vec<String>)>,
    /// The position of each key in `pairs`.
    index: HashMap<String, usize>,
}

/// The value of one query key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QueryValue<'a> {
    /// The key is not in the query.
    Absent,
    /// The key appears once (`key` and `key=` both give `""`).
    One(&'a str),
    /// The key appears more than once.
    Many(&'a [String]),
}

impl Query {
    /// Parses a raw query string (without the leading `?`), in time linear
    /// in its length; stops at the first pair past [`MAX_QUERY_PAIRS`].
    pub(super) fn parse(raw: &str) -> Result<Query, TooManyPairs> {
        let mut query = Query::default();
        for (n, (key, value)) in form_urlencoded::parse(raw.as_bytes()).enumerate() {
            if n == MAX_QUERY_PAIRS {
                return Err(TooManyPairs);
            }
            let value = Cow::into_owned(value);
            match query.index.get(key.as_ref()) {
                Some(&at) => query.pairs[at].1.push(value),
                None => {
                    query.index.insert(key.clone().into_owned(), query.pairs.len());
                    query.pairs.push((key.into_owned(), vec![value]));
                }
            }
        }
        Ok(query)
    }

    /// The value of `key`.
    pub(super) fn get(&self, key: &str) -> QueryValue<'_> {
        match self.index.get(key).map(|&at| &self.pairs[at].1) {
            None => QueryValue::Absent,
            Some(values) if values.len() == 1 => QueryValue::One(&values[0]),
            Some(values) => QueryValue::Many(values),
        }
    }

    /// The keys, in first-seen order.
    #[cfg(test)]
    fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }
}

/// Splits a (decoded) comma list, dropping empty items.
pub(super) fn comma_list(value: &str) -> Vec<String> {
    value.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_keeps_repeats() {
        let q = Query::parse("a=1&b=x%2Cy&a=2&c&d=&e=%zz&f=a+b&g=%E2%82%AC").unwrap();
        assert_eq!(q.get("a"), QueryValue::Many(&["1".to_owned(), "2".to_owned()]));
        assert_eq!(q.get("b"), QueryValue::One("x,y"));
        assert_eq!(q.get("c"), QueryValue::One(""));
        assert_eq!(q.get("d"), QueryValue::One(""));
        assert_eq!(q.get("e"), QueryValue::One("%zz"));
        assert_eq!(q.get("f"), QueryValue::One("a b"));
        assert_eq!(q.get("g"), QueryValue::One("€"));
        assert_eq!(q.get("z"), QueryValue::Absent);
        assert_eq!(Query::parse(""), Ok(Query::default()));
        assert_eq!(q.keys().collect::<Vec<_>>(), ["a", "b", "c", "d", "e", "f", "g"]);
    }

    #[test]
    fn many_keys_up_to_the_bound() {
        let raw: Vec<String> = (0..MAX_QUERY_PAIRS).map(|i| format!("k{i}={i}")).collect();
        let q = Query::parse(&raw.join("&")).unwrap();
        for i in 0..MAX_QUERY_PAIRS {
            assert_eq!(q.get(&format!("k{i}")), QueryValue::One(&i.to_string()));
        }
        assert_eq!(q.keys().count(), MAX_QUERY_PAIRS);
        // One pair more, or a repeated key past the bound, is refused.
        assert_eq!(Query::parse(&format!("{}&x=1", raw.join("&"))), Err(TooManyPairs));
        assert_eq!(Query::parse(&"a=1&".repeat(MAX_QUERY_PAIRS + 1)), Err(TooManyPairs));
        // A huge query string is refused after the bound, without reading on.
        let huge = "k=v&".repeat(200_000);
        assert_eq!(Query::parse(&huge), Err(TooManyPairs));
        // Empty pairs (`&&`) are not pairs.
        let q = Query::parse(&format!("{}type=full", "&".repeat(10_000))).unwrap();
        assert_eq!(q.get("type"), QueryValue::One("full"));
    }

    #[test]
    fn repeated_keys_collect_in_order() {
        let raw: Vec<String> = (0..MAX_QUERY_PAIRS).map(|i| format!("k{}={i}", i % 3)).collect();
        let q = Query::parse(&raw.join("&")).unwrap();
        let QueryValue::Many(values) = q.get("k1") else { panic!("k1 repeats") };
        let want: Vec<String> = (0..MAX_QUERY_PAIRS).filter(|i| i % 3 == 1).map(|i| i.to_string()).collect();
        assert_eq!(values, want);
        assert_eq!(q.keys().collect::<Vec<_>>(), ["k0", "k1", "k2"]);
    }

    #[test]
    fn comma_lists_drop_empty_items() {
        assert_eq!(comma_list("a,,b,"), ["a", "b"]);
        assert!(comma_list("").is_empty());
        assert!(comma_list(",,").is_empty());
    }
}
