//! Application hooks on live sockets (docs/protocol.md §7.6).

use super::outbox::{Outbox, APP_QUEUE, ROOM};
use super::outgoing::Outgoing;
use crate::model::HookError;
use async_trait::async_trait;
use serde_json::Value;

/// Sends the application's own frames (e.g. live-editing messages) to one
/// socket. Cheap to clone; keep it to push frames later.
#[derive(Debug, Clone)]
pub struct SocketSender(Outbox);

impl SocketSender {
    /// A sender queueing on `outbox`, the socket's outgoing frames.
    pub(crate) fn new(outbox: Outbox) -> SocketSender {
        SocketSender(outbox)
    }

    /// Queues a text frame; `false` if the socket is gone or its queue is
    /// full: 256 frames beyond the socket's own, or the send
    /// buffer's bytes ([`super::HubConfig::send_buffer_bytes`]). The frame
    /// is then dropped rather than slowing the caller down.
    pub fn send(&self, text: impl Into<String>) -> bool {
        self.0.try_push(Outgoing::text(text.into()), ROOM + APP_QUEUE)
    }
}

/// Who is on a socket. `user_id` is `anonymous-<connId>` and `groups` is
/// empty until a subscribe succeeds.
#[derive(Debug, Clone)]
pub struct SocketContext {
    /// A random id per socket.
    pub conn_id: String,
    /// The subscribed user.
    pub user_id: String,
    /// The subscribed groups.
    pub groups: Vec<String>,
    /// Sends frames to this socket.
    pub sender: SocketSender,
}

/// Hooks an application runs on live sockets; every method has a default
/// that does nothing.
///
/// Never send a frame with `"type":"error"` from a hook: the client takes
/// any error frame as a failed subscribe (docs/protocol.md §9.4).
#[async_trait]
pub trait SocketHooks: Send + Sync + 'static {
    /// Before every subscribe, with the reset context and the previous one.
    /// An error fails the subscribe with an error frame.
    async fn on_subscribe(&self, _socket: &SocketContext, _previous: &SocketContext) -> Result<(), HookError> {
        Ok(())
    }

    /// A message that is not a `subscribe`, while the socket is subscribed
    /// or subscribing. Returns whether the application handled it. Runs
    /// concurrently with a replay in progress, so app traffic is never
    /// stuck behind a long replay (§10 #18).
    async fn on_message(&self, _socket: &SocketContext, _message: &Value) -> bool {
        false
    }

    /// After the socket closed.
    async fn on_close(&self, _socket: &SocketContext) {}
}

/// The hooks of an application that has none.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSocketHooks;

impl SocketHooks for NoSocketHooks {}
