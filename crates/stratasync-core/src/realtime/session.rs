//! The subscribe algorithm of a live socket (PROTOCOL.md §7.2–7.5),
//! independent of the WebSocket library.
//!
//! Differences from the reference, on purpose:
//! * live frames come from the node's log tail ([`super::Hub`]), so a
//!   session's stream is strictly ascending with no gaps, even when commits
//!   race (§10 #1, #2);
//! * every failed subscribe answers with an error frame (§10 #16): a failing
//!   stale check or log read sends `Replay failed` and closes with 1011;
//! * the stale check is the corrected one of [`crate::storage::log::is_stale`]
//!   (§10 #10).

use super::frame::{error_frame, subscribed_frame, DeltaFrame};
use super::hub::Subscription;
pub use super::outbox::SocketGone;
use super::outbox::{GoLiveError, Outbox};
use super::wire;
use crate::auth::{AuthError, AuthRejection};
use crate::engine::SyncEngine;
use crate::protocol::SyncId;
use crate::storage::{log, StorageError};
use serde_json::Value;

/// Actions read per replay query.
pub const REPLAY_PAGE: i64 = 1000;

/// A parsed client frame (§7.2).
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// A valid `subscribe`.
    Subscribe(SubscribeRequest),
    /// `type: "subscribe"` with a bad `token`, `afterSyncId` or `groups`.
    InvalidSubscribe,
    /// Any other JSON object (or array): the application's.
    App(Value),
    /// Not JSON, or a JSON primitive: ignored.
    Ignored,
}

/// `{"type":"subscribe","token":…,"afterSyncId":"…","groups":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// The bearer token (checked separately from the upgrade's).
    pub token: String,
    /// The client's cursor (`"0"` when absent).
    pub after_sync_id: SyncId,
    /// Requested groups (`None`: all authorized).
    pub groups: Option<Vec<String>>,
}

/// Parses one text frame.
pub fn parse_client_frame(text: &str) -> ClientFrame {
    let Ok(value) = serde_json::from_str::<Value>(text) else { return ClientFrame::Ignored };
    let Some(object) = value.as_object() else {
        return if value.is_array() { ClientFrame::App(value) } else { ClientFrame::Ignored };
    };
    if object.get("type").and_then(Value::as_str) != Some("subscribe") {
        return ClientFrame::App(value);
    }
    let token = object.get("token").and_then(Value::as_str);
    let after = match object.get("afterSyncId") {
        None => Some(SyncId(0)),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    };
    let groups = match object.get("groups") {
        None => Some(None),
        Some(Value::Array(items)) => {
            items.iter().map(|g| g.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().map(Some)
        }
        Some(_) => None,
    };
    match (token, after, groups) {
        (Some(token), Some(after_sync_id), Some(groups)) => {
            ClientFrame::Subscribe(SubscribeRequest { token: token.to_owned(), after_sync_id, groups })
        }
        _ => ClientFrame::InvalidSubscribe,
    }
}

/// A close code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The WebSocket close code.
    pub code: u16,
    /// The reason text.
    pub reason: &'static str,
}

impl Close {
    /// 1011 `Failed to resolve sync groups`.
    pub const GROUPS: Close = Close { code: 1011, reason: "Failed to resolve sync groups" };
    /// 1011 `Replay failed`.
    pub const REPLAY: Close = Close { code: 1011, reason: "Replay failed" };
    /// 1011 `Heartbeat timeout`.
    pub const HEARTBEAT: Close = Close { code: 1011, reason: "Heartbeat timeout" };
    /// 4008 `Replay buffer limit exceeded`.
    pub const BUFFER: Close = Close { code: 4008, reason: "Replay buffer limit exceeded" };
    /// 4008 `Send buffer limit exceeded`: a live consumer too slow to keep
    /// up; it resumes from the log when it reconnects.
    pub const SLOW: Close = Close { code: 4008, reason: "Send buffer limit exceeded" };
}

/// How a subscribe ended.
#[derive(Debug)]
pub enum Subscribed {
    /// The `subscribed` frame was sent; live frames follow.
    Live(LiveFeed),
    /// An error frame was sent; the socket stays open, unsubscribed.
    Refused,
    /// An error frame was sent (if the socket still was there); close it.
    Close(Close),
}

/// The authorized identity of a subscribed socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user_id: String,
    /// The session's groups.
    pub groups: Vec<String>,
}

/// A subscribed session: while it lives, live frames reach the socket's
/// [`Outbox`] directly, gated by the session's cursor. Dropping it leaves
/// the feed.
#[derive(Debug)]
pub struct LiveFeed {
    /// Who subscribed, with which groups.
    pub identity: Identity,
    subscription: Subscription,
}

impl LiveFeed {
    /// The last sync id queued on the socket.
    pub fn cursor(&self) -> SyncId {
        self.subscription.cursor().unwrap_or_default()
    }
}

async fn send_str(out: &Outbox, text: String) -> Result<(), SocketGone> {
    out.send(wire::text(text.as_bytes())).await
}

/// Runs steps 3–9 of §7.3 for `request` (the caller has already reset the
/// session and run its `onSubscribe` hook).
pub async fn subscribe(engine: &SyncEngine, request: SubscribeRequest, out: &Outbox) -> Subscribed {
    let user = match engine.authorize(&request.token).await {
        Ok(user) => user,
        Err(AuthError::Rejected(AuthRejection::Invalid | AuthRejection::Expired)) => {
            let _ = send_str(out, error_frame(None, "Invalid token")).await;
            return Subscribed::Refused;
        }
        Err(AuthError::Groups(e)) => {
            tracing::error!(error = %e, "group resolution failed on subscribe");
            let _ = send_str(out, error_frame(None, "Failed to resolve sync groups")).await;
            return Subscribed::Close(Close::GROUPS);
        }
    };
    // §3.3, WS row: absent or empty → every authorized group.
    let groups: Vec<String> = match &request.groups {
        Some(requested) if !requested.is_empty() => {
            crate::auth::dedupe(requested.iter().filter(|g| user.has_group(g)).cloned())
        }
        _ => user.groups.clone(),
    };
    let identity = Identity { user_id: user.user_id().to_owned(), groups };
    match replay(engine, request.after_sync_id, identity, out).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(SocketGone)) => Subscribed::Close(Close::REPLAY),
        Err(e) => {
            tracing::error!(error = ?e, "replay failed");
            let _ = send_str(out, error_frame(None, "Replay failed")).await;
            Subscribed::Close(Close::REPLAY)
        }
    }
}

/// Stale check, join the feed, replay from the log, flush the buffered
/// live frames, then `subscribed`.
async fn replay(
    engine: &SyncEngine,
    after: SyncId,
    identity: Identity,
    out: &Outbox,
) -> Result<Result<Subscribed, SocketGone>, StorageError> {
    // Connections are taken per query and returned before anything is
    // sent: a slow socket must not hold a pooled connection while it drains.
    let stale = log::is_stale(&*engine.pool().get().await?, after).await?;
    if stale {
        let frame =
            error_frame(Some("BOOTSTRAP_REQUIRED"), "A fresh bootstrap is required before subscribing to deltas");
        return Ok(send_str(out, frame).await.map(|()| Subscribed::Refused));
    }
    // Join before reading: everything committed from here on is buffered,
    // everything before is in the log, so the two overlap and nothing is
    // missed; the cursor gate drops the overlap.
    let subscription = engine.hub().subscribe(&identity.groups, out);
    let mut cursor = after;
    let overflow = || send_str(out, error_frame(Some("BUFFER_OVERFLOW"), "Replay buffer limit exceeded"));
    loop {
        if subscription.overflowed() {
            let _ = overflow().await;
            return Ok(Ok(Subscribed::Close(Close::BUFFER)));
        }
        let visible = log::Visible::Groups(&identity.groups);
        let page = log::read(&*engine.pool().get().await?, cursor, visible, REPLAY_PAGE).await?;
        for action in &page.actions {
            if let Err(gone) = out.send(DeltaFrame::of(action).wire().clone()).await {
                return Ok(Err(gone));
            }
        }
        // Rows, not actions, tell the end of the log: skipped rows count.
        cursor = page.cursor(cursor);
        if !page.is_full(REPLAY_PAGE) {
            break;
        }
    }
    // Flush what arrived during the replay, in order, without duplicates,
    // then `subscribed`, and go live: at once, so nothing slips in between.
    let groups = &identity.groups;
    match subscription.go_live(cursor, |cursor| wire::text(subscribed_frame(cursor, groups).as_bytes())) {
        Ok(_) => Ok(Ok(Subscribed::Live(LiveFeed { identity, subscription }))),
        Err(GoLiveError::Overflowed) => {
            let _ = overflow().await;
            Ok(Ok(Subscribed::Close(Close::BUFFER)))
        }
        Err(GoLiveError::Gone) => Ok(Err(SocketGone)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_client_frames() {
        let sub = |s: &str| parse_client_frame(s);
        assert_eq!(
            sub(r#"{"afterSyncId":"0012","groups":["w1","u1"],"token":"t","type":"subscribe","extra":1}"#),
            ClientFrame::Subscribe(SubscribeRequest {
                token: "t".into(),
                after_sync_id: SyncId(12),
                groups: Some(vec!["w1".into(), "u1".into()])
            })
        );
        assert_eq!(
            sub(r#"{"token":"t","type":"subscribe"}"#),
            ClientFrame::Subscribe(SubscribeRequest { token: "t".into(), after_sync_id: SyncId(0), groups: None })
        );
        for bad in [
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","token":"t","afterSyncId":12}"#,
            r#"{"type":"subscribe","token":"t","afterSyncId":"-1"}"#,
            r#"{"type":"subscribe","token":"t","groups":[1]}"#,
            r#"{"type":"subscribe","token":"t","groups":"w1"}"#,
        ] {
            assert_eq!(sub(bad), ClientFrame::InvalidSubscribe, "{bad}");
        }
        assert_eq!(sub(r#"{"type":"yjs_update"}"#), ClientFrame::App(json!({"type": "yjs_update"})));
        assert_eq!(sub("[1]"), ClientFrame::App(json!([1])));
        assert_eq!(sub("42"), ClientFrame::Ignored);
        assert_eq!(sub("not json"), ClientFrame::Ignored);
    }
}
