//! Realtime delivery: the node's live feed and the WebSocket frames.

pub mod frame;
pub mod hooks;
pub mod hub;
pub mod limits;
pub mod outbox;
pub mod redis;
pub mod session;
pub mod user_sockets;
pub mod wire;

pub use frame::DeltaFrame;
pub use hooks::{NoSocketHooks, SocketContext, SocketHooks, SocketSender};
pub use hub::{Hub, HubConfig, Subscription};
pub use limits::{SocketLimits, SubscribeRefusal};
pub use outbox::Outbox;
pub use user_sockets::{SocketSlot, UserSockets};
