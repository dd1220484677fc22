//! `GET /sync/deltas` (docs/protocol.md §4.3).

use super::chunks::{self, ChunkSender, Stopped};
use super::streams::StreamLease;
use crate::auth::AuthContext;
use crate::engine::SyncEngine;
use crate::error::ServiceError;
use crate::protocol::group_change;
pub use crate::protocol::DeltasParams;
use crate::protocol::{DeltasResponse, SyncId};
use crate::storage::log::{self, Visible};
use crate::storage::{Pool, RawJson, StorageError};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

/// The default page size.
pub const DEFAULT_LIMIT: u64 = 1000;
/// The largest page size.
pub const MAX_LIMIT: u64 = 5000;

/// The groups a delta request covers: the requested ones the caller holds
/// (possibly none: then only global actions), or all of the caller's.
pub fn delta_groups(user: &AuthContext, requested: Option<&[String]>) -> Vec<String> {
    match requested {
        None | Some([]) => user.groups.clone(),
        Some(requested) => {
            // Linear in both lists, however many groups either holds.
            let held: std::collections::HashSet<&str> = user.groups.iter().map(String::as_str).collect();
            requested.iter().filter(|g| held.contains(g.as_str())).cloned().collect()
        }
    }
}

/// A page as JSON text in chunks, `{"actions":[…],"hasMore":…,"lastSyncId":"…"}`
/// (the shape of [`DeltasResponse`]). An `Err` item means the page could not
/// be finished: the transport must abort the response, not end it.
pub type DeltasStream = BoxStream<'static, Result<Bytes, ServiceError>>;

/// Chunks are handed to the transport once they reach this size.
const CHUNK: usize = 32 * 1024;

/// The page size of a request.
fn page_limit(params: &DeltasParams) -> u64 {
    match params.limit {
        None | Some(0) => DEFAULT_LIMIT,
        Some(n) => n.min(MAX_LIMIT),
    }
}

/// Cuts a page of `limit` rows out of a read of `limit + 1`: counts rows
/// (known actions or not), so a page whose rows were partly skipped is
/// neither taken for the end of the log nor leaves the cursor behind.
struct PageCut {
    limit: u64,
    taken: u64,
    last: SyncId,
    has_more: bool,
}

impl PageCut {
    fn new(after: SyncId, limit: u64) -> Self {
        PageCut { limit, taken: 0, last: after, has_more: false }
    }

    /// Takes row `id` into the page; `false` (and `has_more`) once the
    /// page is full.
    fn take(&mut self, id: SyncId) -> bool {
        if self.taken == self.limit {
            self.has_more = true;
            return false;
        }
        self.taken += 1;
        self.last = id;
        true
    }
}

impl SyncEngine {
    /// One page of actions after the cursor, or
    /// [`ServiceError::BootstrapRequired`] if the cursor is stale.
    ///
    /// `lastSyncId` is the id of the page's last row: the last action's,
    /// unless rows with a letter this server does not know came after it.
    pub async fn deltas(&self, user: &AuthContext, params: &DeltasParams) -> Result<DeltasResponse, ServiceError> {
        let limit = page_limit(params);
        let groups = delta_groups(user, params.sync_groups.as_deref());
        let conn = self.pool.get().await.map_err(StorageError::from)?;
        // One round trip: the stale check and the page are pipelined (a
        // stale cursor's page is discarded).
        let (stale, rows) = futures_util::try_join!(
            log::is_stale(&conn, params.after),
            log::read_stream::<RawJson>(&conn, params.after, Visible::Groups(&groups), limit as i64 + 1)
        )
        .map_err(StorageError::from)?;
        if stale {
            return Err(ServiceError::BootstrapRequired);
        }
        let mut rows = std::pin::pin!(rows);
        let mut cut = PageCut::new(params.after, limit);
        let mut actions = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(StorageError::from)? {
            if !cut.take(row.id) {
                break;
            }
            actions.extend(row.action.map(|a| group_change::announce_raw(a, user.user_id(), &user.derived_groups)));
        }
        crate::metrics::deltas_served("database", "http", actions.len() as u64);
        Ok(DeltasResponse { actions, has_more: cut.has_more, last_sync_id: cut.last })
    }

    /// [`Self::deltas`] streamed: every action is serialized once, as its
    /// row arrives from PostgreSQL, and its JSON is sent on in chunks while
    /// the next rows are read. Resolves once the stale check passed (or
    /// failed: then nothing was written).
    ///
    /// The page is read to its end whatever the client's pace, and its
    /// connection released: chunks the client has not taken yet wait in
    /// memory (one page at most). The response counts towards the
    /// caller's open streams ([`ServiceError::TooManyStreams`]), and is
    /// aborted if the client takes nothing for the stall timeout
    /// ([`crate::service::streams`]).
    pub async fn deltas_stream(&self, user: &AuthContext, params: &DeltasParams) -> Result<DeltasStream, ServiceError> {
        let lease = self.streams.admit(user.user_id())?;
        let (tx, mut rx) = chunks::channel(self.streams.stall_timeout());
        let page = PageWriter {
            after: params.after,
            limit: page_limit(params),
            groups: delta_groups(user, params.sync_groups.as_deref()),
            user_id: user.user_id().to_owned(),
            derived: user.derived_groups.clone(),
            feed: self.hub(),
        };
        tokio::spawn(page.run(self.pool.clone(), tx, lease));
        match rx.next().await {
            Some(Ok(first)) => Ok(futures_util::stream::once(std::future::ready(Ok(first))).chain(rx).boxed()),
            Some(Err(e)) => Err(e),
            None => Err(ServiceError::Unavailable),
        }
    }
}

/// Writes one page into a channel of chunks.
struct PageWriter {
    after: SyncId,
    limit: u64,
    groups: Vec<String>,
    /// The caller, and the groups it derives: its group changes list them.
    user_id: String,
    derived: Vec<String>,
    /// The node's live feed, whose hot tail may hold the page.
    feed: crate::realtime::Hub,
}

impl PageWriter {
    /// Writes the page, holding `lease` until the client took all of it.
    async fn run(self, pool: Pool, mut tx: ChunkSender, lease: StreamLease) {
        let result = self.write(&pool, &mut tx).await;
        match result {
            Ok(Ok(())) => {
                if tx.finish().await.is_err() {
                    tracing::debug!("deltas client went away or stalled");
                }
            }
            Ok(Err(_)) => tracing::debug!("deltas client went away"),
            Err(e) => tx.fail(e).await,
        }
        drop(lease);
    }

    /// Reads the page, offering its chunks as they fill; returns once the
    /// last chunk is offered and the connection released.
    ///
    /// A cursor the feed's hot tail covers is served from memory when the
    /// tail holds the log up to its head at the stale check (the rule of
    /// WebSocket replays): each action's bytes are its delta frame's,
    /// which serialize the same action the same way, and the group filter
    /// and page cut are the log query's.
    async fn write(&self, pool: &Pool, tx: &mut ChunkSender) -> Result<Result<(), Stopped>, ServiceError> {
        let conn = pool.get().await.map_err(StorageError::from)?;
        if let Some(since) = self.feed.recent_since(self.after) {
            let (stale, span) = log::stale_and_span(&conn, self.after).await.map_err(StorageError::from)?;
            if stale {
                return Err(ServiceError::BootstrapRequired);
            }
            if since.end >= span.latest {
                drop(conn);
                let visible: std::collections::HashSet<&str> = self.groups.iter().map(String::as_str).collect();
                let rows = since
                    .actions
                    .into_iter()
                    .filter(|r| r.sync_id >= span.earliest)
                    .filter(|r| r.group_id.as_deref().is_none_or(|g| visible.contains(g)))
                    .map(|r| Ok::<_, ServiceError>((r.sync_id, Some(self.memory_json(r)))));
                return self.write_page(futures_util::stream::iter(rows), "memory", tx).await;
            }
        }
        let (stale, rows) = futures_util::try_join!(
            log::is_stale(&conn, self.after),
            log::read_stream::<RawJson>(&conn, self.after, Visible::Groups(&self.groups), self.limit as i64 + 1)
        )
        .map_err(StorageError::from)?;
        if stale {
            return Err(ServiceError::BootstrapRequired);
        }
        let rows = rows.map_err(|e| ServiceError::from(StorageError::from(e))).map_ok(|row| {
            let json = row.action.map(|action| {
                let action = group_change::announce_raw(action, &self.user_id, &self.derived);
                // Serializing plain data to a Vec cannot fail.
                Bytes::from(serde_json::to_vec(&action).unwrap_or_default())
            });
            (row.id, json)
        });
        self.write_page(rows, "database", tx).await
    }

    /// The JSON of an action of the hot tail, as the caller is told it.
    fn memory_json(&self, recent: crate::realtime::recent::Recent) -> Bytes {
        let announced =
            recent.change.as_deref().filter(|change| group_change::is_change_of(change, &self.user_id)).and_then(
                |change| {
                    let members = group_change::members(&change.data)?;
                    group_change::announce(change, &self.derived, &members)
                },
            );
        match announced {
            // Serializing plain data to a Vec cannot fail.
            Some(action) => Bytes::from(serde_json::to_vec(&action).unwrap_or_default()),
            None => recent.frame.action_json(),
        }
    }

    /// Writes the page of `rows` (a row's id, and its action's JSON unless
    /// its letter is unknown), cut at the limit, in chunks.
    async fn write_page(
        &self,
        rows: impl futures_util::Stream<Item = Result<(SyncId, Option<Bytes>), ServiceError>>,
        source: &'static str,
        tx: &mut ChunkSender,
    ) -> Result<Result<(), Stopped>, ServiceError> {
        let mut rows = std::pin::pin!(rows);
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(br#"{"actions":["#);
        let mut cut = PageCut::new(self.after, self.limit);
        let mut written = 0u64;
        while let Some((id, json)) = rows.try_next().await? {
            if !cut.take(id) {
                break;
            }
            let Some(json) = json else { continue };
            if written > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(&json);
            written += 1;
            if buf.len() >= CHUNK {
                let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096));
                if let Err(stopped) = tx.offer(Bytes::from(chunk)) {
                    return Ok(Err(stopped));
                }
            }
        }
        crate::metrics::deltas_served(source, "http", written);
        buf.extend_from_slice(br#"],"hasMore":"#);
        buf.extend_from_slice(if cut.has_more { b"true" } else { b"false" });
        buf.extend_from_slice(br#","lastSyncId":""#);
        buf.extend_from_slice(cut.last.to_string().as_bytes());
        buf.extend_from_slice(br#""}"#);
        Ok(tx.offer(Bytes::from(buf)))
    }
}
