//! The byte stream under one connection, shared by one `Arc` between the
//! worker that reads it, the holder of the write turn, and shutdown: one
//! descriptor per connection, never a `try_clone`.
//!
//! ```text
//!   worker ──────── read() ────────┐
//!   write-turn holder ── send() ───┼──► Arc<Transport> ──► one socket (one fd)
//!   shutdown, cut-off ── shutdown()┘
//! ```
//!
//! `Plain` is TCP; `Tls` (`tls.rs`) keeps the same rules: the worker
//! reads ciphertext with no lock held and locks the session only to
//! decrypt; only the write-turn holder encrypts, then sends; no lock is
//! ever held across a system call.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// How a write waits for room in the socket's send buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Never wait: `MSG_DONTWAIT`. Routers write like this.
    NonBlocking,
    /// Wait, up to the socket's send timeout. The connection's own worker
    /// and drain threads write like this.
    Blocking,
}

/// One connection's byte stream.
pub enum Transport {
    Plain(TcpStream),
    /// Boxed: its session is over a kilobyte, and a plain connection
    /// should not carry that room.
    Tls(Box<super::tls::TlsConn>),
}

/// One write of `slices` to `stream`, waiting or not.
pub(super) fn send_raw(stream: &TcpStream, slices: &[IoSlice], mode: Mode) -> io::Result<usize> {
    match mode {
        Mode::NonBlocking => socket2::SockRef::from(stream)
            .send_vectored_with_flags(slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL),
        Mode::Blocking => (&*stream).write_vectored(slices),
    }
}

impl Transport {
    /// Read what has arrived (blocking up to the read timeout). Only the
    /// connection's worker reads.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => (&*stream).read(buf),
            Transport::Tls(tls) => tls.read(buf),
        }
    }

    /// Write some of `slices` in one system call. Only the holder of the
    /// connection's write turn sends (so frames never interleave).
    /// Over TLS, a frame counts as written once all its ciphertext is out.
    pub fn send(&self, slices: &[IoSlice], mode: Mode) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => send_raw(stream, slices, mode),
            Transport::Tls(tls) => tls.send(slices, mode),
        }
    }

    /// Write all of `bytes`, blocking: the HTTP phase, before any other
    /// thread knows the connection.
    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => (&*stream).write_all(bytes),
            Transport::Tls(tls) => tls.write_all(bytes),
        }
    }

    /// Our last byte is out: end the sending side (over TLS, with
    /// close_notify first). The write-turn holder, or the HTTP phase.
    pub fn finish_writing(&self) {
        match self {
            Transport::Plain(_) => self.shutdown(Shutdown::Write),
            Transport::Tls(tls) => tls.finish_writing(),
        }
    }

    /// Plaintext handed to `send` but not yet wholly out (TLS only).
    pub fn committed(&self) -> usize {
        match self {
            Transport::Plain(_) => 0,
            Transport::Tls(tls) => tls.committed(),
        }
    }

    /// The connection is a WebSocket: other threads write from now on.
    pub fn hand_over(&self) {
        if let Transport::Tls(tls) = self {
            tls.hand_over();
        }
    }

    /// Has TLS, while reading, queued a message of its own for the write
    /// turn (a key update's answer)? Asks once.
    pub fn take_wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(tls) => tls.take_wants_write(),
        }
    }

    /// Send TLS's own pending messages: the write-turn holder only.
    pub fn flush_own(&self, mode: Mode) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(tls) => tls.flush_own(mode),
        }
    }

    fn stream(&self) -> &TcpStream {
        match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(tls) => tls.stream(),
        }
    }

    /// Shut one or both directions down, from any thread, with no lock: a
    /// blocked read or write on another thread returns at once.
    pub fn shutdown(&self, how: Shutdown) {
        // Fails only when the peer is already gone; nothing to do then.
        drop(self.stream().shutdown(how));
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream().set_read_timeout(timeout)
    }

    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream().set_write_timeout(timeout)
    }

    /// Send each write at once instead of waiting to fill a segment
    /// (Nagle): chat messages are small and latency is the point.
    pub fn set_nodelay(&self) {
        drop(self.stream().set_nodelay(true));
    }
}
