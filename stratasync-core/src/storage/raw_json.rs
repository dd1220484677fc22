//! Reading `jsonb` as [`RawJson`]: PostgreSQL's JSON text, compacted, never
//! parsed into a tree.

use crate::protocol::RawJson;
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::sql_types::Jsonb;

impl FromSql<Jsonb, Pg> for RawJson {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        // The binary format of `jsonb`: a version byte (1), then the text.
        let bytes = value.as_bytes();
        let Some((&1, text)) = bytes.split_first() else {
            return Err("unsupported jsonb binary format version".into());
        };
        Ok(RawJson::from_text(std::str::from_utf8(text)?)?)
    }
}
