//! A socket's outgoing queue of WebSocket frames, shared by everything that
//! writes to the socket and drained by the transport's writer.
//!
//! Live deltas skip the socket's own task: the node's feed
//! ([`super::Hub`]) gates each delta by the session's cursor and queues its
//! frame (encoded once for all sockets) right here, and the transport's
//! writer takes it from the queue. A delivery thus costs one lock and at
//! most one wake-up of the writer, which then takes every queued frame at
//! once.
//!
//! The queue also holds the live gate of the socket's subscription: while
//! a subscribe replays the log, live frames wait in a buffer; once it is
//! done the buffer is flushed (dropping what the replay already sent) and
//! later frames go straight to the queue.
//!
//! Both are bounded in bytes, not frames ([`Outbox::new`]): a live frame
//! (or an application frame) that would take the queue past the bound
//! overflows the session instead (the socket is then closed with 4008), and
//! so does a live frame that would take the replay-time buffer past it.
//! Each frame counts its length plus [`FRAME_OVERHEAD`], so many tiny
//! frames are bounded too and no separate frame count is needed. The
//! socket's own writers (answers, replay, pings) are paced by frame count
//! instead ([`ROOM`]), and are never refused.

use super::frame::DeltaFrame;
use super::outgoing::{Message, Outgoing};
use crate::protocol::SyncId;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Frames the socket's own writers (answers, replay, pings) may queue
/// before they wait for the transport to take some.
pub(crate) const ROOM: usize = 16;

/// Frames the application's hooks may queue beyond [`ROOM`] (see
/// [`super::SocketSender`]).
pub(crate) const APP_QUEUE: usize = 256;

/// Bytes a queued or buffered frame costs beyond its length (its slot in
/// the queue and its share of the frame's allocation).
pub(crate) const FRAME_OVERHEAD: usize = 64;

/// What `frame` costs against the byte bound.
fn cost(frame: &Outgoing) -> usize {
    frame.len() + FRAME_OVERHEAD
}

/// A socket's outgoing frames; cheap to clone (clones share the queue).
#[derive(Clone)]
pub(crate) struct Outbox {
    shared: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Outbox")
            .field("queued", &state.queue.len())
            .field("queued_bytes", &state.queued_bytes)
            .field("limit_bytes", &state.limit_bytes)
            .field("finished", &state.finished)
            .finish()
    }
}

struct State {
    queue: VecDeque<Outgoing>,
    /// What the frames in `queue` cost ([`cost`]).
    queued_bytes: usize,
    /// The bound on live and application frames, and on the replay-time
    /// buffer.
    limit_bytes: usize,
    /// The transport's writer, waiting for frames.
    reader: Option<Waker>,
    /// The socket's task, waiting for room or for an event.
    writer: Option<Waker>,
    /// Wake `writer` once fewer frames than this are queued (0: only on
    /// events).
    wake_below: usize,
    /// The close frame is queued (or the socket's task ended): nothing more.
    finished: bool,
    /// The transport's writer is gone.
    gone: bool,
    /// The subscription whose live frames this socket takes, and its gate.
    feed: Option<(u64, Feed)>,
    /// The code of the close frame queued, for the metrics.
    close_code: Option<u16>,
}

impl Drop for State {
    /// The socket's last handle is gone: it is closed.
    fn drop(&mut self) {
        crate::metrics::socket_closed(self.close_code);
    }
}

enum Feed {
    /// Subscribing: live frames wait here until the replay is done (with
    /// what they cost).
    Buffering(VecDeque<DeltaFrame>, usize),
    /// Live: frames after the cursor go straight to the queue.
    Live(SyncId),
    /// Too many bytes waited (queued on the socket when `live`, else
    /// buffered during the replay); the session must end.
    Overflowed {
        /// Whether the session was live.
        live: bool,
    },
}

/// The socket's writer is gone, or the socket is closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the socket is closed")]
pub(crate) struct SocketGone;

/// Why a subscription could not go live (see [`crate::realtime::Subscription::go_live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoLiveError {
    /// Live frames overflowed the buffer during the replay.
    Overflowed,
    /// The socket is gone.
    Gone,
}

/// What the socket's task must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutboxEvent {
    /// The live feed queued more frames than the socket takes: the consumer
    /// is too slow (an overflow during a replay is the replay's to report).
    Overflow,
    /// The transport's writer is gone (the connection closed).
    Gone,
}

impl State {
    fn enqueue(&mut self, frame: Outgoing) {
        self.queued_bytes += cost(&frame);
        self.queue.push_back(frame);
    }

    fn push(&mut self, frame: Outgoing) -> Option<Waker> {
        self.enqueue(frame);
        self.reader.take()
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.queued_bytes = 0;
    }

    /// Whether `bytes` more may wait on top of `waiting` (one frame always
    /// may when nothing waits, so a frame larger than the bound still gets
    /// through an idle socket).
    fn fits(&self, waiting: usize, bytes: usize) -> bool {
        waiting == 0 || waiting + bytes <= self.limit_bytes
    }

    fn open(&self) -> bool {
        !self.finished && !self.gone
    }
}

impl Outbox {
    /// An empty queue whose live and application frames, and whose
    /// replay-time buffer, may each hold up to `limit_bytes` (see the
    /// [module docs](self); [`super::Hub::outbox`] makes one with the
    /// feed's [`super::HubConfig::send_buffer_bytes`]).
    pub(crate) fn new(limit_bytes: usize) -> Self {
        let state = State {
            queue: VecDeque::new(),
            queued_bytes: 0,
            limit_bytes,
            reader: None,
            writer: None,
            wake_below: 0,
            finished: false,
            gone: false,
            feed: None,
            close_code: None,
        };
        crate::metrics::socket_opened();
        Outbox { shared: Arc::new(Mutex::new(state)) }
    }

    /// The bytes the queued frames cost now (their lengths plus
    /// [`FRAME_OVERHEAD`] each).
    pub(crate) fn queued_bytes(&self) -> usize {
        self.lock().queued_bytes
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether fewer than `limit` frames are queued (or the socket is
    /// gone: queueing then fails at once).
    pub(crate) fn has_room(&self, limit: usize) -> bool {
        let state = self.lock();
        state.queue.len() < limit || !state.open()
    }

    /// Waits until [`Outbox::has_room`]`(limit)`. Every waiter must run in
    /// the same task (the socket's).
    pub(crate) async fn room(&self, limit: usize) {
        poll_fn(|cx| {
            let mut state = self.lock();
            if state.queue.len() < limit || !state.open() {
                Poll::Ready(())
            } else {
                register(&mut state.writer, cx);
                state.wake_below = state.wake_below.max(limit);
                Poll::Pending
            }
        })
        .await
    }

    /// Queues `frame` now, whatever the room.
    pub(crate) fn push(&self, frame: Outgoing) -> Result<(), SocketGone> {
        let mut state = self.lock();
        if !state.open() {
            return Err(SocketGone);
        }
        let waker = state.push(frame);
        drop(state);
        wake(waker);
        Ok(())
    }

    /// Queues `frame` if fewer than `limit` frames are queued and it fits
    /// the byte bound.
    pub(crate) fn try_push(&self, frame: Outgoing, limit: usize) -> bool {
        let mut state = self.lock();
        if !state.open() || state.queue.len() >= limit || !state.fits(state.queued_bytes, cost(&frame)) {
            return false;
        }
        let waker = state.push(frame);
        drop(state);
        wake(waker);
        true
    }

    /// Waits until fewer than [`ROOM`] frames are queued, then queues
    /// `frame`.
    pub(crate) async fn send(&self, frame: Outgoing) -> Result<(), SocketGone> {
        self.room(ROOM).await;
        self.push(frame)
    }

    /// Queues the close frame (after dropping every queued frame when
    /// `drop_queued`: a socket that does not read gets its close frame
    /// sooner) and ends the queue.
    pub(crate) fn close(&self, frame: Outgoing, drop_queued: bool) {
        let mut state = self.lock();
        if !state.open() {
            return;
        }
        if drop_queued {
            state.clear();
        }
        state.close_code = close_code(&frame);
        let waker = state.push(frame);
        state.finished = true;
        state.feed = None;
        drop(state);
        wake(waker);
    }

    /// Ends the queue: the writer sends what is queued, then ends.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        state.finished = true;
        state.feed = None;
        let waker = state.reader.take();
        drop(state);
        wake(waker);
    }

    /// The transport's writer: the next frame, `None` once the queue ended
    /// and is empty.
    pub(crate) fn poll_frame(&self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        let mut state = self.lock();
        match state.queue.pop_front() {
            Some(frame) => {
                state.queued_bytes -= cost(&frame);
                crate::metrics::frame_sent(frame.len());
                let waker = if state.queue.len() < state.wake_below {
                    state.wake_below = 0;
                    state.writer.take()
                } else {
                    None
                };
                drop(state);
                wake(waker);
                Poll::Ready(Some(frame))
            }
            None if state.finished => Poll::Ready(None),
            None => {
                register(&mut state.reader, cx);
                Poll::Pending
            }
        }
    }

    /// The transport's writer is gone: later frames are dropped.
    pub(crate) fn writer_gone(&self) {
        let mut state = self.lock();
        state.gone = true;
        state.clear();
        state.feed = None;
        let waker = state.writer.take();
        drop(state);
        wake(waker);
    }

    /// Waits for the next event of the socket's task (in the socket's task,
    /// like [`Outbox::room`]).
    pub(crate) async fn event(&self) -> OutboxEvent {
        poll_fn(|cx| {
            let mut state = self.lock();
            if state.gone {
                Poll::Ready(OutboxEvent::Gone)
            } else if matches!(state.feed, Some((_, Feed::Overflowed { live: true }))) {
                Poll::Ready(OutboxEvent::Overflow)
            } else {
                register(&mut state.writer, cx);
                Poll::Pending
            }
        })
        .await
    }

    /// Starts buffering the live frames of subscription `id` (replacing
    /// any earlier subscription's gate).
    pub(crate) fn attach(&self, id: u64) {
        self.lock().feed = Some((id, Feed::Buffering(VecDeque::new(), 0)));
    }

    /// Removes the gate of subscription `id`, if it is still this socket's.
    pub(crate) fn detach(&self, id: u64) {
        let mut state = self.lock();
        if matches!(state.feed, Some((owner, _)) if owner == id) {
            state.feed = None;
        }
    }

    /// Whether the live frames of subscription `id` overflowed.
    pub(crate) fn overflowed(&self, id: u64) -> bool {
        matches!(self.lock().feed, Some((owner, Feed::Overflowed { .. })) if owner == id)
    }

    /// The live cursor of subscription `id`.
    #[cfg(test)]
    pub(crate) fn cursor(&self, id: u64) -> Option<SyncId> {
        match self.lock().feed {
            Some((owner, Feed::Live(cursor))) if owner == id => Some(cursor),
            _ => None,
        }
    }

    /// Hands a live frame of subscription `id` to the socket: buffered
    /// while it replays, queued when it is live and the frame is after its
    /// cursor. A frame that does not fit the byte bound overflows the
    /// session.
    pub(crate) fn deliver(&self, id: u64, frame: &DeltaFrame) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if !state.open() {
            return;
        }
        let message = Outgoing::delta(frame.clone());
        let size = cost(&message);
        let fits_queue = state.fits(state.queued_bytes, size);
        let limit_bytes = state.limit_bytes;
        let Some((owner, feed)) = &mut state.feed else { return };
        if *owner != id {
            return;
        }
        let queue = match feed {
            Feed::Buffering(frames, buffered) => {
                if *buffered > 0 && *buffered + size > limit_bytes {
                    *feed = Feed::Overflowed { live: false };
                } else {
                    *buffered += size;
                    frames.push_back(frame.clone());
                }
                false
            }
            Feed::Live(cursor) if frame.sync_id > *cursor => {
                if fits_queue {
                    *cursor = frame.sync_id;
                } else {
                    *feed = Feed::Overflowed { live: true };
                }
                fits_queue
            }
            Feed::Live(_) | Feed::Overflowed { .. } => return,
        };
        let waker = if queue {
            state.push(message)
        } else if matches!(feed, Feed::Overflowed { live: true }) {
            state.writer.take()
        } else {
            None
        };
        drop(guard);
        wake(waker);
    }

    /// Ends the replay of subscription `id` at `cursor`: queues the
    /// buffered frames after it, then the frame `last` makes of the final
    /// cursor (`subscribed`), and lets later frames through. All at once,
    /// so no live frame slips in between.
    pub(crate) fn go_live(
        &self,
        id: u64,
        mut cursor: SyncId,
        last: impl FnOnce(SyncId) -> Outgoing,
    ) -> Result<SyncId, GoLiveError> {
        let mut state = self.lock();
        if !state.open() {
            return Err(GoLiveError::Gone);
        }
        let buffered = match state.feed.take() {
            Some((owner, Feed::Buffering(frames, _))) if owner == id => frames,
            Some((owner, Feed::Overflowed { live })) if owner == id => {
                state.feed = Some((owner, Feed::Overflowed { live }));
                return Err(GoLiveError::Overflowed);
            }
            other => {
                state.feed = other;
                return Err(GoLiveError::Gone);
            }
        };
        for frame in buffered {
            if frame.sync_id > cursor {
                cursor = frame.sync_id;
                state.enqueue(Outgoing::delta(frame));
            }
        }
        let waker = state.push(last(cursor));
        state.feed = Some((id, Feed::Live(cursor)));
        drop(state);
        wake(waker);
        Ok(cursor)
    }
}

/// The code of a close message, `None` for any other message.
fn close_code(message: &Outgoing) -> Option<u16> {
    match &message.0 {
        Message::Close(frame) => Some(frame.code),
        _ => None,
    }
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::FutureExt;

    /// Encodes text and deltas as their JSON, control frames as their name.
    struct Json;

    impl super::super::FrameEncoder for Json {
        type Frame = Bytes;
        fn text(&self, json: &Bytes) -> Bytes {
            json.clone()
        }
        fn ping(&self, _: &Bytes) -> Bytes {
            Bytes::from_static(b"ping")
        }
        fn pong(&self, _: &Bytes) -> Bytes {
            Bytes::from_static(b"pong")
        }
        fn close(&self, _: &super::super::CloseFrame) -> Bytes {
            Bytes::from_static(b"close")
        }
    }

    fn text(s: &str) -> Outgoing {
        Outgoing::text(s.to_owned())
    }

    fn frame(id: u64) -> DeltaFrame {
        let action = crate::protocol::SyncAction {
            action: crate::protocol::ActionKind::Insert,
            client_id: None,
            client_tx_id: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            data: Default::default(),
            group_id: Some("g".into()),
            model_id: "m".into(),
            model_name: "Task".into(),
            sync_id: SyncId(id),
        };
        DeltaFrame::of(&action)
    }

    fn drain(outbox: &Outbox) -> Vec<Bytes> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Some(f)) = outbox.poll_frame(&mut cx) {
            out.push(f.encode(&Json));
        }
        out
    }

    /// Room for `n` frames like `frame(…)` (ids below 10).
    fn room_for(n: usize) -> usize {
        n * cost(&Outgoing::delta(frame(1)))
    }

    #[test]
    fn close_codes_are_read_from_close_frames() {
        let close = |code, reason| Outgoing::close(crate::realtime::CloseFrame::new(code, reason));
        assert_eq!(close_code(&close(4008, "Send buffer limit exceeded")), Some(4008));
        assert_eq!(close_code(&close(1001, "")), Some(1001));
        assert_eq!(close_code(&Outgoing::text("{}".to_owned())), None);
        assert_eq!(close_code(&Outgoing::ping()), None);
    }

    #[test]
    fn buffers_then_gates_by_cursor() {
        let outbox = Outbox::new(room_for(10));
        outbox.attach(1);
        for id in [3, 4, 5] {
            outbox.deliver(1, &frame(id));
        }
        // Another subscription's frames are ignored.
        outbox.deliver(2, &frame(6));
        assert_eq!(outbox.go_live(1, SyncId(4), |c| text(&c.0.to_string())), Ok(SyncId(5)));
        outbox.deliver(1, &frame(5));
        outbox.deliver(1, &frame(7));
        assert_eq!(outbox.queued_bytes(), room_for(2) + 1 + FRAME_OVERHEAD);
        let frames = drain(&outbox);
        assert_eq!(frames, [frame(5).json().clone(), Bytes::from("5"), frame(7).json().clone()]);
        assert_eq!(outbox.queued_bytes(), 0);
        assert_eq!(outbox.cursor(1), Some(SyncId(7)));
        outbox.detach(1);
        outbox.deliver(1, &frame(8));
        assert!(drain(&outbox).is_empty());
    }

    #[test]
    fn overflows_in_bytes() {
        // The replay-time buffer holds 2 frames' bytes.
        let outbox = Outbox::new(room_for(2));
        outbox.attach(1);
        for id in 1..=2 {
            outbox.deliver(1, &frame(id));
        }
        assert!(!outbox.overflowed(1));
        outbox.deliver(1, &frame(3));
        assert!(outbox.overflowed(1));
        assert_eq!(outbox.go_live(1, SyncId(0), |_| text("")), Err(GoLiveError::Overflowed));
        // The live queue: 2 frames fit, the third overflows.
        outbox.attach(2);
        assert!(outbox.go_live(2, SyncId(0), |_| text("")).is_ok());
        drain(&outbox);
        for id in 1..=2 {
            outbox.deliver(2, &frame(id));
        }
        assert_eq!(outbox.event().now_or_never(), None);
        outbox.deliver(2, &frame(3));
        assert_eq!(outbox.event().now_or_never(), Some(OutboxEvent::Overflow));
        outbox.close(text("bye"), true);
        assert_eq!(drain(&outbox), [Bytes::from("bye")]);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(outbox.poll_frame(&mut cx), Poll::Ready(None)));
        assert_eq!(outbox.push(text("")), Err(SocketGone));
    }

    #[test]
    fn one_frame_larger_than_the_bound_passes_an_idle_socket() {
        let outbox = Outbox::new(10);
        outbox.attach(1);
        outbox.deliver(1, &frame(1));
        assert!(!outbox.overflowed(1));
        assert!(outbox.go_live(1, SyncId(0), |_| text("")).is_ok());
        // The flushed frame and `subscribed` wait: the next one overflows.
        outbox.deliver(1, &frame(2));
        assert_eq!(outbox.event().now_or_never(), Some(OutboxEvent::Overflow));

        let outbox = Outbox::new(10);
        assert!(outbox.try_push(text(&"x".repeat(100)), ROOM + APP_QUEUE));
        // Application frames respect the byte bound too.
        assert!(!outbox.try_push(text("y"), ROOM + APP_QUEUE));
        drain(&outbox);
        assert!(outbox.try_push(text("y"), ROOM + APP_QUEUE));
    }
}
