//! [`CodecKind`]: the codec a field is declared with, as data.

/// How the values of a field are checked and converted on the wire.
///
/// The derive infers it from the Rust type (`String` → [`CodecKind::String`],
/// `Uuid` → [`CodecKind::Uuid`], integers and floats → [`CodecKind::Number`],
/// `DateTime<Utc>` → [`CodecKind::Instant`], `NaiveDate` →
/// [`CodecKind::DateOnly`], `bool` → [`CodecKind::Bool`],
/// `serde_json::Value` → [`CodecKind::Json`]); a field attribute overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecKind {
    /// A JSON string.
    String,
    /// A JSON string holding a UUID.
    Uuid,
    /// A JSON number.
    Number,
    /// A JSON boolean.
    Bool,
    /// A point in time: epoch milliseconds on the wire.
    Instant,
    /// A calendar day: epoch milliseconds of 00:00:00 UTC on the wire.
    DateOnly,
    /// Any JSON value, stored as-is.
    Json,
}

impl CodecKind {
    /// The word used in error messages (`Invalid <word> value for <field>`).
    pub const fn word(self) -> &'static str {
        match self {
            CodecKind::String => "string",
            CodecKind::Uuid => "uuid",
            CodecKind::Number => "number",
            CodecKind::Bool => "boolean",
            CodecKind::Instant => "instant",
            CodecKind::DateOnly => "dateOnly",
            CodecKind::Json => "json",
        }
    }
}
