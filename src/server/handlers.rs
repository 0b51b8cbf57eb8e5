//! What runs on an open WebSocket: `/echo` sends every message back,
//! `/chat` hands text to the chat. The frame loop (`websocket.rs`) calls
//! the handler; the handler never touches the socket, only the
//! connection's [`Outbound`].

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chat::identity::{Rank, Standing};
use crate::chat::messages::ErrorCode;
use crate::chat::wire::{self, Body, Inbound};
use crate::chat::{self, Chat, Escalated};
use crate::config::AuthMode;
use crate::protocol::{frame, CloseCode, Message, OpCode};

use super::gate::{Gate, Refused, SignedIn};
use super::outbound::{Bytes, Outbound};
use super::signin;

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
    /// When the handler wants the connection closed unless something
    /// happens first (`--auth required`: the sign-in deadline).
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// The deadline passed: the Close to send.
    fn on_deadline(&mut self) -> Refusal {
        (CloseCode::PolicyViolation, "timeout")
    }
    /// The connection is over (whatever the reason).
    fn on_close(&mut self) {}
    /// The chat user on this connection now, for the log.
    fn user(&self) -> Option<String> {
        None
    }
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

/// `/chat`: text goes to the chat (after signing in, with `--auth
/// required`); binary is refused (1003). Account requests the chat hands
/// back run here, on this connection's worker (`signin.rs`).
pub struct ChatHandler {
    pub chat: Arc<Chat>,
    gate: Option<Arc<Gate>>,
    out: Arc<Outbound>,
    /// Where the connection comes from (see `gate::address_key`).
    pub address: Arc<str>,
    /// `None` until the connection joins (with `--auth required`, until
    /// it signs in).
    client: Option<chat::Client>,
    /// The account it is signed in to.
    pub me: Option<SignedIn>,
    /// `--auth required`: when an unsigned connection is closed.
    deadline: Option<Instant>,
    /// Messages sent before signing in.
    unsigned: u32,
}

/// Messages a connection may send before it signs in (`--auth
/// required`): enough for a few wrong passwords, not for a flood.
const MAX_UNSIGNED: u32 = 30;

impl ChatHandler {
    /// A chat connection: joined at once (as a guest with `name`, or as
    /// the account of a handshake token), or, with `--auth required` and
    /// no token, waiting to sign in.
    pub fn new(
        chat: &Arc<Chat>,
        gate: Option<&Arc<Gate>>,
        name: Option<&str>,
        signed: Option<SignedIn>,
        address: Arc<str>,
        out: &Arc<Outbound>,
    ) -> ChatHandler {
        let mut h = ChatHandler {
            chat: Arc::clone(chat),
            gate: gate.cloned(),
            out: Arc::clone(out),
            address,
            client: None,
            me: None,
            deadline: None,
            unsigned: 0,
        };
        let required = gate.is_some_and(|g| g.mode == AuthMode::Required);
        match signed {
            Some(signed) => h.become_account(signed),
            None if required => {
                let timeout = gate.map_or(Duration::ZERO, |g| g.auth_timeout);
                h.deadline = Some(Instant::now() + timeout);
                let open = gate.is_some_and(|g| g.registration_open);
                let hello = json!({
                    "type": "auth_required",
                    "registration": if open { "open" } else { "closed" },
                    "timeout_ms": timeout.as_millis() as u64,
                });
                h.reply(&hello.to_string());
            }
            None => h.client = Some(h.join(name, Standing::Guest, &[])),
        }
        h
    }

    fn join(&self, name: Option<&str>, standing: Standing, topics: &[String]) -> chat::Client {
        let sink = Arc::new(ChatSink(Arc::clone(&self.out)));
        let address = Arc::clone(&self.address);
        self.chat.join(name, standing, address, topics, sink)
    }

    /// The sign-in machinery, or `auth_disabled` with `--auth none`.
    pub fn gate(&self) -> Result<&Arc<Gate>, Refused> {
        self.gate.as_ref().ok_or_else(|| {
            Refused::new(
                ErrorCode::AuthDisabled,
                "this server has no accounts (--auth none)",
            )
        })
    }

    pub fn signed_in(&self) -> Result<&SignedIn, Refused> {
        self.me
            .as_ref()
            .ok_or_else(|| Refused::new(ErrorCode::NotAllowed, "sign in first"))
    }

    /// The rank this connection has now: read from the chat, where a role
    /// changed by `switchboard user role` lands within seconds.
    pub fn rank(&self) -> Option<Rank> {
        self.me.as_ref()?;
        match self.chat.who(self.client.as_ref()?)?.1 {
            Standing::Account(rank) => Some(rank),
            Standing::Guest => None,
        }
    }

    /// The name this connection chats under now.
    pub fn own_name(&self) -> Option<String> {
        let client = self.client.as_ref()?;
        self.chat.who(client).map(|(name, _)| name)
    }

    /// Send one JSON text to this connection alone.
    pub fn reply(&mut self, json: &str) {
        match self.client.as_mut() {
            Some(client) => self.chat.reply(client, json),
            None => {
                let _ = self
                    .out
                    .send_own(Bytes::from(frame::encode(OpCode::Text, json.as_bytes())));
            }
        }
    }

    /// The connection is now this account: it joins (or signs in, taking
    /// the account's name), its topics and any mute are restored, and the
    /// private messages that waited follow the welcome.
    pub fn become_account(&mut self, signed: SignedIn) {
        let standing = Standing::Account(signed.rank);
        match self.client.as_mut() {
            Some(client) => {
                if !self
                    .chat
                    .sign_in(client, &signed.name, signed.rank, &signed.topics)
                {
                    // Kicked or replaced while the sign-in ran: its Close
                    // is on the way; nothing more happens here.
                    return;
                }
            }
            None => {
                let client = self.join(Some(&signed.name), standing, &signed.topics);
                self.client = Some(client);
            }
        }
        self.deadline = None;
        // A ban made while this sign-in ran found nobody to close: look
        // again now that the account is connected.
        if let Ok(Some(ban)) = self.gate().and_then(|g| g.ban_of(&signed.name)) {
            let why = format!("banned: {}", ban.reason);
            self.chat.remove(&signed.name, 4003, &why);
            return;
        }
        signin::restore_mute(self, &signed.name);
        if let Some(client) = self.client.as_mut() {
            self.chat.deliver_waiting(client, &signed.name);
        }
        log::info!(
            "conn={} signed in as {:?} ({})",
            self.out.id(),
            signed.name,
            signed.rank.as_str()
        );
        self.me = Some(signed);
    }

    /// Before signing in (`--auth required`): only `auth`, `login` and
    /// `register` are answered; everything else gets `auth_required`.
    fn unsigned_text(&mut self, text: &str) -> Result<(), Refusal> {
        self.unsigned += 1;
        if self.unsigned > MAX_UNSIGNED {
            return Err((
                CloseCode::PolicyViolation,
                "too many messages before signing in",
            ));
        }
        let call = match wire::parse(text, self.chat.max_text()) {
            Ok(Inbound {
                id,
                body: Body::Auth { token },
            }) => Escalated::Auth { id, token },
            Ok(Inbound {
                id: Some(id),
                body:
                    Body::Request {
                        method: Some(method),
                        params,
                    },
            }) if method == "login" || method == "register" => {
                Escalated::Request { id, method, params }
            }
            Ok(Inbound {
                id: Some(id),
                body: Body::Request { .. },
            }) => {
                let refused = Refused::new(ErrorCode::AuthRequired, "sign in first");
                self.reply(&signin::error_response(&refused, &id));
                return Ok(());
            }
            Ok(Inbound { id, .. }) => {
                let refused = Refused::new(ErrorCode::AuthRequired, "sign in first");
                self.reply(&signin::error_message(&refused, id.as_ref()));
                return Ok(());
            }
            Err(problem) => {
                self.reply(&chat::messages::error(&problem));
                return Ok(());
            }
        };
        signin::run(self, call)
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

    fn close(&self, code: u16, reason: &str) {
        self.0.close_later(CloseCode::from(code), reason);
    }
}

impl Handler for ChatHandler {
    fn on_message(&mut self, message: Message) -> Result<(), Refusal> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return Err((
                    CloseCode::UnsupportedData,
                    "binary messages are not accepted on /chat",
                ))
            }
        };
        let Some(client) = self.client.as_mut() else {
            return self.unsigned_text(&text);
        };
        client
            .on_text(&self.chat, &text)
            .map_err(|chat::Kick(why)| (CloseCode::PolicyViolation, why))?;
        for call in client.take_escalated() {
            signin::run(self, call)?;
        }
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(client) = self.client.as_mut() {
            client.flush();
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn on_deadline(&mut self) -> Refusal {
        (CloseCode::Other(4001), "authentication required")
    }

    fn user(&self) -> Option<String> {
        self.client.as_ref().and_then(|c| self.chat.name_of(c.id))
    }

    fn on_close(&mut self) {
        if let Some(client) = self.client.as_mut() {
            self.chat.leave(client);
        }
    }
}

impl Drop for ChatHandler {
    /// However the connection ends (a panic too), the member leaves; a
    /// second `leave` does nothing.
    fn drop(&mut self) {
        if let Some(client) = self.client.as_mut() {
            self.chat.leave(client);
        }
    }
}
