//! `SyncAuth` with JSON Web Tokens: HS256 tokens signed with a shared
//! secret, for one audience; the `sub` claim is the user id.

use jsonwebtoken::{decode, errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::time::{Duration, UNIX_EPOCH};
use stratasync_core::{async_trait, AuthRejection, AuthUser, SyncAuth};

/// The claims the server reads (`exp` and `aud` are checked by `Validation`).
#[derive(Debug, Deserialize)]
struct Claims {
    /// The user id.
    sub: String,
    /// The user's e-mail, if the issuer adds it.
    email: Option<String>,
    /// Expiry, in seconds since the Unix epoch.
    exp: u64,
}

/// Verifies HS256 tokens signed with one secret.
pub struct JwtAuth {
    key: DecodingKey,
    validation: Validation,
}

impl JwtAuth {
    /// Accepts tokens signed with `secret` whose `aud` is `audience`.
    pub fn new(secret: &[u8], audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256); // requires `exp`
        validation.set_audience(&[audience]);
        JwtAuth { key: DecodingKey::from_secret(secret), validation }
    }
}

#[async_trait]
impl SyncAuth for JwtAuth {
    async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
        let data = decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthRejection::Expired, // 401 "Token expired"
            _ => AuthRejection::Invalid,                           // 401 "Invalid token"
        })?;
        let Claims { sub, email, exp } = data.claims;
        if sub.is_empty() {
            return Err(AuthRejection::Invalid);
        }
        // A WebSocket subscribed with this token is closed when it expires.
        let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(exp));
        Ok(AuthUser { user_id: sub, email, name: None, expires_at })
    }
}
