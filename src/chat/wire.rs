//! The client's JSON on `/chat` (see `docs/PROTOCOL.md`): text in,
//! [`Inbound`] out. What the server sends back is [`super::messages`].
//!
//! ```text
//! client ─► {"type":"direct","to":"bob","text":"hi","id":7}   parse() ─► Inbound
//! ```
//!
//! Every frame is one JSON object with a `type`. Text whose first
//! non-whitespace character is not `{` is a broadcast of that text, so any
//! generic WebSocket client can chat. Unknown fields are ignored. An `id`,
//! when present, must be a string or a number: it is echoed in the answer,
//! so one of any other kind (even `null`) is refused rather than dropped.

use serde_json::Value;

use super::messages::{ErrorCode, Problem};

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
    /// A session token or a JWT, to sign in (see `docs/PROTOCOL.md`,
    /// Accounts).
    Auth {
        token: String,
    },
    /// `method` is `None` when missing or not a string (answered with a
    /// `bad_request` response, since the request has an id to answer).
    Request {
        method: Option<String>,
        params: Value,
    },
}

impl Body {
    /// A message to other users (what a mute refuses).
    pub fn is_chat_message(&self) -> bool {
        matches!(
            self,
            Body::Broadcast { .. }
                | Body::Direct { .. }
                | Body::Multicast { .. }
                | Body::Publish { .. }
        )
    }
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

/// The most recipients one multicast may name, by default
/// (`--max-recipients`): checking names costs time under the chat's lock.
pub const MAX_RECIPIENTS: usize = 100;

/// Parse one text frame from a client, with the default recipient cap.
pub fn parse(text: &str, max_text: usize) -> Result<Inbound, Problem> {
    parse_with(text, max_text, MAX_RECIPIENTS)
}

/// Parse one text frame from a client: `text` at most `max_text` bytes, a
/// multicast to at most `max_recipients` names.
pub fn parse_with(text: &str, max_text: usize, max_recipients: usize) -> Result<Inbound, Problem> {
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
        None => None,
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
                Some(Value::Array(names)) if names.len() > max_recipients => {
                    return Err(bad(&format!(
                        "to names more than {max_recipients} recipients"
                    )))
                }
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
        "auth" => Body::Auth {
            token: string("token")?,
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(text: &str) -> ErrorCode {
        parse(text, 100).unwrap_err().code
    }

    #[test]
    fn a_multicast_names_at_most_max_recipients() {
        let to: Vec<String> = (0..4).map(|i| format!("u{i}")).collect();
        let text = json!({"type": "multicast", "to": to, "text": "hi"}).to_string();
        assert!(parse_with(&text, 100, 4).is_ok());
        let refused = parse_with(&text, 100, 3).unwrap_err();
        assert_eq!(refused.code, ErrorCode::BadRequest);
        assert!(refused.message.contains("3 recipients"), "{refused}");
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
        for id in ["null", "true", "[1]", "{}", "[]"] {
            let text = format!(r#"{{"type":"broadcast","text":"x","id":{id}}}"#);
            assert_eq!(code(&text), ErrorCode::BadRequest, "id {id}");
        }
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
}
