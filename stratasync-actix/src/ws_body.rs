//! The response body of a WebSocket: the session's frames, encoded with
//! actix-http's WebSocket codec and drained by actix-http's connection
//! task, every queued frame per wake-up, with no task in between.
//!
//! Server frames are not masked, so a frame's bytes are the same for every
//! socket: a delta is encoded once and its bytes are shared by every
//! recipient socket (see [`FrameEncoder`]).

use actix_codec::Encoder as _;
use actix_http::ws::{CloseCode, CloseReason, Codec, Message};
use actix_web::body::{BodySize, MessageBody};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use stratasync_core::realtime::{CloseFrame, FrameEncoder, SocketFrames};

/// Encodes server messages as RFC 6455 frames with actix-http's codec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoder;

fn encode(message: Message) -> Bytes {
    let mut buf = BytesMut::new();
    // A server codec writes any message (it only refuses continuation
    // frames out of order, which are never written here).
    if let Err(e) = Codec::new().encode(message, &mut buf) {
        tracing::error!(error = %e, "encoding a WebSocket frame failed");
    }
    buf.freeze()
}

impl FrameEncoder for Encoder {
    type Frame = Bytes;

    fn text(&self, json: &Bytes) -> Bytes {
        match ByteString::try_from(json.clone()) {
            Ok(text) => encode(Message::Text(text)),
            // The core sends JSON text only; never reached.
            Err(_) => encode(Message::Binary(json.clone())),
        }
    }

    fn ping(&self, payload: &Bytes) -> Bytes {
        encode(Message::Ping(payload.clone()))
    }

    fn pong(&self, payload: &Bytes) -> Bytes {
        encode(Message::Pong(payload.clone()))
    }

    fn close(&self, close: &CloseFrame) -> Bytes {
        let reason = (!close.reason.is_empty()).then(|| close.reason.clone());
        encode(Message::Close(Some(CloseReason { code: CloseCode::from(close.code), description: reason })))
    }
}

/// Streams a session's frames until it ends.
pub(crate) struct OutboxBody(SocketFrames<Encoder>);

impl OutboxBody {
    pub(crate) fn new(frames: SocketFrames<Encoder>) -> Self {
        OutboxBody(frames)
    }
}

impl MessageBody for OutboxBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        Pin::new(&mut self.0).poll_next(cx).map(|frame| frame.map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_unmasked_rfc6455_frames() {
        assert_eq!(&Encoder.text(&Bytes::from_static(b"hi"))[..], b"\x81\x02hi");
        let t = Encoder.text(&Bytes::from(vec![b'a'; 300]));
        assert_eq!((&t[..4], t.len()), (&[0x81, 126, 1, 44][..], 304));
        let t = Encoder.text(&Bytes::from(vec![b'a'; 70_000]));
        assert_eq!(&t[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(&Encoder.ping(&Bytes::new())[..], b"\x89\x00");
        assert_eq!(&Encoder.pong(&Bytes::from_static(b"x"))[..], b"\x8a\x01x");
        let close = CloseFrame { code: 4008, reason: "slow".into() };
        assert_eq!(&Encoder.close(&close)[..], b"\x88\x06\x0f\xa8slow");
        let close = CloseFrame { code: 1009, reason: String::new() };
        assert_eq!(&Encoder.close(&close)[..], b"\x88\x02\x03\xf1");
    }
}
