//! `GET /sync/deltas` on the engine: the one reader of a delta page, behind
//! both the typed page ([`SyncEngine::deltas`]) and the streamed body
//! ([`SyncEngine::deltas_stream`]).
//!
//! The reader makes the stale check, picks the source (the feed's hot tail
//! when it covers the cursor, else the log), applies the group filter and
//! cuts the page by rows ([`crate::service::deltas`]); each shape of the
//! page only decides what to do with the rows it hands over.

use super::SyncEngine;
use crate::auth::AuthContext;
use crate::error::ServiceError;
use crate::protocol::{group_change, DeltasParams, DeltasResponse, RawJson, SyncAction, SyncId};
use crate::realtime::recent::Recent;
use crate::realtime::Hub;
use crate::scope::in_groups;
use crate::service::chunks::{self, ChunkSender, Stopped};
use crate::service::deltas::{delta_groups, page_limit, DeltasStream, PageCut, CHUNK};
use crate::service::streams::StreamLease;
use crate::storage::log::{self, Visible};
use crate::storage::{Pool, StorageError};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::HashSet;

impl SyncEngine {
    /// One page of actions after the cursor, or
    /// [`ServiceError::BootstrapRequired`] if the cursor is stale.
    ///
    /// `lastSyncId` is the id of the page's last row: the last action's,
    /// unless rows with a letter this server does not know came after it.
    /// The page is read as [`Self::deltas_stream`] reads it (from the hot
    /// tail when it covers the cursor), without its admission.
    pub async fn deltas(&self, user: &AuthContext, params: &DeltasParams) -> Result<DeltasResponse, ServiceError> {
        let reader = PageReader::new(self, user, params);
        let mut actions = Vec::new();
        let end = reader
            .read(&self.pool, |_, found| {
                if let Some(found) = found {
                    actions.push(reader.typed(found)?);
                }
                Ok::<(), ServiceError>(())
            })
            .await??;
        Ok(DeltasResponse { actions, has_more: end.has_more, last_sync_id: end.last })
    }

    /// [`Self::deltas`] streamed: every action is serialized once, as its
    /// row arrives from PostgreSQL (or taken as its delta frame holds it,
    /// from the hot tail), and its JSON is sent on in chunks while the next
    /// rows are read. Resolves once the stale check passed (or failed: then
    /// nothing was written).
    ///
    /// The page is read to its end whatever the client's pace, and its
    /// connection released: chunks the client has not taken yet wait in
    /// memory (one page at most). The response counts towards the
    /// caller's open streams ([`ServiceError::TooManyStreams`]), and is
    /// aborted if the client takes nothing for the stall timeout
    /// ([`StreamLimits`](super::StreamLimits)).
    pub async fn deltas_stream(&self, user: &AuthContext, params: &DeltasParams) -> Result<DeltasStream, ServiceError> {
        let lease = self.streams.admit(user.user_id())?;
        let (tx, mut rx) = chunks::channel(self.streams.stall_timeout());
        let reader = PageReader::new(self, user, params);
        tokio::spawn(reader.run(self.pool.clone(), tx, lease));
        match rx.next().await {
            Some(Ok(first)) => Ok(futures_util::stream::once(std::future::ready(Ok(first))).chain(rx).boxed()),
            Some(Err(e)) => Err(e),
            None => Err(ServiceError::Unavailable),
        }
    }
}

/// An action of a page as the reader found it.
enum Found {
    /// Read from the log (a group change already told as the caller is
    /// told it).
    Logged(SyncAction<RawJson>),
    /// Taken from the feed's hot tail.
    Recent(Recent),
}

/// How a page ended.
struct PageEnd {
    has_more: bool,
    last: SyncId,
}

/// The reader of one page.
struct PageReader {
    after: SyncId,
    limit: u64,
    groups: Vec<String>,
    /// The caller, and the groups it derives: its group changes list them.
    user_id: String,
    derived: Vec<String>,
    /// The node's live feed, whose hot tail may hold the page.
    feed: Hub,
}

impl PageReader {
    fn new(engine: &SyncEngine, user: &AuthContext, params: &DeltasParams) -> Self {
        PageReader {
            after: params.after,
            limit: page_limit(params),
            groups: delta_groups(user, params.sync_groups.as_deref()),
            user_id: user.user_id().to_owned(),
            derived: user.derived_groups.clone(),
            feed: engine.hub(),
        }
    }

    /// Reads the page, handing `row` each of its rows in order (its id, and
    /// its action unless its letter is unknown) up to the page's cut;
    /// `Ok(Err(stop))` when `row` stopped it.
    ///
    /// A cursor the feed's hot tail covers is served from memory when the
    /// tail holds the log up to its head at the stale check (the rule of
    /// WebSocket replays): each action is its delta frame's, which
    /// serializes the same action the same way, and the group filter and
    /// page cut are the log query's.
    async fn read<S>(
        &self,
        pool: &Pool,
        row: impl FnMut(SyncId, Option<Found>) -> Result<(), S>,
    ) -> Result<Result<PageEnd, S>, ServiceError> {
        let conn = pool.get().await.map_err(StorageError::from)?;
        if let Some(since) = self.feed.recent_since(self.after) {
            let (stale, span) = log::stale_and_span(&conn, self.after).await.map_err(StorageError::from)?;
            if stale {
                return Err(ServiceError::BootstrapRequired);
            }
            if since.end >= span.latest {
                drop(conn);
                let visible: HashSet<&str> = self.groups.iter().map(String::as_str).collect();
                let rows = since
                    .actions
                    .into_iter()
                    .filter(|r| r.sync_id >= span.earliest)
                    .filter(|r| in_groups(r.group_id.as_deref(), &visible))
                    .map(|r| Ok::<_, ServiceError>((r.sync_id, Some(Found::Recent(r)))));
                return self.cut(futures_util::stream::iter(rows), "memory", row).await;
            }
        }
        // One round trip: the stale check and the page are pipelined (a
        // stale cursor's page is discarded).
        let (stale, rows) = futures_util::try_join!(
            log::is_stale(&conn, self.after),
            log::read_stream::<RawJson>(&conn, self.after, Visible::Groups(&self.groups), self.limit as i64 + 1)
        )
        .map_err(StorageError::from)?;
        if stale {
            return Err(ServiceError::BootstrapRequired);
        }
        let rows = rows.map_err(|e| ServiceError::from(StorageError::from(e))).map_ok(|row| {
            let action = row.action.map(|a| Found::Logged(group_change::announce_raw(a, &self.user_id, &self.derived)));
            (row.id, action)
        });
        self.cut(rows, "database", row).await
    }

    /// Hands over the `rows` of the page, cut at the limit.
    async fn cut<S>(
        &self,
        rows: impl futures_util::Stream<Item = Result<(SyncId, Option<Found>), ServiceError>>,
        source: &'static str,
        mut row: impl FnMut(SyncId, Option<Found>) -> Result<(), S>,
    ) -> Result<Result<PageEnd, S>, ServiceError> {
        let mut rows = std::pin::pin!(rows);
        let mut cut = PageCut::new(self.after, self.limit);
        let mut served = 0u64;
        while let Some((id, found)) = rows.try_next().await? {
            if !cut.take(id) {
                break;
            }
            served += u64::from(found.is_some());
            if let Err(stop) = row(id, found) {
                return Ok(Err(stop));
            }
        }
        crate::metrics::deltas_served(source, "http", served);
        Ok(Ok(PageEnd { has_more: cut.has_more, last: cut.last }))
    }

    /// The JSON of an action, as the caller is told it.
    fn json(&self, found: Found) -> Bytes {
        match found {
            // Serializing plain data to a Vec cannot fail.
            Found::Logged(action) => Bytes::from(serde_json::to_vec(&action).unwrap_or_default()),
            Found::Recent(recent) => self.memory_json(recent),
        }
    }

    /// An action as the typed page holds it: the hot tail's is read back
    /// from the JSON the streamed page would send.
    fn typed(&self, found: Found) -> Result<SyncAction<RawJson>, ServiceError> {
        match found {
            Found::Logged(action) => Ok(action),
            Found::Recent(recent) => serde_json::from_slice(&self.memory_json(recent)).map_err(|e| {
                tracing::error!(error = %e, "an action of the hot tail does not read back");
                ServiceError::Unavailable
            }),
        }
    }

    /// The JSON of an action of the hot tail, as the caller is told it.
    fn memory_json(&self, recent: Recent) -> Bytes {
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

    /// Writes the page into `tx`, holding `lease` until the client took
    /// all of it.
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

    /// Writes the page as JSON text, offering its chunks as they fill;
    /// returns once the last chunk is offered and the connection released.
    async fn write(&self, pool: &Pool, tx: &mut ChunkSender) -> Result<Result<(), Stopped>, ServiceError> {
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(br#"{"actions":["#);
        let mut written = 0u64;
        let read = self
            .read(pool, |_, found| {
                let Some(found) = found else { return Ok(()) };
                if written > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(&self.json(found));
                written += 1;
                if buf.len() >= CHUNK {
                    let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096));
                    tx.offer(Bytes::from(chunk))?;
                }
                Ok(())
            })
            .await?;
        let end = match read {
            Ok(end) => end,
            Err(stopped) => return Ok(Err(stopped)),
        };
        buf.extend_from_slice(br#"],"hasMore":"#);
        buf.extend_from_slice(if end.has_more { b"true" } else { b"false" });
        buf.extend_from_slice(br#","lastSyncId":""#);
        buf.extend_from_slice(end.last.to_string().as_bytes());
        buf.extend_from_slice(br#""}"#);
        Ok(tx.offer(Bytes::from(buf)))
    }
}
