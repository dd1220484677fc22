//! `GET /sync/bootstrap` on the engine (the snapshot itself is
//! [`crate::service::bootstrap`]).

use super::SyncEngine;
use crate::auth::AuthContext;
use crate::error::ServiceError;
use crate::protocol::BootstrapParams;
use crate::service::bootstrap::Snapshot;
use crate::service::snapshot;
use crate::service::NdjsonStream;

impl SyncEngine {
    /// Starts a bootstrap stream. The stream's first item is the metadata
    /// line; an `Err` item ends it (the transport writes it as an error
    /// line, or aborts the response on [`ServiceError::StreamAborted`]).
    ///
    /// Admission comes first ([`StreamLimits`](super::StreamLimits)):
    /// [`ServiceError::TooManyStreams`] when the caller has too many
    /// streams open, [`ServiceError::Unavailable`] when no snapshot slot
    /// freed up in time.
    pub async fn bootstrap(&self, user: &AuthContext, params: BootstrapParams) -> Result<NdjsonStream, ServiceError> {
        let job = Snapshot::new(self.registry.clone(), user, &params, self.schema_hash());
        snapshot::start(&self.pool, &self.streams, user.user_id(), job).await
    }
}
