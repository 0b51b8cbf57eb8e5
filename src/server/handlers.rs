//! What runs on an open WebSocket: `/echo` sends every message back,
//! `/chat` hands text to the chat. The frame loop (`websocket.rs`) calls
//! the handler; the handler never touches the socket, only the
//! connection's [`Outbound`].

use std::sync::Arc;

use crate::chat::{self, Chat};
use crate::protocol::{frame, CloseCode, Message, OpCode};

use super::outbound::{Bytes, Outbound};

/// The WebSocket routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/chat`: the chat endpoint.
    Chat,
    /// `/echo`: every message back unchanged (the conformance target).
    Echo,
}

impl Route {
    /// The route of a request path, if it is a WebSocket endpoint.
    pub fn of(path: &str) -> Option<Route> {
        match path {
            "/chat" => Some(Route::Chat),
            "/echo" => Some(Route::Echo),
            _ => None,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Route::Chat => "/chat",
            Route::Echo => "/echo",
        }
    }
}

/// Why a handler closes the connection: the code and reason of our Close.
pub type Refusal = (CloseCode, &'static str);

/// What runs on an open WebSocket: echo, or chat.
pub trait Handler {
    /// A complete data message arrived. An error closes the connection
    /// with that code and reason.
    fn on_message(&mut self, message: Message) -> Result<(), Refusal>;
    /// The worker is about to wait for more input: write out whatever the
    /// messages handled since the last call queued for other connections.
    fn flush(&mut self) {}
    /// The connection is over (whatever the reason).
    fn on_close(&mut self) {}
}

/// `/echo`: every message goes back as it came, text as text.
pub struct Echo {
    pub out: Arc<Outbound>,
}

impl Handler for Echo {
    fn on_message(&mut self, message: Message) -> Result<(), Refusal> {
        let frame = match &message {
            Message::Text(text) => frame::encode(OpCode::Text, text.as_bytes()),
            Message::Binary(data) => frame::encode(OpCode::Binary, data),
        };
        // A closed connection just drops the echo; the loop will notice.
        let _ = self.out.send_own(Bytes::from(frame));
        Ok(())
    }
}

/// `/chat`: text goes to the chat; binary is refused (1003).
pub struct ChatHandler {
    chat: Arc<Chat>,
    client: chat::Client,
}

impl ChatHandler {
    /// Join the chat as `name` (or a free variant of it).
    pub fn join(chat: &Arc<Chat>, name: Option<&str>, out: &Arc<Outbound>) -> ChatHandler {
        let sink = Arc::new(ChatSink(Arc::clone(out)));
        ChatHandler {
            client: chat.join(name, sink),
            chat: Arc::clone(chat),
        }
    }
}

/// The chat's view of a connection: a non-blocking frame queue.
struct ChatSink(Arc<Outbound>);

impl chat::Sink for ChatSink {
    fn queue(&self, frame: chat::Frame) -> bool {
        self.0.queue(frame).is_ok()
    }

    fn flush(&self) {
        self.0.flush();
    }

    fn is_cut_off(&self) -> bool {
        self.0.is_cut_off()
    }
}

impl Handler for ChatHandler {
    fn on_message(&mut self, message: Message) -> Result<(), Refusal> {
        match message {
            Message::Text(text) => self
                .client
                .on_text(&self.chat, &text)
                .map_err(|chat::Kick(why)| (CloseCode::PolicyViolation, why)),
            Message::Binary(_) => Err((
                CloseCode::UnsupportedData,
                "binary messages are not accepted on /chat",
            )),
        }
    }

    fn flush(&mut self) {
        self.client.flush();
    }

    fn on_close(&mut self) {
        self.chat.leave(&mut self.client);
    }
}

impl Drop for ChatHandler {
    /// However the connection ends (a panic too), the member leaves; a
    /// second `leave` does nothing.
    fn drop(&mut self) {
        self.chat.leave(&mut self.client);
    }
}
