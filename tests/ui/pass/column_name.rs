//! `#[diesel(column_name = ...)]`: the column differs from the field; the
//! wire name follows the column unless renamed. Other diesel keys are
//! ignored, and the table may be a path.

use diesel::prelude::*;
use stratasync_core::SyncModel;

mod schema {
    diesel::table! {
        accounts (account_id) {
            account_id -> Int8,
            owner_name -> Text,
            kind -> Text,
        }
    }
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = crate::schema::accounts, check_for_backend(diesel::pg::Pg))]
#[diesel(primary_key(account_id))]
#[sync(group = global, id = key, actions(insert, update), batch_keys(key))]
struct Account {
    #[diesel(column_name = account_id)]
    key: i64,
    #[diesel(column_name = owner_name)]
    #[sync(insert, update)]
    owner: String,
    #[diesel(column_name = "kind")]
    #[sync(insert, rename = "type")]
    account_kind: String,
}

fn main() {
    let wires: Vec<&str> = Account::SPEC.fields.iter().map(|f| f.wire).collect();
    assert_eq!(wires, ["accountId", "ownerName", "type"]);
    assert_eq!(Account::SPEC.id_field, Some("accountId"));
    assert_eq!(Account::SPEC.indexed_keys, ["accountId"]);
}
