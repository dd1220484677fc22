//! Codecs: inferred from every supported type (also behind `Option` and
//! full paths), and each override flag.

use diesel::prelude::*;
use stratasync_core::__private::CodecKind::{self as K};
use stratasync_core::SyncModel;

diesel::table! {
    everything (id) {
        id -> Uuid,
        s -> Text,
        i2 -> Int2,
        i4 -> Int4,
        i8 -> Int8,
        f4 -> Float4,
        f8 -> Float8,
        at -> Timestamptz,
        day -> Date,
        flag -> Bool,
        doc -> Jsonb,
        opt_s -> Nullable<Text>,
        opt_day -> Nullable<Date>,
        ms -> Int8,
        uuid_as_string -> Uuid,
        text_uuid -> Text,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = everything)]
#[sync(group = global, actions(insert, update))]
struct Inferred {
    id: uuid::Uuid,
    #[sync(insert, update)]
    s: String,
    #[sync(insert, update)]
    i2: i16,
    #[sync(insert, update)]
    i4: i32,
    #[sync(insert, update)]
    i8: i64,
    #[sync(insert, update)]
    f4: f32,
    #[sync(insert, update)]
    f8: f64,
    #[sync(insert, update)]
    at: chrono::DateTime<chrono::Utc>,
    #[sync(insert, update)]
    day: chrono::NaiveDate,
    #[sync(insert, update)]
    flag: bool,
    #[sync(insert, update)]
    doc: serde_json::Value,
    #[sync(insert, update)]
    opt_s: Option<String>,
    #[sync(insert, update)]
    opt_day: std::option::Option<chrono::NaiveDate>,
    #[sync(insert, update)]
    ms: i64,
    #[sync(insert, update)]
    uuid_as_string: uuid::Uuid,
    #[sync(insert, update)]
    text_uuid: String,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = everything)]
#[sync(group = global, actions(insert, update))]
struct Overridden {
    #[sync(uuid)]
    id: uuid::Uuid,
    #[sync(insert, update, string)]
    s: String,
    #[sync(insert, update, number)]
    i2: i16,
    #[sync(insert, update, number)]
    i4: i32,
    #[sync(insert, update, number)]
    i8: i64,
    #[sync(insert, update, number)]
    f4: f32,
    #[sync(insert, update, number)]
    f8: f64,
    #[sync(insert, update, instant)]
    at: chrono::DateTime<chrono::Utc>,
    #[sync(insert, update, date_only)]
    day: chrono::NaiveDate,
    #[sync(insert, update, boolean)]
    flag: bool,
    #[sync(insert, update, json)]
    doc: serde_json::Value,
    #[sync(insert, update, string_null)]
    opt_s: Option<String>,
    #[sync(insert, update, date_only)]
    opt_day: Option<chrono::NaiveDate>,
    #[sync(insert, update, instant)]
    ms: i64,
    #[sync(insert, update, string)]
    uuid_as_string: uuid::Uuid,
    #[sync(insert, update, string)]
    text_uuid: String,
}

fn codecs<M: SyncModel>() -> Vec<(K, bool)> {
    M::SPEC.fields.iter().map(|f| (f.codec, f.nullable)).collect()
}

fn main() {
    let inferred = [
        (K::Uuid, false),
        (K::String, false),
        (K::Number, false),
        (K::Number, false),
        (K::Number, false),
        (K::Number, false),
        (K::Number, false),
        (K::Instant, false),
        (K::DateOnly, false),
        (K::Bool, false),
        (K::Json, false),
        (K::String, true),
        (K::DateOnly, true),
        (K::Number, false),
        (K::Uuid, false),
        (K::String, false),
    ];
    assert_eq!(codecs::<Inferred>(), inferred);
    let mut overridden = inferred;
    overridden[13] = (K::Instant, false);
    overridden[14] = (K::String, false);
    assert_eq!(codecs::<Overridden>(), overridden);
}
