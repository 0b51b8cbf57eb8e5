//! The v1 JSON wire format of `/chat` (see `docs/PROTOCOL.md`).
//!
//! ```text
//! client ─► {"type":"direct","to":"bob","text":"hi","id":7}   parse() ─► Inbound
//! server ◄─ {"type":"message","kind":"direct","from":"alice","to":"bob","text":"hi","seq":42,"ts":...}
//!        ◄─ {"type":"ack","id":7,"seq":42,"delivered":2}
//! ```
//!
//! Every frame is one JSON object with a `type`. Text whose first
//! non-whitespace character is not `{` is a broadcast of that text, so any
//! generic WebSocket client can chat. Unknown fields are ignored.

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

/// One client message, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The client's `id`, a string or a number, echoed in the answer.
    pub id: Option<Value>,
    pub body: Body,
}

/// What the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Broadcast {
        text: String,
    },
    Direct {
        to: String,
        text: String,
    },
    Multicast {
        to: Vec<String>,
        text: String,
    },
    Subscribe {
        topic: String,
    },
    Unsubscribe {
        topic: String,
    },
    Publish {
        topic: String,
        text: String,
    },
    /// `method` is `None` when missing or not a string (answered with a
    /// `bad_request` response, since the request has an id to answer).
    Request {
        method: Option<String>,
        params: Value,
    },
}

/// The deepest JSON nesting a message may have. Parsing, echoing and
/// dropping a JSON value recurse once per level, and workers run on small
/// stacks; no chat message needs more.
pub const MAX_DEPTH: usize = 32;

/// How deeply `[` and `{` nest in `text`, ignoring those inside strings.
/// A byte scan, so it cannot itself recurse or fail.
pub fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Is `name` a valid user or topic name: 1-32 of ASCII letters, digits,
/// `_`, `-`, `.`?
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// Parse one text frame from a client.
pub fn parse(text: &str, max_text: usize) -> Result<Inbound, Problem> {
    if !text.trim_start().starts_with('{') {
        // Not JSON: a plain chat line, broadcast as it is.
        check_len(text, max_text, None)?;
        return Ok(Inbound {
            id: None,
            body: Body::Broadcast {
                text: text.to_owned(),
            },
        });
    }
    if nesting_depth(text) > MAX_DEPTH {
        let why = format!("JSON nested deeper than {MAX_DEPTH} levels");
        return Err(Problem::new(ErrorCode::BadJson, why, None));
    }
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(text) else {
        return Err(Problem::new(
            ErrorCode::BadJson,
            "text starting with { must be a JSON object",
            None,
        ));
    };
    let id = match obj.remove("id") {
        None | Some(Value::Null) => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
        Some(_) => {
            return Err(Problem::new(
                ErrorCode::BadRequest,
                "id must be a string or a number",
                None,
            ))
        }
    };
    let bad = |what: &str| Problem::new(ErrorCode::BadRequest, what, id.as_ref());
    let kind = match obj.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err(bad("type must be a string")),
        None => return Err(bad("missing type")),
    };
    let mut string = |field: &str| match obj.remove(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad(&format!("{field} must be a string"))),
        None => Err(bad(&format!("missing {field}"))),
    };
    let body = match kind.as_str() {
        "broadcast" => Body::Broadcast {
            text: string("text")?,
        },
        "direct" => Body::Direct {
            to: string("to")?,
            text: string("text")?,
        },
        "multicast" => {
            let text = string("text")?;
            let to = match obj.remove("to") {
                Some(Value::Array(names)) if !names.is_empty() => names
                    .into_iter()
                    .map(|n| match n {
                        Value::String(s) => Ok(s),
                        _ => Err(bad("to must be a list of names")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(Value::Array(_)) => return Err(bad("to must not be empty")),
                Some(_) => return Err(bad("to must be a list of names")),
                None => return Err(bad("missing to")),
            };
            Body::Multicast { to, text }
        }
        "subscribe" | "unsubscribe" | "publish" => {
            let topic = string("topic")?;
            if !valid_name(&topic) {
                return Err(bad("a topic is 1-32 letters, digits, _ - ."));
            }
            match kind.as_str() {
                "subscribe" => Body::Subscribe { topic },
                "unsubscribe" => Body::Unsubscribe { topic },
                _ => Body::Publish {
                    topic,
                    text: string("text")?,
                },
            }
        }
        "request" => {
            if id.is_none() {
                return Err(bad("a request needs an id"));
            }
            let method = match obj.remove("method") {
                Some(Value::String(m)) => Some(m),
                _ => None,
            };
            let params = obj
                .remove("params")
                .unwrap_or_else(|| Value::Object(Default::default()));
            Body::Request { method, params }
        }
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(Problem::new(
                ErrorCode::UnknownType,
                format!("unknown type {shown:?}"),
                id.as_ref(),
            ));
        }
    };
    if let Body::Broadcast { text }
    | Body::Direct { text, .. }
    | Body::Multicast { text, .. }
    | Body::Publish { text, .. } = &body
    {
        check_len(text, max_text, id.as_ref())?;
    }
    Ok(Inbound { id, body })
}

fn check_len(text: &str, max_text: usize, id: Option<&Value>) -> Result<(), Problem> {
    if text.len() > max_text {
        let why = format!("text of {} bytes; the limit is {max_text}", text.len());
        return Err(Problem::new(ErrorCode::TooLong, why, id));
    }
    Ok(())
}

/// Just the `id` of a message, if it has a valid one (for errors about
/// messages that are not otherwise read, such as rate-limited ones).
pub fn peek_id(text: &str) -> Option<Value> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Value>(text).ok()?.get("id")? {
        id @ (Value::String(_) | Value::Number(_)) => Some(id.clone()),
        _ => None,
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
}

/// The `limits` object of the welcome.
#[derive(Debug, Serialize)]
pub struct Limits {
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
    pub limits: Limits,
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

/// `{"type":"response","id":...,"result":...}`.
pub fn response(id: &Value, result: &impl Serialize) -> String {
    response_raw(id, &to_json(result))
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

/// Serialize a value we built ourselves; these cannot fail (no maps with
/// non-string keys, no failing `Serialize` impls).
pub fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(text: &str) -> ErrorCode {
        parse(text, 100).unwrap_err().code
    }

    #[test]
    fn plain_text_is_a_broadcast() {
        let m = parse("hello world", 100).unwrap();
        assert_eq!(
            m.body,
            Body::Broadcast {
                text: "hello world".into()
            }
        );
    }

    #[test]
    fn json_that_is_not_an_object_is_broadcast_verbatim() {
        for text in ["[1]", "\"hi\"", "42", "  [ {\"type\":\"x\"} ]"] {
            assert_eq!(
                parse(text, 100).unwrap().body,
                Body::Broadcast { text: text.into() }
            );
        }
    }

    #[test]
    fn text_starting_with_a_brace_must_be_json() {
        assert_eq!(code("{nope"), ErrorCode::BadJson);
        assert_eq!(code("  {\"type\":"), ErrorCode::BadJson);
    }

    #[test]
    fn nesting_is_measured_outside_strings() {
        assert_eq!(nesting_depth(r#"{"a":[1,{"b":"[[[[{{"}]}"#), 3);
        assert_eq!(nesting_depth(r#"{"a":"\"[["}"#), 1);
        let deep = format!(
            "{{\"type\":\"broadcast\",\"text\":\"x\",\"n\":{}{}}}",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(code(&deep), ErrorCode::BadJson);
    }

    #[test]
    fn type_must_be_a_known_string() {
        assert_eq!(code(r#"{"text":"x"}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"type":"shout"}"#), ErrorCode::UnknownType);
    }

    #[test]
    fn id_must_be_a_string_or_a_number() {
        assert_eq!(
            code(r#"{"type":"broadcast","text":"x","id":[1]}"#),
            ErrorCode::BadRequest
        );
        let m = parse(r#"{"type":"broadcast","text":"x","id":"a"}"#, 100).unwrap();
        assert_eq!(m.id, Some(json!("a")));
    }

    #[test]
    fn errors_carry_the_id() {
        let p = parse(r#"{"type":"direct","id":9}"#, 100).unwrap_err();
        assert_eq!((p.code, p.id), (ErrorCode::BadRequest, Some(json!(9))));
    }

    #[test]
    fn fields_are_checked() {
        assert_eq!(code(r#"{"type":"broadcast"}"#), ErrorCode::BadRequest);
        assert_eq!(
            code(r#"{"type":"broadcast","text":1}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"type":"multicast","to":[],"text":"x"}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"type":"multicast","to":"bob","text":"x"}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"type":"subscribe","topic":"no spaces"}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"type":"request","method":"users"}"#),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let m = parse(r#"{"type":"broadcast","text":"x","color":"red"}"#, 100).unwrap();
        assert_eq!(m.body, Body::Broadcast { text: "x".into() });
    }

    #[test]
    fn long_text_is_too_long() {
        assert_eq!(
            parse(&"a".repeat(101), 100).unwrap_err().code,
            ErrorCode::TooLong
        );
        let m = format!(
            r#"{{"type":"publish","topic":"t","text":"{}"}}"#,
            "a".repeat(101)
        );
        assert_eq!(code(&m), ErrorCode::TooLong);
    }

    #[test]
    fn names() {
        for ok in ["a", "alice", "Bob_2", "x.y-z", &"a".repeat(32)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "with space", "é", &"a".repeat(33), "a/b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

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
