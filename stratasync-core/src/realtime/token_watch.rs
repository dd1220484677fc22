//! When a live socket's token stops being valid: at its expiry
//! ([`crate::AuthUser::expires_at`]), or when a periodic re-check
//! ([`crate::endpoint::SyncEndpoints::token_recheck`]) refuses it. Either
//! closes the socket with 4001 (docs/protocol.md §7.6); the client
//! reconnects with a fresh token.

use super::backend::SessionBackend;
use super::session::{Close, Identity};
use crate::auth::{AuthRejection, AuthUser};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The token watch of one socket; idle until its subscribe goes live.
pub(crate) struct TokenWatch {
    every: Option<Duration>,
    watched: Option<Watched>,
}

struct Watched {
    token: String,
    expires: Option<Instant>,
    next_check: Option<Instant>,
    /// A re-check in progress: kept across the driver's loop, so other
    /// events never cancel it.
    checking: Option<BoxFuture<'static, Result<AuthUser, AuthRejection>>>,
}

impl TokenWatch {
    /// A watch that re-checks every `every` (`None`: only the expiry).
    pub(crate) fn new(every: Option<Duration>) -> Self {
        TokenWatch { every, watched: None }
    }

    /// Watches the token of a session that just went live.
    pub(crate) fn watch(&mut self, identity: &Identity) {
        self.watched = Some(Watched {
            token: identity.token.clone(),
            expires: deadline(identity.expires_at),
            next_check: self.every.and_then(|every| Instant::now().checked_add(every)),
            checking: None,
        });
    }

    /// The session left the feed.
    pub(crate) fn stop(&mut self) {
        self.watched = None;
    }

    /// Whether [`TokenWatch::ended`] can ever resolve.
    pub(crate) fn is_watching(&self) -> bool {
        self.watched.as_ref().is_some_and(|w| w.expires.is_some() || w.next_check.is_some())
    }

    /// Resolves with the close to send once the token has ended.
    pub(crate) async fn ended(&mut self, engine: &SessionBackend) -> Close {
        let every = self.every;
        let Some(w) = self.watched.as_mut() else { return std::future::pending().await };
        loop {
            if let Some(check) = w.checking.as_mut() {
                let verdict = check.await;
                w.checking = None;
                match verdict {
                    Ok(user) => {
                        w.expires = deadline(user.expires_at);
                        w.next_check = every.and_then(|every| Instant::now().checked_add(every));
                    }
                    Err(AuthRejection::Expired) => return Close::EXPIRED,
                    Err(AuthRejection::Invalid) => return Close::REJECTED,
                }
            }
            let wake = match (w.expires, w.next_check) {
                (Some(a), Some(b)) => a.min(b),
                (Some(at), None) | (None, Some(at)) => at,
                (None, None) => return std::future::pending().await,
            };
            tokio::time::sleep_until(wake).await;
            if w.expires.is_some_and(|at| at <= Instant::now()) {
                return Close::EXPIRED;
            }
            let (engine, token) = (engine.clone(), w.token.clone());
            w.checking = Some(async move { engine.verify_token(&token).await }.boxed());
        }
    }
}

/// `at` on the runtime's clock (now when it has passed; `None` when it is
/// too far away to represent).
fn deadline(at: Option<SystemTime>) -> Option<Instant> {
    let at = at?;
    match at.duration_since(SystemTime::now()) {
        Ok(left) => Instant::now().checked_add(left),
        Err(_) => Some(Instant::now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_clamped_and_never_overflow() {
        let now = Instant::now();
        assert!(deadline(Some(SystemTime::UNIX_EPOCH)).is_some_and(|at| at >= now && at <= Instant::now()));
        let soon = deadline(Some(SystemTime::now() + Duration::from_secs(60))).expect("representable");
        assert!(soon > now + Duration::from_secs(59));
        // The furthest representable time: never now, never a panic.
        let far = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(i64::MAX as u64 - 1));
        if let Some(far) = far.and_then(|far| deadline(Some(far))) {
            assert!(far > soon);
        }
        assert_eq!(deadline(None), None);
    }
}
