//! The engine's live feed ([`Hub`]), running until the engine shuts down.
//!
//! A hub's tasks end once no [`Hub`] handle is left (they hold weak
//! references), so the engine holds the only lasting handle of the running
//! feed, hands out clones for the moment, and stops the feed by dropping
//! its handle. After that, [`Feed::hub`] returns a hub that never ran, so
//! late callers (a socket still subscribing, a readiness probe) find a
//! feed that delivers nothing and reports itself not live.

use crate::bus::DeltaBus;
use crate::realtime::{Hub, HubConfig};
use crate::storage::Pool;
use std::sync::Mutex;

pub(super) struct Feed {
    /// `None` once stopped.
    running: Mutex<Option<Hub>>,
    /// What [`Feed::hub`] returns once stopped.
    stopped: Hub,
}

impl Feed {
    /// Starts the feed over `pool`, woken by the commits of `bus` (inside
    /// the tokio runtime).
    pub(super) fn start(pool: Pool, bus: &DeltaBus, config: HubConfig) -> std::io::Result<Feed> {
        let stopped = never_run(pool.clone(), bus, config.clone())?;
        Ok(Feed { running: Mutex::new(Some(Hub::start(pool, bus, config))), stopped })
    }

    /// The running feed, or the stopped one.
    pub(super) fn hub(&self) -> Hub {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.as_ref().unwrap_or(&self.stopped).clone()
    }

    /// Stops the feed: its task ends when it next wakes up (at once,
    /// unless a clone handed out is still in use).
    pub(super) fn stop(&self) {
        let hub = self.running.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(hub) = hub {
            hub.wake();
        }
    }
}

/// A hub whose tasks never run: [`Hub::start`] spawns them on the current
/// runtime, here a private one that is shut down before polling any of
/// them (shutting down in the background is allowed inside another
/// runtime).
fn never_run(pool: Pool, bus: &DeltaBus, config: HubConfig) -> std::io::Result<Hub> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let hub = {
        let _entered = runtime.enter();
        Hub::start(pool, bus, config)
    };
    runtime.shutdown_background();
    Ok(hub)
}
