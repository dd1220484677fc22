//! A buffered NDJSON writer feeding a bounded channel: rows are serialized
//! once, straight into the buffer, and handed to the transport in chunks.

use crate::error::ServiceError;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Chunks are flushed once they reach this size.
const FLUSH_AT: usize = 64 * 1024;

/// The receiving end: NDJSON chunks, or one error that ends the stream.
/// An `Err` item is the last one: the transport writes it as
/// `{"message":…,"type":"error"}` and ends the response.
pub type NdjsonStream = tokio_stream::wrappers::ReceiverStream<Result<Bytes, ServiceError>>;

/// The client went away; stop producing.
#[derive(Debug)]
pub(crate) struct Disconnected;

pub(crate) struct NdjsonSink {
    tx: mpsc::Sender<Result<Bytes, ServiceError>>,
    /// The pending chunk; generated code appends rows to it.
    pub(crate) buf: Vec<u8>,
}

impl NdjsonSink {
    pub(crate) fn channel() -> (NdjsonSink, NdjsonStream) {
        let (tx, rx) = mpsc::channel(4);
        (NdjsonSink { tx, buf: Vec::with_capacity(FLUSH_AT * 2) }, tokio_stream::wrappers::ReceiverStream::new(rx))
    }

    /// Appends one JSON line.
    pub(crate) fn line<T: serde::Serialize>(&mut self, value: &T) {
        let _ = serde_json::to_writer(&mut self.buf, value);
        self.buf.push(b'\n');
    }

    /// Flushes if the buffer is large enough.
    pub(crate) async fn maybe_flush(&mut self) -> Result<(), Disconnected> {
        if self.buf.len() >= FLUSH_AT {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Sends the buffer.
    pub(crate) async fn flush(&mut self) -> Result<(), Disconnected> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(FLUSH_AT * 2)));
        self.tx.send(Ok(chunk)).await.map_err(|_| Disconnected)
    }

    /// Flushes what was written, then ends the stream with `err`.
    pub(crate) async fn fail(mut self, err: ServiceError) {
        if self.flush().await.is_ok() {
            let _ = self.tx.send(Err(err)).await;
        }
    }
}
