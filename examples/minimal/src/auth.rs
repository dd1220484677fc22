//! Development tokens: the bearer token `token-<userId>` is user `<userId>`.
//! Replace this with a real token check before going live.

use stratasync_core::{async_trait, AuthRejection, AuthUser, SyncAuth};

/// Accepts `token-<userId>`.
pub struct DevAuth;

#[async_trait]
impl SyncAuth for DevAuth {
    async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
        match token.strip_prefix("token-") {
            Some(user_id) if !user_id.is_empty() => Ok(AuthUser::new(user_id)),
            _ => Err(AuthRejection::Invalid),
        }
    }
}
