//! Idle connections to Redis for calls made on a connection's worker (a
//! name claim, a sign-in): taken from a channel and given back after the
//! call, so no lock is held while Redis answers (`../shared/DESIGN.md`).
//! More callers at once than idle connections open their own; a
//! connection that failed is dropped, not given back.

use crossbeam_channel::{Receiver, Sender};
use std::time::Duration;

use super::conn::{Address, Conn, Error};

pub struct Pool {
    address: Address,
    timeout: Duration,
    idle: (Sender<Conn>, Receiver<Conn>),
}

impl Pool {
    /// At most `keep` idle connections, each call bounded by `timeout`.
    pub fn new(address: Address, keep: usize, timeout: Duration) -> Pool {
        Pool {
            address,
            timeout,
            idle: crossbeam_channel::bounded(keep),
        }
    }

    /// Run `f` on a connection.
    pub fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, Error>) -> Result<T, Error> {
        let mut conn = match self.idle.1.try_recv() {
            Ok(conn) => conn,
            Err(_) => Conn::open(&self.address, self.timeout)?,
        };
        let result = f(&mut conn);
        if !conn.is_dead() {
            let _ = self.idle.0.try_send(conn);
        }
        result
    }
}
