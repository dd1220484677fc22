//! `GET /sync/ws`: live deltas over a WebSocket (PROTOCOL.md §7).
//!
//! One task per socket multiplexes, without blocking one on another:
//! incoming frames, the subscribe in progress (replay runs concurrently, so
//! application messages are handled during a long replay), live frames of
//! the subscribed feed, frames the application's hooks send, and the
//! heartbeat. Subscribes are answered one at a time, in order; each gets a
//! `subscribed` or an error frame.

use crate::error;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, ProtocolError};
use bytes::Bytes;
use bytestring::ByteString;
use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, Sink};
use serde_json::json;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;
use stratasync_core::realtime::frame::error_frame;
use stratasync_core::realtime::session::{
    self, parse_client_frame, ClientFrame, Close, LiveEvent, LiveFeed, Outbound, SocketGone, SubscribeRequest,
    Subscribed,
};
use stratasync_core::realtime::{SocketContext, SocketHooks, SocketSender};
use stratasync_core::SyncEngine;

/// Largest accepted frame (and aggregated message).
const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Subscribes waiting behind the one in progress; more are refused with an
/// error frame (each still gets an answer).
const MAX_PENDING_SUBSCRIBES: usize = 16;
/// Frames the application's hooks may have queued for one socket.
const APP_QUEUE: usize = 256;
/// Frames the socket loop holds for a socket that is not taking them; when
/// full, the loop stops reading client frames, live frames and app frames
/// until the socket takes some (the heartbeat still runs).
const OUT_QUEUE: usize = 16;
/// How long the close frame may wait for a congested socket.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Settings of the WebSocket endpoint.
#[derive(Clone)]
pub(crate) struct WsState {
    pub(crate) engine: SyncEngine,
    pub(crate) hooks: Arc<dyn SocketHooks>,
    pub(crate) heartbeat: Duration,
    /// Set when the application shuts down: every socket closes with 1001.
    pub(crate) going_away: tokio::sync::watch::Receiver<bool>,
}

/// The upgrade: checks `token` (no group lookup), then hands the socket to
/// its task.
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
    if state.engine.verify_token(&token).await.is_err() {
        return Ok(error::json(StatusCode::UNAUTHORIZED, &json!({"error": "Invalid token"})));
    }
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream =
        stream.max_frame_size(MAX_FRAME_BYTES).aggregate_continuations().max_continuation_size(MAX_FRAME_BYTES);
    actix_web::rt::spawn(run(state, session, stream));
    Ok(response)
}

/// The transport side of [`Outbound`].
struct Out(actix_ws::Session);

impl Outbound for Out {
    async fn send(&mut self, text: Bytes) -> Result<(), SocketGone> {
        let text = bytestring::ByteString::try_from(text).map_err(|_| SocketGone)?;
        self.0.text(text).await.map_err(|_| SocketGone)
    }
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

fn protocol_close(err: &ProtocolError) -> CloseReason {
    let code = match err {
        ProtocolError::Overflow => CloseCode::Size,
        // actix-ws reports a text message that is not UTF-8 as `InvalidData`.
        ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => CloseCode::Invalid,
        // … and continuations over `max_continuation_size` by this message.
        ProtocolError::Io(e) if e.to_string().contains("maximum continuation size") => CloseCode::Size,
        _ => CloseCode::Protocol,
    };
    CloseReason { code, description: None }
}

async fn run(state: Arc<WsState>, session: actix_ws::Session, mut stream: actix_ws::AggregatedMessageStream) {
    let conn_id = uuid::Uuid::new_v4().to_string();
    let (sender, mut app_frames) = SocketSender::channel(APP_QUEUE);
    let mut ctx = anonymous(&conn_id, &sender);
    let mut out = session.clone();
    // What this loop sends (answers, app frames, live frames, pings) waits
    // here until the socket takes it: the loop never awaits a congested
    // socket, so it keeps reading client frames (app messages during a
    // stalled replay, §10 #18), keeps its heartbeat (a client that stops
    // reading is closed), and stops pulling live frames, which then pile
    // up in the feed until it overflows (`Close::SLOW`).
    let mut queue: VecDeque<Message> = VecDeque::new();
    let mut live: Option<LiveFeed> = None;
    let mut subscribing: Option<LocalBoxFuture<'static, Subscribed>> = None;
    let mut pending: VecDeque<SubscribeRequest> = VecDeque::new();
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + state.heartbeat, state.heartbeat);
    let mut alive = true;
    let mut going_away = state.going_away.clone();

    let close: Option<CloseReason> = loop {
        // A subscribe starts once everything queued before it is out, so
        // its replay never overtakes frames of the previous subscription.
        if subscribing.is_none() && queue.is_empty() {
            if let Some(request) = pending.pop_front() {
                subscribing = Some(start_subscribe(&state, &mut ctx, &conn_id, &sender, &session, request).await);
            }
        }
        let room = queue.len() < OUT_QUEUE;
        tokio::select! {
            message = stream.recv(), if room => {
                let text = match message {
                    None => break None,
                    Some(Err(e)) => break Some(protocol_close(&e)),
                    Some(Ok(actix_ws::AggregatedMessage::Text(text))) => text.to_string(),
                    Some(Ok(actix_ws::AggregatedMessage::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => text,
                        Err(_) => break Some(CloseReason { code: CloseCode::Invalid, description: None }),
                    },
                    Some(Ok(actix_ws::AggregatedMessage::Ping(p))) => {
                        queue.push_back(Message::Pong(p));
                        continue;
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => {
                        alive = true;
                        continue;
                    }
                    // RFC 6455 §5.5.1: answer a close with a close, echoing its code.
                    Some(Ok(actix_ws::AggregatedMessage::Close(reason))) => {
                        break Some(reason.unwrap_or(CloseReason { code: CloseCode::Normal, description: None }))
                    }
                };
                match parse_client_frame(&text) {
                    ClientFrame::Subscribe(request) => {
                        if pending.len() < MAX_PENDING_SUBSCRIBES {
                            // Step 1 of §7.3: leave the feed at once.
                            if subscribing.is_none() {
                                live = None;
                            }
                            pending.push_back(request);
                        } else {
                            queue.push_back(text_message(error_frame(None, "Too many pending subscribes")));
                        }
                    }
                    ClientFrame::InvalidSubscribe => {
                        queue.push_back(text_message(error_frame(None, "Authentication required")));
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
                    Subscribed::Close(close) => break Some(close_reason(close)),
                }
            }
            // Without room, only watch for the overflow of the feed's inbox.
            event = async {
                let feed = live.as_mut().expect("guarded");
                if room {
                    feed.next().await
                } else {
                    feed.overflowed().await;
                    LiveEvent::Overflow
                }
            }, if live.is_some() => match event {
                LiveEvent::Frame(bytes) => match ByteString::try_from(bytes) {
                    Ok(text) => queue.push_back(Message::Text(text)),
                    Err(_) => tracing::error!(conn_id, "dropping a delta frame that is not UTF-8"),
                },
                LiveEvent::Overflow => break Some(close_reason(Close::SLOW)),
            },
            Some(text) = app_frames.recv(), if room => queue.push_back(text_message(text)),
            ready = poll_fn(|cx| std::pin::Pin::new(&mut out).poll_ready(cx)), if !queue.is_empty() => {
                let sent = ready.and_then(|()| std::pin::Pin::new(&mut out).start_send(queue.pop_front().expect("guarded")));
                if sent.is_err() {
                    break None;
                }
            }
            _ = going_away.wait_for(|away| *away) => {
                break Some(CloseReason { code: CloseCode::Away, description: Some("Server shutting down".to_owned()) });
            }
            _ = heartbeat.tick() => {
                if !alive {
                    break Some(close_reason(Close::HEARTBEAT));
                }
                alive = false;
                queue.push_back(Message::Ping(Bytes::new()));
            }
        }
    };
    drop(live);
    drop(subscribing);
    if let Some(reason) = close {
        tracing::debug!(conn_id, code = ?reason.code, "closing socket");
        // A socket that takes nothing more does not get its close frame.
        let _ = tokio::time::timeout(CLOSE_WAIT, session.close(Some(reason))).await;
    }
    state.hooks.on_close(&ctx).await;
}

fn text_message(text: String) -> Message {
    Message::Text(ByteString::from(text))
}

/// Resets the socket's context, runs the `onSubscribe` hook, and starts the
/// subscribe (auth, stale check, replay, flush, `subscribed`).
async fn start_subscribe(
    state: &Arc<WsState>,
    ctx: &mut SocketContext,
    conn_id: &str,
    sender: &SocketSender,
    session: &actix_ws::Session,
    request: SubscribeRequest,
) -> LocalBoxFuture<'static, Subscribed> {
    let previous = std::mem::replace(ctx, anonymous(conn_id, sender));
    let mut out = Out(session.clone());
    if let Err(e) = state.hooks.on_subscribe(ctx, &previous).await {
        tracing::warn!(error = %e, "onSubscribe hook failed");
        return async move {
            let _ = out.send(Bytes::from(error_frame(None, "Subscribe failed"))).await;
            Subscribed::Refused
        }
        .boxed_local();
    }
    let engine = state.engine.clone();
    async move { session::subscribe(&engine, request, &mut out).await }.boxed_local()
}
