//! `GET ws`: the endpoint's checks, axum's handshake, then the core's
//! [`SocketSession`](stratasync_core::realtime::SocketSession) over the
//! socket. Messages out are the session's, each delta serialized once
//! and shared as the same [`Utf8Bytes`] by every socket; messages in are
//! passed on as [`Inbound`] events.

use crate::reply::{parts, response};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};
use stratasync_core::endpoint::SyncEndpoints;
use stratasync_core::realtime::{FrameEncoder, Inbound};
use tokio_util::task::TaskTracker;

/// The socket's read buffer. tungstenite zero-fills its whole read buffer
/// before the first read, so its default (128 KiB) is resident memory on
/// every idle socket; a client sends only small messages (`subscribe`,
/// pings), and a larger frame grows the buffer as it arrives.
const READ_BUFFER_BYTES: usize = 1024;

/// How many bytes of queued frames are written in one go during a burst
/// (a replay, a busy group); the buffer grows only as far as needed and
/// is written out whenever the queue runs dry.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// The upgrade: the endpoint's checks come first (the token, then the
/// handshake headers, answered by the core as on every transport), then
/// axum's own extraction, which by then agrees.
pub(crate) async fn upgrade(
    endpoints: &SyncEndpoints,
    tasks: &TaskTracker,
    uri: &Uri,
    headers: &HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let session = match endpoints.open_socket(&parts(uri, headers)).await {
        Ok(session) => session,
        Err(reply) => return response(reply),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let max = session.max_message_bytes();
    let upgrade = upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES);
    // The socket counts from its 101 until its writer has flushed (axum's
    // graceful shutdown no longer tracks an upgraded connection); an
    // upgrade that never completes drops the token with the callback.
    let tracked = tasks.token();
    upgrade.on_upgrade(move |socket: WebSocket| async move {
        let _tracked = tracked;
        let (mut sink, stream) = socket.split();
        let mut frames = session.frames(Encoder).map(Ok);
        // The writer sends whatever is queued, flushing when the queue is
        // empty; it ends after the close frame or when the client is gone.
        // Closing the sink flushes what the library queued itself (its
        // answer to a client's close).
        let writer = tokio::spawn(async move {
            let _ = sink.send_all(&mut frames).await;
            let _ = sink.close().await;
        });
        session.run(Events { inner: stream, ended: false }).await;
        let _ = writer.await;
    })
}

/// Encodes server messages as axum messages: a delta's JSON becomes one
/// [`Utf8Bytes`], shared by every socket.
#[derive(Debug, Clone, Copy)]
struct Encoder;

impl FrameEncoder for Encoder {
    type Frame = Message;

    fn text(&self, json: &Bytes) -> Message {
        match Utf8Bytes::try_from(json.clone()) {
            Ok(text) => Message::Text(text),
            // The core sends JSON text only; never reached.
            Err(_) => Message::Binary(json.clone()),
        }
    }

    fn ping(&self, payload: &Bytes) -> Message {
        Message::Ping(payload.clone())
    }

    fn pong(&self, payload: &Bytes) -> Message {
        Message::Pong(payload.clone())
    }

    fn close(&self, close: &stratasync_core::realtime::CloseFrame) -> Message {
        Message::Close(Some(CloseFrame { code: close.code, reason: Utf8Bytes::from(close.reason.clone()) }))
    }
}

/// The client's messages as the session's events; ends with the
/// connection.
struct Events<S> {
    inner: S,
    ended: bool,
}

impl<S: Stream<Item = Result<Message, axum::Error>> + Unpin> Stream for Events<S> {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let event = match std::task::ready!(self.inner.poll_next_unpin(cx)) {
            Some(Ok(Message::Text(text))) => Some(Inbound::Message(Bytes::from(text))),
            Some(Ok(Message::Binary(bytes))) => Some(Inbound::Message(bytes)),
            Some(Ok(Message::Ping(payload))) => Some(Inbound::Ping(payload)),
            Some(Ok(Message::Pong(_))) => Some(Inbound::Pong),
            Some(Ok(Message::Close(close))) => Some(Inbound::Close(close.map(|c| (c.code, c.reason.to_string())))),
            Some(Err(e)) => violation(e),
            None => None,
        };
        self.ended = event.is_none();
        Poll::Ready(event)
    }
}

/// What a read error means for the session: a violation to close for, or
/// (`None`) the end of the connection.
fn violation(error: axum::Error) -> Option<Inbound> {
    let error = error.into_inner();
    match error.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Some(Inbound::TooLarge),
        Some(tungstenite::Error::Utf8(_)) => Some(Inbound::InvalidText),
        Some(tungstenite::Error::Protocol(_)) => Some(Inbound::Malformed),
        _ => {
            tracing::debug!(error = %error, "WebSocket connection ended");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_axum_messages() {
        let json = Bytes::from_static(br#"{"type":"delta"}"#);
        match Encoder.text(&json) {
            Message::Text(text) => assert_eq!(text.as_str(), r#"{"type":"delta"}"#),
            other => panic!("expected a text message, got {other:?}"),
        }
        assert_eq!(Encoder.ping(&Bytes::new()), Message::Ping(Bytes::new()));
        assert_eq!(Encoder.pong(&Bytes::from_static(b"x")), Message::Pong(Bytes::from_static(b"x")));
        let close = stratasync_core::realtime::CloseFrame { code: 4008, reason: "Send buffer limit exceeded".into() };
        assert_eq!(
            Encoder.close(&close),
            Message::Close(Some(CloseFrame {
                code: 4008,
                reason: Utf8Bytes::from_static("Send buffer limit exceeded")
            }))
        );
    }
}
