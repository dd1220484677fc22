//! The channel between a producer task and the transport of a streamed
//! response: bounded, with a progress deadline, and with an explicit end.
//!
//! A producer that waits on its consumer longer than the stall timeout
//! stops (and with it whatever it holds: a pooled connection, a stream
//! slot). The consumer can always tell a complete response from a cut one:
//! the stream ends cleanly only after the producer called
//! [`ChunkSender::finish`]; a producer that stopped, failed or panicked
//! without finishing ends it with [`ServiceError::StreamAborted`], which the
//! transport turns into an aborted response rather than a short one.

use crate::error::ServiceError;
use bytes::Bytes;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Chunks the consumer may have waiting before the producer waits.
const DEPTH: usize = 4;

type Item = Result<Bytes, ServiceError>;

/// Why the producer must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// The consumer went away.
    Gone,
    /// The consumer took nothing for the stall timeout.
    Stalled,
}

/// The producer's end.
pub(crate) struct ChunkSender {
    tx: mpsc::Sender<Item>,
    /// Chunks offered while the consumer had no room, oldest first.
    backlog: VecDeque<Bytes>,
    done: Arc<AtomicBool>,
    stall: Duration,
}

/// A new channel whose producer waits at most `stall` for each chunk to be
/// taken.
pub(crate) fn channel(stall: Duration) -> (ChunkSender, ChunkStream) {
    let (tx, rx) = mpsc::channel(DEPTH);
    let done = Arc::new(AtomicBool::new(false));
    let sender = ChunkSender { tx, backlog: VecDeque::new(), done: done.clone(), stall };
    (sender, ChunkStream { rx, done, ended: false })
}

impl ChunkSender {
    /// Queues `chunk` without waiting: it is handed over at once when the
    /// consumer has room, and kept in memory otherwise (the caller bounds
    /// how much it offers).
    pub(crate) fn offer(&mut self, chunk: Bytes) -> Result<(), Stopped> {
        if !self.backlog.is_empty() {
            self.backlog.push_back(chunk);
            return Ok(());
        }
        match self.tx.try_send(Ok(chunk)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(Ok(chunk))) => {
                self.backlog.push_back(chunk);
                Ok(())
            }
            Err(_) => Err(Stopped::Gone),
        }
    }

    /// Hands over everything offered, then `chunk`, waiting for the
    /// consumer at most the stall timeout per chunk.
    pub(crate) async fn send(&mut self, chunk: Bytes) -> Result<(), Stopped> {
        self.drain().await?;
        self.put(Ok(chunk)).await
    }

    /// Hands over everything offered, then ends the stream as complete.
    pub(crate) async fn finish(mut self) -> Result<(), Stopped> {
        self.drain().await?;
        self.done.store(true, Ordering::Release);
        Ok(())
    }

    /// Hands over everything offered, then ends the stream with `err`.
    pub(crate) async fn fail(mut self, err: ServiceError) {
        if self.drain().await.is_ok() {
            let _ = self.put(Err(err)).await;
        }
    }

    async fn drain(&mut self) -> Result<(), Stopped> {
        while let Some(chunk) = self.backlog.pop_front() {
            self.put(Ok(chunk)).await?;
        }
        Ok(())
    }

    async fn put(&self, item: Item) -> Result<(), Stopped> {
        match tokio::time::timeout(self.stall, self.tx.send(item)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stopped::Gone),
            Err(_) => {
                tracing::info!(stall = ?self.stall, "a stream's consumer took nothing in time; aborting the response");
                Err(Stopped::Stalled)
            }
        }
    }
}

/// A streamed response body as chunks, in order. An `Err` item is the
/// last one. [`ServiceError::StreamAborted`] means the producer stopped
/// before the end (its consumer stalled past the deadline, or it failed):
/// the transport must abort the response, not end it. Any other error is
/// the response's own last word (for NDJSON, an error line).
#[derive(Debug)]
pub struct ChunkStream {
    rx: mpsc::Receiver<Item>,
    done: Arc<AtomicBool>,
    ended: bool,
}

impl futures_util::Stream for ChunkStream {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(Some(Err(e))) => {
                self.ended = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.ended = true;
                if self.done.load(Ordering::Acquire) {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(ServiceError::StreamAborted)))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn text(item: Option<Item>) -> String {
        match item {
            Some(Ok(chunk)) => String::from_utf8_lossy(&chunk).into_owned(),
            Some(Err(e)) => format!("error: {e}"),
            None => "end".to_owned(),
        }
    }

    #[tokio::test]
    async fn a_finished_stream_ends_cleanly() {
        let (mut tx, mut rx) = channel(Duration::from_secs(5));
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        tx.finish().await.unwrap();
        assert_eq!(text(rx.next().await), "a");
        assert_eq!(text(rx.next().await), "end");
    }

    #[tokio::test]
    async fn a_dropped_producer_interrupts_the_stream() {
        let (mut tx, mut rx) = channel(Duration::from_secs(5));
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        drop(tx);
        assert_eq!(text(rx.next().await), "a");
        assert!(matches!(rx.next().await, Some(Err(ServiceError::StreamAborted))));
        assert_eq!(text(rx.next().await), "end");
    }

    #[tokio::test]
    async fn an_error_is_the_last_item() {
        let (tx, mut rx) = channel(Duration::from_secs(5));
        tx.fail(ServiceError::Unavailable).await;
        assert!(matches!(rx.next().await, Some(Err(ServiceError::Unavailable))));
        assert_eq!(text(rx.next().await), "end");
    }

    #[tokio::test(start_paused = true)]
    async fn a_consumer_that_takes_nothing_stops_the_producer() {
        let (mut tx, mut rx) = channel(Duration::from_secs(30));
        for _ in 0..DEPTH {
            tx.send(Bytes::from_static(b"x")).await.unwrap();
        }
        // The channel is full: the next send waits for the stall timeout
        // (paused time advances to it at once) and gives up.
        assert_eq!(tx.send(Bytes::from_static(b"y")).await, Err(Stopped::Stalled));
        drop(tx);
        for _ in 0..DEPTH {
            assert_eq!(text(rx.next().await), "x");
        }
        assert!(matches!(rx.next().await, Some(Err(ServiceError::StreamAborted))));
    }

    #[tokio::test]
    async fn offers_wait_in_order_behind_a_full_channel() {
        let (mut tx, mut rx) = channel(Duration::from_secs(5));
        for i in 0..DEPTH + 3 {
            tx.offer(Bytes::from(i.to_string())).unwrap();
        }
        let producer = tokio::spawn(async move {
            tx.send(Bytes::from_static(b"last")).await.unwrap();
            tx.finish().await.unwrap();
        });
        let mut got = Vec::new();
        while let Some(item) = rx.next().await {
            got.push(text(Some(item)));
        }
        producer.await.unwrap();
        let want: Vec<String> = (0..DEPTH + 3).map(|i| i.to_string()).chain(["last".to_owned()]).collect();
        assert_eq!(got, want);
    }
}
