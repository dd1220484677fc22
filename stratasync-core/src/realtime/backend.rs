//! What a WebSocket session needs of the engine, and nothing more: the pool
//! (stale checks and replays read the log), the node's live feed, and the
//! application's auth. The endpoint makes it from its engine, so the
//! sessions do not depend on the engine.

use super::Hub;
use crate::auth::{self, AuthContext, AuthError, AuthRejection, AuthUser, SyncAuth};
use crate::storage::Pool;
use std::sync::Arc;

/// The engine's parts a session uses; cheap to clone.
#[derive(Clone)]
pub(crate) struct SessionBackend {
    pub(crate) pool: Pool,
    pub(crate) feed: Hub,
    pub(crate) auth: Arc<dyn SyncAuth>,
}

impl SessionBackend {
    /// The connection pool.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The node's live feed.
    pub(crate) fn hub(&self) -> Hub {
        self.feed.clone()
    }

    /// Verifies a token and resolves the caller's groups (docs/protocol.md §3.2).
    pub(crate) async fn authorize(&self, token: &str) -> Result<AuthContext, AuthError> {
        auth::authorize(self.auth.as_ref(), &self.pool, token).await
    }

    /// Verifies a token only.
    pub(crate) async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
        self.auth.verify_token(token).await
    }
}
