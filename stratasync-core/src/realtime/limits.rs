//! What one WebSocket client may make the server hold: the size of its
//! messages, its subscribes and the subscribes it has waiting, and how many
//! sockets its user may keep open. (The bound on what the server queues for
//! a socket is [`super::HubConfig::send_buffer_bytes`].)

/// Limits on WebSocket clients; [`SocketLimits::default`] holds the
/// defaults listed on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketLimits {
    /// Largest client message in bytes (one frame, or the frames of a
    /// fragmented message together). A larger one closes the socket with
    /// 1009 (RFC 6455 "message too big"). It bounds application messages
    /// too. Default 1 MiB.
    pub max_message_bytes: usize,
    /// Largest `subscribe` message in bytes. A larger one is answered
    /// `{"message":"Subscribe message too large (at most N bytes)","type":"error"}`;
    /// the socket stays open. Default 64 KiB.
    pub max_subscribe_bytes: usize,
    /// Most groups one `subscribe` may name. More are answered
    /// `{"message":"Too many groups in subscribe (at most N)","type":"error"}`;
    /// the socket stays open. Default 1,000.
    pub max_subscribe_groups: usize,
    /// Subscribes that may wait behind the one in progress. Further ones
    /// are answered at once with
    /// `{"message":"Too many pending subscribes","type":"error"}`. Default
    /// 16.
    pub max_pending_subscribes: usize,
    /// Bytes the waiting subscribes may hold together
    /// (each counts its strings and their headers); a subscribe
    /// that does not fit is answered like one over
    /// [`SocketLimits::max_pending_subscribes`]. Default 256 KiB.
    pub max_pending_subscribe_bytes: usize,
    /// Open WebSockets per user (the user of the upgrade's token), or
    /// `None` for no limit (the default). An upgrade over the limit is
    /// answered `429 Too Many Requests` with `Retry-After` and
    /// `{"error":"Too many open sockets"}`.
    pub max_sockets_per_user: Option<usize>,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            max_message_bytes: 1024 * 1024,
            max_subscribe_bytes: 64 * 1024,
            max_subscribe_groups: 1000,
            max_pending_subscribes: 16,
            max_pending_subscribe_bytes: 256 * 1024,
            max_sockets_per_user: None,
        }
    }
}

/// Why a `subscribe` was refused before it started: its `Display` is the
/// error frame's message. None of them mentions "auth" or "token", which
/// the published client would take for an authentication failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeRefusal {
    /// Over [`SocketLimits::max_subscribe_bytes`].
    #[error("Subscribe message too large (at most {0} bytes)")]
    TooLarge(usize),
    /// Over [`SocketLimits::max_subscribe_groups`].
    #[error("Too many groups in subscribe (at most {0})")]
    TooManyGroups(usize),
    /// Over [`SocketLimits::max_pending_subscribes`] or
    /// [`SocketLimits::max_pending_subscribe_bytes`].
    #[error("Too many pending subscribes")]
    TooManyPending,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_messages() {
        assert_eq!(SubscribeRefusal::TooLarge(65536).to_string(), "Subscribe message too large (at most 65536 bytes)");
        assert_eq!(SubscribeRefusal::TooManyGroups(1000).to_string(), "Too many groups in subscribe (at most 1000)");
        assert_eq!(SubscribeRefusal::TooManyPending.to_string(), "Too many pending subscribes");
    }
}
