//! `GET ws`: the upgrade's checks (docs/protocol.md §7.1). The session itself
//! is [`crate::realtime::SocketSession`].

use super::failure::ErrorOnly;
use super::parts::{Handshake, RequestParts};
use super::reply::Reply;
use super::SyncEndpoints;
use crate::log_text::clip;
use crate::realtime::SocketSession;

/// The `Retry-After` of an upgrade refused for the user's open sockets, in
/// seconds.
const SOCKET_LIMIT_RETRY_AFTER_SECS: u32 = 5;

/// The answer to a request that is no WebSocket handshake this server
/// speaks (the same on every transport), if it is none.
fn handshake_refusal(handshake: &Handshake) -> Option<Reply> {
    let upgrade_required = |error| {
        Reply::json(426, &ErrorOnly { error })
            .with_header("upgrade", "websocket".to_owned())
            .with_header("sec-websocket-version", "13".to_owned())
    };
    if !(handshake.upgrade && handshake.connection) {
        return Some(upgrade_required("WebSocket handshake required"));
    }
    if handshake.version.as_deref() != Some("13") {
        return Some(upgrade_required("Unsupported WebSocket version"));
    }
    (!handshake.key).then(|| Reply::json(400, &ErrorOnly { error: "Invalid Sec-WebSocket-Key" }))
}

impl SyncEndpoints {
    /// `GET ws`: checks the query's `token` (no group lookup), the user's
    /// open sockets, and that the request is a WebSocket handshake. On
    /// success the transport completes the handshake and runs the returned
    /// session; otherwise it writes the refusal:
    ///
    /// * 401 `{"error":"Token required"}` or `{"error":"Invalid token"}`;
    /// * 429 `{"error":"Too many open sockets"}` with `Retry-After: 5`;
    /// * 426 `{"error":"WebSocket handshake required"}` (no `Upgrade:
    ///   websocket` and `Connection: upgrade`) or `{"error":"Unsupported
    ///   WebSocket version"}` (not 13), with `Upgrade: websocket` and
    ///   `Sec-WebSocket-Version: 13`;
    /// * 400 `{"error":"Invalid Sec-WebSocket-Key"}`.
    pub async fn open_socket(&self, parts: &RequestParts) -> Result<SocketSession, Reply> {
        let Some(token) = parts.query_param("token").filter(|t| !t.is_empty()) else {
            return Err(Reply::json(401, &ErrorOnly { error: "Token required" }));
        };
        let Ok(user) = self.engine.verify_token(&token).await else {
            return Err(Reply::json(401, &ErrorOnly { error: "Invalid token" }));
        };
        let Some(slot) = self.sockets.open(&user.user_id) else {
            tracing::info!(user = %clip(&user.user_id), "WebSocket refused: too many open sockets");
            return Err(Reply::json(429, &ErrorOnly { error: "Too many open sockets" })
                .with_header("retry-after", SOCKET_LIMIT_RETRY_AFTER_SECS.to_string()));
        };
        // After the slot: a request over the limit is told so whatever it is.
        if let Some(refusal) = handshake_refusal(&parts.websocket) {
            return Err(refusal);
        }
        Ok(SocketSession::new(self.socket_settings(), slot))
    }
}
