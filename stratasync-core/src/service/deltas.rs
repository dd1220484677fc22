//! `GET /sync/deltas` (docs/protocol.md §4.3): the page's size, groups and
//! cut. The one reader of a page, from the feed's hot tail or the log, is
//! the engine's (`SyncEngine::deltas` and `SyncEngine::deltas_stream`).

use crate::auth::AuthContext;
use crate::error::ServiceError;
pub use crate::protocol::DeltasParams;
use crate::protocol::SyncId;
use bytes::Bytes;
use futures_util::stream::BoxStream;

/// The default page size.
pub(crate) const DEFAULT_LIMIT: u64 = 1000;
/// The largest page size.
pub(crate) const MAX_LIMIT: u64 = 5000;

/// The groups a delta request covers: the requested ones the caller holds
/// (possibly none: then only global actions), or all of the caller's.
/// The rule is bootstrap's ([`crate::scope::requested_groups`]).
pub(crate) fn delta_groups(user: &AuthContext, requested: Option<&[String]>) -> Vec<String> {
    crate::scope::requested_groups(&user.groups, requested)
}

/// A page as JSON text in chunks, `{"actions":[…],"hasMore":…,"lastSyncId":"…"}`
/// (the shape of [`DeltasResponse`](crate::protocol::DeltasResponse)). An `Err` item means the page could not
/// be finished: the transport must abort the response, not end it.
pub(crate) type DeltasStream = BoxStream<'static, Result<Bytes, ServiceError>>;

/// Chunks are handed to the transport once they reach this size.
pub(crate) const CHUNK: usize = 32 * 1024;

/// The page size of a request.
pub(crate) fn page_limit(params: &DeltasParams) -> u64 {
    match params.limit {
        None | Some(0) => DEFAULT_LIMIT,
        Some(n) => n.min(MAX_LIMIT),
    }
}

/// Cuts a page of `limit` rows out of a read of `limit + 1`: counts rows
/// (known actions or not), so a page whose rows were partly skipped is
/// neither taken for the end of the log nor leaves the cursor behind.
pub(crate) struct PageCut {
    limit: u64,
    taken: u64,
    /// The id of the page's last row (the cursor when it is empty).
    pub(crate) last: SyncId,
    /// Whether rows follow the page.
    pub(crate) has_more: bool,
}

impl PageCut {
    pub(crate) fn new(after: SyncId, limit: u64) -> Self {
        PageCut { limit, taken: 0, last: after, has_more: false }
    }

    /// Takes row `id` into the page; `false` (and `has_more`) once the
    /// page is full.
    pub(crate) fn take(&mut self, id: SyncId) -> bool {
        if self.taken == self.limit {
            self.has_more = true;
            return false;
        }
        self.taken += 1;
        self.last = id;
        true
    }
}
