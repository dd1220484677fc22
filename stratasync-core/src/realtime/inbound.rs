//! What a transport reads from a WebSocket client, as the session sees it.

use bytes::Bytes;

/// One event read from a client connection. The transport decodes frames
/// (joining fragmented messages, at most
/// [`super::SocketLimits::max_message_bytes`] each) and passes each on; the
/// session decides every answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A whole text or binary message (its bytes; the session checks they
    /// are UTF-8).
    Message(Bytes),
    /// A ping and its payload.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close frame: its code and reason, if it had any.
    Close(Option<(u16, String)>),
    /// A text message that is not valid UTF-8 (for transports that check
    /// it themselves).
    InvalidText,
    /// A message over the size limit.
    TooLarge,
    /// A frame that breaks RFC 6455 (bad opcode, continuation out of
    /// order, a masked-frame violation, …).
    Malformed,
}
