//! The protocol state of one WebSocket session (docs/protocol.md §7), without
//! I/O: fed with what happened (a client event, a heartbeat tick, the end
//! of a subscribe), it answers what to do next (a message to send, a close
//! to send, a message for the application's hooks). The driver
//! ([`super::socket`]) runs the timers, the subscribes and the hooks.

use super::frame::error_frame;
use super::inbound::Inbound;
use super::limits::{SocketLimits, SubscribeRefusal};
use super::outgoing::{CloseFrame, Outgoing};
use super::session::{parse_client_frame, ClientFrame, Close, SubscribeRequest};
use serde_json::Value;
use std::collections::VecDeque;

/// RFC 6455 close codes the session sends for transport-level reasons.
const NORMAL: u16 = 1000;
const GOING_AWAY: u16 = 1001;
const PROTOCOL_ERROR: u16 = 1002;
const INVALID_PAYLOAD: u16 = 1007;
const TOO_BIG: u16 = 1009;

/// What the driver must do after an event.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing.
    Continue,
    /// Queue this message now.
    Send(Outgoing),
    /// Leave the live feed (a new subscribe starts).
    LeaveFeed,
    /// Run the application's `on_message` hook with this message.
    App(Value),
    /// Send this close frame (dropping what is still queued when the flag
    /// is set: a socket that takes nothing gets its close sooner) and end.
    Close(CloseFrame, bool),
    /// The connection ended: end without a close frame.
    End,
}

impl Step {
    fn close(close: Close, drop_queued: bool) -> Step {
        Step::Close(CloseFrame::new(close.code, close.reason), drop_queued)
    }
}

/// One socket's protocol state.
#[derive(Debug)]
pub(crate) struct Machine {
    limits: SocketLimits,
    /// Subscribes waiting behind the one in progress, and their
    /// `retained_bytes`.
    pending: VecDeque<SubscribeRequest>,
    pending_bytes: usize,
    /// A subscribe is in progress.
    subscribing: bool,
    /// The socket is on the live feed.
    live: bool,
    /// The client answered the last ping.
    alive: bool,
}

impl Machine {
    pub(crate) fn new(limits: SocketLimits) -> Self {
        Machine { limits, pending: VecDeque::new(), pending_bytes: 0, subscribing: false, live: false, alive: true }
    }

    /// The subscribe to start now, if none is in progress. Frames of the
    /// previous subscription are queued before the new one's replay, so
    /// it never overtakes them.
    pub(crate) fn next_subscribe(&mut self) -> Option<SubscribeRequest> {
        if self.subscribing {
            return None;
        }
        let request = self.pending.pop_front()?;
        self.pending_bytes -= request.retained_bytes();
        self.subscribing = true;
        self.live = false;
        Some(request)
    }

    /// A subscribe ended; `live` when it went live. Returns whether to keep
    /// its feed: a subscribe waiting behind it resets the socket again.
    pub(crate) fn subscribed(&mut self, live: bool) -> bool {
        self.subscribing = false;
        self.live = live && self.pending.is_empty();
        self.live
    }

    /// A heartbeat tick: a ping, or a close when the last one went
    /// unanswered.
    pub(crate) fn tick(&mut self) -> Step {
        if !self.alive {
            return Step::close(Close::HEARTBEAT, true);
        }
        self.alive = false;
        Step::Send(Outgoing::ping())
    }

    /// The live feed queued more than the socket takes.
    pub(crate) fn overflowed(&self) -> Step {
        Step::close(Close::SLOW, true)
    }

    /// The socket's token expired or was refused on a re-check: nothing
    /// more may reach it.
    pub(crate) fn token_ended(&self, close: Close) -> Step {
        Step::close(close, true)
    }

    /// The application shuts down: clients reconnect elsewhere at once.
    pub(crate) fn going_away(&self) -> Step {
        Step::Close(CloseFrame::new(GOING_AWAY, "Server shutting down"), false)
    }

    /// A client event.
    pub(crate) fn inbound(&mut self, event: Option<Inbound>) -> Step {
        let bytes = match event {
            None => return Step::End,
            Some(Inbound::Message(bytes)) => bytes,
            Some(Inbound::Ping(payload)) => return Step::Send(Outgoing::pong(payload)),
            Some(Inbound::Pong) => {
                self.alive = true;
                return Step::Continue;
            }
            // RFC 6455 §5.5.1: answer a close with a close, echoing its code.
            Some(Inbound::Close(Some((code, reason)))) => return Step::Close(CloseFrame::new(code, &reason), false),
            Some(Inbound::Close(None)) => return Step::Close(CloseFrame::new(NORMAL, ""), false),
            Some(Inbound::TooLarge) => return Step::Close(CloseFrame::new(TOO_BIG, ""), false),
            Some(Inbound::InvalidText) => return Step::Close(CloseFrame::new(INVALID_PAYLOAD, ""), false),
            Some(Inbound::Malformed) => return Step::Close(CloseFrame::new(PROTOCOL_ERROR, ""), false),
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Step::Close(CloseFrame::new(INVALID_PAYLOAD, ""), false);
        };
        match parse_client_frame(text, &self.limits) {
            ClientFrame::Subscribe(request) => self.subscribe(request),
            ClientFrame::RefusedSubscribe(refusal) => refused(refusal),
            ClientFrame::InvalidSubscribe => Step::Send(Outgoing::text(error_frame(None, "Authentication required"))),
            ClientFrame::App(message) if self.live || self.subscribing => Step::App(message),
            ClientFrame::App(_) | ClientFrame::Ignored => Step::Continue,
        }
    }

    fn subscribe(&mut self, request: SubscribeRequest) -> Step {
        let size = request.retained_bytes();
        // One that starts at once does not wait.
        let waits = self.subscribing || !self.pending.is_empty();
        if waits
            && (self.pending.len() >= self.limits.max_pending_subscribes
                || self.pending_bytes + size > self.limits.max_pending_subscribe_bytes)
        {
            return refused(SubscribeRefusal::TooManyPending);
        }
        self.pending_bytes += size;
        self.pending.push_back(request);
        // Step 1 of §7.3: leave the feed at once.
        if self.subscribing {
            Step::Continue
        } else {
            self.live = false;
            Step::LeaveFeed
        }
    }
}

fn refused(refusal: SubscribeRefusal) -> Step {
    Step::Send(Outgoing::text(error_frame(None, &refusal.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn text(s: &str) -> Option<Inbound> {
        Some(Inbound::Message(Bytes::copy_from_slice(s.as_bytes())))
    }

    fn close_of(step: Step) -> (u16, String, bool) {
        match step {
            Step::Close(close, drop_queued) => (close.code, close.reason, drop_queued),
            other => panic!("expected a close, got {other:?}"),
        }
    }

    #[test]
    fn heartbeat_closes_a_silent_client() {
        let mut m = Machine::new(SocketLimits::default());
        assert!(matches!(m.tick(), Step::Send(_)));
        assert!(matches!(m.inbound(Some(Inbound::Pong)), Step::Continue));
        assert!(matches!(m.tick(), Step::Send(_)));
        assert_eq!(close_of(m.tick()), (1011, "Heartbeat timeout".into(), true));
    }

    #[test]
    fn transport_violations_close_with_their_codes() {
        let mut m = Machine::new(SocketLimits::default());
        assert_eq!(close_of(m.inbound(Some(Inbound::TooLarge))).0, 1009);
        assert_eq!(close_of(m.inbound(Some(Inbound::Malformed))).0, 1002);
        assert_eq!(close_of(m.inbound(Some(Inbound::Message(Bytes::from_static(b"\xff"))))).0, 1007);
        assert_eq!(close_of(m.inbound(Some(Inbound::Close(Some((4000, "bye".into())))))), (4000, "bye".into(), false));
        assert_eq!(close_of(m.inbound(Some(Inbound::Close(None)))).0, 1000);
        assert!(matches!(m.inbound(None), Step::End));
    }

    #[test]
    fn subscribes_queue_behind_the_one_in_progress() {
        let limits = SocketLimits { max_pending_subscribes: 1, ..SocketLimits::default() };
        let mut m = Machine::new(limits);
        let sub = r#"{"type":"subscribe","token":"t"}"#;
        // Not subscribed: application messages are dropped.
        assert!(matches!(m.inbound(text(r#"{"type":"x"}"#)), Step::Continue));
        assert!(matches!(m.inbound(text(sub)), Step::LeaveFeed));
        assert!(m.next_subscribe().is_some());
        assert!(m.next_subscribe().is_none(), "one at a time");
        assert!(matches!(m.inbound(text(r#"{"type":"x"}"#)), Step::App(_)));
        assert!(matches!(m.inbound(text(sub)), Step::Continue));
        match m.inbound(text(sub)) {
            Step::Send(out) => {
                assert_eq!(out.len(), r#"{"message":"Too many pending subscribes","type":"error"}"#.len())
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(!m.subscribed(true), "a waiting subscribe resets the socket again");
        assert!(m.next_subscribe().is_some());
        assert!(m.subscribed(true));
        assert!(matches!(m.inbound(text("[1]")), Step::App(_)));
        assert!(matches!(m.inbound(text("42")), Step::Continue));
        match m.inbound(text(r#"{"type":"subscribe"}"#)) {
            Step::Send(out) => assert_eq!(out.len(), r#"{"message":"Authentication required","type":"error"}"#.len()),
            other => panic!("expected an error frame, got {other:?}"),
        }
    }
}
