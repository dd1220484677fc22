//! Insert defaults: `default = <expr>` and `date_now`.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde_json::json;
use stratasync_core::SyncModel;

diesel::table! {
    things (id) {
        id -> Int4,
        name -> Text,
        size -> Int4,
        tags -> Jsonb,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
        day -> Date,
        created_ms -> Int8,
    }
}

const DEFAULT_SIZE: i32 = 3;

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = things)]
#[sync(group = global, actions(insert))]
struct Thing {
    id: i32,
    #[sync(insert, default = "unnamed".to_owned())]
    name: String,
    #[sync(insert, default = DEFAULT_SIZE * 2)]
    size: i32,
    #[sync(insert, default = json!(["new"]))]
    tags: serde_json::Value,
    #[sync(insert, default = Some(String::from("n/a")))]
    note: Option<String>,
    #[sync(insert, date_now)]
    created_at: DateTime<Utc>,
    #[sync(insert, date_now)]
    day: NaiveDate,
    #[sync(insert, instant, date_now)]
    created_ms: i64,
}

fn main() {
    let default = |wire: &str| Thing::SPEC.field(wire).unwrap().default.map(|f| f());
    assert_eq!(default("name"), Some(json!("unnamed")));
    assert_eq!(default("size"), Some(json!(6)));
    assert_eq!(default("tags"), Some(json!(["new"])));
    assert_eq!(default("note"), Some(json!("n/a")));
    assert_eq!(default("createdAt"), None);
    let date_now: Vec<&str> = Thing::SPEC.fields.iter().filter(|f| f.date_now).map(|f| f.wire).collect();
    assert_eq!(date_now, ["createdAt", "day", "createdMs"]);
}
