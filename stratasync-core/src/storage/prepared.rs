//! Keeping prepared the statements Diesel prepares anew on every run.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::QueryResult;

/// Runs the statement `Q` through the connection's prepared-statement
/// cache, keyed by its SQL text and bind types.
///
/// Diesel marks some statements unsafe to cache by type (any `UPDATE`, an
/// `INSERT` with optional values, raw SQL), and prepares them again on every
/// run: one more round trip to the database each time. Their SQL text does
/// identify them, so a cache keyed by it is sound. Use it only for
/// statements whose SQL takes a bounded number of forms (not `IN` lists of
/// varying length): each form stays prepared on every connection that ran
/// it.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(pub Q);

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}
