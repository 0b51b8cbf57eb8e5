//! Socket helpers shared by the HTTP phase, the frame loop and the
//! listener: reading onto a buffer, telling a timeout, closing gently, and
//! opening the listening socket.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use super::transport::Transport;

/// How much one read asks for at first. Each read that fills it doubles
/// it (large messages, bursts), up to `MAX_READ_CHUNK`; an idle connection
/// keeps the small one (memory per idle connection is the cost of a
/// thread-per-connection server).
pub const READ_CHUNK: usize = 1024;
/// The most one read asks for (payload goes on to the message buffer).
pub const MAX_READ_CHUNK: usize = 64 * 1024;

/// How long a closing HTTP connection (a response, a 503) waits for the
/// client's FIN while it drops what the client still sends. Long enough
/// for a client on a slow link to finish sending its request head (so our
/// close is not turned into a reset that destroys the response), short
/// enough that a client that never closes costs little.
pub const LINGER: Duration = Duration::from_millis(500);

/// Read at most `want` bytes onto the end of `buf`, into its spare room.
/// One buffer serves a connection's whole life: the request head, then
/// the frames that follow it.
pub fn read_more(transport: &Transport, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    let len = buf.len();
    buf.resize(len + want, 0);
    let result = transport.read(&mut buf[len..]);
    buf.truncate(len + *result.as_ref().unwrap_or(&0));
    result
}

/// Did a read or write give up because its timeout passed?
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Close gracefully: FIN first, then read what the peer still sends until
/// it closes too (or [`LINGER`] passes), so that unread request bytes do
/// not turn our close into a reset that could destroy the response.
pub fn linger_close(transport: &Transport) {
    transport.finish_writing();
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || transport.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match transport.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// socket + bind + listen, with `SO_REUSEADDR` (a restarted server can bind
/// the port at once) and a listen backlog sized for bursts of connections:
/// the kernel finishes TCP handshakes into this queue before `accept()` runs,
/// and `std`'s fixed 128 drops SYNs (1 s client retries) in a connect storm.
/// The kernel caps it at `net.core.somaxconn`.
pub fn listen(addr: SocketAddr, max_connections: usize) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    let backlog = max_connections.clamp(128, 4096) as i32;
    socket.listen(backlog)?;
    Ok(socket.into())
}
