//! `scope = path`: a custom filter replacing the group filter, written with
//! the `Scope` alias or the boxed type it stands for.

use diesel::prelude::*;
use stratasync_core::__private::Scope;
use stratasync_core::{ScopeFilter, SyncModel};

diesel::table! {
    notes (id) {
        id -> Text,
        owner -> Text,
        shared -> Bool,
    }
}

mod scopes {
    use super::notes;
    use diesel::prelude::*;
    use stratasync_core::ScopeFilter;

    pub fn mine_or_shared(
        scope: &ScopeFilter,
    ) -> Box<dyn BoxableExpression<notes::table, diesel::pg::Pg, SqlType = diesel::sql_types::Bool> + '_> {
        Box::new(notes::owner.eq_any(&scope.authorized_group_ids).or(notes::shared.eq(true)))
    }
}

fn mine(scope: &ScopeFilter) -> Scope<'_, notes::table> {
    Box::new(notes::owner.eq(scope.user_id.clone()))
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = notes)]
#[sync(group = owner, scope = scopes::mine_or_shared)]
struct Note {
    id: String,
    owner: String,
    shared: bool,
}

#[derive(Queryable, Selectable, SyncModel)]
#[diesel(table_name = notes)]
#[sync(group = global, scope = mine)]
struct MyNote {
    id: String,
    owner: String,
    shared: bool,
}

fn main() {
    let _ = (Note::SPEC, MyNote::SPEC);
}
