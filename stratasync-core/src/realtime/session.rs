//! The subscribe algorithm of a live socket (docs/protocol.md §7.2–7.5),
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

use super::backend::SessionBackend;
use super::frame::{error_frame, subscribed_frame, DeltaFrame};
use super::group_scope::{visible, GroupScope};
use super::hub::Subscription;
use super::limits::{SocketLimits, SubscribeRefusal};
use super::outbox::{GoLiveError, Outbox, SocketGone};
use super::outgoing::Outgoing;
use crate::auth::{AuthError, AuthRejection};
use crate::protocol::{group_change, SyncAction, SyncId};
use crate::scope::in_groups;
use crate::storage::{log, StorageError};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// Actions read per replay query.
pub(crate) const REPLAY_PAGE: i64 = 1000;

/// A parsed client frame (§7.2).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClientFrame {
    /// A valid `subscribe`.
    Subscribe(SubscribeRequest),
    /// `type: "subscribe"` with a bad `token`, `afterSyncId` or `groups`.
    InvalidSubscribe,
    /// A `subscribe` over a [`SocketLimits`] bound: answered with an error
    /// frame, the socket stays open.
    RefusedSubscribe(SubscribeRefusal),
    /// Any other JSON object (or array): the application's.
    App(Value),
    /// Not JSON, or a JSON primitive: ignored.
    Ignored,
}

/// `{"type":"subscribe","token":…,"afterSyncId":"…","groups":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubscribeRequest {
    /// The bearer token (checked separately from the upgrade's).
    pub(crate) token: String,
    /// The client's cursor (`"0"` when absent).
    pub(crate) after_sync_id: SyncId,
    /// Requested groups (`None`: all authorized).
    pub(crate) groups: Option<Vec<String>>,
}

impl SubscribeRequest {
    /// About what the request holds in memory while it waits: its strings
    /// and their headers. Counted against
    /// [`SocketLimits::max_pending_subscribe_bytes`].
    pub(crate) fn retained_bytes(&self) -> usize {
        const HEADER: usize = std::mem::size_of::<String>();
        let groups = self.groups.iter().flatten().map(|g| g.len() + HEADER).sum::<usize>();
        std::mem::size_of::<Self>() + self.token.len() + groups
    }
}

/// Parses one text frame. A `subscribe` larger than
/// [`SocketLimits::max_subscribe_bytes`] is refused without being built,
/// and a valid one naming more than
/// [`SocketLimits::max_subscribe_groups`] groups is refused.
pub(crate) fn parse_client_frame(text: &str, limits: &SocketLimits) -> ClientFrame {
    if text.len() > limits.max_subscribe_bytes && is_subscribe(text) {
        return ClientFrame::RefusedSubscribe(SubscribeRefusal::TooLarge(limits.max_subscribe_bytes));
    }
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
        (Some(_), Some(_), Some(Some(groups))) if groups.len() > limits.max_subscribe_groups => {
            ClientFrame::RefusedSubscribe(SubscribeRefusal::TooManyGroups(limits.max_subscribe_groups))
        }
        (Some(token), Some(after_sync_id), Some(groups)) => {
            ClientFrame::Subscribe(SubscribeRequest { token: token.to_owned(), after_sync_id, groups })
        }
        _ => ClientFrame::InvalidSubscribe,
    }
}

/// Whether `text` is a JSON object whose `type` is `"subscribe"` (the last
/// `type` wins, as when the object is built), read without building it:
/// other values are skipped, not stored.
fn is_subscribe(text: &str) -> bool {
    struct Kind;
    impl<'de> Visitor<'de> for Kind {
        type Value = bool;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut subscribe = false;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "type" {
                    subscribe = map.next_value::<Value>()? == "subscribe";
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(subscribe)
        }
    }
    let mut json = serde_json::Deserializer::from_str(text);
    json.deserialize_map(Kind).is_ok_and(|subscribe| subscribe) && json.end().is_ok()
}

/// A close code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Close {
    /// The WebSocket close code.
    pub(crate) code: u16,
    /// The reason text.
    pub(crate) reason: &'static str,
}

impl Close {
    /// 1011 `Failed to resolve sync groups`.
    pub(crate) const GROUPS: Close = Close { code: 1011, reason: "Failed to resolve sync groups" };
    /// 1011 `Replay failed`.
    pub(crate) const REPLAY: Close = Close { code: 1011, reason: "Replay failed" };
    /// 1011 `Heartbeat timeout`.
    pub(crate) const HEARTBEAT: Close = Close { code: 1011, reason: "Heartbeat timeout" };
    /// 4008 `Replay buffer limit exceeded`.
    pub(crate) const BUFFER: Close = Close { code: 4008, reason: "Replay buffer limit exceeded" };
    /// 4008 `Send buffer limit exceeded`: a live consumer too slow to keep
    /// up; it resumes from the log when it reconnects.
    pub(crate) const SLOW: Close = Close { code: 4008, reason: "Send buffer limit exceeded" };
    /// 4001 `Token expired`: the subscribe's token reached its expiry.
    pub(crate) const EXPIRED: Close = Close { code: 4001, reason: "Token expired" };
    /// 4001 `Token rejected`: a periodic re-check refused the token.
    pub(crate) const REJECTED: Close = Close { code: 4001, reason: "Token rejected" };
}

/// How a subscribe ended.
#[derive(Debug)]
pub(crate) enum Subscribed {
    /// The `subscribed` frame was sent; live frames follow.
    Live(LiveFeed),
    /// An error frame was sent; the socket stays open, unsubscribed.
    Refused,
    /// An error frame was sent (if the socket still was there); close it.
    Close(Close),
}

/// The authorized identity of a subscribed socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The user.
    pub(crate) user_id: String,
    /// The session's groups when it went live.
    pub(crate) groups: Vec<String>,
    /// The token, kept for re-checks.
    pub(crate) token: String,
    /// When the token expires, if it says.
    pub(crate) expires_at: Option<std::time::SystemTime>,
}

/// A subscribed session: while it lives, live frames reach the socket's
/// [`Outbox`] directly, gated by the session's cursor. Dropping it leaves
/// the feed.
#[derive(Debug)]
pub(crate) struct LiveFeed {
    /// Who subscribed, with which groups.
    pub(crate) identity: Identity,
    /// Held for its effect: dropping it leaves the feed.
    _subscription: Subscription,
}

async fn send_str(out: &Outbox, text: String) -> Result<(), SocketGone> {
    out.send(Outgoing::text(text)).await
}

/// Runs steps 3–9 of §7.3 for `request` (the caller has already reset the
/// session and run its `onSubscribe` hook).
pub(crate) async fn subscribe(engine: &SessionBackend, request: SubscribeRequest, out: &Outbox) -> Subscribed {
    let user = match engine.authorize(&request.token).await {
        Ok(authorized) => authorized,
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
    let scope = GroupScope {
        user_id: user.user_id().to_owned(),
        requested: request.groups,
        derived: user.derived_groups.clone(),
    };
    let groups = scope.select(&user.groups);
    let identity =
        Identity { user_id: scope.user_id.clone(), groups, token: request.token, expires_at: user.user.expires_at };
    match replay(engine, request.after_sync_id, identity, &scope, out).await {
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
///
/// The replay follows the user's group changes in the log as the live feed
/// does ([`super::group_scope`]): it starts with the groups the user had at
/// the cursor, reads its groups plus the user's own id (where the changes
/// are), and after a change reads on from it with the new groups.
async fn replay(
    engine: &SessionBackend,
    after: SyncId,
    mut identity: Identity,
    scope: &GroupScope,
    out: &Outbox,
) -> Result<Result<Subscribed, SocketGone>, StorageError> {
    // Connections are taken per query and returned before anything is
    // sent: a slow socket must not hold a pooled connection while it drains.
    let (stale, span) = log::stale_and_span(&*engine.pool().get().await?, after).await?;
    if stale {
        let frame =
            error_frame(Some("BOOTSTRAP_REQUIRED"), "A fresh bootstrap is required before subscribing to deltas");
        return Ok(send_str(out, frame).await.map(|()| Subscribed::Refused));
    }
    // The groups at the cursor: those of the user's last group change up to
    // it, when the log has one (otherwise the ones authorized now).
    if after.0 > 0 {
        let at_cursor = log::group_change_at(&*engine.pool().get().await?, &scope.user_id, after).await?;
        if let Some(members) = at_cursor.as_ref().and_then(group_change::members) {
            identity.groups = scope.after_change(&members);
        }
    }
    // Join before reading: everything committed from here on is buffered,
    // everything before is in the log, so the two overlap and nothing is
    // missed; the cursor gate drops the overlap.
    let subscription = engine.hub().subscribe(scope, &identity.groups, out);
    let mut cursor = after;
    let overflow = || send_str(out, error_frame(Some("BUFFER_OVERFLOW"), "Replay buffer limit exceeded"));
    loop {
        if subscription.overflowed() {
            let _ = overflow().await;
            return Ok(Ok(Subscribed::Close(Close::BUFFER)));
        }
        // The hot tail holds everything after the cursor, up to the head of
        // the log at the stale check at least: replay from memory, to where
        // the feed is (the subscription buffers the rest), leaving out what
        // the log no longer retains. A feed still catching up is not waited
        // for: the log is read instead.
        if let Some(since) = subscription.recent_since(cursor).filter(|since| since.end >= span.latest) {
            let mut sent = 0;
            for recent in since.actions.into_iter().filter(|r| r.sync_id >= span.earliest) {
                let step = match &recent.change {
                    Some(action) => replay_step(action, &identity.groups, scope),
                    None if in_groups(recent.group_id.as_deref(), identity.groups.as_slice()) => Step::Send,
                    None => Step::Skip,
                };
                let frame = match (&step, &recent.change) {
                    (Step::Skip, _) => continue,
                    (Step::Change(members), Some(action)) => scope.change_frame(action, members, recent.frame),
                    _ => recent.frame,
                };
                if let Err(gone) = out.send(Outgoing::delta(frame)).await {
                    return Ok(Err(gone));
                }
                sent += 1;
                if let Step::Change(members) = step {
                    identity.groups = scope.after_change(&members);
                    subscription.regroup(recent.sync_id, &identity.groups);
                }
            }
            crate::metrics::deltas_served("memory", "replay", sent);
            cursor = since.end;
            break;
        }
        let read: Vec<String> = identity.groups.iter().chain([&scope.user_id]).cloned().collect();
        let page = log::read(&*engine.pool().get().await?, cursor, log::Visible::Groups(&read), REPLAY_PAGE).await?;
        crate::metrics::deltas_served("database", "replay", page.actions.len() as u64);
        let mut changed = None;
        for action in &page.actions {
            let step = replay_step(action, &identity.groups, scope);
            let frame = match &step {
                Step::Skip => continue,
                Step::Send => DeltaFrame::of(action),
                Step::Change(members) => scope.change_frame(action, members, DeltaFrame::of(action)),
            };
            if let Err(gone) = out.send(Outgoing::delta(frame)).await {
                return Ok(Err(gone));
            }
            if let Step::Change(members) = step {
                identity.groups = scope.after_change(&members);
                subscription.regroup(action.sync_id, &identity.groups);
                changed = Some(action.sync_id);
                break;
            }
        }
        match changed {
            // What followed the change in this page was read for the old
            // groups: read on from the change.
            Some(at) => cursor = at,
            None => {
                // Rows, not actions, tell the end of the log: skipped rows count.
                cursor = page.cursor(cursor);
                if !page.is_full(REPLAY_PAGE) {
                    break;
                }
            }
        }
    }
    // Flush what arrived during the replay, in order, without duplicates,
    // then `subscribed`, and go live: at once, so nothing slips in between.
    let groups = &identity.groups;
    match subscription.go_live(cursor, |cursor| Outgoing::text(subscribed_frame(cursor, groups))) {
        Ok(_) => Ok(Ok(Subscribed::Live(LiveFeed { identity, _subscription: subscription }))),
        Err(GoLiveError::Overflowed) => {
            let _ = overflow().await;
            Ok(Ok(Subscribed::Close(Close::BUFFER)))
        }
        Err(GoLiveError::Gone) => Ok(Err(SocketGone)),
    }
}

/// What a replay does with an action it read.
enum Step {
    /// Not visible to the session's groups.
    Skip,
    /// Send it.
    Send,
    /// Send it: a group change of the session's user, to this membership set.
    Change(Vec<String>),
}

fn replay_step(action: &SyncAction, groups: &[String], scope: &GroupScope) -> Step {
    match scope.change_in(action) {
        Some(members) => Step::Change(members),
        None if visible(action, groups) => Step::Send,
        None => Step::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_client_frames() {
        let limits = SocketLimits::default();
        let sub = |s: &str| parse_client_frame(s, &limits);
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

    #[test]
    fn bounds_subscribes() {
        let limits = SocketLimits { max_subscribe_bytes: 100, max_subscribe_groups: 2, ..SocketLimits::default() };
        let sub = |s: &str| parse_client_frame(s, &limits);
        let groups = |n: usize| json!({"groups": vec!["g"; n], "token": "t", "type": "subscribe"}).to_string();
        assert!(matches!(sub(&groups(2)), ClientFrame::Subscribe(_)));
        assert_eq!(sub(&groups(3)), ClientFrame::RefusedSubscribe(SubscribeRefusal::TooManyGroups(2)));
        // Invalid is invalid, however many groups.
        assert_eq!(sub(r#"{"groups":["a","b",3],"token":"t","type":"subscribe"}"#), ClientFrame::InvalidSubscribe);
        let padding = "x".repeat(100);
        for large in [
            json!({"type": "subscribe", "token": padding}).to_string(),
            json!({"pad": [padding, {"type": "x"}], "type": "subscribe"}).to_string(),
            format!(r#"{{"type":1,"pad":"{padding}","type":"subscribe"}}"#),
        ] {
            assert_eq!(sub(&large), ClientFrame::RefusedSubscribe(SubscribeRefusal::TooLarge(100)), "{large}");
        }
        // Large frames that are not subscribes are read as before.
        let app = json!({"type": "live_editing_update", "pad": padding});
        assert_eq!(sub(&app.to_string()), ClientFrame::App(app));
        let array = json!(["subscribe", padding]);
        assert_eq!(sub(&array.to_string()), ClientFrame::App(array));
        assert_eq!(sub(&format!(r#"{{"type":"subscribe","pad":"{padding}"}} trailing"#)), ClientFrame::Ignored);
        assert_eq!(sub(&format!(r#"{{"type":"subscribe","pad":"{padding}""#)), ClientFrame::Ignored);
    }

    #[test]
    fn retained_bytes_count_every_string() {
        let small = SubscribeRequest { token: "t".into(), after_sync_id: SyncId(0), groups: None };
        let large = SubscribeRequest { groups: Some(vec!["g".repeat(1000); 10]), ..small.clone() };
        assert!(small.retained_bytes() < 200);
        assert!(large.retained_bytes() >= 10_000 + small.retained_bytes());
    }
}
