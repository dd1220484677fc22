//! Client frames of a WebSocket: decoded from the request payload, with
//! continuations joined into whole messages.

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item, ProtocolError};
use actix_web::dev::Payload;
use actix_ws::{CloseCode, CloseReason};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A client message.
#[derive(Debug)]
pub(crate) enum Received {
    /// A text (or binary) message, valid UTF-8.
    Text(String),
    /// A ping and its payload.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close frame.
    Close(Option<CloseReason>),
}

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

fn close(code: CloseCode) -> CloseReason {
    CloseReason { code, description: None }
}

fn utf8(bytes: &[u8]) -> Result<String, CloseReason> {
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| close(CloseCode::Invalid))
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

    /// The next message; `None` when the connection ended, `Err` with the
    /// close to send on a protocol violation.
    pub(crate) async fn recv(&mut self) -> Option<Result<Received, CloseReason>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Received, CloseReason>>> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => match self.message(frame) {
                    Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                    Ok(None) => continue,
                    Err(close) => return Poll::Ready(Some(Err(close))),
                },
                Ok(None) => {}
                Err(ProtocolError::Overflow) => return Poll::Ready(Some(Err(close(CloseCode::Size)))),
                Err(_) => return Poll::Ready(Some(Err(close(CloseCode::Protocol)))),
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if self.buf.is_empty() {
                        self.buf = BytesMut::from(bytes);
                    } else {
                        self.buf.extend_from_slice(&bytes);
                    }
                }
                // The connection failed or ended.
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => self.ended = true,
                Poll::Pending => {
                    // Keep no idle buffer.
                    if self.buf.is_empty() && self.buf.capacity() > 0 {
                        self.buf = BytesMut::new();
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn message(&mut self, frame: Frame) -> Result<Option<Received>, CloseReason> {
        let data = match frame {
            Frame::Text(bytes) | Frame::Binary(bytes) => {
                if self.partial.is_some() {
                    return Err(close(CloseCode::Protocol));
                }
                return utf8(&bytes).map(|text| Some(Received::Text(text)));
            }
            Frame::Ping(bytes) => return Ok(Some(Received::Ping(bytes))),
            Frame::Pong(_) => return Ok(Some(Received::Pong)),
            Frame::Close(reason) => return Ok(Some(Received::Close(reason))),
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
                    return Err(close(CloseCode::Size));
                }
                partial.extend_from_slice(&bytes);
            }
            _ => return Err(close(CloseCode::Protocol)),
        }
        if !last {
            return Ok(None);
        }
        let whole = self.partial.take().unwrap_or_default();
        utf8(&whole).map(|text| Some(Received::Text(text)))
    }
}
