//! How a connection's write side ends: our Close frame (RFC 6455 §5.5.1,
//! §7.1.2), the slow-consumer cut-off, and abort.
//!
//! ```text
//!  close(code)       Close queued behind what is queued; the write turn
//!                    writes it, then FIN (§5.5.1: nothing after a Close)
//!  cut_off()         (a router, under its lock: no socket work) the queue
//!                    is dropped and Close 1008 "slow consumer" queued in its
//!                    place; the next flush, outside the lock, hands it to the
//!                    write turn. The turn holder drops what it holds but a
//!                    half-written frame, so the Close follows whatever the
//!                    socket already took, at a frame boundary. A client that
//!                    reads to the end sees the Close last, then FIN. (The
//!                    chat removes the member at once; its worker keeps
//!                    reading, so no unread input turns our close into a
//!                    reset, until the Close is out: see `websocket.rs`.)
//!  abort()           shut the socket both ways: every read and write fails
//! ```

use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};

use super::{Bytes, Outbound, Pending};
use crate::protocol::{close, frame, CloseCode, OpCode};

/// The reason sent with a slow consumer's Close 1008.
pub const SLOW_CONSUMER: &str = "slow consumer";

/// Our side of the closing handshake.
#[derive(Default)]
pub(super) struct Closing {
    /// Our Close frame, once one is queued; frames queued after it are dropped.
    frame: OnceLock<Bytes>,
    /// The code in our Close frame (0 until one is queued; 1005 for an
    /// empty body).
    code: AtomicU16,
    /// Our Close frame has been written and the write side shut down.
    written: AtomicBool,
    /// Cut off as a slow consumer.
    cut: AtomicBool,
    /// Cut off as a slow consumer, and not yet logged (the log line is
    /// written by the next flush, outside the router's lock).
    cut_unreported: AtomicBool,
}

impl Closing {
    /// Is our Close queued (or written)?
    pub(super) fn started(&self) -> bool {
        self.frame.get().is_some()
    }

    /// Has our Close gone out?
    pub(super) fn written(&self) -> bool {
        self.written.load(SeqCst)
    }

    /// Is `frame` our Close frame?
    pub(super) fn is_our_close(&self, frame: &Bytes) -> bool {
        self.frame.get().is_some_and(|c| Arc::ptr_eq(c, frame))
    }
}

impl Outbound {
    /// The code of our Close once one is queued: the closing handshake has
    /// begun and no more data frames go out.
    pub fn closing(&self) -> Option<CloseCode> {
        match self.closing.code.load(SeqCst) {
            0 => None,
            code => Some(CloseCode::from(code)),
        }
    }

    /// Start the closing handshake from any thread: queue a Close frame
    /// behind what is already queued and flush without blocking.
    /// Returns false if a Close was already queued.
    pub fn close(self: &Arc<Self>, code: CloseCode, reason: &str) -> bool {
        if !self.queue_close(Some((code, reason))) {
            return false;
        }
        self.flush_only();
        true
    }

    /// Queue one last frame before our Close (the restart notice), past
    /// the queue's bounds as the Close itself is; nothing once closing.
    pub fn queue_last(&self, frame: Bytes) {
        if !self.closing.started() {
            let _ = self.push_unbounded(frame);
        }
    }

    /// Queue a Close behind what is already queued, without writing: the
    /// next flush sends it (the chat asks for this under its lock, where
    /// nothing may touch a socket). False if a Close was already queued.
    pub fn close_later(&self, code: CloseCode, reason: &str) -> bool {
        self.queue_close(Some((code, reason)))
    }

    /// Start the closing handshake from the connection's own worker: like
    /// [`close`](Outbound::close), but the worker writes the Close itself
    /// if it can take the turn.
    pub fn close_own(self: &Arc<Self>, code: CloseCode, reason: &str) -> bool {
        self.close_own_payload(Some((code, reason)))
    }

    /// Reply to a Close that had no status code with a Close that has
    /// none either (§5.5.1 allows an empty body).
    pub fn close_empty_own(self: &Arc<Self>) -> bool {
        self.close_own_payload(None)
    }

    fn close_own_payload(self: &Arc<Self>, status: Option<(CloseCode, &str)>) -> bool {
        if !self.queue_close(status) {
            return false;
        }
        let _ = self.write_own();
        true
    }

    /// Queue our Close frame; `None` sends one with an empty body (shown
    /// as 1005 by [`closing`](Outbound::closing)).
    fn queue_close(&self, status: Option<(CloseCode, &str)>) -> bool {
        let payload = status.map_or_else(Vec::new, |(code, reason)| {
            close::encode_payload(code, reason)
        });
        let frame: Bytes = frame::encode(OpCode::Close, &payload).into();
        if self.closing.frame.set(frame.clone()).is_err() {
            return false;
        }
        let code = status.map_or(CloseCode::NoStatusReceived, |(code, _)| code);
        self.closing.code.store(code.as_u16(), SeqCst);
        self.stats.closed_with(code.as_u16());
        // The Close frame always fits: it is the last frame ever queued.
        let _ = self.push_unbounded(frame);
        true
    }

    /// Our Close frame is out: nothing may follow it (§5.5.1), so drop the
    /// rest and send FIN. The peer answers with its Close and its FIN.
    pub(super) fn after_close_written(&self, pending: &mut Pending) {
        self.closing.written.store(true, SeqCst);
        pending.clear(&self.budget);
        self.discard_queue(false);
        self.transport.finish_writing();
    }

    /// The queue overflowed: this reader is too slow. Drop what is queued
    /// and queue Close 1008 in its place. A router calls this while it
    /// holds its lock, so nothing here touches the socket: the next
    /// [`flush`](Outbound::flush) writes the Close, or hands it to a drain
    /// thread if the socket is full. Nobody routing waits for it.
    pub(super) fn cut_off(&self) {
        if self.closing.cut.swap(true, SeqCst) {
            return;
        }
        self.stats.count(&self.stats.slow_consumers);
        self.closing.cut_unreported.store(true, SeqCst);
        // What the turn holder has in hand goes out first (a frame may be
        // half written); what waits in the queue is dropped, but a Close
        // queued already (a shutdown's 1001) stays and is the one sent.
        self.discard_queue(true);
        self.queue_close(Some((CloseCode::PolicyViolation, SLOW_CONSUMER)));
    }

    /// Cut off from outside any lock (the memory budget's relief): the
    /// Close goes out at once if the socket takes it.
    pub fn cut_off_now(self: &Arc<Self>) {
        self.cut_off();
        self.flush_only();
    }

    /// Log a cut-off once, outside the router's lock.
    pub(super) fn report_cut_off(&self) {
        if self.closing.cut_unreported.swap(false, SeqCst) {
            log::warn!(
                "conn={} slow consumer: queue full, closing with 1008",
                self.id
            );
        }
    }

    /// Was this connection cut off as a slow consumer?
    pub fn is_cut_off(&self) -> bool {
        self.closing.cut.load(SeqCst)
    }

    /// Has our Close gone out (or can it no longer)?
    pub fn close_done(&self) -> bool {
        self.closing.written() || self.is_dead()
    }

    /// Shut the socket down both ways at once: pending reads and writes on
    /// any thread fail, and the worker and any drain thread finish.
    pub fn abort(&self) {
        self.dead.store(true, SeqCst);
        self.transport.shutdown(Shutdown::Both);
        self.budget.notify();
    }
}
