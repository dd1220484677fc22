//! Admission of streamed responses ([`StreamLimits`]).

use crate::error::ServiceError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits on streamed responses (bootstrap, batch load, delta page): their
/// admission, so that no user's pace can hold the
/// node's database connections.
///
/// A bootstrap or batch load reads one snapshot, so it holds a pooled
/// connection (inside a `REPEATABLE READ` transaction) for as long as its
/// client takes to read it. Three limits keep a slow or hostile client
/// from holding the pool that authentication, delta pages, mutations, the
/// live feed and health checks need:
///
/// * **snapshot slots**: at most [`StreamLimits::snapshot_slots`] snapshot
///   streams hold a connection at once (half the pool by default); a
///   stream waits up to [`StreamLimits::slot_wait`] for a slot, then gets
///   [`ServiceError::Unavailable`] (503). The rest of the pool is always
///   left to everything else.
/// * **per user**: one user may have at most [`StreamLimits::per_user`]
///   streamed responses open at once on this node (bootstraps, batch loads
///   and delta pages together); more get [`ServiceError::TooManyStreams`]
///   (429 with `Retry-After`) at once, before any work. Keep it below the
///   slot count, so one user never takes every slot.
/// * **progress deadline**: a stream whose consumer takes nothing for
///   [`StreamLimits::stall_timeout`] is aborted, and its connection, slot
///   and per-user place are released.
///
/// A delta page holds no connection while its client reads: the page (at
/// most 5000 actions) is read to its end, handed over as fast as the client
/// takes it and kept in memory otherwise, so delta pages count only towards
/// the per-user limit, which bounds that memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLimits {
    /// Streamed responses one user may have open at once on this node
    /// (default 4).
    pub per_user: usize,
    /// Snapshot streams (bootstrap, batch load) holding a pooled connection
    /// at once on this node (default `None`: half the pool's maximum size,
    /// at least 1).
    pub snapshot_slots: Option<usize>,
    /// How long a snapshot stream waits for a slot before answering 503
    /// (default 5 s).
    pub slot_wait: Duration,
    /// How long a stream waits for its consumer to take the next chunk
    /// before it is aborted (default 30 s).
    pub stall_timeout: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            per_user: 4,
            snapshot_slots: None,
            slot_wait: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(30),
        }
    }
}

/// The node's admission state.
#[derive(Debug)]
pub(crate) struct StreamGate {
    limits: StreamLimits,
    slots: Arc<Semaphore>,
    /// Open streams per user; users without any are removed.
    open: Mutex<HashMap<String, usize>>,
}

impl StreamGate {
    /// A gate for a pool of at most `pool_size` connections.
    pub(crate) fn new(limits: StreamLimits, pool_size: usize) -> Arc<StreamGate> {
        let slots = limits.snapshot_slots.unwrap_or(pool_size / 2).max(1);
        Arc::new(StreamGate { limits, slots: Arc::new(Semaphore::new(slots)), open: Mutex::default() })
    }

    /// How long a stream may wait on its consumer.
    pub(crate) fn stall_timeout(&self) -> Duration {
        self.limits.stall_timeout
    }

    /// Admits one more stream of `user`, or refuses it at once.
    pub(crate) fn admit(self: &Arc<Self>, user: &str) -> Result<StreamLease, ServiceError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(user.to_owned()).or_default();
        if *count >= self.limits.per_user {
            if *count == 0 {
                open.remove(user);
            }
            return Err(ServiceError::TooManyStreams);
        }
        *count += 1;
        Ok(StreamLease { gate: self.clone(), user: user.to_owned(), slot: None })
    }

    /// Admits one more snapshot stream of `user`: its per-user place, then
    /// a snapshot slot (waiting at most `slot_wait` for one).
    pub(crate) async fn admit_snapshot(self: &Arc<Self>, user: &str) -> Result<StreamLease, ServiceError> {
        let mut lease = self.admit(user)?;
        match tokio::time::timeout(self.limits.slot_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => {
                lease.slot = Some(slot);
                Ok(lease)
            }
            _ => {
                tracing::warn!("every snapshot stream slot stayed taken; answering 503");
                Err(ServiceError::Unavailable)
            }
        }
    }

    fn release(&self, user: &str) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                open.remove(user);
            }
        }
    }
}

/// One admitted stream: its user's place, and its snapshot slot if it has
/// one. Dropping it releases both.
#[derive(Debug)]
pub(crate) struct StreamLease {
    gate: Arc<StreamGate>,
    user: String,
    slot: Option<OwnedSemaphorePermit>,
}

impl StreamLease {
    /// Gives the snapshot slot back (the stream released its connection).
    pub(crate) fn release_slot(&mut self) {
        self.slot = None;
    }
}

impl Drop for StreamLease {
    fn drop(&mut self) {
        self.gate.release(&self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_gate(per_user: usize, slots: usize) -> Arc<StreamGate> {
        let limits = StreamLimits {
            per_user,
            snapshot_slots: Some(slots),
            slot_wait: Duration::from_millis(50),
            ..StreamLimits::default()
        };
        StreamGate::new(limits, 16)
    }

    #[test]
    fn per_user_places_are_counted_and_released() {
        let gate = new_gate(2, 8);
        let a1 = gate.admit("a").unwrap();
        let _a2 = gate.admit("a").unwrap();
        assert!(matches!(gate.admit("a"), Err(ServiceError::TooManyStreams)));
        let _b = gate.admit("b").unwrap();
        drop(a1);
        let _a3 = gate.admit("a").unwrap();
        assert!(matches!(gate.admit("a"), Err(ServiceError::TooManyStreams)));
    }

    #[test]
    fn released_users_leave_no_entry() {
        let gate = new_gate(2, 8);
        drop(gate.admit("a").unwrap());
        assert!(gate.open.lock().unwrap().is_empty());
        let refused = new_gate(0, 8);
        assert!(matches!(refused.admit("a"), Err(ServiceError::TooManyStreams)));
        assert!(refused.open.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn snapshot_slots_are_shared_and_bounded() {
        let gate = new_gate(4, 2);
        let mut a = gate.admit_snapshot("a").await.unwrap();
        let _b = gate.admit_snapshot("b").await.unwrap();
        assert!(matches!(gate.admit_snapshot("c").await, Err(ServiceError::Unavailable)));
        // The refused stream gave its user's place back.
        assert!(gate.open.lock().unwrap().get("c").is_none());
        a.release_slot();
        let _c = gate.admit_snapshot("c").await.unwrap();
    }

    #[test]
    fn default_slots_are_half_the_pool() {
        let gate = StreamGate::new(StreamLimits::default(), 16);
        assert_eq!(gate.slots.available_permits(), 8);
        let gate = StreamGate::new(StreamLimits::default(), 1);
        assert_eq!(gate.slots.available_permits(), 1);
    }
}
