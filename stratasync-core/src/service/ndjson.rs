//! A buffered NDJSON writer feeding a bounded channel: rows are serialized
//! once, straight into the buffer, and handed to the transport in chunks.

use super::chunks::{self, ChunkSender, ChunkStream, Stopped};
use crate::error::ServiceError;
use bytes::Bytes;
use std::time::Duration;

/// Chunks are flushed once they reach this size.
const FLUSH_AT: usize = 64 * 1024;

/// The receiving end: NDJSON chunks, or one error that ends the stream.
/// An `Err` item is the last one: the transport writes it as
/// `{"message":…,"type":"error"}` and ends the response, except
/// [`ServiceError::StreamAborted`], on which it aborts the response.
pub type NdjsonStream = ChunkStream;

/// The client went away, or took nothing for the stall timeout; stop
/// producing.
#[derive(Debug)]
pub(crate) struct Disconnected;

impl From<Stopped> for Disconnected {
    fn from(_: Stopped) -> Self {
        Disconnected
    }
}

pub(crate) struct NdjsonSink {
    tx: ChunkSender,
    /// The pending chunk; generated code appends rows to it.
    pub(crate) buf: Vec<u8>,
    /// Model rows written (counted by the writer).
    pub(crate) rows: u64,
    /// Bytes flushed so far.
    flushed: u64,
}

impl NdjsonSink {
    /// A sink whose producer waits at most `stall` for each chunk to be
    /// taken.
    pub(crate) fn channel(stall: Duration) -> (NdjsonSink, NdjsonStream) {
        let (tx, stream) = chunks::channel(stall);
        (NdjsonSink { tx, buf: Vec::with_capacity(FLUSH_AT * 2), rows: 0, flushed: 0 }, stream)
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

    /// The bytes written so far (flushed or pending).
    pub(crate) fn bytes(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    /// Sends the buffer.
    pub(crate) async fn flush(&mut self) -> Result<(), Disconnected> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.flushed += self.buf.len() as u64;
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(FLUSH_AT * 2)));
        Ok(self.tx.send(chunk).await?)
    }

    /// Flushes what was written and ends the stream as complete.
    pub(crate) async fn finish(mut self) -> Result<(), Disconnected> {
        self.flush().await?;
        Ok(self.tx.finish().await?)
    }

    /// Flushes what was written, then ends the stream with `err`.
    pub(crate) async fn fail(mut self, err: ServiceError) {
        if self.flush().await.is_ok() {
            self.tx.fail(err).await;
        }
    }
}
