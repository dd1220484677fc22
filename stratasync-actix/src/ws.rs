//! `GET /sync/ws`: live deltas over a WebSocket (PROTOCOL.md §7).
//!
//! Every frame for a socket goes to its [`Outbox`], which the connection's
//! writer drains ([`crate::ws_body`]): live deltas straight from the node's
//! feed (encoded once for every socket, gated per session), everything
//! else from the socket's task. That task multiplexes, without blocking one
//! on another: incoming frames, the subscribe in progress (replay runs
//! concurrently, so application messages are handled during a long
//! replay), the outbox's events (a consumer too slow for its live frames,
//! a connection gone) and the heartbeat. Subscribes are answered one at a
//! time, in order; each gets a `subscribed` or an error frame.
//!
//! What a client may make the socket hold is bounded ([`SocketLimits`]):
//! its messages, its subscribes, the subscribes waiting behind the one in
//! progress (in number and bytes), and its user's open sockets (checked at
//! the upgrade: 429 with `Retry-After`). What the server queues for it is
//! bounded in bytes by its [`Outbox`].

use crate::error;
use crate::ws_body::OutboxBody;
use crate::ws_incoming::{Incoming, Received};
use actix_web::body::MessageBody;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason};
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use stratasync_core::log_text::clip;
use stratasync_core::realtime::frame::error_frame;
use stratasync_core::realtime::outbox::{OutboxEvent, APP_QUEUE, ROOM};
use stratasync_core::realtime::session::{
    self, parse_client_frame, ClientFrame, Close, LiveFeed, SubscribeRequest, Subscribed,
};
use stratasync_core::realtime::{
    wire, Outbox, SocketContext, SocketHooks, SocketLimits, SocketSender, SocketSlot, SubscribeRefusal, UserSockets,
};
use stratasync_core::SyncEngine;

/// Frames queued on the socket above which the socket's task stops reading
/// client frames (each may queue an answer) until the socket takes some.
/// Above the replay's [`ROOM`], so a stalled replay does not stop them,
/// and above what the application's hooks may queue.
const READ_LIMIT: usize = ROOM + APP_QUEUE;
/// The `Retry-After` of an upgrade refused for the user's open sockets, in
/// seconds.
pub(crate) const SOCKET_LIMIT_RETRY_AFTER_SECS: u32 = 5;

/// Settings of the WebSocket endpoint.
#[derive(Clone)]
pub(crate) struct WsState {
    pub(crate) engine: SyncEngine,
    pub(crate) hooks: Arc<dyn SocketHooks>,
    pub(crate) heartbeat: Duration,
    pub(crate) limits: SocketLimits,
    /// Open sockets per user (shared by every worker).
    pub(crate) sockets: UserSockets,
    /// Set when the application shuts down: every socket closes with 1001.
    pub(crate) going_away: tokio::sync::watch::Receiver<bool>,
}

/// The upgrade: checks `token` (no group lookup) and the user's open
/// sockets, then hands the socket to its task.
pub(crate) async fn upgrade(
    state: Arc<WsState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let token = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Ok(error::json(StatusCode::UNAUTHORIZED, &json!({"error": "Token required"})));
    };
    let Ok(user) = state.engine.verify_token(&token).await else {
        return Ok(error::json(StatusCode::UNAUTHORIZED, &json!({"error": "Invalid token"})));
    };
    let Some(slot) = state.sockets.open(&user.user_id) else {
        tracing::info!(user = %clip(&user.user_id), "WebSocket refused: too many open sockets");
        let mut response = error::json(StatusCode::TOO_MANY_REQUESTS, &json!({"error": "Too many open sockets"}));
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(SOCKET_LIMIT_RETRY_AFTER_SECS));
        return Ok(response);
    };
    let mut response = actix_http::ws::handshake(req.head())?;
    let outbox = state.engine.hub().outbox();
    let response = response.message_body(MessageBody::boxed(OutboxBody(outbox.clone())))?;
    let incoming = Incoming::new(body.into_inner(), state.limits.max_message_bytes);
    actix_web::rt::spawn(run(state, outbox, incoming, slot));
    Ok(response.into())
}

fn anonymous(conn_id: &str, sender: &SocketSender) -> SocketContext {
    SocketContext {
        conn_id: conn_id.to_owned(),
        user_id: format!("anonymous-{conn_id}"),
        groups: Vec::new(),
        sender: sender.clone(),
    }
}

fn close_reason(close: Close) -> CloseReason {
    CloseReason { code: CloseCode::Other(close.code), description: Some(close.reason.to_owned()) }
}

fn text_frame(text: String) -> bytes::Bytes {
    wire::text(text.as_bytes())
}

fn refusal_frame(refusal: SubscribeRefusal) -> bytes::Bytes {
    text_frame(error_frame(None, &refusal.to_string()))
}

/// The socket's task; `_slot` counts the socket as its user's until the
/// task ends.
async fn run(state: Arc<WsState>, outbox: Outbox, mut incoming: Incoming, _slot: SocketSlot) {
    let conn_id = uuid::Uuid::new_v4().to_string();
    let sender = SocketSender::new(outbox.clone());
    let mut ctx = anonymous(&conn_id, &sender);
    // What this loop sends (answers, pongs, pings) is queued on the outbox
    // at once; it stops reading client frames only when the socket has
    // READ_LIMIT frames queued. It never awaits a congested socket, so it
    // keeps reading client frames (app messages during a stalled replay,
    // §10 #18) and keeps its heartbeat (a client that stops reading is
    // closed); live frames pile up in the outbox until the feed overflows
    // it (`Close::SLOW`).
    let mut live: Option<LiveFeed> = None;
    let mut subscribing: Option<LocalBoxFuture<'static, Subscribed>> = None;
    // Subscribes waiting behind the one in progress, and their
    // `retained_bytes`.
    let mut pending: VecDeque<SubscribeRequest> = VecDeque::new();
    let mut pending_bytes = 0;
    let limits = &state.limits;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + state.heartbeat, state.heartbeat);
    let mut alive = true;
    let mut going_away = state.going_away.clone();

    // The close to send, and whether to drop the frames still queued (a
    // socket that takes nothing gets its close frame sooner).
    let close: Option<(CloseReason, bool)> = loop {
        // Frames of the previous subscription are queued before the new
        // one's replay, so it never overtakes them.
        if subscribing.is_none() {
            if let Some(request) = pending.pop_front() {
                pending_bytes -= request.retained_bytes();
                subscribing = Some(start_subscribe(&state, &mut ctx, &conn_id, &sender, &outbox, request).await);
            }
        }
        let room = outbox.has_room(READ_LIMIT);
        tokio::select! {
            message = incoming.recv(), if room => {
                let text = match message {
                    None => break None,
                    Some(Err(close)) => break Some((close, false)),
                    Some(Ok(Received::Text(text))) => text,
                    Some(Ok(Received::Ping(p))) => {
                        let _ = outbox.push(wire::pong(&p));
                        continue;
                    }
                    Some(Ok(Received::Pong)) => {
                        alive = true;
                        continue;
                    }
                    // RFC 6455 §5.5.1: answer a close with a close, echoing its code.
                    Some(Ok(Received::Close(reason))) => {
                        break Some((reason.unwrap_or(CloseReason { code: CloseCode::Normal, description: None }), false))
                    }
                };
                match parse_client_frame(&text, limits) {
                    ClientFrame::Subscribe(request) => {
                        let size = request.retained_bytes();
                        // One that starts at once does not wait.
                        let waits = subscribing.is_some() || !pending.is_empty();
                        if !waits
                            || (pending.len() < limits.max_pending_subscribes
                                && pending_bytes + size <= limits.max_pending_subscribe_bytes)
                        {
                            // Step 1 of §7.3: leave the feed at once.
                            if subscribing.is_none() {
                                live = None;
                            }
                            pending_bytes += size;
                            pending.push_back(request);
                        } else {
                            let _ = outbox.push(refusal_frame(SubscribeRefusal::TooManyPending));
                        }
                    }
                    ClientFrame::RefusedSubscribe(refusal) => {
                        let _ = outbox.push(refusal_frame(refusal));
                    }
                    ClientFrame::InvalidSubscribe => {
                        let _ = outbox.push(text_frame(error_frame(None, "Authentication required")));
                    }
                    ClientFrame::App(message) => {
                        if live.is_some() || subscribing.is_some() {
                            state.hooks.on_message(&ctx, &message).await;
                        }
                    }
                    ClientFrame::Ignored => {}
                }
            }
            outcome = async { subscribing.as_mut().expect("guarded").await }, if subscribing.is_some() => {
                subscribing = None;
                match outcome {
                    Subscribed::Live(feed) => {
                        ctx.user_id = feed.identity.user_id.clone();
                        ctx.groups = feed.identity.groups.clone();
                        // A subscribe waiting behind this one resets it again.
                        if pending.is_empty() {
                            live = Some(feed);
                        }
                    }
                    Subscribed::Refused => {}
                    Subscribed::Close(close) => break Some((close_reason(close), false)),
                }
            }
            event = outbox.event() => match event {
                OutboxEvent::Overflow => break Some((close_reason(Close::SLOW), true)),
                OutboxEvent::Gone => break None,
            },
            () = outbox.room(READ_LIMIT), if !room => {}
            _ = going_away.wait_for(|away| *away) => {
                let away = CloseReason { code: CloseCode::Away, description: Some("Server shutting down".to_owned()) };
                break Some((away, false));
            }
            _ = heartbeat.tick() => {
                if !alive {
                    break Some((close_reason(Close::HEARTBEAT), true));
                }
                alive = false;
                let _ = outbox.push(wire::ping(&[]));
            }
        }
    };
    drop(live);
    drop(subscribing);
    match close {
        Some((reason, unread)) => {
            tracing::debug!(conn_id, code = ?reason.code, "closing socket");
            let description = reason.description.as_deref().unwrap_or("");
            outbox.close(wire::close(Some(u16::from(reason.code)), description), unread);
        }
        None => outbox.finish(),
    }
    state.hooks.on_close(&ctx).await;
}

/// Resets the socket's context, runs the `onSubscribe` hook, and starts the
/// subscribe (auth, stale check, replay, flush, `subscribed`).
async fn start_subscribe(
    state: &Arc<WsState>,
    ctx: &mut SocketContext,
    conn_id: &str,
    sender: &SocketSender,
    outbox: &Outbox,
    request: SubscribeRequest,
) -> LocalBoxFuture<'static, Subscribed> {
    let previous = std::mem::replace(ctx, anonymous(conn_id, sender));
    let out = outbox.clone();
    if let Err(e) = state.hooks.on_subscribe(ctx, &previous).await {
        tracing::warn!(error = %clip(&e), "onSubscribe hook failed");
        return async move {
            let _ = out.send(text_frame(error_frame(None, "Subscribe failed"))).await;
            Subscribed::Refused
        }
        .boxed_local();
    }
    let engine = state.engine.clone();
    async move { session::subscribe(&engine, request, &out).await }.boxed_local()
}
