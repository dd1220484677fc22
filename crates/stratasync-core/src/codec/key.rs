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
