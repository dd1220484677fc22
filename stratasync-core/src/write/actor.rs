//! Who a write from server code is made as.

use crate::auth::{AuthContext, AuthUser};
use std::sync::LazyLock;

/// Who a [`SyncWriter`](super::SyncWriter) writes as.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// The server itself: no group check, any group may be written. Hooks
    /// see [`HookContext::system`](crate::HookContext::system) set and an
    /// empty user (no id, no groups).
    System,
    /// On behalf of a user: the same group checks as that user's client
    /// mutations (a foreign group answers `Access denied` or
    /// `record not found`).
    User(&'a AuthContext),
}

/// The context hooks see for [`Actor::System`].
static SYSTEM: LazyLock<AuthContext> =
    LazyLock::new(|| AuthContext { user: AuthUser::new(""), groups: Vec::new(), derived_groups: Vec::new() });

impl<'a> Actor<'a> {
    /// The context hooks see, and whether group checks are skipped.
    pub(crate) fn context(self) -> (&'a AuthContext, bool) {
        match self {
            Actor::System => (&SYSTEM, true),
            Actor::User(user) => (user, false),
        }
    }
}
