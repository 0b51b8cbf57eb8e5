//! The write side of one connection: direct when idle, combined when busy,
//! handed off when slow.
//!
//! Frames for a connection come from many threads at once: its own worker
//! (pongs, echoes, its Close) and every thread that routes a chat message
//! to it. Each connection has one queue and one *write turn*:
//!
//! ```text
//!  router A ─┐  queue() ┌──────────────────────┐  a crossbeam channel (unbounded:
//!  router B ─┼────────► │ [f1][f2][f3] ...     │  it allocates only while frames
//!  worker   ─┘          └──────────┬───────────┘  wait), held to max_queue frames
//!                                  │              and max_queue_bytes by `budget`
//!       flush(): whoever wins the  │ write turn drains the whole queue in
//!       one vectored write ◄───────┘ (writev / sendmsg)
//!
//!  idle  : the router wins the turn, finds only its own frame, writes it
//!          straight to the socket (MSG_DONTWAIT): no wake-up, no extra thread.
//!  busy  : routers that lose the turn just leave their frame queued; the
//!          turn holder drains it with the others in one write (combining).
//!  slow  : the socket buffer is full (EAGAIN). The router never waits: it
//!          hands the turn to a drain thread, started only while this
//!          connection is behind, which blocks in write until the queue is
//!          empty and then exits.
//!  overflow: the queue is full. The connection is a slow consumer: what
//!          is queued is dropped and Close 1008 is queued in its place, so
//!          it goes out after what the socket already took, by the same
//!          write turn (a drain thread, since the socket is full). Nobody
//!          routing waits for it (see `closing.rs`).
//! ```
//!
//! The turn is an atomic flag, not a lock held across the write, so a
//! router can always tell at once whether to write or to leave. After a
//! holder gives the turn back it looks at the queue once more; a router
//! that queued a frame and found the turn taken relies on that look (both
//! sides use sequentially consistent operations, so one of them always
//! sees the other's frame).
//!
//! A frame bound for many connections is one `Arc<[u8]>`, encoded once
//! and shared by every queue it sits in.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the queue and the write turn |
//! | `budget.rs` | the byte and frame bounds; the worker's wait for room |
//! | `pending.rs` | the frames in the turn holder's hands |
//! | `closing.rs` | our Close, the slow-consumer cut-off, abort |

mod budget;
mod closing;
mod pending;
#[cfg(test)]
mod tests;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use super::memory::Memory;
use super::narrate;
use super::socket::is_timeout;
use super::stats::Stats;
use super::threads::Threads;
use super::transport::{Mode, Transport};
use budget::Budget;
use closing::Closing;
use pending::Pending;

/// One encoded frame, shared by every queue it is in.
pub type Bytes = Arc<[u8]>;

/// How many frames one vectored write takes at most (Linux allows 1024).
/// A burst fan-out hands each recipient up to 256 frames per flush (see
/// `batch_messages`), so one `sendmsg` takes them all.
pub(crate) const MAX_IOV: usize = 256;

/// How long a worker waiting for room in its own queue sleeps between
/// looks, at most (a wake-up it missed costs no more than this).
const SPACE_POLL: Duration = Duration::from_millis(50);

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closing or gone; the frame is dropped.
    Closed,
    /// The queue is full: the reader is too slow and has been cut off.
    Overflow,
}

/// The limits and switches of one connection's writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Frames queued at most (`--max-queue`).
    pub max_frames: usize,
    /// Bytes queued at most (`--max-queue-bytes`).
    pub max_bytes: usize,
    /// Stack size of a drain thread (`--thread-stack`).
    pub thread_stack: usize,
    /// Log every frame queued (`--trace`).
    pub trace: bool,
}

/// The write side of one WebSocket connection.
pub struct Outbound {
    id: u64,
    transport: Arc<Transport>,
    tx: Sender<Bytes>,
    rx: Receiver<Bytes>,
    budget: Budget,
    /// The write turn: true while some thread is writing for this connection.
    writing: AtomicBool,
    /// What the turn holder has dequeued; only the holder locks it.
    pending: Mutex<Pending>,
    /// Our Close frame and how far it got.
    closing: Closing,
    /// The connection is broken or aborted: drop every frame.
    dead: AtomicBool,
    /// Its reading side was shut by another thread (see `shut`).
    read_shut: AtomicBool,
    /// Drain threads running (for `/metrics`: they hold the write turn).
    draining: AtomicUsize,
    thread_stack: usize,
    threads: Arc<Threads>,
    stats: Arc<Stats>,
    /// `--trace`: log every frame queued for this connection.
    trace: bool,
}

impl Outbound {
    /// The write side of `transport`.
    pub fn new(
        id: u64,
        transport: Arc<Transport>,
        config: WriterConfig,
        threads: Arc<Threads>,
        stats: Arc<Stats>,
        memory: Arc<Memory>,
    ) -> Outbound {
        let (tx, rx) = crossbeam_channel::unbounded();
        Outbound {
            id,
            transport,
            tx,
            rx,
            budget: Budget::new(config.max_frames, config.max_bytes, memory),
            writing: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            closing: Closing::default(),
            dead: AtomicBool::new(false),
            read_shut: AtomicBool::new(false),
            draining: AtomicUsize::new(0),
            thread_stack: config.thread_stack,
            threads,
            stats,
            trace: config.trace,
        }
    }

    /// The connection id, for logs.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Is the connection broken or aborted?
    pub fn is_dead(&self) -> bool {
        self.dead.load(SeqCst)
    }

    /// Bytes waiting in the queue and in the turn holder's hands.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        self.budget.bytes()
    }

    /// Bytes this connection holds: its queue and its partial message.
    pub fn held(&self) -> usize {
        self.budget.bytes() + self.budget.partial()
    }

    /// Bytes of the partial message its frame loop holds.
    pub fn partial(&self) -> usize {
        self.budget.partial()
    }

    /// Bytes waiting in its queue and in the turn holder's hands.
    pub fn queued(&self) -> usize {
        self.budget.bytes()
    }

    /// The frame loop's partial message now holds `bytes`. If that puts
    /// the server over `--max-buffered`, the largest holder is closed
    /// (perhaps this very connection: see [`closing`](Outbound::closing)).
    pub fn set_partial(&self, bytes: usize) {
        if self.budget.set_partial(bytes) {
            self.budget.memory().relieve();
        }
    }

    /// Shut one side of the socket (the memory budget shuts the reading
    /// side of a connection it closed, so its worker wakes at once).
    pub fn shut(&self, how: std::net::Shutdown) {
        if how != std::net::Shutdown::Write {
            self.read_shut.store(true, SeqCst);
        }
        self.transport.shutdown(how);
    }

    /// Did another thread shut this connection's reading side (so its
    /// reads end at once, though the peer has not closed)?
    pub fn read_shut(&self) -> bool {
        self.read_shut.load(SeqCst)
    }

    /// Queue a frame without writing it and without ever blocking.
    ///
    /// This is what a router calls while it holds its own lock (so every
    /// recipient sees frames in the same order); it calls [`flush`]
    /// after letting go. Overflow cuts the connection off (1008).
    ///
    /// [`flush`]: Outbound::flush
    pub fn queue(&self, frame: Bytes) -> Result<(), SendError> {
        if self.is_dead() || self.closing.started() {
            return Err(SendError::Closed);
        }
        if !self.budget.try_take(frame.len()) {
            self.cut_off();
            return Err(SendError::Overflow);
        }
        if self.trace {
            narrate::frame_out(self.id, &frame);
        }
        // The receiver lives as long as `self`: sending cannot fail.
        let _ = self.tx.send(frame);
        Ok(())
    }

    /// Write what is queued if nobody else is writing, without blocking.
    /// If the socket is full, a drain thread takes over. If what was
    /// queued put the server over `--max-buffered`, the largest holder is
    /// closed (see `memory.rs`).
    pub fn flush(self: &Arc<Self>) {
        self.flush_only();
        self.budget.memory().relieve();
    }

    /// [`flush`](Outbound::flush) without looking at the server's budget
    /// (what the budget's own relief calls).
    pub(super) fn flush_only(self: &Arc<Self>) {
        self.report_cut_off();
        if self.take_turn() {
            self.write_turn(Mode::NonBlocking);
        }
    }

    /// TLS has a message of its own to send (a key update's answer): send
    /// it through the write turn, now if nobody holds it (a holder sends it
    /// with its next write).
    pub fn nudge(self: &Arc<Self>) {
        if self.take_turn() {
            if let Err(e) = self.transport.flush_own(Mode::NonBlocking) {
                log::debug!("conn={} tls flush: {e}", self.id);
            }
            self.write_turn(Mode::NonBlocking);
        }
    }

    /// Queue and flush at once. (The chat router queues under its lock
    /// and flushes after it; the tests send one frame at a time.)
    #[cfg(test)]
    pub fn send(self: &Arc<Self>, frame: Bytes) -> Result<(), SendError> {
        let queued = self.queue(frame);
        // Also after a refusal: an overflow leaves its socket work to flush.
        self.flush();
        queued
    }

    /// Send a frame from the connection's own worker thread.
    ///
    /// The worker may block: that is backpressure on the peer it serves.
    /// Its frames are not refused for size (an echo of a 16 MiB message is
    /// fine), but the worker waits while the queue holds more than the
    /// byte limit, so it cannot pile up replies to a peer that does not
    /// read them.
    pub fn send_own(self: &Arc<Self>, frame: Bytes) -> Result<(), SendError> {
        if self.is_dead() || self.closing.started() {
            return Err(SendError::Closed);
        }
        self.push_unbounded(frame)?;
        // Over the server's budget: the largest holder goes before this
        // worker blocks on its own write (it may be this connection).
        self.budget.memory().relieve();
        self.write_own()
    }

    /// Queue a frame whatever the bounds: the worker's own frames, which
    /// it then waits on (see `write_own`), and the Close.
    fn push_unbounded(&self, frame: Bytes) -> Result<(), SendError> {
        if self.is_dead() {
            return Err(SendError::Closed);
        }
        if self.trace {
            narrate::frame_out(self.id, &frame);
        }
        self.budget.take(frame.len());
        let _ = self.tx.send(frame);
        Ok(())
    }

    /// The worker writes (blocking) if it can take the turn; otherwise it
    /// waits while the queue is over its bounds.
    fn write_own(self: &Arc<Self>) -> Result<(), SendError> {
        if self.take_turn() {
            self.write_turn(Mode::Blocking);
        }
        while self.budget.over() && !self.is_dead() {
            if self.take_turn() {
                self.write_turn(Mode::Blocking);
                continue;
            }
            self.budget.wait(SPACE_POLL);
        }
        if self.is_dead() {
            Err(SendError::Closed)
        } else {
            Ok(())
        }
    }

    fn take_turn(&self) -> bool {
        self.writing
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_ok()
    }

    /// Write as the turn holder until the queue is empty, then give the
    /// turn back. In non-blocking mode, a full socket hands the turn (and
    /// whatever was dequeued) to a drain thread.
    fn write_turn(self: &Arc<Self>, mode: Mode) {
        loop {
            match self.drain(mode) {
                Drained::Empty => {}
                Drained::WouldBlock => {
                    self.hand_off();
                    return;
                }
                Drained::Broken => {
                    self.abort();
                    self.discard_all();
                }
            }
            // Give the turn back, then look once more: a frame queued by a
            // thread that saw the turn taken must not be left behind.
            self.writing.store(false, SeqCst);
            fence(SeqCst);
            if self.rx.is_empty() || !self.take_turn() {
                return;
            }
        }
    }

    /// Write everything queued. Only the turn holder calls this.
    fn drain(&self, mode: Mode) -> Drained {
        let mut pending = self.pending.lock();
        loop {
            if self.is_dead() {
                return Drained::Broken;
            }
            if self.is_cut_off() {
                let committed = self.transport.committed();
                pending.trim_for_cut_off(&self.budget, &self.closing, committed);
            }
            while pending.len() < MAX_IOV {
                match self.rx.try_recv() {
                    Ok(f) => pending.take(f, &self.budget, &self.closing),
                    Err(_) => break,
                }
            }
            if pending.is_empty() {
                return Drained::Empty;
            }
            match self.write_pending(&mut pending, mode) {
                Ok(()) => self.budget.notify(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && mode == Mode::NonBlocking => {
                    return Drained::WouldBlock;
                }
                Err(e) => {
                    log::debug!("conn={} write failed: {e}", self.id);
                    return Drained::Broken;
                }
            }
        }
    }

    /// One vectored write of the pending frames; drops the ones written.
    fn write_pending(&self, pending: &mut Pending, mode: Mode) -> io::Result<()> {
        let written = self.transport.send(&pending.slices(), mode)?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.stats.add_written(written);
        let (frames, close_out) = pending.advance(written, &self.budget, &self.closing);
        // Routers write one frame straight away (direct) or several at once
        // (combined); a drain thread writes for a socket that was full.
        let path = if self.draining.load(SeqCst) > 0 {
            2
        } else if frames > 1 {
            1
        } else {
            0
        };
        self.stats.delivered.at(path).add(frames as u64);
        if close_out {
            self.after_close_written(pending);
        }
        Ok(())
    }

    /// Drop everything: only the turn holder calls this.
    fn discard_all(&self) {
        self.pending.lock().clear(&self.budget);
        self.discard_queue(false);
    }

    /// Drop what is queued (not what the turn holder has in hand). Our
    /// Close stays if `keep_close` (it is recognised by its `Arc`, which is
    /// set before the frame is queued, so no race can lose it).
    fn discard_queue(&self, keep_close: bool) {
        let mut kept = None;
        while let Ok(f) = self.rx.try_recv() {
            if keep_close && self.closing.is_our_close(&f) {
                kept = Some(f);
            } else {
                self.budget.give_back(f.len(), 1);
            }
        }
        if let Some(f) = kept {
            let _ = self.tx.send(f);
        }
        self.budget.notify();
    }

    /// The socket is full: start a thread that holds the turn and blocks
    /// in write until the queue is empty. It exists only while this
    /// connection is behind.
    fn hand_off(self: &Arc<Self>) {
        self.stats.count(&self.stats.drains_started);
        let me = Arc::clone(self);
        let name = format!("ws-drain-{}", self.id);
        self.draining.fetch_add(1, SeqCst);
        let spawned = self.threads.spawn(name, self.thread_stack, move || {
            me.write_turn(Mode::Blocking);
            me.draining.fetch_sub(1, SeqCst);
        });
        if let Err(e) = spawned {
            log::warn!(
                "conn={} cannot start a drain thread ({e}); cutting it off",
                self.id
            );
            self.draining.fetch_sub(1, SeqCst);
            self.abort();
            self.discard_all();
            self.writing.store(false, SeqCst);
        }
    }
}

/// How a drain ended.
enum Drained {
    /// The queue is empty.
    Empty,
    /// Non-blocking write found the socket buffer full.
    WouldBlock,
    /// The socket failed or the connection was aborted.
    Broken,
}
