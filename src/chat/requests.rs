//! The `request` methods: a `response` to the sender only.
//!
//! ```text
//! users, topics, whoami, rename, time, echo, stats ─► answered under the registry lock
//! history, search ─► checked under the lock, answered AFTER it is released
//! ```
//!
//! A history store may read a disk; answering under the registry lock
//! would stall every conversation behind that read. So `history` and
//! `search` are returned as a [`Deferred`] query that [`Chat`] runs once
//! the lock is gone. The reply may overlap live messages that arrived meanwhile:
//! clients drop a `seq` they have already seen (see `docs/PROTOCOL.md`).

use serde_json::{json, Value};

use super::history::{Kept, Search, Stream, Window};
use super::messages::{self, ErrorCode};
use super::registry::{fold, Outbox, Registry};
use super::wire::valid_name;
use super::{unix_ms, Chat, ClientId};

/// A request to answer after the registry lock is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferred {
    History {
        id: Value,
        stream: Stream,
        window: Window,
        limit: usize,
    },
    Search {
        id: Value,
        search: Search,
    },
}

/// The most messages one `search` returns.
pub const MAX_SEARCH: usize = 100;
/// The longest `q` of a `search`, in bytes.
pub const MAX_QUERY: usize = 200;

/// Answer a `request` from `from`; a history query is returned instead.
pub fn answer(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    from: ClientId,
    id: Value,
    method: Option<&str>,
    params: Value,
) -> Option<Deferred> {
    let reply = match method {
        None => messages::response_error(
            &id,
            ErrorCode::BadRequest,
            "a request needs a method (a string)",
        ),
        Some("history") => match history_query(chat, id, &params) {
            Ok(query) => return Some(query),
            Err(reply) => reply,
        },
        Some("search") => match search_query(id, &params) {
            Ok(query) => return Some(query),
            Err(reply) => reply,
        },
        Some("rename") => rename(chat, reg, out, from, &id, &params),
        Some(method) => plain(chat, reg, from, &id, method, params),
    };
    chat.send(reg, out, from, &reply);
    None
}

/// The methods that only read the registry.
fn plain(
    chat: &Chat,
    reg: &Registry,
    from: ClientId,
    id: &Value,
    method: &str,
    params: Value,
) -> String {
    let result = match method {
        "users" => json!({ "users": reg.user_names() }),
        "topics" => {
            let topics: Vec<Value> = reg
                .active_topics()
                .iter()
                .map(|(n, s)| json!({ "name": n, "subscribers": s }))
                .collect();
            json!({ "topics": topics })
        }
        "whoami" => match reg.name_of(from) {
            Some(name) => json!({
                "id": from.to_string(),
                "name": name,
                "topics": reg.topics_of(from),
            }),
            None => return messages::response_error(id, ErrorCode::BadRequest, "not joined"),
        },
        "time" => json!({ "unix_ms": unix_ms() }),
        "echo" => params,
        "stats" => json!({
            "connections": reg.len(),
            "messages": chat.routed(),
            "uptime_s": chat.started.elapsed().as_secs(),
        }),
        other => {
            let shown: String = other.chars().take(40).collect();
            return messages::response_error(
                id,
                ErrorCode::UnknownMethod,
                &format!("unknown method {shown:?}"),
            );
        }
    };
    messages::response_raw(id, &messages::to_json(&result))
}

/// Check a history request's params; `Err` is the error response.
fn history_query(chat: &Chat, id: Value, params: &Value) -> Result<Deferred, String> {
    let bad = |why: &str| messages::response_error(&id, ErrorCode::BadRequest, why);
    let size = chat.settings.history.max(1);
    let seq_param = |name: &str| match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(()),
    };
    let limit = match params.get("limit") {
        None | Some(Value::Null) => 50.min(size),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => (n as u64).min(size as u64) as usize,
            Some(_) => return Err(bad("limit must be at least 1")),
            None if v.as_u64().is_some() => size,
            None => return Err(bad("limit must be a whole number")),
        },
    };
    let window = match (seq_param("before"), seq_param("after")) {
        (Err(()), _) => return Err(bad("before must be a seq (a whole number)")),
        (_, Err(())) => return Err(bad("after must be a seq (a whole number)")),
        (Ok(Some(_)), Ok(Some(_))) => return Err(bad("before and after cannot be used together")),
        (Ok(Some(b)), Ok(None)) => Window::Before(b),
        (Ok(None), Ok(Some(a))) => Window::After(a),
        (Ok(None), Ok(None)) => Window::Latest,
    };
    let stream = match params.get("topic") {
        None | Some(Value::Null) => Stream::Broadcasts,
        Some(Value::String(t)) => Stream::Topic(fold(t)),
        Some(_) => return Err(bad("topic must be a string")),
    };
    Ok(Deferred::History {
        id,
        stream,
        window,
        limit,
    })
}

/// Check a search request's params; `Err` is the error response.
fn search_query(id: Value, params: &Value) -> Result<Deferred, String> {
    let bad = |why: &str| messages::response_error(&id, ErrorCode::BadRequest, why);
    let q = match params.get("q") {
        Some(Value::String(q)) if q.trim().is_empty() => return Err(bad("q must not be empty")),
        Some(Value::String(q)) if q.len() > MAX_QUERY => {
            return Err(bad(&format!("q is longer than {MAX_QUERY} bytes")))
        }
        Some(Value::String(q)) => q.clone(),
        _ => return Err(bad("params.q must be a string")),
    };
    let limit = match params.get("limit") {
        None | Some(Value::Null) => 20,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => (n as usize).min(MAX_SEARCH),
            _ => return Err(bad("limit must be a whole number, at least 1")),
        },
    };
    let before = match params.get("before") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or(())
                .map_err(|()| bad("before must be a seq"))?,
        ),
    };
    let stream = match params.get("topic") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if valid_name(t) => Some(Stream::Topic(fold(t))),
        Some(_) => return Err(bad("topic must be a topic name")),
    };
    Ok(Deferred::Search {
        id,
        search: Search {
            q,
            stream,
            before,
            // One more than asked, to tell whether there are more.
            limit: limit + 1,
        },
    })
}

/// Run a deferred query, with no lock held: the JSON of the response.
pub fn run(chat: &Chat, deferred: &Deferred) -> String {
    match deferred {
        Deferred::History {
            id,
            stream,
            window,
            limit,
        } => {
            let page = chat.history.page(stream, *window, *limit);
            let result = format!(
                r#"{{"messages":[{}],"complete":{},"more":{}}}"#,
                joined(&page.messages),
                page.complete,
                page.more
            );
            messages::response_raw(id, &result)
        }
        Deferred::Search { id, search } => match chat.history.search(search) {
            Ok(mut found) => {
                let more = found.len() >= search.limit;
                found.truncate(search.limit - 1);
                let result = format!(r#"{{"messages":[{}],"more":{more}}}"#, joined(&found));
                messages::response_raw(id, &result)
            }
            Err(why) => messages::response_error(id, ErrorCode::BadRequest, &why),
        },
    }
}

/// Delivered JSON texts as the body of a JSON array.
fn joined(kept: &[Kept]) -> String {
    let texts: Vec<&str> = kept.iter().map(|k| &*k.json).collect();
    texts.join(",")
}

fn rename(
    chat: &Chat,
    reg: &mut Registry,
    out: &mut Outbox,
    from: ClientId,
    id: &Value,
    params: &Value,
) -> String {
    let Some(new) = params.get("name").and_then(Value::as_str) else {
        return messages::response_error(id, ErrorCode::BadName, "params.name must be a name");
    };
    if !valid_name(new) {
        return messages::response_error(
            id,
            ErrorCode::BadName,
            "a name is 1-32 letters, digits, _ - .",
        );
    }
    if reg.find(new).is_some_and(|owner| owner != from) {
        return messages::response_error(id, ErrorCode::NameTaken, &format!("{new:?} is taken"));
    }
    let Some(old) = reg.rename(from, new) else {
        return messages::response_error(id, ErrorCode::BadRequest, "not joined");
    };
    if old != new {
        chat.presence(reg, out, from, "rename", new, Some(&old));
    }
    messages::response_raw(id, &messages::to_json(&json!({ "name": new })))
}

#[cfg(test)]
mod tests {
    use super::super::bus::LocalBus;
    use super::super::bus::Published;
    use super::super::history::{AfterDurable, History, Kept, Page, Search, Stream, Window};
    use super::super::ring::Ring;
    use super::super::{Chat, Frame, Settings, Sink};
    use parking_lot::Mutex;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    /// A history store whose reads wait until the test lets them go: a
    /// stand-in for a disk that stalls.
    struct Stalling {
        ring: Ring,
        entered: Mutex<mpsc::Sender<()>>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl History for Stalling {
        fn append(&self, stream: &Stream, seq: u64, message: &Published, json: Arc<str>) {
            self.ring.append(stream, seq, message, json);
        }
        fn assigned(&self, _: u64) {}
        fn search(&self, search: &Search) -> Result<Vec<Kept>, String> {
            self.ring.search(search)
        }
        fn after_durable(&self, _: u64, then: AfterDurable) -> Option<AfterDurable> {
            Some(then)
        }
        fn page(&self, stream: &Stream, window: Window, limit: usize) -> Page {
            let _ = self.entered.lock().send(());
            let _ = self.release.lock().recv_timeout(Duration::from_secs(5));
            self.ring.page(stream, window, limit)
        }
        fn forget(&self, stream: &Stream) {
            self.ring.forget(stream);
        }
        fn epoch(&self) -> &str {
            self.ring.epoch()
        }
    }

    /// A connection that keeps every frame's text.
    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);

    impl Sink for Collect {
        fn queue(&self, frame: Frame) -> bool {
            self.0
                .lock()
                .push(String::from_utf8_lossy(&frame).into_owned());
            true
        }
        fn flush(&self) {}
        fn is_cut_off(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_history_read_that_stalls_does_not_stall_anyone_else() {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let history = Arc::new(Stalling {
            ring: Ring::new(10),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        });
        let settings = Settings {
            history: 10,
            max_topics: 10,
            max_text: 100,
            max_message: 1000,
            rate: 0,
            burst: 10,
            batch_messages: 1,
            batch_bytes: 1,
            durable_acks: false,
        };
        let encode: fn(&str) -> Frame = |json| Arc::from(json.as_bytes());
        let chat = Arc::new(Chat::new(
            settings,
            encode,
            history,
            Arc::new(LocalBus::default()),
        ));
        let (a_sink, b_sink) = (Arc::new(Collect::default()), Arc::new(Collect::default()));
        let mut a = chat.join(Some("a"), a_sink.clone());
        let mut b = chat.join(Some("b"), b_sink.clone());
        let reader = {
            let chat = Arc::clone(&chat);
            std::thread::spawn(move || {
                let ask = r#"{"type":"request","id":1,"method":"history"}"#;
                a.on_text(&chat, ask).unwrap();
                a.flush();
            })
        };
        entered
            .recv_timeout(Duration::from_secs(5))
            .expect("the read began");
        // a's history read is stalled; b still chats, and a still gets it.
        b.on_text(&chat, "while a waits").unwrap();
        b.flush();
        assert!(b_sink.0.lock().iter().any(|f| f.contains("while a waits")));
        assert!(a_sink.0.lock().iter().any(|f| f.contains("while a waits")));
        release.send(()).unwrap();
        reader.join().unwrap();
        let last = a_sink.0.lock().last().cloned().unwrap_or_default();
        assert!(last.contains(r#""type":"response""#), "{last}");
    }
}
