//! What the server sends on a WebSocket, and the transport's encoder of it.
//!
//! Core decides every message and close; the transport only turns each
//! [`Outgoing`] into its own frame type with a [`FrameEncoder`] and writes
//! it. A live delta is serialized once by the feed and encoded once per
//! frame type ([`FrameEncoder::Frame`]), so every socket of a transport
//! shares the same frame.

use super::frame::DeltaFrame;
use super::outbox::Outbox;
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Largest payload of a control frame (ping, pong, close), RFC 6455 §5.5.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// One message for the transport to write.
#[derive(Debug, Clone)]
pub struct Outgoing(pub(crate) Message);

#[derive(Debug, Clone)]
pub(crate) enum Message {
    /// A text message (JSON, valid UTF-8).
    Text(Bytes),
    /// A live or replayed delta, shared by its recipients.
    Delta(DeltaFrame),
    /// A ping.
    Ping(Bytes),
    /// A pong answering a ping.
    Pong(Bytes),
    /// A close frame.
    Close(CloseFrame),
}

/// A close frame's code and reason (the reason fits a control frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The WebSocket close code.
    pub code: u16,
    /// The reason text, at most 123 bytes.
    pub reason: String,
}

impl CloseFrame {
    /// `code` with `reason` cut to fit a control frame, at a character
    /// boundary.
    pub(crate) fn new(code: u16, reason: &str) -> CloseFrame {
        let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        CloseFrame { code, reason: reason[..end].to_owned() }
    }
}

impl Outgoing {
    pub(crate) fn text(json: String) -> Outgoing {
        Outgoing(Message::Text(Bytes::from(json)))
    }

    pub(crate) fn delta(frame: DeltaFrame) -> Outgoing {
        Outgoing(Message::Delta(frame))
    }

    pub(crate) fn ping() -> Outgoing {
        Outgoing(Message::Ping(Bytes::new()))
    }

    /// A pong echoing `payload` (cut to fit a control frame).
    pub(crate) fn pong(mut payload: Bytes) -> Outgoing {
        payload.truncate(MAX_CONTROL_PAYLOAD);
        Outgoing(Message::Pong(payload))
    }

    pub(crate) fn close(frame: CloseFrame) -> Outgoing {
        Outgoing(Message::Close(frame))
    }

    /// Bytes of the message's payload.
    pub(crate) fn len(&self) -> usize {
        match &self.0 {
            Message::Text(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
            Message::Delta(frame) => frame.json().len(),
            Message::Close(close) => 2 + close.reason.len(),
        }
    }

    /// The transport's frame of this message.
    pub fn encode<E: FrameEncoder>(&self, encoder: &E) -> E::Frame {
        match &self.0 {
            Message::Text(json) => encoder.text(json),
            Message::Delta(frame) => frame.encoded(|json| encoder.text(json)),
            Message::Ping(payload) => encoder.ping(payload),
            Message::Pong(payload) => encoder.pong(payload),
            Message::Close(close) => encoder.close(close),
        }
    }
}

/// How a transport writes server messages: each method makes the
/// transport's frame of one message. Deltas go through [`FrameEncoder::text`]
/// once per delta and frame type, and the frame is cloned for each socket.
pub trait FrameEncoder {
    /// The transport's frame (e.g. encoded RFC 6455 bytes, or a
    /// WebSocket library's message); cheap to clone.
    type Frame: Clone + Send + Sync + 'static;
    /// A text frame of `json` (valid UTF-8).
    fn text(&self, json: &Bytes) -> Self::Frame;
    /// A ping with `payload` (at most 125 bytes).
    fn ping(&self, payload: &Bytes) -> Self::Frame;
    /// A pong with `payload` (at most 125 bytes).
    fn pong(&self, payload: &Bytes) -> Self::Frame;
    /// A close frame.
    fn close(&self, close: &CloseFrame) -> Self::Frame;
}

/// The frames of one socket, for the transport's writer: a stream that
/// ends after the close frame (or when the session ends without one).
/// Dropping it tells the session the connection is gone.
#[derive(Debug)]
pub struct SocketFrames<E> {
    outbox: Outbox,
    encoder: E,
}

impl<E> SocketFrames<E> {
    pub(crate) fn new(outbox: Outbox, encoder: E) -> Self {
        SocketFrames { outbox, encoder }
    }
}

impl<E: FrameEncoder + Unpin> Stream for SocketFrames<E> {
    type Item = E::Frame;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<E::Frame>> {
        let this = self.get_mut();
        this.outbox.poll_frame(cx).map(|message| message.map(|m| m.encode(&this.encoder)))
    }
}

impl<E> Drop for SocketFrames<E> {
    fn drop(&mut self) {
        self.outbox.writer_gone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_payloads_fit() {
        let close = CloseFrame::new(1000, &"é".repeat(100));
        assert!(close.reason.len() <= 123 && close.reason.chars().all(|c| c == 'é'));
        assert_eq!(Outgoing::pong(Bytes::from(vec![1; 300])).len(), 125);
    }
}
