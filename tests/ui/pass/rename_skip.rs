//! `rename = "..."` and `skip`.

use diesel::prelude::*;
use stratasync_core::__private::SyncStorage;
use stratasync_core::SyncModel;

diesel::table! {
    users (id) {
        id -> Int4,
        display_name -> Text,
        password_hash -> Text,
        email -> Text,
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = users)]
#[sync(name = "Person", group = own, actions(update))]
struct User {
    id: i32,
    #[sync(rename = "name", update)]
    display_name: String,
    #[sync(skip)]
    password_hash: String,
    #[sync(rename = "e-mail \"primary\"")]
    email: String,
}

fn main() {
    let wires: Vec<&str> = User::SPEC.fields.iter().map(|f| f.wire).collect();
    assert_eq!(wires, ["id", "name", "e-mail \"primary\""]);
    let user = User { id: 7, display_name: "Ada".into(), password_hash: "secret".into(), email: "a@b".into() };
    let mut out = Vec::new();
    user.write_row(&mut out);
    let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(line, serde_json::json!({"__class": "Person", "id": "7", "name": "Ada", "e-mail \"primary\"": "a@b"}));
    assert!(!String::from_utf8(out).unwrap().contains(&user.password_hash));
}
