//! The open WebSockets of each user, against
//! [`super::SocketLimits::max_sockets_per_user`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts open sockets per user; cheap to clone (clones share the counts).
/// Without a limit nothing is counted.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserSockets {
    limit: Option<usize>,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open socket of a user: counted until dropped.
#[derive(Debug)]
pub(crate) struct SocketSlot {
    /// The counts and the user, when counted.
    counted: Option<(UserSockets, String)>,
}

impl UserSockets {
    /// Counts with at most `limit` open sockets per user (`None`: no limit).
    pub(crate) fn new(limit: Option<usize>) -> Self {
        UserSockets { limit, open: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for one more socket of `user`, or `None` when `user` has the
    /// limit's number of sockets open already.
    pub(crate) fn open(&self, user: &str) -> Option<SocketSlot> {
        let Some(limit) = self.limit else { return Some(SocketSlot { counted: None }) };
        let mut open = self.lock();
        let count = open.get(user).copied().unwrap_or(0);
        if count >= limit {
            return None;
        }
        open.insert(user.to_owned(), count + 1);
        Some(SocketSlot { counted: Some((self.clone(), user.to_owned())) })
    }

    /// The sockets of `user` counted as open (always 0 without a limit).
    #[cfg(test)]
    pub(crate) fn count(&self, user: &str) -> usize {
        self.lock().get(user).copied().unwrap_or(0)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let Some((sockets, user)) = self.counted.take() else { return };
        let mut open = sockets.lock();
        match open.get_mut(&user) {
            Some(count) if *count > 1 => *count -= 1,
            _ => {
                open.remove(&user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_against_the_limit() {
        let sockets = UserSockets::new(Some(2));
        let a = sockets.open("alice").expect("first");
        let b = sockets.open("alice").expect("second");
        assert!(sockets.open("alice").is_none());
        let bob = sockets.open("bob").expect("another user");
        drop(a);
        assert_eq!(sockets.count("alice"), 1);
        let c = sockets.open("alice").expect("a slot freed");
        drop((b, c, bob));
        assert_eq!(sockets.count("alice"), 0);
        assert!(sockets.lock().is_empty(), "no entry is left behind");

        let unlimited = UserSockets::new(None);
        let slots: Vec<_> = (0..100).map(|_| unlimited.open("alice").expect("no limit")).collect();
        assert_eq!((slots.len(), unlimited.count("alice")), (100, 0));
    }
}
