//! `GET ws`: the upgrade's checks (docs/protocol.md §7.1). The session itself
//! is [`crate::realtime::SocketSession`].

use super::failure::ErrorOnly;
use super::parts::RequestParts;
use super::reply::Reply;
use super::SyncEndpoints;
use crate::log_text::clip;
use crate::realtime::SocketSession;

/// The `Retry-After` of an upgrade refused for the user's open sockets, in
/// seconds.
const SOCKET_LIMIT_RETRY_AFTER_SECS: u32 = 5;

impl SyncEndpoints {
    /// `GET ws`: checks the query's `token` (no group lookup) and the
    /// user's open sockets. On success the transport completes the
    /// handshake and runs the returned session; otherwise it writes the
    /// refusal (401 `{"error":"Token required"}` or
    /// `{"error":"Invalid token"}`, 429 `{"error":"Too many open sockets"}`
    /// with `Retry-After: 5`).
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
        Ok(SocketSession::new(self.socket_settings(), slot))
    }
}
