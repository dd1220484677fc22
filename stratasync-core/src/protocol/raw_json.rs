//! JSON text passed through without being parsed into a tree and serialized
//! again (the delta read path serializes each action's data once:
//! PostgreSQL's `jsonb`, read by [`crate::storage`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A `jsonb` value as compact JSON text, serialized verbatim.
///
/// PostgreSQL prints `jsonb` with a space after every `:` and `,`; reading
/// drops the whitespace outside strings, so the bytes equal
/// `JSON.stringify` of the same value (the reference's output) and the
/// frames built from parsed values.
#[derive(Debug, Clone, diesel::deserialize::FromSqlRow)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Whether the value is a JSON object.
    pub fn is_object(&self) -> bool {
        self.0.get().starts_with('{')
    }

    /// `{}`.
    pub fn empty_object() -> RawJson {
        RawJson(RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("{{}} is JSON")))
    }

    /// Compacts and checks JSON text.
    pub fn from_text(text: &str) -> Result<RawJson, serde_json::Error> {
        RawValue::from_string(compact(text)).map(RawJson)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    /// Reads JSON text as it is (a serde_json deserializer keeps it
    /// verbatim); text that is not compact is compacted.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Box<RawValue>>::deserialize(d)?;
        if raw.get().bytes().any(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t')) {
            return RawJson::from_text(raw.get()).map_err(serde::de::Error::custom);
        }
        Ok(RawJson(raw))
    }
}

/// `text` without whitespace outside strings.
fn compact(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in text.as_bytes() {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            in_string = b == b'"';
            out.push(b);
        }
    }
    // Only ASCII whitespace was removed, between complete UTF-8 sequences.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_outside_strings_only() {
        let raw = RawJson::from_text(r#"{"a": 1, "b c": "x, y: \" z", "d": [1, {"e": null}]}"#).unwrap();
        assert_eq!(raw.get(), r#"{"a":1,"b c":"x, y: \" z","d":[1,{"e":null}]}"#);
        let escaped = RawJson::from_text(r#"{"k": "back\\", "n": "é ü"}"#).unwrap();
        assert_eq!(escaped.get(), r#"{"k":"back\\","n":"é ü"}"#);
        assert!(RawJson::from_text("{\"a\": ").is_err());
        assert!(RawJson::empty_object().is_object());
    }

    #[test]
    fn reads_back_what_it_writes() {
        let raw = RawJson::from_text(r#"{"a": [1, "x y"]}"#).unwrap();
        let text = serde_json::to_string(&raw).unwrap();
        assert_eq!(text, r#"{"a":[1,"x y"]}"#);
        assert_eq!(serde_json::from_str::<RawJson>(&text).unwrap(), raw);
        assert_eq!(serde_json::from_str::<RawJson>(r#"{"a": [1, "x y"]}"#).unwrap(), raw);
    }
}
