//! The Redis adapter (`../shared/DESIGN.md`: `cluster/` owns the network
//! I/O to Redis, as `store/` owns the disk), the base of the bus that
//! spans hosts (issue 18); without `--redis` nothing here runs.
//!
//! | file | what |
//! |---|---|
//! | `resp.rs` | RESP2, the protocol, with no I/O |
//! | `conn.rs` | one blocking connection over TCP or a unix socket |
//! | `pool.rs` | idle connections for calls made on a worker (claims, sign-ins) |
//! | `accounts.rs` | `RedisAccounts`: accounts, sessions, sanctions shared by every node |
//! | `script.rs` | the Lua script that gives a message its global `seq` |
//! | `order.rs` | delivering in `seq` order what arrives out of order |
//! | `payload.rs` | a chat message as it travels through Redis |
//! | `bus.rs` | `RedisBus`: the chat's `Bus` across hosts, its publisher and subscriber loops |
//! | `publisher.rs` | `ws-bus-out`: numbering this node's messages, pipelined |
//! | `subscriber.rs` | `ws-bus-in`: delivering in `seq` order, back-filling gaps |
//! | `names.rs` | names unique across hosts, and which nodes are alive (expiring keys) |
//! | `presence.rs` | presence across hosts: changes, lists, the beat |
//! | `start.rs` | joining the cluster: the epoch, and history read back from the stream |

pub mod accounts;
pub mod bus;
pub mod conn;
pub mod names;
pub mod order;
pub mod payload;
pub mod pool;
pub mod presence;
pub mod publisher;
pub mod resp;
pub mod script;
pub mod start;
pub mod subscriber;

pub use conn::{Address, Conn, Error};
pub use resp::Reply;
