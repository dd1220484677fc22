//! The example's development authentication (docs/example.md): a bearer token
//! `token-<userId>` verifies as user `<userId>`.

use std::collections::HashMap;
use stratasync_core::async_trait;
use stratasync_core::auth::{AuthRejection, AuthUser, SyncAuth};

/// Token verification of the example server.
///
/// By default it accepts `token-<userId>`. A deployment sets explicit
/// tokens instead (see [`DevAuth::with_tokens`]), which turns the
/// development scheme off.
#[derive(Debug, Clone, Default)]
pub struct DevAuth {
    tokens: Option<HashMap<String, String>>,
}

impl DevAuth {
    /// Accepts exactly these `token → userId` pairs (and no `token-<id>`).
    pub fn with_tokens(tokens: HashMap<String, String>) -> Self {
        DevAuth { tokens: Some(tokens) }
    }

    /// Parses `token=user,token=user` (the `TASKBOARD_TOKENS` variable).
    pub fn parse_tokens(spec: &str) -> Option<HashMap<String, String>> {
        spec.split(',')
            .filter(|pair| !pair.trim().is_empty())
            .map(|pair| {
                let (token, user) = pair.split_once('=')?;
                let (token, user) = (token.trim(), user.trim());
                (!token.is_empty() && !user.is_empty()).then(|| (token.to_owned(), user.to_owned()))
            })
            .collect()
    }
}

#[async_trait]
impl SyncAuth for DevAuth {
    async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
        let user = match &self.tokens {
            Some(tokens) => tokens.get(token).cloned(),
            None => token.strip_prefix("token-").filter(|id| !id.is_empty()).map(str::to_owned),
        };
        user.map(AuthUser::new).ok_or(AuthRejection::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn development_tokens() {
        let auth = DevAuth::default();
        assert_eq!(auth.verify_token("token-u1").await, Ok(AuthUser::new("u1")));
        assert_eq!(auth.verify_token("token-").await, Err(AuthRejection::Invalid));
        assert_eq!(auth.verify_token("u1").await, Err(AuthRejection::Invalid));
    }

    #[tokio::test]
    async fn configured_tokens_replace_the_development_scheme() {
        let auth = DevAuth::with_tokens(DevAuth::parse_tokens("s3cret=alice, other=bob").unwrap());
        assert_eq!(auth.verify_token("s3cret").await, Ok(AuthUser::new("alice")));
        assert_eq!(auth.verify_token("token-alice").await, Err(AuthRejection::Invalid));
        assert!(DevAuth::parse_tokens("broken").is_none());
    }
}
