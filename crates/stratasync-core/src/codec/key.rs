//! Values usable as ids, group keys, cursors and indexed keys.

/// A column value that has a canonical string form on the wire (ids and
/// group ids are strings in the protocol).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a sync id, group key or indexed key",
    note = "keys must be `String`, `Uuid` or an integer (optionally in an `Option`)"
)]
pub trait KeyValue: Sized {
    /// Parses the wire string; `None` if the column could not hold it (such
    /// a value simply matches no row).
    fn parse_key(s: &str) -> Option<Self>;
    /// The canonical wire string (`None` for a NULL value).
    fn key_string(&self) -> Option<String>;
}

impl KeyValue for String {
    fn parse_key(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
    fn key_string(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl KeyValue for uuid::Uuid {
    fn parse_key(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s).ok()
    }
    fn key_string(&self) -> Option<String> {
        Some(self.hyphenated().to_string())
    }
}

macro_rules! integer_key {
    ($($t:ty),*) => {$(
        impl KeyValue for $t {
            fn parse_key(s: &str) -> Option<Self> {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                    return None;
                }
                s.parse().ok()
            }
            fn key_string(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}
integer_key!(i16, i32, i64);

impl<T: KeyValue> KeyValue for Option<T> {
    fn parse_key(s: &str) -> Option<Self> {
        T::parse_key(s).map(Some)
    }
    fn key_string(&self) -> Option<String> {
        self.as_ref().and_then(T::key_string)
    }
}

#[cfg(test)]
mod tests {
    use super::KeyValue;

    #[test]
    fn keys_parse_strictly() {
        assert_eq!(i64::parse_key("42"), Some(42));
        assert_eq!(i64::parse_key("4 2"), None);
        assert_eq!(i32::parse_key("99999999999"), None);
        assert!(uuid::Uuid::parse_key("nope").is_none());
        assert_eq!(
            uuid::Uuid::parse_key("0A0A0A0A-0000-4000-8000-000000000001").and_then(|u| u.key_string()),
            Some("0a0a0a0a-0000-4000-8000-000000000001".to_owned())
        );
        assert_eq!(Option::<String>::None.key_string(), None);
    }
}
