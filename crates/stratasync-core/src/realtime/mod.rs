//! Realtime delivery: the node's live feed and the WebSocket frames.

pub mod frame;
pub mod hub;

pub use frame::DeltaFrame;
pub use hub::{Hub, HubConfig, Subscription};
