//! Helpers for integration tests: a real server on 127.0.0.1:0, a raw
//! socket client that speaks bytes, and plain HTTP requests. Every read
//! has a timeout, so a broken server fails a test instead of hanging it.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use switchboard::protocol::frame::{self, encode_masked, OpCode, Status};
use switchboard::{Config, Server};

/// How long any single read in a test may wait.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Start a real server on a free loopback port, with `tweak` applied to
/// the default config.
pub fn start(tweak: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: switchboard::config::MEMORY.into(),
        ..Config::default()
    };
    tweak(&mut config);
    Server::start(config).expect("server starts")
}

/// Send a raw HTTP request and read the whole response (the server closes
/// after every plain response). Returns (status, head, body).
pub fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response)
        .expect("server closes after its response");
    parse_response(&response)
}

/// Split a raw response into status, head and body.
pub fn parse_response(response: &[u8]) -> (u16, String, Vec<u8>) {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, head, response[end..].to_vec())
}

/// A browser-like upgrade request for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: http://127.0.0.1\r\nUser-Agent: switchboard-tests\r\n\r\n"
    )
}

/// One frame as read by a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: OpCode,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a Close frame (1005 when it has none).
    pub fn close_code(&self) -> u16 {
        assert_eq!(
            self.opcode,
            OpCode::Close,
            "expected a Close frame, got {self:?}"
        );
        match self.payload.as_slice() {
            [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
            _ => 1005,
        }
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("utf-8 text")
    }
}

/// A WebSocket client made of a socket and the frame codec: it sends
/// exactly the bytes a test asks for, broken ones included.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connect and complete the opening handshake on `path`.
    pub fn connect(addr: SocketAddr, path: &str) -> Raw {
        let mut raw = Raw::tcp(addr);
        raw.stream
            .write_all(upgrade_request(path).as_bytes())
            .unwrap();
        let head = raw.read_http_head();
        assert!(head.starts_with("HTTP/1.1 101 "), "upgrade refused: {head}");
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{head}"
        );
        raw
    }

    /// A connection whose handshake the test already did.
    pub fn from_stream(stream: TcpStream) -> Raw {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Just the TCP connection.
    pub fn tcp(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Read up to the end of an HTTP head; keep what follows.
    pub fn read_http_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            self.fill();
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!("server closed the connection (buffered: {:?})", self.buf),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Send raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Send one masked frame.
    pub fn send(&mut self, fin: bool, opcode: OpCode, payload: &[u8]) {
        self.send_raw(&encode_masked(
            fin,
            opcode,
            payload,
            [0x12, 0x34, 0x56, 0x78],
        ));
    }

    pub fn send_text(&mut self, text: &str) {
        self.send(true, OpCode::Text, text.as_bytes());
    }

    /// Send a Close with a code.
    pub fn send_close(&mut self, code: u16) {
        self.send(true, OpCode::Close, &code.to_be_bytes());
    }

    /// Read the next frame (server frames are never masked).
    pub fn read(&mut self) -> Frame {
        loop {
            if let Status::Complete(h, n) =
                frame::parse_header(&self.buf).expect("server sent a valid header")
            {
                assert!(h.mask.is_none(), "server frames must not be masked");
                let end = n + h.payload_len as usize;
                if self.buf.len() >= end {
                    let payload = self.buf[n..end].to_vec();
                    self.buf.drain(..end);
                    return Frame {
                        fin: h.fin,
                        opcode: h.opcode,
                        payload,
                    };
                }
            }
            self.fill();
        }
    }

    /// Read frames until a data frame (skipping server pings).
    pub fn read_data(&mut self) -> Frame {
        loop {
            let f = self.read();
            if f.opcode != OpCode::Ping {
                return f;
            }
        }
    }

    pub fn read_text(&mut self) -> String {
        let f = self.read_data();
        assert_eq!(f.opcode, OpCode::Text, "expected text, got {f:?}");
        f.text().to_owned()
    }

    /// Expect a Close frame with `code` and then the end of TCP, soon.
    pub fn expect_close(&mut self, code: u16) {
        let f = self.read_data();
        assert_eq!(f.close_code(), code, "close frame {f:?}");
        self.expect_eof();
    }

    /// Expect the server to close TCP (read returns 0) within the timeout.
    pub fn expect_eof(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        let mut chunk = [0u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "server did not close TCP");
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
                Err(e) => panic!("waiting for the server to close: {e}"),
            }
        }
    }

    /// Check the connection still echoes.
    pub fn assert_echoes(&mut self, text: &str) {
        self.send_text(text);
        assert_eq!(self.read_text(), text);
    }
}

/// An independent client: tungstenite over a plain TCP stream.
pub type Tung = tungstenite::WebSocket<TcpStream>;

/// Read a `101` head one byte at a time, so nothing after it is taken
/// from the stream (for tests that then read frames themselves).
pub fn read_upgrade_head(stream: &mut impl Read) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "a head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
}

/// Connect with tungstenite to `path`.
pub fn tungstenite(addr: SocketAddr, path: &str) -> Tung {
    tungstenite_over(TcpStream::connect(addr).unwrap(), addr, path)
}

/// Connect with tungstenite to `path` from loopback address 127.0.0.`last`.
pub fn tungstenite_from(last: u8, addr: SocketAddr, path: &str) -> Tung {
    tungstenite_over(connect_from(last, addr), addr, path)
}

/// A TCP connection to `addr` from loopback address 127.0.0.`last` (the
/// server counts each address apart: another client, for its limits).
pub fn connect_from(last: u8, addr: SocketAddr) -> TcpStream {
    socket_from(last, addr).into()
}

/// The same as a `socket2::Socket`, for options a `TcpStream` lacks.
pub fn socket_from(last: u8, addr: SocketAddr) -> socket2::Socket {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, last], 0)).into())
        .unwrap();
    socket.connect(&addr.into()).unwrap();
    socket
}

fn tungstenite_over(stream: TcpStream, addr: SocketAddr, path: &str) -> Tung {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let url = format!("ws://{addr}{path}");
    let (ws, response) = tungstenite::client(url.as_str(), stream).expect("tungstenite handshake");
    assert_eq!(response.status(), 101);
    ws
}

/// Poll `check` every 10 ms until it is true or `limit` passes.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    check()
}

/// `npm ci` once per test run if the packages are missing.
pub fn npm_packages() {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients");
        let ready = ["ws", "playwright-core"]
            .iter()
            .all(|p| clients.join("node_modules").join(p).is_dir());
        if !ready {
            eprintln!("clients: installing npm packages (npm ci in clients/)");
            let status = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&clients)
                .status()
                .expect("npm is needed for the JavaScript clients' tests");
            assert!(status.success(), "npm ci failed in clients/");
        }
    });
}

/// Send process `pid` the signal `name` (`HUP`, `TERM`, `STOP`, `CONT`).
pub fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name} {pid}");
}

/// Run `command` with `input` on its stdin; its whole output.
pub fn with_stdin(command: &mut std::process::Command, input: &str) -> std::process::Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

pub mod binary;
pub mod chat;
pub mod cluster;
pub mod redis;

/// A fresh folder under the system's temp folder, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
