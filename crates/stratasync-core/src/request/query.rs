//! Query strings as the reference's framework reads them.

use std::borrow::Cow;

/// A parsed query string: `application/x-www-form-urlencoded` pairs
/// (`+` is a space, percent escapes are decoded, invalid escapes stay as
/// they are, invalid UTF-8 becomes U+FFFD), keys in first-seen order. A key
/// given more than once holds every value, which validation rejects as
/// "received array".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, Vec<String>)>,
}

/// The value of one query key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryValue<'a> {
    /// The key is not in the query.
    Absent,
    /// The key appears once (`key` and `key=` both give `""`).
    One(&'a str),
    /// The key appears more than once.
    Many(&'a [String]),
}

impl Query {
    /// Parses a raw query string (without the leading `?`).
    pub fn parse(raw: &str) -> Query {
        let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let value = Cow::into_owned(value);
            match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.push(value),
                None => pairs.push((key.into_owned(), vec![value])),
            }
        }
        Query { pairs }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> QueryValue<'_> {
        match self.pairs.iter().find(|(k, _)| k == key) {
            None => QueryValue::Absent,
            Some((_, values)) if values.len() == 1 => QueryValue::One(&values[0]),
            Some((_, values)) => QueryValue::Many(values),
        }
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
        let q = Query::parse("a=1&b=x%2Cy&a=2&c&d=&e=%zz&f=a+b&g=%E2%82%AC");
        assert_eq!(q.get("a"), QueryValue::Many(&["1".to_owned(), "2".to_owned()]));
        assert_eq!(q.get("b"), QueryValue::One("x,y"));
        assert_eq!(q.get("c"), QueryValue::One(""));
        assert_eq!(q.get("d"), QueryValue::One(""));
        assert_eq!(q.get("e"), QueryValue::One("%zz"));
        assert_eq!(q.get("f"), QueryValue::One("a b"));
        assert_eq!(q.get("g"), QueryValue::One("€"));
        assert_eq!(q.get("z"), QueryValue::Absent);
        assert_eq!(Query::parse(""), Query::default());
    }

    #[test]
    fn comma_lists_drop_empty_items() {
        assert_eq!(comma_list("a,,b,"), ["a", "b"]);
        assert!(comma_list("").is_empty());
        assert!(comma_list(",,").is_empty());
    }
}
