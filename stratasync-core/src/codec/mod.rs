//! Field codecs: how a Rust field value is written to the wire, read back
//! from a mutation payload, and used as a key.
//!
//! The kind markers in [`kind`] select a codec at compile time: the derive
//! emits `<FieldType as Codec<kind::Instant>>::…`, so a codec attribute on a
//! field of the wrong type is a compile error.
//!
//! Reading a payload value refuses whatever its column could not store, so
//! that a bad value fails its own transaction before any statement runs:
//! text with a NUL character (strings and JSON values alike, since every
//! action's `data` is stored as `jsonb`), integers outside their Rust type
//! (`i32` for `integer`, …), floats outside `f32` for `real`, and instants
//! or days outside PostgreSQL's range.

mod codec_kind;
mod impls;
mod key;
mod storable;
pub(crate) mod time;

pub use codec_kind::CodecKind;
pub(crate) use key::parse_canonical_uuid;
pub use key::KeyValue;
pub(crate) use storable::{is_storable_json, is_storable_text};

use serde_json::Value;

/// Codec kind markers (zero-sized types used as `Codec` parameters).
pub mod kind {
    /// A JSON string.
    #[derive(Debug)]
    pub struct Str;
    /// A JSON string holding a UUID.
    #[derive(Debug)]
    pub struct Uuid;
    /// A JSON number.
    #[derive(Debug)]
    pub struct Number;
    /// A JSON boolean.
    #[derive(Debug)]
    pub struct Bool;
    /// Epoch milliseconds.
    #[derive(Debug)]
    pub struct Instant;
    /// UTC-midnight epoch milliseconds.
    #[derive(Debug)]
    pub struct DateOnly;
    /// Any JSON value.
    #[derive(Debug)]
    pub struct Json;
}

/// Converts a field type to and from its wire form under codec kind `K`.
///
/// `Option<T>` implements every kind that `T` does, with `null` ↔ `None`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be synced with the `{K}` codec",
    note = "pick the codec attribute that matches the field's Rust type (see the SyncModel docs)"
)]
pub trait Codec<K>: Sized {
    /// Appends the wire JSON of the value (bootstrap rows).
    fn write_json(&self, out: &mut Vec<u8>);
    /// The wire JSON of the value (sync action data).
    fn to_json(&self) -> Value;
    /// Reads a normalized wire value; `None` if it does not fit the type.
    fn from_json(value: &Value) -> Option<Self>;
}

impl<K, T: Codec<K>> Codec<K> for Option<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Some(v) => v.to_json(),
            None => Value::Null,
        }
    }

    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            v => T::from_json(v).map(Some),
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends an integer as JSON.
pub fn write_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}
