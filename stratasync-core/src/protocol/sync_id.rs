//! The sync id: a positive 63-bit integer, a decimal string on the wire.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A sync id (or cursor). `SyncId(0)` means "nothing yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SyncId(pub u64);

/// The largest sync id (a PostgreSQL `bigint`).
pub(crate) const MAX_SYNC_ID: u64 = i64::MAX as u64;

/// A string that is not ASCII digits within `0..=2^63-1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sync id must be a string of ASCII digits within 0..=9223372036854775807")]
pub struct ParseSyncIdError;

impl FromStr for SyncId {
    type Err = ParseSyncIdError;

    /// Accepts `^[0-9]+$` (leading zeros allowed) up to `2^63-1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseSyncIdError);
        }
        let trimmed = s.trim_start_matches('0');
        if trimmed.len() > 19 {
            return Err(ParseSyncIdError);
        }
        let n: u64 = if trimmed.is_empty() { 0 } else { trimmed.parse().map_err(|_| ParseSyncIdError)? };
        if n > MAX_SYNC_ID {
            return Err(ParseSyncIdError);
        }
        Ok(SyncId(n))
    }
}

impl SyncId {
    /// The id as a PostgreSQL `bigint`.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    /// From a `bigint` column (never negative for `bigserial`).
    pub fn from_i64(n: i64) -> Self {
        SyncId(n.max(0) as u64)
    }
}

impl fmt::Display for SyncId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for SyncId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(itoa::Buffer::new().format(self.0))
    }
}

impl<'de> Deserialize<'de> for SyncId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ascii_digits_only() {
        assert_eq!("0007".parse(), Ok(SyncId(7)));
        assert_eq!("0".parse(), Ok(SyncId(0)));
        assert_eq!("9223372036854775807".parse(), Ok(SyncId(MAX_SYNC_ID)));
        for bad in ["", "-1", "+1", "1.0", " 1", "9223372036854775808", "١٢", "99999999999999999999999"] {
            assert_eq!(bad.parse::<SyncId>(), Err(ParseSyncIdError), "{bad:?}");
        }
    }

    #[test]
    fn serializes_as_string() {
        assert_eq!(serde_json::to_string(&SyncId(42)).unwrap(), r#""42""#);
        assert_eq!(serde_json::from_str::<SyncId>(r#""0042""#).unwrap(), SyncId(42));
        assert!(serde_json::from_str::<SyncId>("42").is_err());
    }
}
