//! The Redis adapter (`../shared/DESIGN.md`: `cluster/` owns the network
//! I/O to Redis, as `store/` owns the disk): a small blocking RESP2 client
//! of our own (`resp.rs` the protocol with no I/O, `conn.rs` one
//! connection over TCP or a unix socket). It is the base of the bus that
//! spans hosts (issue 18); without `--redis` nothing here runs.

pub mod conn;
pub mod resp;

pub use conn::{Address, Conn, Error};
pub use resp::Reply;
