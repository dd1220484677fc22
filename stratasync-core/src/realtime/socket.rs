//! The driver of one WebSocket session: it feeds the session's
//! [`Machine`] with what happens (client events from the transport,
//! heartbeat ticks, the end of a subscribe, a socket too slow for its live
//! frames, the application shutting down) and carries out its answers.
//!
//! Every message for a socket goes to its [`Outbox`], which the
//! transport's writer drains ([`SocketFrames`]): live deltas straight from
//! the node's feed (serialized once for every socket, gated per session),
//! everything else from the driver. The driver multiplexes, without
//! blocking one on another: client events, the subscribe in progress
//! (its replay runs concurrently, so application messages are handled
//! during a long replay), the outbox's events and the heartbeat.
//! Subscribes are answered one at a time, in order; each gets a
//! `subscribed` or an error message.
//!
//! What a client may make the socket hold is bounded ([`SocketLimits`]):
//! its messages, its subscribes, the subscribes waiting behind the one in
//! progress (in number and bytes), and its user's open sockets (checked at
//! the upgrade). What the server queues for it is bounded in bytes by its
//! [`Outbox`].

use super::backend::SessionBackend;
use super::frame::error_frame;
use super::hooks::{SocketContext, SocketHooks, SocketSender};
use super::inbound::Inbound;
use super::limits::SocketLimits;
use super::machine::{Machine, Step};
use super::outbox::{Outbox, OutboxEvent, APP_QUEUE, ROOM};
use super::outgoing::{CloseFrame, FrameEncoder, Outgoing, SocketFrames};
use super::session::{self, LiveFeed, SubscribeRequest, Subscribed};
use super::token_watch::TokenWatch;
use super::user_sockets::SocketSlot;
use crate::log_text::clip;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, Stream, StreamExt};
use std::sync::Arc;
use std::time::Duration;

/// Messages queued on the socket above which the driver stops reading
/// client events (each may queue an answer) until the socket takes some.
/// Above the replay's [`ROOM`], so a stalled replay does not stop them,
/// and above what the application's hooks may queue.
const READ_LIMIT: usize = ROOM + APP_QUEUE;

/// What every session of one endpoint shares.
#[derive(Clone)]
pub(crate) struct SocketSettings {
    pub(crate) engine: SessionBackend,
    pub(crate) hooks: Arc<dyn SocketHooks>,
    pub(crate) heartbeat: Duration,
    /// How often a live socket's token is verified again (`None`: never).
    pub(crate) token_recheck: Option<Duration>,
    pub(crate) limits: SocketLimits,
    /// Set when the application shuts down: every socket closes with 1001.
    pub(crate) going_away: tokio::sync::watch::Receiver<bool>,
}

/// An upgraded WebSocket, admitted by the endpoint: the transport takes
/// its frames with [`SocketSession::frames`], completes the handshake, and
/// runs [`SocketSession::run`] with the client's events until it returns.
#[must_use = "a socket session does nothing until it runs"]
pub struct SocketSession {
    settings: SocketSettings,
    outbox: Outbox,
    /// Counts the socket as its user's until the session ends.
    slot: SocketSlot,
}

impl std::fmt::Debug for SocketSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSession").field("outbox", &self.outbox).finish_non_exhaustive()
    }
}

impl SocketSession {
    pub(crate) fn new(settings: SocketSettings, slot: SocketSlot) -> Self {
        let outbox = settings.engine.hub().outbox();
        SocketSession { settings, outbox, slot }
    }

    /// The largest client message the transport must accept (larger ones
    /// are passed on as [`Inbound::TooLarge`]).
    pub fn max_message_bytes(&self) -> usize {
        self.settings.limits.max_message_bytes
    }

    /// The frames to write to the client, made by `encoder`. Take them
    /// once, before [`SocketSession::run`]; dropping the stream tells the
    /// session the connection is gone.
    pub fn frames<E: FrameEncoder>(&self, encoder: E) -> SocketFrames<E> {
        SocketFrames::new(self.outbox.clone(), encoder)
    }

    /// Runs the session over the client's events until it ends (the
    /// client closed or went away, or the session closed the socket),
    /// then runs the `on_close` hook.
    pub async fn run<S: Stream<Item = Inbound> + Unpin>(self, inbound: S) {
        let SocketSession { settings, outbox, slot } = self;
        let conn_id = uuid::Uuid::new_v4().to_string();
        let sender = SocketSender::new(outbox.clone());
        let mut driver = Driver {
            ctx: anonymous(&conn_id, &sender),
            conn_id,
            sender,
            outbox,
            machine: Machine::new(settings.limits.clone()),
            settings,
        };
        let ctx = driver.drive(inbound).await;
        driver.settings.hooks.on_close(&ctx).await;
        drop(slot);
    }
}

struct Driver {
    settings: SocketSettings,
    conn_id: String,
    sender: SocketSender,
    outbox: Outbox,
    machine: Machine,
    ctx: SocketContext,
}

fn anonymous(conn_id: &str, sender: &SocketSender) -> SocketContext {
    SocketContext {
        conn_id: conn_id.to_owned(),
        user_id: format!("anonymous-{conn_id}"),
        groups: Vec::new(),
        sender: sender.clone(),
    }
}

impl Driver {
    /// The event loop; returns the socket's last context.
    ///
    /// What it sends (answers, pongs, pings) is queued on the outbox at
    /// once; it stops reading client events only when the socket has
    /// [`READ_LIMIT`] messages queued. It never awaits a congested socket,
    /// so it keeps reading client events (app messages during a stalled
    /// replay, §10 #18) and keeps its heartbeat (a client that stops
    /// reading is closed); live frames pile up in the outbox until the
    /// feed overflows it (4008).
    async fn drive<S: Stream<Item = Inbound> + Unpin>(&mut self, mut inbound: S) -> SocketContext {
        let mut live: Option<LiveFeed> = None;
        let mut subscribing: Option<BoxFuture<'static, Subscribed>> = None;
        let every = self.settings.heartbeat;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut going_away = self.settings.going_away.clone();
        let mut token = TokenWatch::new(self.settings.token_recheck);
        let outbox = self.outbox.clone();
        let close = loop {
            if subscribing.is_none() {
                if let Some(request) = self.machine.next_subscribe() {
                    live = None;
                    token.stop();
                    subscribing = Some(self.start_subscribe(request).await);
                }
            }
            let room = outbox.has_room(READ_LIMIT);
            let step = tokio::select! {
                event = inbound.next(), if room => self.machine.inbound(event),
                outcome = async { subscribing.as_mut().expect("guarded").await }, if subscribing.is_some() => {
                    subscribing = None;
                    match outcome {
                        Subscribed::Live(feed) => {
                            self.ctx.user_id = feed.identity.user_id.clone();
                            self.ctx.groups = feed.identity.groups.clone();
                            if self.machine.subscribed(true) {
                                token.watch(&feed.identity);
                                live = Some(feed);
                            }
                            Step::Continue
                        }
                        Subscribed::Refused => {
                            self.machine.subscribed(false);
                            Step::Continue
                        }
                        Subscribed::Close(close) => Step::Close(CloseFrame::new(close.code, close.reason), false),
                    }
                }
                event = outbox.event() => match event {
                    OutboxEvent::Overflow => self.machine.overflowed(),
                    OutboxEvent::Gone => Step::End,
                },
                () = outbox.room(READ_LIMIT), if !room => Step::Continue,
                _ = going_away.wait_for(|away| *away) => self.machine.going_away(),
                _ = heartbeat.tick() => self.machine.tick(),
                ended = token.ended(&self.settings.engine), if token.is_watching() => self.machine.token_ended(ended),
            };
            match step {
                Step::Continue => {}
                Step::Send(message) => {
                    let _ = outbox.push(message);
                }
                Step::LeaveFeed => {
                    live = None;
                    token.stop();
                }
                Step::App(message) => {
                    self.settings.hooks.on_message(&self.ctx, &message).await;
                }
                Step::Close(close, drop_queued) => break Some((close, drop_queued)),
                Step::End => break None,
            }
        };
        drop(live);
        drop(subscribing);
        match close {
            Some((close, drop_queued)) => {
                tracing::debug!(conn_id = %self.conn_id, code = close.code, "closing socket");
                outbox.close(Outgoing::close(close), drop_queued);
            }
            None => outbox.finish(),
        }
        self.ctx.clone()
    }

    /// Resets the socket's context, runs the `onSubscribe` hook, and starts
    /// the subscribe (auth, stale check, replay, flush, `subscribed`).
    async fn start_subscribe(&mut self, request: SubscribeRequest) -> BoxFuture<'static, Subscribed> {
        let previous = std::mem::replace(&mut self.ctx, anonymous(&self.conn_id, &self.sender));
        let out = self.outbox.clone();
        if let Err(e) = self.settings.hooks.on_subscribe(&self.ctx, &previous).await {
            tracing::warn!(error = %clip(&e), "onSubscribe hook failed");
            return async move {
                let _ = out.send(Outgoing::text(error_frame(None, "Subscribe failed"))).await;
                Subscribed::Refused
            }
            .boxed();
        }
        let engine = self.settings.engine.clone();
        async move { session::subscribe(&engine, request, &out).await }.boxed()
    }
}
