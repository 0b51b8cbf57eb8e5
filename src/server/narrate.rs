//! `--trace`: the server's side of the annotated picture of a connection
//! (TCP events, the HTTP head, the handshake's accept computation, each
//! frame with its place in a message; how it ended is told by
//! `websocket::Ending::narrate`). The
//! pictures of single frames are `protocol::trace`; this file says what
//! happened around them. Nothing here runs unless `--trace` is on: callers
//! check the flag first.

use crate::http::request::{escaped, redacted_header, redacted_target};
use crate::http::Request;
use crate::protocol::{frame, handshake, trace, FrameHeader, OpCode, Status};

/// Indent the lines after the first, for multi-line trace entries.
fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
}

/// The kernel handed us a socket.
pub fn accepted(id: u64, peer: std::net::SocketAddr) {
    let worker = std::thread::current().name().unwrap_or("?").to_owned();
    log::info!(
        "conn={id} tcp: accepted from {peer}, handed to {worker} \
         (the kernel did the SYN, SYN-ACK, ACK handshake; accept() returned the socket)"
    );
}

/// The request head as it arrived.
pub fn request(id: u64, request: &Request) {
    let mut head = format!(
        "{} {} HTTP/1.{}",
        escaped(&request.method),
        escaped(&redacted_target(&request.target)),
        request.minor
    );
    for (name, value) in &request.headers {
        let value = redacted_header(name, value);
        head.push_str(&format!("\n{}: {}", escaped(name), escaped(&value)));
    }
    log::info!("conn={id} client -> server: {}", indent(&head));
}

/// The accept computation and the 101.
pub fn upgrade(id: u64, key: &str, accept: &str, response: &str) {
    log::info!(
        "conn={id} handshake: Sec-WebSocket-Accept = base64(SHA-1(key + GUID))\n    \
         = base64(SHA-1(\"{key}\" + \"{}\"))\n    = \"{accept}\"",
        handshake::GUID,
    );
    log::info!(
        "conn={id} server -> client: {}",
        indent(response.trim_end())
    );
}

/// A plain HTTP response's head, and the close that follows it.
pub fn response(id: u64, head: &[u8]) {
    let head = String::from_utf8_lossy(head).trim_end().to_owned();
    log::info!("conn={id} server -> client: {}", indent(&head));
    log::info!(
        "conn={id} tcp: server closes (Connection: close): FIN first, then waits for the client's FIN"
    );
}

/// A frame on its way to the client (logged as it is queued).
pub fn frame_out(id: u64, bytes: &[u8]) {
    if let Ok(Status::Complete(header, len)) = frame::parse_header(bytes) {
        log::info!(
            "conn={id} server -> client: {}",
            trace::frame(&header, &bytes[len..])
        );
    }
}

/// Frames from the client, each with its place in a message.
#[derive(Debug, Default)]
pub struct Inbound {
    /// Which fragment of a message the last data frame was (0: none open).
    fragment: u32,
}

impl Inbound {
    /// A frame from the client; `wire` is its first payload bytes, masked.
    pub fn frame(&mut self, id: u64, header: &FrameHeader, wire: &[u8]) {
        let part = match header.opcode {
            OpCode::Text | OpCode::Binary if !header.fin => {
                self.fragment = 1;
                format!(
                    "fragment 1 of a {} message (FIN=0: more follow)\n    ",
                    header.opcode.name()
                )
            }
            OpCode::Continuation => {
                self.fragment += 1;
                let n = self.fragment;
                if header.fin {
                    self.fragment = 0;
                    format!("fragment {n}, the last (FIN=1): the message is complete\n    ")
                } else {
                    format!("fragment {n} (FIN=0: more follow)\n    ")
                }
            }
            op if op.is_control() && self.fragment > 0 => {
                "a control frame between fragments (allowed, §5.4)\n    ".to_owned()
            }
            _ => String::new(),
        };
        log::info!(
            "conn={id} client -> server: {part}{}",
            trace::frame(header, wire)
        );
    }
}

/// The peer broke the protocol.
pub fn protocol_error(id: u64, error: &crate::protocol::Error) {
    log::info!(
        "conn={id} protocol error: {error}; failing the connection with Close {}",
        error.close_code()
    );
}
