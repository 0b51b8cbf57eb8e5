//! The server's JSON on `/chat` (see `docs/PROTOCOL.md`): what it sends,
//! never what it reads (that is [`super::wire`]).
//!
//! ```text
//! {"type":"welcome","id":"c1","name":"alice","users":[..],"topics":[..],"epoch":..,"seq":..,"limits":{..}}
//! {"type":"message","kind":"direct","from":"alice","to":"bob","text":"hi","seq":42,"ts":..}
//! {"type":"ack","id":7,"seq":42,"delivered":2}
//! {"type":"presence","event":"join","name":"bob"}
//! {"type":"response","id":3,"result":{..}}   or   "error":{"code":..,"message":..}
//! {"type":"error","code":"bad_request","message":"..","id":7}
//! ```
//!
//! Each type is a struct with `Serialize`, so field order on the wire is
//! the order here.

use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// An error code of the `error` message and of error responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Text starting with `{` that is not JSON.
    BadJson,
    /// A field is missing or has the wrong type or value.
    BadRequest,
    /// `type` is not one of the known types.
    UnknownType,
    /// A `to` names nobody connected.
    UnknownUser,
    /// `unsubscribe` from a topic one is not in.
    UnknownTopic,
    /// Over the rate limit; the message was dropped.
    RateLimited,
    /// `text` longer than `max_text` bytes.
    TooLong,
    /// A request `method` the server does not have.
    UnknownMethod,
    /// `rename` to a name someone else has.
    NameTaken,
    /// `rename` to a name that breaks the name rules.
    BadName,
    /// A new topic when `max_topics` topics with subscribers exist.
    TooManyTopics,
    /// `--auth required` and the connection has not signed in.
    AuthRequired,
    /// An account message or method with `--auth none`.
    AuthDisabled,
    /// A wrong password or an unknown name.
    BadCredentials,
    /// A token that is malformed, forged, expired or revoked.
    BadToken,
    /// Too many failed sign-ins for the account or the address.
    Throttled,
    /// The account is banned.
    Banned,
    /// The sender is muted.
    Muted,
    /// The connection's role does not allow it.
    NotAllowed,
    /// `register` with `--registration closed`.
    RegistrationClosed,
    /// A password too short or too long.
    WeakPassword,
    /// The store failed (a disk error): try again later.
    Unavailable,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::UnknownUser => "unknown_user",
            ErrorCode::UnknownTopic => "unknown_topic",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLong => "too_long",
            ErrorCode::UnknownMethod => "unknown_method",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::BadName => "bad_name",
            ErrorCode::TooManyTopics => "too_many_topics",
            ErrorCode::AuthRequired => "auth_required",
            ErrorCode::AuthDisabled => "auth_disabled",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::Throttled => "throttled",
            ErrorCode::Banned => "banned",
            ErrorCode::Muted => "muted",
            ErrorCode::NotAllowed => "not_allowed",
            ErrorCode::RegistrationClosed => "registration_closed",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

/// A message that could not be handled, with the `id` it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub code: ErrorCode,
    pub message: String,
    pub id: Option<Value>,
}

impl Problem {
    pub fn new(code: ErrorCode, message: impl Into<String>, id: Option<&Value>) -> Problem {
        Problem {
            code,
            message: message.into(),
            id: id.cloned(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// Who a delivered message went to, as the `to` field shows it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum To<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// A delivered chat message: `{"type":"message",...}`.
#[derive(Debug, Serialize)]
pub struct MessageOut<'a> {
    #[serde(rename = "type")]
    pub kind_of: &'static str,
    pub kind: &'static str,
    pub from: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<To<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<&'a str>,
    pub text: &'a str,
    pub seq: u64,
    pub ts: u64,
}

/// `{"type":"ack",...}`.
#[derive(Debug, Serialize)]
pub struct Ack<'a> {
    #[serde(rename = "type")]
    pub kind_of: &'static str,
    pub id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<&'a [String]>,
    /// Offline accounts the message waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<&'a [String]>,
}

/// `{"type":"presence","event":...,"name":...,"old":...}`.
#[derive(Debug, Serialize)]
pub struct Presence<'a> {
    #[serde(rename = "type")]
    pub kind_of: &'static str,
    pub event: &'static str,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<&'a str>,
    /// The subject is signed in to an account (join, rename).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub registered: bool,
    /// Why it left (kicked, banned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

/// The `limits` object of the welcome: what the server accepts.
#[derive(Debug, Serialize)]
pub struct Announced {
    pub max_message: u64,
    pub max_text: usize,
}

/// The first message a client receives.
#[derive(Debug, Serialize)]
pub struct Welcome<'a> {
    #[serde(rename = "type")]
    pub kind_of: &'static str,
    pub id: &'a str,
    pub name: &'a str,
    pub users: Vec<&'a str>,
    pub topics: Vec<&'a str>,
    pub server: &'static str,
    pub epoch: &'a str,
    pub seq: u64,
    pub limits: Announced,
    /// `none`, `optional` or `required`.
    pub auth: &'static str,
    /// `open` or `closed`.
    pub registration: &'static str,
    pub guest: bool,
    pub roles: Vec<&'static str>,
    /// The connected users that are accounts.
    pub registered: Vec<&'a str>,
    /// The topics this connection is subscribed to (restored at sign-in).
    pub subscribed: Vec<&'a str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    #[serde(rename = "type")]
    kind_of: &'static str,
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
}

/// `{"type":"error",...}` with one extra field (`retry_after_ms`,
/// `until_ms`) after the message.
pub fn error_with(problem: &Problem, key: &str, value: u64) -> String {
    let plain = error(problem);
    format!("{},\"{key}\":{value}}}", &plain[..plain.len() - 1])
}

/// `{"type":"response",...,"error":{...}}` with one extra field
/// (`retry_after_ms`) in the error object.
pub fn response_error_with(
    id: &Value,
    code: ErrorCode,
    message: &str,
    key: &str,
    value: u64,
) -> String {
    let plain = response_error(id, code, message);
    format!("{},\"{key}\":{value}}}}}", &plain[..plain.len() - 2])
}

/// `{"type":"error","code":...,"message":...,"id":...}`.
pub fn error(problem: &Problem) -> String {
    to_json(&ErrorOut {
        kind_of: "error",
        code: problem.code.as_str(),
        message: &problem.message,
        id: problem.id.as_ref(),
    })
}

/// `{"type":"response","id":...,"result":...}`, where `result` is JSON text.
pub fn response_raw(id: &Value, result_json: &str) -> String {
    format!(
        r#"{{"type":"response","id":{},"result":{}}}"#,
        to_json(id),
        result_json
    )
}

/// `{"type":"response","id":...,"error":{"code":...,"message":...}}`.
pub fn response_error(id: &Value, code: ErrorCode, message: &str) -> String {
    let body = to_json(&ErrorBody {
        code: code.as_str(),
        message,
    });
    format!(
        r#"{{"type":"response","id":{},"error":{}}}"#,
        to_json(id),
        body
    )
}

/// The notice every chat client gets before the server's Close 1001 at
/// shutdown: come back after `retry_after_ms` (each client its own, so a
/// restart does not bring them all back in the same second).
pub fn restarting(retry_after_ms: u64) -> String {
    format!(r#"{{"type":"notice","event":"restarting","retry_after_ms":{retry_after_ms}}}"#)
}

/// Serialize a value we built ourselves; these cannot fail (no maps with
/// non-string keys, no failing `Serialize` impls).
pub fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_serialize_in_wire_order() {
        let m = MessageOut {
            kind_of: "message",
            kind: "direct",
            from: "alice",
            to: Some(To::One("bob")),
            topic: None,
            text: "hi",
            seq: 42,
            ts: 7,
        };
        assert_eq!(
            to_json(&m),
            r#"{"type":"message","kind":"direct","from":"alice","to":"bob","text":"hi","seq":42,"ts":7}"#
        );
    }
}
