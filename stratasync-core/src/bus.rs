//! The in-process delta bus: every committed action, after commit, in
//! commit (= sync id) order per publishing batch.

use crate::protocol::SyncAction;
use std::sync::Arc;
use tokio::sync::broadcast;

/// A committed action as handed to subscribers.
pub(crate) type Delta = Arc<SyncAction>;

/// Hands committed actions to in-process subscribers (the WebSocket and
/// Redis layers). Slow subscribers lag and are told so by the receiver;
/// they recover from the log, which is the source of truth.
#[derive(Debug, Clone)]
pub struct DeltaBus {
    sender: broadcast::Sender<Delta>,
}

impl Default for DeltaBus {
    fn default() -> Self {
        DeltaBus::new(4096)
    }
}

impl DeltaBus {
    /// A bus that keeps up to `capacity` undelivered actions per subscriber.
    pub fn new(capacity: usize) -> Self {
        DeltaBus { sender: broadcast::channel(capacity).0 }
    }

    /// Publishes committed actions (in ascending sync id order).
    pub fn publish(&self, actions: impl IntoIterator<Item = Delta>) {
        for action in actions {
            // No subscriber is not an error: nobody is listening yet.
            let _ = self.sender.send(action);
        }
    }

    /// A new subscription, receiving actions published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Delta> {
        self.sender.subscribe()
    }

    /// Subscriptions open now.
    #[cfg(test)]
    pub(crate) fn receivers(&self) -> usize {
        self.sender.receiver_count()
    }
}
