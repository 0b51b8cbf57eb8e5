//! The write side of one connection: direct when idle, combined when busy,
//! handed off when slow.
//!
//! Frames for a connection come from many threads at once: its own worker
//! (pongs, echoes, its Close) and every thread that routes a chat message
//! to it. Each connection has one bounded queue and one *write turn*:
//!
//! ```text
//!  router A ─┐  queue() ┌──────────────────────┐
//!  router B ─┼────────► │ crossbeam queue      │  bounded by two counters:
//!  worker   ─┘          │ [f1][f2][f3] ...     │  max_queue frames, max_queue_bytes
//!                       └──────────┬───────────┘
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
//!  overflow: the queue is full. The connection is a slow consumer: its
//!          queue is dropped, and the next flush (outside any lock) sends
//!          Close 1008 if the socket takes it and shuts the TCP connection
//!          down. Nobody waits for it.
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

use crate::protocol::{close, frame, trace, CloseCode, OpCode};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{fence, AtomicBool, AtomicU16, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::stats::Stats;
use super::threads::Threads;

/// One encoded frame, shared by every queue it is in.
pub type Bytes = Arc<[u8]>;

/// How many frames one vectored write takes at most (Linux allows 1024).
/// A burst fan-out hands each recipient up to 256 frames per flush (see
/// `batch_messages`), so one `sendmsg` takes them all.
pub(crate) const MAX_IOV: usize = 256;

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
pub struct Settings {
    /// Frames queued at most (`--max-queue`).
    pub max_frames: usize,
    /// Bytes queued at most (`--max-queue-bytes`).
    pub max_bytes: usize,
    /// Stack size of a drain thread (`--thread-stack`).
    pub thread_stack: usize,
    /// Log every frame queued (`--trace`).
    pub trace: bool,
}

/// Frames taken out of the queue by the turn holder, not yet fully written.
#[derive(Default)]
struct Pending {
    frames: VecDeque<Bytes>,
    /// Bytes of `frames[0]` already written.
    offset: usize,
}

/// How the turn holder writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Never block: `MSG_DONTWAIT`. Routers write like this.
    NonBlocking,
    /// Block (up to the socket's send timeout). The connection's own
    /// worker and drain threads write like this.
    Blocking,
}

/// The write side of one WebSocket connection.
pub struct Outbound {
    id: u64,
    socket: TcpStream,
    tx: Sender<Bytes>,
    rx: Receiver<Bytes>,
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    queued_frames: AtomicUsize,
    max_frames: usize,
    /// The write turn: true while some thread is writing for this connection.
    writing: AtomicBool,
    /// What the turn holder has dequeued; only the holder locks it.
    pending: Mutex<Pending>,
    /// Our Close frame, once one is queued; frames queued after it are dropped.
    close_frame: OnceLock<Bytes>,
    /// The code in our Close frame (0 until one is queued).
    close_code: AtomicU16,
    /// Our Close frame has been written and the write side shut down.
    close_written: AtomicBool,
    /// The connection is broken or cut off: drop every frame.
    dead: AtomicBool,
    /// Cut off, and the socket not yet shut: the next flush does it.
    cut_pending: AtomicBool,
    /// Backpressure for the connection's own worker.
    space: Condvar,
    space_lock: Mutex<()>,
    space_waiters: AtomicUsize,
    thread_stack: usize,
    threads: Arc<Threads>,
    stats: Arc<Stats>,
    /// `--trace`: log every frame queued for this connection.
    trace: bool,
}

impl Outbound {
    /// Wrap the write half of a connection.
    pub fn new(
        id: u64,
        socket: TcpStream,
        settings: Settings,
        threads: Arc<Threads>,
        stats: Arc<Stats>,
    ) -> Outbound {
        let Settings {
            max_frames,
            max_bytes,
            thread_stack,
            trace,
        } = settings;
        // An unbounded (linked-block) channel allocates only while frames
        // wait; a bounded one would allocate all `max_frames` slots for every
        // idle connection. The bounds are enforced by the two counters.
        let (tx, rx) = crossbeam_channel::unbounded();
        Outbound {
            id,
            socket,
            tx,
            rx,
            queued_bytes: AtomicUsize::new(0),
            queued_frames: AtomicUsize::new(0),
            max_frames,
            max_bytes,
            writing: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            close_frame: OnceLock::new(),
            close_code: AtomicU16::new(0),
            close_written: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            cut_pending: AtomicBool::new(false),
            space: Condvar::new(),
            space_lock: Mutex::new(()),
            space_waiters: AtomicUsize::new(0),
            thread_stack,
            threads,
            stats,
            trace,
        }
    }

    /// `--trace`: log a frame on its way to this connection.
    fn trace_out(&self, frame: &[u8]) {
        if let Ok(crate::protocol::Status::Complete(header, len)) = frame::parse_header(frame) {
            log::info!(
                "conn={} server -> client: {}",
                self.id,
                trace::frame(&header, &frame[len..])
            );
        }
    }

    /// The connection id, for logs.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Has a Close frame been queued (by anyone)? Then the closing
    /// handshake has started and no more data frames go out.
    pub fn close_sent(&self) -> Option<CloseCode> {
        match self.close_code.load(SeqCst) {
            0 => None,
            code => Some(CloseCode::from(code)),
        }
    }

    /// Is the connection cut off or broken?
    pub fn is_dead(&self) -> bool {
        self.dead.load(SeqCst)
    }

    /// Bytes waiting in the queue and in the turn holder's hands.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(SeqCst)
    }

    /// Queue a frame without writing it and without ever blocking.
    ///
    /// This is what a router calls while it holds its own lock (so every
    /// recipient sees frames in the same order); it calls [`flush`]
    /// after letting go. Overflow cuts the connection off (1008).
    ///
    /// [`flush`]: Outbound::flush
    pub fn queue(&self, frame: Bytes) -> Result<(), SendError> {
        if self.is_dead() || self.close_frame.get().is_some() {
            return Err(SendError::Closed);
        }
        let len = frame.len();
        let bytes = self.queued_bytes.fetch_add(len, SeqCst) + len;
        let frames = self.queued_frames.fetch_add(1, SeqCst) + 1;
        if bytes > self.max_bytes || frames > self.max_frames {
            self.unqueued(len, 1);
            self.cut_off();
            return Err(SendError::Overflow);
        }
        if self.trace {
            self.trace_out(&frame);
        }
        // The receiver lives as long as `self`: sending cannot fail.
        let _ = self.tx.send(frame);
        Ok(())
    }

    /// Frames waiting in the queue and in the turn holder's hands.
    pub fn queued_frames(&self) -> usize {
        self.queued_frames.load(SeqCst)
    }

    /// Is the queue over either of its bounds?
    fn over_bounds(&self) -> bool {
        self.queued_bytes() > self.max_bytes || self.queued_frames() > self.max_frames
    }

    /// Write what is queued if nobody else is writing, without blocking.
    /// If the socket is full, a drain thread takes over.
    pub fn flush(self: &Arc<Self>) {
        if self.cut_pending.swap(false, SeqCst) {
            self.finish_cut_off();
            return;
        }
        if self.take_turn() {
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
        if self.is_dead() || self.close_frame.get().is_some() {
            return Err(SendError::Closed);
        }
        self.push_unbounded(frame)?;
        self.write_own()
    }

    /// Start the closing handshake from any thread: queue a Close frame
    /// behind what is already queued and flush without blocking.
    /// Returns false if a Close was already queued.
    pub fn close(self: &Arc<Self>, code: CloseCode, reason: &str) -> bool {
        if !self.queue_close(Some((code, reason))) {
            return false;
        }
        self.flush();
        true
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

    /// Shut the socket down both ways at once: pending reads and writes on
    /// any thread fail, and the worker and any drain thread finish.
    pub fn abort(&self) {
        self.dead.store(true, SeqCst);
        let _ = self.socket.shutdown(Shutdown::Both);
        self.notify_space();
    }

    /// Queue our Close frame; `None` sends one with an empty body (shown
    /// as 1005 by [`close_sent`](Outbound::close_sent)).
    fn queue_close(self: &Arc<Self>, status: Option<(CloseCode, &str)>) -> bool {
        let payload = status.map_or_else(Vec::new, |(code, reason)| {
            close::encode_payload(code, reason)
        });
        let frame: Bytes = frame::encode(OpCode::Close, &payload).into();
        if self.close_frame.set(frame.clone()).is_err() {
            return false;
        }
        let code = status.map_or(CloseCode::NoStatusReceived, |(code, _)| code);
        // A cut-off may have recorded 1008 already; keep the first code.
        let _ = self
            .close_code
            .compare_exchange(0, code.as_u16(), SeqCst, SeqCst);
        // The Close frame always fits: it is the last frame ever queued.
        let _ = self.push_unbounded(frame);
        true
    }

    /// Queue a frame whatever the bounds: the worker's own frames, which
    /// it then waits on (see `write_own`), and the Close.
    fn push_unbounded(&self, frame: Bytes) -> Result<(), SendError> {
        if self.is_dead() {
            return Err(SendError::Closed);
        }
        if self.trace {
            self.trace_out(&frame);
        }
        self.queued_bytes.fetch_add(frame.len(), SeqCst);
        self.queued_frames.fetch_add(1, SeqCst);
        let _ = self.tx.send(frame);
        Ok(())
    }

    /// The worker writes (blocking) if it can take the turn; otherwise it
    /// waits while the queue is over its bounds.
    fn write_own(self: &Arc<Self>) -> Result<(), SendError> {
        if self.take_turn() {
            self.write_turn(Mode::Blocking);
        } else if self.over_bounds() {
            self.space_waiters.fetch_add(1, SeqCst);
            let mut guard = self.space_lock.lock();
            while self.over_bounds() && !self.is_dead() {
                if self.take_turn() {
                    drop(guard);
                    self.write_turn(Mode::Blocking);
                    guard = self.space_lock.lock();
                    continue;
                }
                self.space.wait_for(&mut guard, Duration::from_millis(50));
            }
            drop(guard);
            self.space_waiters.fetch_sub(1, SeqCst);
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
            while pending.frames.len() < MAX_IOV {
                match self.rx.try_recv() {
                    Ok(f) if self.close_written.load(SeqCst) => self.unqueued(f.len(), 1),
                    Ok(f) => pending.frames.push_back(f),
                    Err(_) => break,
                }
            }
            if pending.frames.is_empty() {
                return Drained::Empty;
            }
            match self.write_pending(&mut pending, mode) {
                Ok(()) => self.notify_space(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_would_block(&e) && mode == Mode::NonBlocking => {
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
        // On the heap, sized to what is pending: a 256-slot array on the
        // stack would add a page to every worker thread that ever writes.
        let slices: Vec<IoSlice> = pending
            .frames
            .iter()
            .take(MAX_IOV)
            .enumerate()
            .map(|(i, f)| IoSlice::new(&f[if i == 0 { pending.offset } else { 0 }..]))
            .collect();
        let written = match mode {
            Mode::NonBlocking => socket2::SockRef::from(&self.socket)
                .send_vectored_with_flags(&slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)?,
            Mode::Blocking => (&self.socket).write_vectored(&slices)?,
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.stats.add_written(written);
        // The queue's counters are shared with every router thread: one
        // update per write, not one per frame.
        let (mut bytes, mut frames) = (0, 0);
        let mut left = written;
        while left > 0 {
            let Some(front) = pending.frames.front() else {
                break;
            };
            let rest = front.len() - pending.offset;
            if left < rest {
                pending.offset += left;
                break;
            }
            left -= rest;
            pending.offset = 0;
            let done = pending
                .frames
                .pop_front()
                .unwrap_or_else(|| Arc::from(&[][..]));
            bytes += done.len();
            frames += 1;
            if self
                .close_frame
                .get()
                .is_some_and(|c| Arc::ptr_eq(c, &done))
            {
                self.after_close_written(pending);
            }
        }
        self.unqueued(bytes, frames);
        Ok(())
    }

    /// Our Close frame is out: nothing may follow it (§5.5.1), so drop the
    /// rest and send FIN. The peer answers with its Close and its FIN.
    fn after_close_written(&self, pending: &mut Pending) {
        self.close_written.store(true, SeqCst);
        for f in pending.frames.drain(..) {
            self.unqueued(f.len(), 1);
        }
        while let Ok(f) = self.rx.try_recv() {
            self.unqueued(f.len(), 1);
        }
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    /// `frames` frames, `bytes` bytes in all, left the queue (written or dropped).
    fn unqueued(&self, bytes: usize, frames: usize) {
        self.queued_bytes.fetch_sub(bytes, SeqCst);
        self.queued_frames.fetch_sub(frames, SeqCst);
    }

    /// Drop everything: only the turn holder calls this.
    fn discard_all(&self) {
        let mut pending = self.pending.lock();
        for f in pending.frames.drain(..) {
            self.unqueued(f.len(), 1);
        }
        pending.offset = 0;
        drop(pending);
        self.discard_queue();
    }

    fn discard_queue(&self) {
        while let Ok(f) = self.rx.try_recv() {
            self.unqueued(f.len(), 1);
        }
        self.notify_space();
    }

    fn notify_space(&self) {
        if self.space_waiters.load(SeqCst) > 0 {
            let _guard = self.space_lock.lock();
            self.space.notify_all();
        }
    }

    /// The socket is full: start a thread that holds the turn and blocks
    /// in write until the queue is empty. It exists only while this
    /// connection is behind.
    fn hand_off(self: &Arc<Self>) {
        self.stats.drains_started.fetch_add(1, SeqCst);
        let me = Arc::clone(self);
        let name = format!("ws-drain-{}", self.id);
        let spawned = self.threads.spawn(name, self.thread_stack, move || {
            me.write_turn(Mode::Blocking);
        });
        if let Err(e) = spawned {
            log::warn!(
                "conn={} cannot start a drain thread ({e}); cutting it off",
                self.id
            );
            self.abort();
            self.discard_all();
            self.writing.store(false, SeqCst);
        }
    }

    /// The queue overflowed: this reader is too slow. Mark it dead (1008),
    /// drop its queue, and leave the socket work (Close 1008 if the socket
    /// takes it, then shutdown) to the next [`flush`](Outbound::flush): a
    /// router calls this while it holds its lock, where no socket is
    /// touched. Nobody waits for the slow reader either way.
    fn cut_off(&self) {
        if self.dead.swap(true, SeqCst) {
            return;
        }
        self.stats.slow_consumers.fetch_add(1, SeqCst);
        log::warn!(
            "conn={} slow consumer: queue full, closing with 1008",
            self.id
        );
        let _ = self.close_code.compare_exchange(
            0,
            CloseCode::PolicyViolation.as_u16(),
            SeqCst,
            SeqCst,
        );
        // Only the queue: what the turn holder has in hand, it drops itself
        // when it sees `dead` (its write fails at once after the shutdown).
        self.discard_queue();
        self.cut_pending.store(true, SeqCst);
    }

    /// The socket half of a cut-off, outside any lock.
    fn finish_cut_off(&self) {
        // If nobody holds the turn, the socket is at a frame boundary and
        // the Close can go out before the shutdown.
        if self.take_turn() {
            let payload = close::encode_payload(CloseCode::PolicyViolation, "slow consumer");
            let frame = frame::encode(OpCode::Close, &payload);
            let _ = socket2::SockRef::from(&self.socket)
                .send_with_flags(&frame, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
            self.writing.store(false, SeqCst);
        }
        // Wakes the worker's read and any drain thread's write.
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// How a drain ended.
enum Drained {
    /// The queue is empty.
    Empty,
    /// Non-blocking write found the socket buffer full.
    WouldBlock,
    /// The socket failed or the connection was cut off.
    Broken,
}

fn is_would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{parse_header, Status};
    use std::io::Read;
    use std::net::TcpListener;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Instant;

    /// A real loopback connection: (server side in an Outbound, client side).
    fn pair(
        max_frames: usize,
        max_bytes: usize,
    ) -> (Arc<Outbound>, TcpStream, Arc<Threads>, Arc<Stats>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let threads = Arc::new(Threads::default());
        let stats = Arc::new(Stats::default());
        let settings = Settings {
            max_frames,
            max_bytes,
            thread_stack: 128 * 1024,
            trace: false,
        };
        let out = Outbound::new(1, server, settings, threads.clone(), stats.clone());
        (Arc::new(out), client, threads, stats)
    }

    fn text(s: &str) -> Bytes {
        frame::encode(OpCode::Text, s.as_bytes()).into()
    }

    /// Read `n` whole frames from the client side; return their payloads.
    fn read_frames(client: &mut TcpStream, n: usize) -> Vec<Vec<u8>> {
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while frames.len() < n {
            while let Ok(Status::Complete(h, len)) = parse_header(&buf) {
                let end = len + h.payload_len as usize;
                if buf.len() < end {
                    break;
                }
                frames.push(buf[len..end].to_vec());
                buf.drain(..end);
            }
            if frames.len() >= n {
                break;
            }
            let got = client.read(&mut chunk).expect("frames arrive");
            assert!(got > 0, "connection closed after {} frames", frames.len());
            buf.extend_from_slice(&chunk[..got]);
        }
        frames
    }

    #[test]
    fn idle_connection_is_written_by_the_sending_thread_itself() {
        let (out, mut client, threads, stats) = pair(16, 1 << 20);
        out.send(text("direct")).unwrap();
        assert_eq!(read_frames(&mut client, 1), vec![b"direct".to_vec()]);
        assert_eq!(threads.live(), 0, "no thread was started");
        assert_eq!(stats.drains_started.load(Relaxed), 0);
        assert_eq!(out.queued_bytes(), 0);
    }

    #[test]
    fn concurrent_senders_lose_nothing_and_keep_each_senders_order() {
        let (out, mut client, _, _) = pair(100_000, 64 << 20);
        let senders: Vec<_> = (0..8)
            .map(|t| {
                let out = Arc::clone(&out);
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        out.send(text(&format!("{t}:{i}"))).unwrap();
                    }
                })
            })
            .collect();
        let frames = read_frames(&mut client, 8 * 2000);
        for s in senders {
            s.join().unwrap();
        }
        let mut next = [0usize; 8];
        for f in frames {
            let s = String::from_utf8(f).unwrap();
            let (t, i) = s.split_once(':').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "sender {t} out of order");
            next[t] += 1;
        }
        assert_eq!(next, [2000; 8]);
    }

    #[test]
    fn a_full_socket_is_handed_to_a_drain_thread_and_the_sender_never_waits() {
        let (out, mut client, threads, stats) = pair(100_000, 256 << 20);
        let frame: Bytes = frame::encode(OpCode::Binary, &[7u8; 16 * 1024]).into();
        let mut slowest = Duration::ZERO;
        // 64 MiB is far more than the loopback socket buffers hold.
        for _ in 0..4096 {
            let started = Instant::now();
            out.send(frame.clone()).unwrap();
            slowest = slowest.max(started.elapsed());
        }
        assert!(
            slowest < Duration::from_millis(100),
            "a send waited {slowest:?}"
        );
        assert!(
            stats.drains_started.load(Relaxed) >= 1,
            "a drain thread took over"
        );
        assert!(out.queued_bytes() > 0);
        // The reader catches up: everything arrives, and the drain thread ends.
        let frames = read_frames(&mut client, 4096);
        assert!(frames.iter().all(|f| f.len() == 16 * 1024));
        assert!(
            threads.wait_all(Duration::from_secs(5)),
            "the drain thread ended"
        );
        assert_eq!(out.queued_bytes(), 0);
    }

    #[test]
    fn overflow_cuts_the_slow_consumer_off_and_nobody_waits() {
        let (out, mut client, threads, stats) = pair(1024, 256 * 1024);
        let frame: Bytes = frame::encode(OpCode::Binary, &[1u8; 8 * 1024]).into();
        let started = Instant::now();
        let mut result = Ok(());
        for _ in 0..10_000 {
            result = out.send(frame.clone());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SendError::Overflow));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(stats.slow_consumers.load(Relaxed), 1);
        assert_eq!(out.send(text("late")), Err(SendError::Closed));
        assert_eq!(out.close_sent(), Some(CloseCode::PolicyViolation));
        // The client sees the data it had, then the end of the connection.
        let mut sink = vec![0u8; 1 << 16];
        loop {
            match client.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        assert!(
            threads.wait_all(Duration::from_secs(5)),
            "no thread is left behind"
        );
    }

    #[test]
    fn close_is_the_last_frame_and_is_followed_by_fin() {
        let (out, mut client, _, _) = pair(16, 1 << 20);
        out.send(text("before")).unwrap();
        assert!(out.close(CloseCode::GoingAway, "bye"));
        assert!(
            !out.close(CloseCode::NormalClosure, "again"),
            "only one Close"
        );
        assert_eq!(out.send(text("after")), Err(SendError::Closed));
        let frames = read_frames(&mut client, 2);
        assert_eq!(frames[0], b"before");
        assert_eq!(frames[1], [&[0x03, 0xe9][..], b"bye"].concat());
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "FIN right after the Close: {rest:?}");
    }
}
