//! `POST /sync/batch` on the engine (the load itself is
//! [`crate::service::batch`]).

use super::SyncEngine;
use crate::auth::AuthContext;
use crate::error::ServiceError;
use crate::protocol::BatchParams;
use crate::service::batch::Load;
use crate::service::snapshot;
use crate::service::NdjsonStream;

impl SyncEngine {
    /// Starts a batch load: the rows of every request, concatenated.
    /// Unknown models and foreign groups are skipped silently, and a
    /// request identical to an earlier one is answered once; a disallowed
    /// key or an oversized result ends the stream with an error line.
    ///
    /// Admission comes first, as for [`SyncEngine::bootstrap`].
    pub async fn batch(&self, user: &AuthContext, params: BatchParams) -> Result<NdjsonStream, ServiceError> {
        let job = Load::new(self.registry.clone(), user.clone(), params);
        snapshot::start(&self.pool, &self.streams, user.user_id(), job).await
    }
}
