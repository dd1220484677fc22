//! Values usable as ids, group keys, cursors and indexed keys.
//!
//! A key is written on the wire in exactly one spelling, its canonical
//! form, and only that spelling is accepted back: the log, group checks
//! and the client compare ids as strings, so a second spelling of the same
//! value (`urn:uuid:…`, `{…}`, upper case, `007`) would name a row that
//! reads, writes and the log disagree about.

/// A column value that has a canonical string form on the wire (ids and
/// group ids are strings in the protocol).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a sync id, group key or indexed key",
    note = "keys must be `String`, `Uuid` or an integer (optionally in an `Option`)"
)]
pub trait KeyValue: Sized {
    /// Parses the wire string in its canonical form only; `None` if the
    /// column could not hold it or it is spelled any other way (such a
    /// value simply matches no row).
    fn parse_key(s: &str) -> Option<Self>;
    /// The canonical wire string (`None` for a NULL value).
    fn key_string(&self) -> Option<String>;
    /// Whether `s` spells a value of this type, but not in its canonical
    /// form (so an error can say what is wrong with it).
    fn is_non_canonical(s: &str) -> bool {
        let _ = s;
        false
    }
}

impl KeyValue for String {
    fn parse_key(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
    fn key_string(&self) -> Option<String> {
        Some(self.clone())
    }
}

/// Parses a UUID in its canonical form only: 36 characters, lower-case
/// hex, hyphenated (what [`uuid::Uuid::hyphenated`] writes).
///
/// Hand-written check before the `uuid` crate's parser, which has no strict
/// mode: it also accepts the simple (32), braced (38) and URN (45) forms,
/// all of which differ in length, and upper case.
pub(crate) fn parse_canonical_uuid(s: &str) -> Option<uuid::Uuid> {
    if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    uuid::Uuid::try_parse(s).ok()
}

impl KeyValue for uuid::Uuid {
    fn parse_key(s: &str) -> Option<Self> {
        parse_canonical_uuid(s)
    }
    fn key_string(&self) -> Option<String> {
        Some(self.hyphenated().to_string())
    }
    fn is_non_canonical(s: &str) -> bool {
        parse_canonical_uuid(s).is_none() && uuid::Uuid::try_parse(s).is_ok()
    }
}

macro_rules! integer_key {
    ($($t:ty),*) => {$(
        impl KeyValue for $t {
            fn parse_key(s: &str) -> Option<Self> {
                let value: $t = s.parse().ok()?;
                // Canonical: what `key_string` writes (no `+`, no leading
                // zeros, no `-0`).
                (itoa::Buffer::new().format(value) == s).then_some(value)
            }
            fn key_string(&self) -> Option<String> {
                Some(self.to_string())
            }
            fn is_non_canonical(s: &str) -> bool {
                Self::parse_key(s).is_none() && s.parse::<$t>().is_ok()
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
    fn is_non_canonical(s: &str) -> bool {
        T::is_non_canonical(s)
    }
}

#[cfg(test)]
mod tests {
    use super::KeyValue;
    use uuid::Uuid;

    #[test]
    fn integer_keys_parse_strictly() {
        assert_eq!(i64::parse_key("42"), Some(42));
        assert_eq!(i64::parse_key("-7"), Some(-7));
        assert_eq!(i64::parse_key("4 2"), None);
        assert_eq!(i32::parse_key("99999999999"), None);
        for other_spelling in ["042", "+42", "-0", " 42"] {
            assert_eq!(i64::parse_key(other_spelling), None, "{other_spelling}");
        }
        assert!(i64::is_non_canonical("042"));
        assert!(!i64::is_non_canonical("x"));
        assert_eq!(Option::<String>::None.key_string(), None);
    }

    #[test]
    fn uuid_keys_accept_only_the_canonical_spelling() {
        let canonical = "0a0a0a0a-0000-4000-8000-000000000001";
        let id = Uuid::parse_key(canonical).expect("canonical");
        assert_eq!(id.key_string().as_deref(), Some(canonical));
        for other in [
            "0A0A0A0A-0000-4000-8000-000000000001",
            "0a0a0a0a-0000-4000-8000-00000000000A",
            "{0a0a0a0a-0000-4000-8000-000000000001}",
            "urn:uuid:0a0a0a0a-0000-4000-8000-000000000001",
            "0a0a0a0a000040008000000000000001",
        ] {
            assert_eq!(Uuid::parse_key(other), None, "{other}");
            assert!(Uuid::is_non_canonical(other), "{other}");
            assert!(Option::<Uuid>::is_non_canonical(other), "{other}");
        }
        for garbage in ["nope", "", "0a0a0a0a-0000-4000-8000-00000000000g", "0a0a0a0a-0000-4000-8000_000000000001"] {
            assert_eq!(Uuid::parse_key(garbage), None, "{garbage}");
            assert!(!Uuid::is_non_canonical(garbage), "{garbage}");
        }
    }
}
