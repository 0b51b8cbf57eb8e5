//! TLS on one connection (rustls with the ring provider), shared by the
//! worker that reads and the holder of the write turn, with the lock
//! discipline of `../shared/DESIGN.md` (Transport): no lock is ever held
//! across a system call.
//!
//! ```text
//!  worker:  recv(raw) ─────────────── no lock
//!           lock session: read_tls, process_new_packets, take plaintext
//!  writer:  lock session: writer().write(frame), write_tls(cipher) ── per frame
//!           send(cipher) ─────────────── no lock, MSG_DONTWAIT or blocking
//!           a frame counts as written only once all its ciphertext is out
//! ```
//!
//! Until the connection is a WebSocket its worker is its only user, so it
//! sends TLS's own messages (the handshake, session tickets) itself. After
//! that, what TLS wants to send while reading (a key update, an alert)
//! waits for the write turn: the frame loop nudges it.

use parking_lot::Mutex;
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use super::transport::{send_raw, Mode};

/// Ciphertext read per system call. A record may take several reads; the
/// buffer is kept per connection, so a small one keeps an idle TLS
/// connection at about 44 KiB of RSS (with a whole 16 KiB record per read
/// it was 57 KiB; measured with 2000 idle wss:// connections).
const RAW_CHUNK: usize = 4 * 1024;

/// Ciphertext encrypted per `send` at most (the rest waits for the next).
const MAX_SEALED: usize = 256 * 1024;

/// What a client that sends plain HTTP to the TLS port is told.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 45\r\nConnection: close\r\n\r\nthis port speaks TLS: use https:// or wss://\n";

/// One TLS connection.
pub struct TlsConn {
    stream: TcpStream,
    /// The TLS state, and ciphertext read but not yet taken by it. Locked
    /// only to decrypt or encrypt.
    inbound: Mutex<Inbound>,
    /// Ciphertext encrypted and not yet sent; only the write-turn holder
    /// uses it, and takes it out of the lock to send.
    sealed: Mutex<Sealed>,
    /// The worker's read buffer (taken out of the lock to read into).
    raw: Mutex<Vec<u8>>,
    /// The worker still owns the connection alone (the HTTP phase).
    direct: AtomicBool,
    /// TLS has a message of its own to send (see the module docs).
    wants_write: AtomicBool,
}

struct Inbound {
    conn: ServerConnection,
    leftover: Vec<u8>,
    /// No ciphertext has arrived yet (the plain-HTTP check looks at the
    /// first byte).
    fresh: bool,
}

#[derive(Default)]
struct Sealed {
    cipher: Vec<u8>,
    /// Bytes of `cipher` already sent.
    sent: usize,
    /// (ciphertext, plaintext) bytes of each encrypted piece, in order.
    pieces: std::collections::VecDeque<(usize, usize)>,
    /// Plaintext encrypted whose ciphertext is not all out yet: the
    /// writer's next slices begin with it, already encrypted.
    committed: usize,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsConn {
    /// A server-side TLS connection on an accepted socket.
    pub fn new(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsConn> {
        let mut conn = ServerConnection::new(config).map_err(tls_error)?;
        // Plaintext is encrypted as soon as it is written (`send`), so
        // rustls's own bound on it (64 KiB) would only refuse a large frame.
        conn.set_buffer_limit(None);
        Ok(TlsConn {
            stream,
            inbound: Mutex::new(Inbound {
                conn,
                leftover: Vec::new(),
                fresh: true,
            }),
            sealed: Mutex::new(Sealed::default()),
            raw: Mutex::new(Vec::new()),
            direct: AtomicBool::new(true),
            wants_write: AtomicBool::new(false),
        })
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// From now on other threads write (the connection is a WebSocket).
    pub fn hand_over(&self) {
        self.direct.store(false, SeqCst);
    }

    /// Does TLS have a message of its own for the write turn to send?
    pub fn take_wants_write(&self) -> bool {
        self.wants_write.swap(false, SeqCst)
    }

    /// Plaintext; `Ok(0)` at the end (close_notify or TCP). A read that
    /// brought only TLS records of its own (handshake, key update) returns
    /// `Interrupted`, so the caller looks at its deadlines before the next.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        {
            let mut inbound = self.inbound.lock();
            match inbound.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        let mut raw = std::mem::take(&mut *self.raw.lock());
        raw.resize(RAW_CHUNK, 0);
        let got = (&self.stream).read(&mut raw);
        let result = match got {
            Ok(0) => Ok(0),
            Ok(n) => self.take_in(&raw[..n], buf),
            Err(e) => Err(e),
        };
        *self.raw.lock() = raw;
        result
    }

    /// `raw` ciphertext arrived: decrypt, answer what TLS itself must
    /// (in the HTTP phase), and return plaintext if there is some.
    fn take_in(&self, raw: &[u8], buf: &mut [u8]) -> io::Result<usize> {
        let n = raw.len();
        let mut inbound = self.inbound.lock();
        if std::mem::take(&mut inbound.fresh) && raw[0].is_ascii_alphabetic() {
            drop(inbound);
            log::info!(
                "plain HTTP on a TLS port from {}: told to use https",
                self.stream
                    .peer_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string())
            );
            let _ = (&self.stream).write_all(PLAIN_HTTP_ANSWER);
            return Ok(0);
        }
        inbound.leftover.extend_from_slice(&raw[..n]);
        let fed = feed(&mut inbound);
        let wants = inbound.conn.wants_write();
        let own = match (wants, self.direct.load(SeqCst)) {
            (true, true) => Some(seal_own(&mut inbound.conn)?),
            _ => None,
        };
        drop(inbound);
        if let Some(own) = own {
            (&self.stream).write_all(&own)?;
        } else if wants {
            self.wants_write.store(true, SeqCst);
        }
        fed?;
        match self.inbound.lock().conn.reader().read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::ErrorKind::Interrupted.into())
            }
            Err(e) => Err(e),
        }
    }

    /// Encrypt and send all of `bytes`, blocking: the HTTP phase only.
    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let cipher = {
            let mut inbound = self.inbound.lock();
            inbound.conn.writer().write_all(bytes)?;
            seal_own(&mut inbound.conn)?
        };
        (&self.stream).write_all(&cipher)
    }

    /// Encrypt what is new in `slices` (after what was encrypted before)
    /// and send what it can; returns the plaintext bytes now wholly out.
    /// Only the write-turn holder calls this.
    pub fn send(&self, slices: &[IoSlice], mode: Mode) -> io::Result<usize> {
        let mut sealed = std::mem::take(&mut *self.sealed.lock());
        let result = self.seal_and_send(&mut sealed, slices, mode);
        *self.sealed.lock() = sealed;
        result
    }

    fn seal_and_send(
        &self,
        sealed: &mut Sealed,
        slices: &[IoSlice],
        mode: Mode,
    ) -> io::Result<usize> {
        let mut skip = sealed.committed;
        {
            let mut inbound = self.inbound.lock();
            for slice in slices {
                if sealed.cipher.len() - sealed.sent >= MAX_SEALED {
                    break;
                }
                if skip >= slice.len() {
                    skip -= slice.len();
                    continue;
                }
                let part = &slice[skip..];
                skip = 0;
                inbound.conn.writer().write_all(part)?;
                let before = sealed.cipher.len();
                while inbound.conn.wants_write() {
                    inbound.conn.write_tls(&mut sealed.cipher)?;
                }
                sealed
                    .pieces
                    .push_back((sealed.cipher.len() - before, part.len()));
                sealed.committed += part.len();
            }
        }
        let mut written = 0;
        while sealed.sent < sealed.cipher.len() {
            let out = [IoSlice::new(&sealed.cipher[sealed.sent..])];
            match send_raw(&self.stream, &out, mode) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    sealed.sent += n;
                    written += sealed.account(n);
                }
                Err(e) if written > 0 => {
                    log::trace!("tls send stopped after {written} bytes: {e}");
                    break;
                }
                Err(e) => return Err(e),
            }
            if mode == Mode::NonBlocking && written > 0 {
                break;
            }
        }
        if sealed.sent == sealed.cipher.len() {
            sealed.cipher.clear();
            sealed.sent = 0;
        }
        if written == 0 && !slices.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(written)
    }

    /// Plaintext the writer has handed over that is not yet wholly out
    /// (a cut-off must keep the frames it belongs to).
    pub fn committed(&self) -> usize {
        self.sealed.lock().committed
    }

    /// Send TLS's own pending messages (a key update's answer): the write
    /// turn's holder only.
    pub fn flush_own(&self, mode: Mode) -> io::Result<()> {
        let own = seal_own(&mut self.inbound.lock().conn)?;
        if !own.is_empty() {
            let mut sealed = self.sealed.lock();
            sealed.cipher.extend_from_slice(&own);
            sealed.pieces.push_back((own.len(), 0));
        }
        self.send(&[], mode).map(drop)
    }

    /// Our Close is out: say close_notify (best effort, never blocking),
    /// then end the TCP stream.
    pub fn finish_writing(&self) {
        let notify = {
            let mut inbound = self.inbound.lock();
            inbound.conn.send_close_notify();
            seal_own(&mut inbound.conn)
        };
        if let Ok(notify) = notify {
            let _ = send_raw(&self.stream, &[IoSlice::new(&notify)], Mode::NonBlocking);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }
}

impl Sealed {
    /// `n` more ciphertext bytes went out: the plaintext of every piece
    /// now wholly out.
    fn account(&mut self, mut n: usize) -> usize {
        let mut plain = 0;
        while let Some((cipher, text)) = self.pieces.front_mut() {
            if n < *cipher {
                *cipher -= n;
                break;
            }
            n -= *cipher;
            plain += *text;
            self.pieces.pop_front();
        }
        self.committed -= plain;
        plain
    }
}

/// Hand the ciphertext that has arrived to rustls, as much as it takes.
fn feed(inbound: &mut Inbound) -> io::Result<()> {
    let Inbound { conn, leftover, .. } = inbound;
    let mut rest: &[u8] = leftover;
    while !rest.is_empty() {
        match conn.read_tls(&mut rest) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if let Err(e) = conn.process_new_packets() {
            return Err(tls_error(e));
        }
    }
    let used = leftover.len() - rest.len();
    leftover.drain(..used);
    Ok(())
}

/// The ciphertext of what TLS itself wants to send.
fn seal_own(conn: &mut ServerConnection) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    Ok(out)
}
