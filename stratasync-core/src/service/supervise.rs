//! Supervision of application code on the commit path: a before-hook runs
//! with a time limit and a panic in it is caught, so a hook can fail only
//! its own transaction (or, by overrunning, its own request) and never the
//! lane that commits everyone's mutations.

use crate::error::MutationError;
use crate::model::HookError;
use futures_util::FutureExt;
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// Runs a before-hook within `limit` (zero: no limit). An overrun is
/// [`MutationError::HookTimedOut`] (the hook is dropped where it stood; a
/// query it had in flight still ends within the statement timeout), a
/// panic [`MutationError::HookPanicked`].
pub(crate) async fn before_hook(
    limit: Duration,
    hook: impl Future<Output = Result<(), HookError>>,
) -> Result<(), MutationError> {
    let hook = AssertUnwindSafe(hook).catch_unwind();
    let finished = if limit.is_zero() { Ok(hook.await) } else { tokio::time::timeout(limit, hook).await };
    match finished {
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "a before-hook overran its time limit");
            Err(MutationError::HookTimedOut)
        }
        Ok(Err(panic)) => {
            tracing::error!(panic = panic_message(panic.as_ref()), "a before-hook panicked");
            Err(MutationError::HookPanicked)
        }
        Ok(Ok(result)) => result.map_err(MutationError::from),
    }
}

/// The message of a panic payload (`panic!` with a literal or a format).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overruns_and_panics_become_errors() {
        let quick = before_hook(Duration::from_secs(5), async { Ok(()) }).await;
        assert!(quick.is_ok());
        let refused = before_hook(Duration::from_secs(5), async { Err(HookError::Reject("no".into())) }).await;
        assert_eq!(refused.unwrap_err().to_string(), "no");
        let slow = before_hook(Duration::from_millis(10), async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await;
        assert!(matches!(slow, Err(MutationError::HookTimedOut)));
        let unlimited = before_hook(Duration::ZERO, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        })
        .await;
        assert!(unlimited.is_ok(), "zero is no limit");
        let bug = std::hint::black_box(7);
        let panicking = before_hook(Duration::from_secs(5), async move {
            assert_eq!(bug, 0, "hook bug");
            Ok(())
        })
        .await;
        assert!(matches!(panicking, Err(MutationError::HookPanicked)));
        assert_eq!(panicking.unwrap_err().to_string(), "Mutation rejected by hook");
    }

    #[test]
    fn panic_messages() {
        assert_eq!(panic_message(&"literal"), "literal");
        assert_eq!(panic_message(&String::from("formatted")), "formatted");
        assert_eq!(panic_message(&7u8), "(no message)");
    }
}
