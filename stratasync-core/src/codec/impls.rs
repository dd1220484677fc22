//! `Codec` implementations for the supported Rust field types.

use super::key::parse_canonical_uuid;
use super::storable::{is_storable_json, is_storable_text};
use super::time::{
    date_from_ms, date_only_ms_from_json, instant_from_ms, instant_ms_from_json, ms_from_date, ms_from_instant,
};
use super::{kind, write_int, write_str, Codec};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

impl Codec<kind::Str> for String {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
    fn from_json(value: &Value) -> Option<Self> {
        value.as_str().filter(|s| is_storable_text(s)).map(str::to_owned)
    }
}

impl Codec<kind::Uuid> for uuid::Uuid {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        out.extend_from_slice(self.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).as_bytes());
        out.push(b'"');
    }
    fn to_json(&self) -> Value {
        Value::String(self.hyphenated().to_string())
    }
    /// Only the canonical spelling (lower-case, hyphenated): another
    /// spelling of the same id would be stored and logged as a different
    /// string than the one the client sent.
    fn from_json(value: &Value) -> Option<Self> {
        value.as_str().and_then(parse_canonical_uuid)
    }
}

impl Codec<kind::Str> for uuid::Uuid {
    fn write_json(&self, out: &mut Vec<u8>) {
        <Self as Codec<kind::Uuid>>::write_json(self, out)
    }
    fn to_json(&self) -> Value {
        <Self as Codec<kind::Uuid>>::to_json(self)
    }
    fn from_json(value: &Value) -> Option<Self> {
        <Self as Codec<kind::Uuid>>::from_json(value)
    }
}

macro_rules! integer_codec {
    ($($t:ty),*) => {$(
        impl Codec<kind::Number> for $t {
            fn write_json(&self, out: &mut Vec<u8>) {
                write_int(out, *self);
            }
            fn to_json(&self) -> Value {
                Value::from(*self)
            }
            fn from_json(value: &Value) -> Option<Self> {
                if let Some(i) = value.as_i64() {
                    return <$t>::try_from(i).ok();
                }
                if let Some(u) = value.as_u64() {
                    return <$t>::try_from(u).ok();
                }
                let f = value.as_f64()?;
                // An integral float such as `3.0` is accepted.
                (f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15)
                    .then(|| <$t>::try_from(f as i64).ok())
                    .flatten()
            }
        }
    )*};
}
integer_codec!(i16, i32, i64, u16, u32);

macro_rules! float_codec {
    ($($t:ty),*) => {$(
        impl Codec<kind::Number> for $t {
            fn write_json(&self, out: &mut Vec<u8>) {
                write_float(out, f64::from(*self));
            }
            fn to_json(&self) -> Value {
                serde_json::Number::from_f64(f64::from(*self)).map_or(Value::Null, Value::Number)
            }
            fn from_json(value: &Value) -> Option<Self> {
                // `as` would turn a value past the type's range into infinity.
                value.as_f64().map(|f| f as $t).filter(|f| f.is_finite())
            }
        }
    )*};
}
float_codec!(f32, f64);

/// Writes a float the way JavaScript's `JSON.stringify` does for the common
/// cases: integral values without a fraction, non-finite values as `null`.
fn write_float(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        out.extend_from_slice(b"null");
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        write_int(out, f as i64);
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes());
    }
}

impl Codec<kind::Bool> for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_json(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl Codec<kind::Instant> for DateTime<Utc> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_int(out, ms_from_instant(self));
    }
    fn to_json(&self) -> Value {
        Value::from(ms_from_instant(self))
    }
    fn from_json(value: &Value) -> Option<Self> {
        instant_ms_from_json(value).and_then(instant_from_ms)
    }
}

/// An instant stored as epoch milliseconds in a `bigint` column.
impl Codec<kind::Instant> for i64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_int(out, *self);
    }
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
    fn from_json(value: &Value) -> Option<Self> {
        instant_ms_from_json(value)
    }
}

impl Codec<kind::DateOnly> for NaiveDate {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_int(out, ms_from_date(self));
    }
    fn to_json(&self) -> Value {
        Value::from(ms_from_date(self))
    }
    fn from_json(value: &Value) -> Option<Self> {
        date_only_ms_from_json(value).and_then(date_from_ms)
    }
}

impl Codec<kind::Json> for Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        let _ = serde_json::to_writer(&mut *out, self);
    }
    fn to_json(&self) -> Value {
        self.clone()
    }
    fn from_json(value: &Value) -> Option<Self> {
        is_storable_json(value).then(|| value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out<K, T: Codec<K>>(v: &T) -> String {
        let mut buf = Vec::new();
        v.write_json(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn wire_output() {
        assert_eq!(out::<kind::Str, _>(&"a\"b\n".to_owned()), r#""a\"b\n""#);
        assert_eq!(out::<kind::Str, _>(&Some("é".to_owned())), r#""é""#);
        assert_eq!(out::<kind::Str, Option<String>>(&None), "null");
        assert_eq!(out::<kind::Number, _>(&-3i32), "-3");
        assert_eq!(out::<kind::Number, _>(&2.0f64), "2");
        assert_eq!(out::<kind::Number, _>(&0.1f64), "0.1");
        assert_eq!(out::<kind::Number, _>(&f64::NAN), "null");
        let at = chrono::DateTime::parse_from_rfc3339("2024-06-15T12:00:00.123Z").unwrap().with_timezone(&Utc);
        assert_eq!(out::<kind::Instant, _>(&at), "1718452800123");
        let day = NaiveDate::from_ymd_opt(2024, 6, 20).unwrap();
        assert_eq!(out::<kind::DateOnly, _>(&day), "1718841600000");
        let before_epoch = NaiveDate::from_ymd_opt(1969, 12, 31).unwrap();
        assert_eq!(out::<kind::DateOnly, _>(&before_epoch), "-86400000");
        let id = uuid::Uuid::parse_str("0A0A0A0A-0000-4000-8000-000000000001").unwrap();
        assert_eq!(out::<kind::Uuid, _>(&id), r#""0a0a0a0a-0000-4000-8000-000000000001""#);
        assert_eq!(out::<kind::Bool, _>(&true), "true");
    }

    #[test]
    fn typed_input() {
        assert_eq!(<i32 as Codec<kind::Number>>::from_json(&json!(3.0)), Some(3));
        assert_eq!(<i32 as Codec<kind::Number>>::from_json(&json!(3.5)), None);
        assert_eq!(<i16 as Codec<kind::Number>>::from_json(&json!(40_000)), None);
        assert_eq!(<Option<i32> as Codec<kind::Number>>::from_json(&json!(null)), Some(None));
        assert_eq!(<i32 as Codec<kind::Number>>::from_json(&json!(null)), None);
        assert_eq!(<String as Codec<kind::Str>>::from_json(&json!(1)), None);
        assert!(<NaiveDate as Codec<kind::DateOnly>>::from_json(&json!(1718841600000i64)).is_some());
        assert!(<NaiveDate as Codec<kind::DateOnly>>::from_json(&json!(1718841600001i64)).is_none());
        // chrono ends in year 262143, a little before the JavaScript limit.
        assert!(<DateTime<Utc> as Codec<kind::Instant>>::from_json(&json!(8.2e15)).is_some());
        assert!(<DateTime<Utc> as Codec<kind::Instant>>::from_json(&json!(8.64e15 + 1.0)).is_none());
    }

    #[test]
    fn values_the_database_could_not_store_are_refused() {
        assert_eq!(<String as Codec<kind::Str>>::from_json(&json!("a\u{0}b")), None);
        assert_eq!(<Option<String> as Codec<kind::Str>>::from_json(&json!("\u{0}")), None);
        assert_eq!(<String as Codec<kind::Str>>::from_json(&json!("a\u{1}b")), Some("a\u{1}b".to_owned()));
        assert_eq!(<Value as Codec<kind::Json>>::from_json(&json!({"k": ["\u{0}"]})), None);
        assert_eq!(<Value as Codec<kind::Json>>::from_json(&json!({"k": [1]})), Some(json!({"k": [1]})));
        assert_eq!(<i32 as Codec<kind::Number>>::from_json(&json!(1_099_511_627_776i64)), None);
        assert_eq!(<i32 as Codec<kind::Number>>::from_json(&json!(2_147_483_648.0)), None);
        assert_eq!(<i32 as Codec<kind::Number>>::from_json(&json!(-2_147_483_648i64)), Some(i32::MIN));
        assert_eq!(<i16 as Codec<kind::Number>>::from_json(&json!(-32_769)), None);
        assert_eq!(<f32 as Codec<kind::Number>>::from_json(&json!(1e39)), None);
        assert_eq!(<f32 as Codec<kind::Number>>::from_json(&json!(1.5)), Some(1.5));
        assert_eq!(<f64 as Codec<kind::Number>>::from_json(&json!(1e300)), Some(1e300));
        let year_minus_10000 = -10_000i64 * 146_097 / 400 * 86_400_000;
        assert!(<NaiveDate as Codec<kind::DateOnly>>::from_json(&json!(year_minus_10000)).is_none());
        assert!(<DateTime<Utc> as Codec<kind::Instant>>::from_json(&json!(year_minus_10000 + 1)).is_none());
        assert!(<DateTime<Utc> as Codec<kind::Instant>>::from_json(&json!(super::super::time::PG_MIN_MS)).is_some());
        // An instant kept as epoch milliseconds in a `bigint` column has the
        // JavaScript range only.
        assert_eq!(<i64 as Codec<kind::Instant>>::from_json(&json!(year_minus_10000)), Some(year_minus_10000));
    }

    #[test]
    fn uuid_input_is_canonical_only() {
        let canonical = "0a0a0a0a-0000-4000-8000-000000000001";
        for k in [<uuid::Uuid as Codec<kind::Uuid>>::from_json, <uuid::Uuid as Codec<kind::Str>>::from_json] {
            assert_eq!(k(&json!(canonical)).map(|u| u.to_string()).as_deref(), Some(canonical));
            for other in [
                "0A0A0A0A-0000-4000-8000-000000000001",
                "{0a0a0a0a-0000-4000-8000-000000000001}",
                "urn:uuid:0a0a0a0a-0000-4000-8000-000000000001",
                "0a0a0a0a000040008000000000000001",
            ] {
                assert_eq!(k(&json!(other)), None, "{other}");
            }
        }
    }
}
