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
//! Only `Plain` (TCP) exists today. A TLS variant keeps the same rules:
//! the worker reads ciphertext with no lock held and locks the session
//! only to decrypt; only the write-turn holder encrypts, then sends; no
//! lock is ever held across a system call.

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
#[derive(Debug)]
pub enum Transport {
    Plain(TcpStream),
}

impl Transport {
    /// Read what has arrived (blocking up to the read timeout). Only the
    /// connection's worker reads.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => (&*stream).read(buf),
        }
    }

    /// Write some of `slices` in one system call. Only the holder of the
    /// connection's write turn sends (so frames never interleave).
    pub fn send(&self, slices: &[IoSlice], mode: Mode) -> io::Result<usize> {
        match (self, mode) {
            (Transport::Plain(stream), Mode::NonBlocking) => socket2::SockRef::from(stream)
                .send_vectored_with_flags(slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL),
            (Transport::Plain(stream), Mode::Blocking) => (&*stream).write_vectored(slices),
        }
    }

    /// Write all of `bytes`, blocking: the HTTP phase, before any other
    /// thread knows the connection.
    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => (&*stream).write_all(bytes),
        }
    }

    /// Shut one or both directions down, from any thread, with no lock: a
    /// blocked read or write on another thread returns at once.
    pub fn shutdown(&self, how: Shutdown) {
        match self {
            // Fails only when the peer is already gone; nothing to do then.
            Transport::Plain(stream) => drop(stream.shutdown(how)),
        }
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.set_read_timeout(timeout),
        }
    }

    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.set_write_timeout(timeout),
        }
    }

    /// Send each write at once instead of waiting to fill a segment
    /// (Nagle): chat messages are small and latency is the point.
    pub fn set_nodelay(&self) {
        match self {
            Transport::Plain(stream) => drop(stream.set_nodelay(true)),
        }
    }
}
