//! Realtime delivery: the node's live feed, and the WebSocket session
//! (docs/protocol.md §7) a transport runs for each socket.

mod backend;
mod frame;
mod group_scope;
mod hooks;
pub mod hub;
mod inbound;
mod limits;
mod machine;
mod outbox;
mod outgoing;
pub(crate) mod recent;
#[cfg(feature = "redis")]
pub mod redis;
mod session;
pub(crate) mod socket;
mod token_watch;
mod user_sockets;

pub(crate) use backend::SessionBackend;
pub use hooks::{NoSocketHooks, SocketContext, SocketHooks, SocketSender};
pub use hub::{Hub, HubConfig};
pub use inbound::Inbound;
pub use limits::{SocketLimits, SubscribeRefusal};
pub use outgoing::{CloseFrame, FrameEncoder, Outgoing, SocketFrames};
pub use socket::SocketSession;
pub(crate) use user_sockets::UserSockets;
