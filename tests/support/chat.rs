//! A chat test client: tungstenite underneath, JSON on top.

use serde_json::{json, Value};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tungstenite::Message;

use super::{Tung, TIMEOUT};

/// One chat user.
pub struct User {
    pub ws: Tung,
    /// The welcome the server sent.
    pub welcome: Value,
}

impl User {
    /// Connect to `/chat?name=NAME` and read the welcome.
    pub fn join(addr: SocketAddr, name: &str) -> User {
        User::join_path(addr, &format!("/chat?name={name}"))
    }

    /// Connect to a `/chat...` path and read the welcome.
    pub fn join_path(addr: SocketAddr, path: &str) -> User {
        User::welcomed(super::tungstenite(addr, path))
    }

    /// Join as `name` from loopback address 127.0.0.`last`.
    pub fn join_from(last: u8, addr: SocketAddr, name: &str) -> User {
        User::welcomed(super::tungstenite_from(
            last,
            addr,
            &format!("/chat?name={name}"),
        ))
    }

    fn welcomed(ws: super::Tung) -> User {
        let mut user = User {
            ws,
            welcome: Value::Null,
        };
        user.welcome = user.recv();
        assert_eq!(
            user.welcome["type"], "welcome",
            "first frame: {}",
            user.welcome
        );
        user
    }

    /// The name the server gave us.
    pub fn name(&self) -> String {
        self.welcome["name"].as_str().unwrap().to_owned()
    }

    pub fn send(&mut self, value: Value) {
        self.send_text(&value.to_string());
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// The next JSON message (pings are answered by tungstenite).
    pub fn recv(&mut self) -> Value {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(&t).expect("server sends JSON")
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(other) => panic!("unexpected frame {other:?}"),
                Err(e) => panic!("no message: {e}"),
            }
        }
    }

    /// The next JSON message within `wait` (longer than the usual timeout),
    /// or None if nothing came.
    #[allow(dead_code)]
    pub fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        self.ws.get_ref().set_read_timeout(Some(wait)).unwrap();
        let got = loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => break Some(serde_json::from_str(&t).expect("JSON")),
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(other) => panic!("unexpected frame {other:?}"),
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    break None
                }
                Err(e) => panic!("no message: {e}"),
            }
        };
        self.ws.get_ref().set_read_timeout(Some(TIMEOUT)).unwrap();
        got
    }

    /// The next message of this `type`, skipping presence events.
    pub fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let m = self.recv();
            if m["type"] == kind {
                return m;
            }
            assert_eq!(m["type"], "presence", "expected {kind}, got {m}");
        }
    }

    /// Send a request and return its response.
    pub fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(json!({"type": "request", "id": id, "method": method, "params": params}));
        let r = self.recv_type("response");
        assert_eq!(r["id"], id, "response answers our id");
        r
    }

    /// Assert no message arrives within `wait`.
    pub fn expect_silence(&mut self, wait: Duration) {
        self.ws.get_ref().set_read_timeout(Some(wait)).unwrap();
        let started = Instant::now();
        loop {
            match self.ws.read() {
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(m) => panic!("expected nothing, got {m:?}"),
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    break
                }
                Err(e) => panic!("connection failed: {e}"),
            }
            if started.elapsed() > wait {
                break;
            }
        }
        self.ws.get_ref().set_read_timeout(Some(TIMEOUT)).unwrap();
    }

    /// Read until the server's Close; return its code.
    pub fn expect_close(&mut self) -> u16 {
        loop {
            match self.ws.read() {
                Ok(Message::Close(Some(frame))) => return u16::from(frame.code),
                Ok(Message::Close(None)) => return 1005,
                Ok(_) => {}
                Err(e) => panic!("no close frame: {e}"),
            }
        }
    }
}
