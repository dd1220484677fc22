//! PostgreSQL's work for one database over a phase, from
//! `pg_stat_database`: transactions committed, tuples returned (read by
//! scans) and fetched (by index), and buffer blocks touched.
//!
//! A session publishes its counts when it ends a transaction, at most once
//! a second, and an idle one within 10 s, so a reading is only complete
//! after the phase's sessions settled ([`crate::plan::Plan::pg_stats_settle`]).
//! Readings come from a session on the `postgres` database, so they do not
//! count themselves.

use crate::pg::Pg;
use crate::BoxError;

/// `pg_stat_database` counters of one database at one time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PgWork {
    pub xact_commit: i64,
    pub tup_returned: i64,
    pub tup_fetched: i64,
    /// Buffer blocks hit in shared buffers plus read from the OS.
    pub blocks: i64,
}

impl PgWork {
    /// The counters of `db` now.
    pub async fn read(pg: &Pg, db: &str) -> Result<PgWork, BoxError> {
        let c = pg.connect("postgres").await?;
        let r = c
            .query_one(
                "SELECT xact_commit, tup_returned, tup_fetched, blks_hit + blks_read \
                 FROM pg_stat_database WHERE datname = $1",
                &[&db],
            )
            .await?;
        Ok(PgWork { xact_commit: r.get(0), tup_returned: r.get(1), tup_fetched: r.get(2), blocks: r.get(3) })
    }

    /// The work done between `earlier` and `self`.
    pub fn since(&self, earlier: &PgWork) -> PgWork {
        PgWork {
            xact_commit: self.xact_commit - earlier.xact_commit,
            tup_returned: self.tup_returned - earlier.tup_returned,
            tup_fetched: self.tup_fetched - earlier.tup_fetched,
            blocks: self.blocks - earlier.blocks,
        }
    }
}
