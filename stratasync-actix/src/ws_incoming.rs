//! Client frames of a WebSocket: decoded from the request payload, with
//! continuations joined into whole messages, as the session's
//! [`Inbound`] events.

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item, ProtocolError};
use actix_web::dev::Payload;
use bytes::BytesMut;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use stratasync_core::realtime::Inbound;

/// Reads client messages from a WebSocket's request payload.
pub(crate) struct Incoming {
    payload: Payload,
    buf: BytesMut,
    codec: Codec,
    /// A fragmented message in progress: its bytes so far.
    partial: Option<BytesMut>,
    max_size: usize,
    ended: bool,
}

impl Incoming {
    /// Messages of `payload`, frames and messages up to `max_size` bytes.
    pub(crate) fn new(payload: Payload, max_size: usize) -> Self {
        Incoming {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_size),
            partial: None,
            max_size,
            ended: false,
        }
    }

    fn message(&mut self, frame: Frame) -> Option<Inbound> {
        let data = match frame {
            Frame::Text(bytes) | Frame::Binary(bytes) => {
                if self.partial.is_some() {
                    return Some(Inbound::Malformed);
                }
                return Some(Inbound::Message(bytes));
            }
            Frame::Ping(bytes) => return Some(Inbound::Ping(bytes)),
            Frame::Pong(_) => return Some(Inbound::Pong),
            Frame::Close(reason) => {
                let close = reason.map(|r| (u16::from(r.code), r.description.unwrap_or_default()));
                return Some(Inbound::Close(close));
            }
            Frame::Continuation(item) => item,
        };
        let (first, last, bytes) = match data {
            Item::FirstText(b) | Item::FirstBinary(b) => (true, false, b),
            Item::Continue(b) => (false, false, b),
            Item::Last(b) => (false, true, b),
        };
        match (&mut self.partial, first) {
            (None, true) => self.partial = Some(BytesMut::from(bytes)),
            (Some(partial), false) => {
                if partial.len() + bytes.len() > self.max_size {
                    return Some(Inbound::TooLarge);
                }
                partial.extend_from_slice(&bytes);
            }
            _ => return Some(Inbound::Malformed),
        }
        if !last {
            return None;
        }
        Some(Inbound::Message(self.partial.take().unwrap_or_default().freeze()))
    }
}

impl Stream for Incoming {
    type Item = Inbound;

    /// The next event; `None` when the connection ended.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let this = &mut *self;
        loop {
            match this.codec.decode(&mut this.buf) {
                Ok(Some(frame)) => match this.message(frame) {
                    Some(event) => return Poll::Ready(Some(event)),
                    None => continue,
                },
                Ok(None) => {}
                Err(ProtocolError::Overflow) => return Poll::Ready(Some(Inbound::TooLarge)),
                Err(_) => return Poll::Ready(Some(Inbound::Malformed)),
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if this.buf.is_empty() {
                        this.buf = BytesMut::from(bytes);
                    } else {
                        this.buf.extend_from_slice(&bytes);
                    }
                }
                // The connection failed or ended.
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => this.ended = true,
                Poll::Pending => {
                    // Keep no idle buffer.
                    if this.buf.is_empty() && this.buf.capacity() > 0 {
                        this.buf = BytesMut::new();
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
