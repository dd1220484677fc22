//! The response body of a WebSocket: the socket's [`Outbox`], drained by
//! actix-http's connection task.
//!
//! It replaces actix-ws's channel and encoder: frames arrive encoded (a
//! live delta's bytes are shared by every socket) and the connection task
//! takes them straight from the queue, every queued frame per wake-up,
//! with no task in between.

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use stratasync_core::realtime::Outbox;

/// Streams the frames of an [`Outbox`] until it ends.
pub(crate) struct OutboxBody(pub(crate) Outbox);

impl MessageBody for OutboxBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        self.0.poll_frame(cx).map(|frame| frame.map(Ok))
    }
}

impl Drop for OutboxBody {
    fn drop(&mut self) {
        // The connection is gone (or the response ended).
        self.0.writer_gone();
    }
}
