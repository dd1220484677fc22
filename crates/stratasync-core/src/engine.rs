//! The engine: the pool, the registry, the application's auth and the
//! delta bus, shared by every service.

use crate::auth::{self, AuthContext, AuthError, SyncAuth};
use crate::bus::DeltaBus;
use crate::model::Registry;
use crate::storage::Pool;
use std::sync::Arc;

/// Everything a sync server needs; cheap to clone.
#[derive(Clone)]
pub struct SyncEngine {
    pub(crate) pool: Pool,
    pub(crate) registry: Registry,
    pub(crate) auth: Arc<dyn SyncAuth>,
    pub(crate) bus: DeltaBus,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine").field("registry", &self.registry).finish_non_exhaustive()
    }
}

impl SyncEngine {
    /// An engine over `pool` serving the models of `registry`.
    pub fn new(pool: Pool, registry: Registry, auth: impl SyncAuth) -> Self {
        SyncEngine { pool, registry, auth: Arc::new(auth), bus: DeltaBus::default() }
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The registered models.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The in-process delta bus.
    pub fn bus(&self) -> &DeltaBus {
        &self.bus
    }

    /// Verifies a token and resolves the caller's groups (PROTOCOL.md §3.2).
    pub async fn authorize(&self, token: &str) -> Result<AuthContext, AuthError> {
        auth::authorize(self.auth.as_ref(), &self.pool, token).await
    }
}
