//! Authentication: the application's token check and group resolution,
//! combined with the membership table (docs/protocol.md §3).

use crate::storage::{memberships, Pool, StorageError};
use async_trait::async_trait;
use std::time::SystemTime;

/// The user a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The user id (also one of the user's groups).
    pub user_id: String,
    /// Optional e-mail.
    pub email: Option<String>,
    /// Optional display name.
    pub name: Option<String>,
    /// When the token stops being valid, if it says (a JWT's `exp`). A
    /// WebSocket subscribed with the token is closed then, with 4001
    /// `Token expired` (docs/protocol.md §7.6).
    pub expires_at: Option<SystemTime>,
}

impl AuthUser {
    /// A user with only an id (and a token that does not expire).
    pub fn new(user_id: impl Into<String>) -> Self {
        AuthUser { user_id: user_id.into(), email: None, name: None, expires_at: None }
    }

    /// The same user, with a token that expires at `at`.
    pub fn expiring_at(self, at: SystemTime) -> Self {
        AuthUser { expires_at: Some(at), ..self }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthRejection {
    /// Unknown or malformed token (`401 Invalid token`).
    #[error("Invalid token")]
    Invalid,
    /// The token has expired (`401 Token expired`).
    #[error("Token expired")]
    Expired,
}

/// A failure to resolve groups (`500 Failed to resolve sync groups`).
#[derive(Debug, thiserror::Error)]
#[error("Failed to resolve sync groups")]
pub struct GroupResolutionError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The application's authentication: which user a bearer token belongs to,
/// and optionally extra sync groups of that user.
///
/// # The groups of a user
///
/// Every request (and every WebSocket `subscribe`) is authorized for the
/// groups `dedupe(resolve_groups ++ memberships ++ [user_id])`
/// ([`AuthContext::groups`]):
///
/// 1. whatever [`resolve_groups`](SyncAuth::resolve_groups) returns (none
///    by default), for groups the application derives itself;
/// 2. the user's rows of the table `sync_group_memberships`, in the order
///    they were added: the usual way to put users into shared groups such
///    as a workspace. Add and remove them with
///    [`storage::memberships::add`](crate::storage::memberships::add) and
///    [`remove`](crate::storage::memberships::remove), or plain SQL (see
///    [`storage::memberships`](crate::storage::memberships));
/// 3. **the user's own id, always**: a model whose group is the owner's user
///    id (`group = owner_id`) needs no membership rows at all.
///
/// Groups are resolved again on every HTTP request, so a membership change
/// applies to the next request; an open WebSocket follows the change's `S`
/// action at its sync id (docs/protocol.md §7.5).
///
/// # Implementing it
///
/// The trait is declared with `#[async_trait]`, so implementations need the
/// attribute too ([`stratasync_core::async_trait`](crate::async_trait) is
/// re-exported for that). Without it, rustc reports E0195 ("lifetime
/// parameters or bounds on method `verify_token` do not match the trait
/// declaration").
///
/// ```
/// use stratasync_core::{async_trait, AuthRejection, AuthUser, SyncAuth};
///
/// /// Development tokens: `token-<userId>` is user `<userId>`.
/// struct DevAuth;
///
/// #[async_trait]
/// impl SyncAuth for DevAuth {
///     async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
///         match token.strip_prefix("token-") {
///             Some(user_id) if !user_id.is_empty() => Ok(AuthUser::new(user_id)),
///             _ => Err(AuthRejection::Invalid),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait SyncAuth: Send + Sync + 'static {
    /// Verifies a bearer token.
    async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection>;

    /// Extra groups of a user, before the membership table's (none by default).
    async fn resolve_groups(&self, _user_id: &str) -> Result<Vec<String>, GroupResolutionError> {
        Ok(Vec::new())
    }
}

/// An authenticated caller and all of their authorized groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    /// The user.
    pub user: AuthUser,
    /// `dedupe(callback ++ memberships ++ [userId])`.
    pub groups: Vec<String>,
    /// What [`SyncAuth::resolve_groups`] returned (the callback's part of
    /// `groups`): a group change keeps these, and the user is told them
    /// first in its `subscribedSyncGroups`, as bootstrap lists them.
    pub derived_groups: Vec<String>,
}

impl AuthContext {
    /// The user id.
    pub fn user_id(&self) -> &str {
        &self.user.user_id
    }

    /// Whether the caller may see and write group `group`.
    pub fn has_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Why [`authorize`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token was refused.
    #[error(transparent)]
    Rejected(#[from] AuthRejection),
    /// Groups could not be resolved.
    #[error("Failed to resolve sync groups")]
    Groups(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Verifies `token`, then resolves the callback's and the membership table's
/// groups concurrently (docs/protocol.md §3.2).
pub async fn authorize(auth: &dyn SyncAuth, pool: &Pool, token: &str) -> Result<AuthContext, AuthError> {
    let user = auth.verify_token(token).await?;
    context_for(auth, pool, user).await
}

/// The groups of an already verified `user`, exactly as [`authorize`]
/// resolves them (operator tools such as
/// [`ops::explain`](crate::ops::explain) use it for a user without a token).
pub async fn context_for(auth: &dyn SyncAuth, pool: &Pool, user: AuthUser) -> Result<AuthContext, AuthError> {
    let (callback, members) =
        tokio::join!(auth.resolve_groups(&user.user_id), memberships::groups_of(pool, &user.user_id));
    let derived_groups = dedupe(callback.map_err(|e| AuthError::Groups(Box::new(e)))?);
    let members = members.map_err(|e: StorageError| AuthError::Groups(Box::new(e)))?;
    let groups = dedupe(derived_groups.iter().cloned().chain(members).chain(std::iter::once(user.user_id.clone())));
    Ok(AuthContext { user, groups, derived_groups })
}

/// Keeps the first occurrence of every string (a [`crate::protocol`]
/// function).
pub use crate::protocol::dedupe;
