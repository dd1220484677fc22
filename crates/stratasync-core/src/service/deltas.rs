//! `GET /sync/deltas` (PROTOCOL.md §4.3).

use crate::auth::AuthContext;
use crate::engine::SyncEngine;
use crate::error::ServiceError;
use crate::protocol::{DeltasResponse, SyncId};
use crate::storage::{log, RawJson, StorageError};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;

/// The default page size.
pub const DEFAULT_LIMIT: u64 = 1000;
/// The largest page size.
pub const MAX_LIMIT: u64 = 5000;

/// A validated deltas request.
#[derive(Debug, Clone, Default)]
pub struct DeltasParams {
    /// The client's cursor.
    pub after: SyncId,
    /// Page size (`None` or 0: 1000; clamped to 5000).
    pub limit: Option<u64>,
    /// Requested groups (`None` or empty: all authorized).
    pub sync_groups: Option<Vec<String>>,
}

/// The groups a delta request covers: the requested ones the caller holds
/// (possibly none: then only global actions), or all of the caller's.
pub fn delta_groups(user: &AuthContext, requested: Option<&[String]>) -> Vec<String> {
    match requested {
        None | Some([]) => user.groups.clone(),
        Some(requested) => requested.iter().filter(|g| user.has_group(g)).cloned().collect(),
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

impl SyncEngine {
    /// One page of actions after the cursor, or
    /// [`ServiceError::BootstrapRequired`] if the cursor is stale.
    pub async fn deltas(&self, user: &AuthContext, params: &DeltasParams) -> Result<DeltasResponse, ServiceError> {
        let limit = page_limit(params);
        let groups = delta_groups(user, params.sync_groups.as_deref());
        let conn = self.pool.get().await.map_err(StorageError::from)?;
        // One round trip: the stale check and the page are pipelined (a
        // stale cursor's page is discarded).
        let (stale, mut actions) = futures_util::try_join!(
            log::is_stale(&conn, params.after),
            log::page::<RawJson>(&conn, params.after, &groups, limit as i64 + 1)
        )
        .map_err(StorageError::from)?;
        if stale {
            return Err(ServiceError::BootstrapRequired);
        }
        let has_more = actions.len() as u64 > limit;
        actions.truncate(limit as usize);
        let last_sync_id = actions.last().map_or(params.after, |a| a.sync_id);
        Ok(DeltasResponse { actions, has_more, last_sync_id })
    }

    /// [`Self::deltas`] streamed: every action is serialized once, as its
    /// row arrives from PostgreSQL, and its JSON is sent on in chunks while
    /// the next rows are read. Resolves once the stale check passed (or
    /// failed: then nothing was written).
    pub async fn deltas_stream(&self, user: &AuthContext, params: &DeltasParams) -> Result<DeltasStream, ServiceError> {
        let (tx, mut rx) = mpsc::channel(4);
        let page = PageWriter {
            after: params.after,
            limit: page_limit(params),
            groups: delta_groups(user, params.sync_groups.as_deref()),
            tx,
        };
        tokio::spawn(page.run(self.pool.clone()));
        match rx.recv().await {
            Some(Ok(first)) => {
                let rest = tokio_stream::wrappers::ReceiverStream::new(rx);
                Ok(futures_util::stream::once(std::future::ready(Ok(first))).chain(rest).boxed())
            }
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
    tx: mpsc::Sender<Result<Bytes, ServiceError>>,
}

impl PageWriter {
    async fn run(self, pool: crate::storage::Pool) {
        let tx = self.tx.clone();
        if let Err(e) = self.write(pool).await {
            let _ = tx.send(Err(e)).await;
        }
    }

    async fn write(self, pool: crate::storage::Pool) -> Result<(), ServiceError> {
        let conn = pool.get().await.map_err(StorageError::from)?;
        let (stale, rows) = futures_util::try_join!(
            log::is_stale(&conn, self.after),
            log::page_stream::<RawJson>(&conn, self.after, &self.groups, self.limit as i64 + 1)
        )
        .map_err(StorageError::from)?;
        if stale {
            return Err(ServiceError::BootstrapRequired);
        }
        let mut rows = std::pin::pin!(rows);
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(br#"{"actions":["#);
        let (mut written, mut last, mut has_more) = (0u64, self.after, false);
        while let Some(action) = rows.try_next().await.map_err(StorageError::from)? {
            if written == self.limit {
                has_more = true;
                break;
            }
            if written > 0 {
                buf.push(b',');
            }
            serde_json::to_writer(&mut buf, &action)
                .map_err(|e| StorageError::Query(diesel::result::Error::SerializationError(Box::new(e))))?;
            written += 1;
            last = action.sync_id;
            if buf.len() >= CHUNK {
                let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096));
                if self.tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return Ok(()); // The client went away.
                }
            }
        }
        buf.extend_from_slice(br#"],"hasMore":"#);
        buf.extend_from_slice(if has_more { b"true" } else { b"false" });
        buf.extend_from_slice(br#","lastSyncId":""#);
        buf.extend_from_slice(last.to_string().as_bytes());
        buf.extend_from_slice(br#""}"#);
        let _ = self.tx.send(Ok(Bytes::from(buf))).await;
        Ok(())
    }
}
