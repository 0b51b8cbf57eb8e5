//! One blocking connection to Redis, over TCP or a unix socket: send a
//! command, read its reply, with a deadline on every read and write. A
//! connection that broke the protocol, timed out or lost its socket is
//! dead: every later call fails at once, and its owner makes a new one
//! (with back-off), so a stalled or vanished Redis never hangs a thread.
//!
//! Addresses: `redis://HOST:PORT[/DB]` and `redis+unix:///PATH[?db=DB]`
//! (`rediss://`, TLS to Redis, is not supported).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::resp::{self, Reply};

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp { host: String, port: u16, db: u32 },
    Unix { path: PathBuf, db: u32 },
}

impl Address {
    /// Parse `redis://host:port/db` or `redis+unix:///path?db=N`.
    pub fn parse(url: &str) -> Result<Address, String> {
        let bad =
            |why: &str| format!("{url:?}: {why} (redis://HOST:PORT/DB or redis+unix:///PATH?db=N)");
        let db = |text: Option<&str>| -> Result<u32, String> {
            match text.filter(|t| !t.is_empty()) {
                None => Ok(0),
                Some(t) => t.parse().map_err(|_| bad("the database is a number")),
            }
        };
        if let Some(rest) = url.strip_prefix("redis+unix://") {
            let (path, query) = rest
                .split_once('?')
                .map_or((rest, None), |(p, q)| (p, Some(q)));
            if !path.starts_with('/') {
                return Err(bad("the socket path must be absolute"));
            }
            let db = db(query.and_then(|q| q.strip_prefix("db=")))?;
            return Ok(Address::Unix {
                path: PathBuf::from(path),
                db,
            });
        }
        if url.starts_with("rediss://") {
            return Err(bad("TLS to Redis (rediss://) is not supported"));
        }
        let Some(rest) = url.strip_prefix("redis://") else {
            return Err(bad("not a redis URL"));
        };
        if rest.contains('@') {
            return Err(bad("passwords in the URL are not supported"));
        }
        let (hostport, path) = rest
            .split_once('/')
            .map_or((rest, None), |(h, p)| (h, Some(p)));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad("the port is a number"))?),
            None => (hostport, 6379),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Address::Tcp {
            host: host.trim_matches(|c| c == '[' || c == ']').to_owned(),
            port,
            db: db(path)?,
        })
    }

    fn db(&self) -> u32 {
        match self {
            Address::Tcp { db, .. } | Address::Unix { db, .. } => *db,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port, db } => write!(f, "redis://{host}:{port}/{db}"),
            Address::Unix { path, db } => write!(f, "redis+unix://{}?db={db}", path.display()),
        }
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum Error {
    /// The socket failed or timed out: the connection is dead.
    Io(io::Error),
    /// Redis sent bytes that are not RESP2: the connection is dead.
    Protocol(resp::ProtocolError),
    /// The connection died earlier.
    Dead,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "redis: {e}"),
            Error::Protocol(e) => e.fmt(f),
            Error::Dead => f.write_str("redis: the connection is closed"),
        }
    }
}

impl std::error::Error for Error {}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// One connection; its calls block up to `timeout`.
pub struct Conn {
    stream: Option<Stream>,
    buf: Vec<u8>,
}

impl Conn {
    /// Connect, and select the address's database.
    pub fn open(address: &Address, timeout: Duration) -> Result<Conn, Error> {
        let stream = match address {
            Address::Tcp { host, port, .. } => {
                let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))
                    .map_err(Error::Io)?
                    .next()
                    .ok_or_else(|| {
                        Error::Io(io::Error::new(io::ErrorKind::NotFound, "no address"))
                    })?;
                let s = TcpStream::connect_timeout(&addr, timeout).map_err(Error::Io)?;
                s.set_nodelay(true).map_err(Error::Io)?;
                s.set_read_timeout(Some(timeout)).map_err(Error::Io)?;
                s.set_write_timeout(Some(timeout)).map_err(Error::Io)?;
                Stream::Tcp(s)
            }
            Address::Unix { path, .. } => {
                let s = UnixStream::connect(path).map_err(Error::Io)?;
                s.set_read_timeout(Some(timeout)).map_err(Error::Io)?;
                s.set_write_timeout(Some(timeout)).map_err(Error::Io)?;
                Stream::Unix(s)
            }
        };
        let mut conn = Conn {
            stream: Some(stream),
            buf: Vec::with_capacity(4096),
        };
        if address.db() != 0 {
            let db = address.db().to_string();
            if let Reply::Error(e) = conn.call(&["SELECT", &db])? {
                return Err(Error::Io(io::Error::other(e)));
            }
        }
        Ok(conn)
    }

    /// Send one command and read its reply (an `Error` reply is a reply:
    /// the command failed, the connection is fine).
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, Error> {
        self.send(args)?;
        // A reply that comes after its deadline must not be taken for the
        // next command's: any failure here ends the connection.
        self.read().map_err(|e| self.die(e))
    }

    /// Send commands without waiting (pipelining, or SUBSCRIBE).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<(), Error> {
        let bytes = resp::encode(args);
        let stream = self.stream.as_mut().ok_or(Error::Dead)?;
        let written = stream.io().write_all(&bytes);
        written.map_err(|e| self.die(Error::Io(e)))
    }

    /// The next reply (a pushed pub/sub message, or the answer to a
    /// command sent before). A timeout leaves the connection as it was
    /// (what arrived of a reply is kept): a subscriber waits in turns.
    pub fn read(&mut self) -> Result<Reply, Error> {
        loop {
            match resp::parse(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(self.die(Error::Protocol(e))),
            }
            let stream = self.stream.as_mut().ok_or(Error::Dead)?;
            let mut chunk = [0u8; 16 * 1024];
            match stream.io().read(&mut chunk) {
                Ok(0) => {
                    let closed =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "redis closed the connection");
                    return Err(self.die(Error::Io(closed)));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Error::Io(e));
                }
                Err(e) => return Err(self.die(Error::Io(e))),
            }
        }
    }

    /// A reply already received whole, without reading the socket (the
    /// rest of a burst of pushes, taken together).
    pub fn buffered(&mut self) -> Option<Reply> {
        match resp::parse(&self.buf) {
            Ok(Some((reply, used))) => {
                self.buf.drain(..used);
                Some(reply)
            }
            _ => None,
        }
    }

    /// Change how long a read may wait (a subscriber waits longer).
    pub fn set_read_timeout(&mut self, timeout: Duration) -> Result<(), Error> {
        let result = match self.stream.as_ref().ok_or(Error::Dead)? {
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)),
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)),
        };
        result.map_err(Error::Io)
    }

    pub fn is_dead(&self) -> bool {
        self.stream.is_none()
    }

    /// The socket is dropped: nothing half-read can be mistaken for the
    /// next reply.
    fn die(&mut self, e: Error) -> Error {
        self.stream = None;
        self.buf.clear();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_say_why_not() {
        assert_eq!(
            Address::parse("redis://127.0.0.1:6380/2").unwrap(),
            Address::Tcp {
                host: "127.0.0.1".into(),
                port: 6380,
                db: 2
            }
        );
        assert_eq!(
            Address::parse("redis://localhost").unwrap(),
            Address::Tcp {
                host: "localhost".into(),
                port: 6379,
                db: 0
            }
        );
        assert_eq!(
            Address::parse("redis+unix:///tmp/r.sock?db=3").unwrap(),
            Address::Unix {
                path: "/tmp/r.sock".into(),
                db: 3
            }
        );
        for bad in [
            "rediss://h:1",
            "redis://:1",
            "redis://h:x",
            "redis://u:p@h:1",
            "redis+unix://rel.sock",
            "http://h",
            "redis://h:1/x",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
        let shown = Address::parse("redis+unix:///tmp/r.sock")
            .unwrap()
            .to_string();
        assert_eq!(
            Address::parse(&shown).unwrap(),
            Address::parse("redis+unix:///tmp/r.sock").unwrap()
        );
    }
}
