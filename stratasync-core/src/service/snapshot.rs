//! Running a streamed read in one consistent snapshot: a pooled connection
//! in a `REPEATABLE READ, READ ONLY` transaction, held while the rows are
//! streamed and released as soon as they are (before the last chunk is
//! handed over).

use super::ndjson::{Disconnected, NdjsonSink, NdjsonStream};
use super::streams::{StreamGate, StreamLease};
use crate::error::ServiceError;
use crate::storage::{Conn, Pool, StorageError};
use diesel_async::{AnsiTransactionManager, TransactionManager};
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// What a snapshot stream writes.
pub(crate) trait SnapshotJob: Send + Sync + 'static {
    /// Names the stream in logs.
    const NAME: &'static str;

    /// Writes the response into `sink`, reading through `conn` (inside the
    /// snapshot). `Ok(Err(Disconnected))` when the client went away or
    /// stalled.
    fn write<'a>(
        &'a self,
        conn: &'a mut Conn,
        sink: &'a mut NdjsonSink,
    ) -> BoxFuture<'a, Result<Result<(), Disconnected>, ServiceError>>;
}

/// Starts `job` for `user`: admission first ([`StreamGate::admit_snapshot`]:
/// [`ServiceError::TooManyStreams`] when the caller has too many streams
/// open, [`ServiceError::Unavailable`] when no snapshot slot freed up in
/// time), then the job runs in a snapshot of its own on a task, and the
/// stream it writes is returned at once.
pub(crate) async fn start<J: SnapshotJob>(
    pool: &Pool,
    streams: &Arc<StreamGate>,
    user: &str,
    job: J,
) -> Result<NdjsonStream, ServiceError> {
    let lease = streams.admit_snapshot(user).await?;
    let (sink, stream) = NdjsonSink::channel(streams.stall_timeout());
    tokio::spawn(run(pool.clone(), job, lease, sink));
    Ok(stream)
}

/// Runs `job` in a snapshot taken from `pool`, holding `lease` until the
/// stream ends (its slot only while the connection is held).
async fn run<J: SnapshotJob>(pool: Pool, job: J, mut lease: StreamLease, mut sink: NdjsonSink) {
    let result = {
        let mut conn = match pool.get().await {
            Ok(conn) => conn,
            Err(e) => return fail::<J>(sink, StorageError::from(e).into()).await,
        };
        let conn: &mut Conn = &mut conn;
        let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
        if let Err(e) = AnsiTransactionManager::begin_transaction_sql(conn, begin).await {
            return fail::<J>(sink, StorageError::from(e).into()).await;
        }
        let result = job.write(conn, &mut sink).await;
        // Read-only: ending it either way changes nothing.
        let _ = AnsiTransactionManager::rollback_transaction(conn).await;
        result
    };
    // The connection is back in the pool: so is the slot.
    lease.release_slot();
    if result.is_ok() {
        crate::metrics::streamed(J::NAME, sink.rows, sink.bytes());
    }
    match result {
        Ok(Ok(())) => {
            if sink.finish().await.is_err() {
                tracing::debug!(stream = J::NAME, "client went away before the last chunk");
            }
        }
        Ok(Err(Disconnected)) => tracing::debug!(stream = J::NAME, "client went away or stalled"),
        Err(e) => fail::<J>(sink, e).await,
    }
}

async fn fail<J: SnapshotJob>(sink: NdjsonSink, err: ServiceError) {
    match err {
        ServiceError::IndexedKeyNotAllowed { .. } | ServiceError::BatchLimitExceeded { .. } => {
            tracing::info!(stream = J::NAME, error = %crate::log_text::clip(&err), "stream refused the request");
        }
        _ => tracing::error!(stream = J::NAME, error = ?err, "stream failed"),
    }
    sink.fail(err).await;
}
