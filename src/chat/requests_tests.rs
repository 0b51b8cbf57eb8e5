//! `requests.rs`: a history read that stalls must not stall the chat.
use crate::chat::bus::LocalBus;
use crate::chat::bus::Published;
use crate::chat::history::{AfterDurable, History, Kept, Page, Search, Stream, Window};
use crate::chat::identity::Standing;
use crate::chat::ring::Ring;
use crate::chat::{Chat, Frame, Settings, Sink};
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
    fn close(&self, _: u16, _: &str) {}
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
        auth: "optional",
        registration_open: true,
        max_recipients: 10,
        max_subscriptions: 10,
    };
    let encode: fn(&str) -> Frame = |json| Arc::from(json.as_bytes());
    let chat = Arc::new(Chat::new(
        settings,
        encode,
        history,
        Arc::new(LocalBus::default()),
    ));
    let (a_sink, b_sink) = (Arc::new(Collect::default()), Arc::new(Collect::default()));
    let join = |name, sink: Arc<Collect>| {
        chat.join(Some(name), Standing::Guest, Arc::from("test"), &[], sink)
    };
    let mut a = join("a", a_sink.clone());
    let mut b = join("b", b_sink.clone());
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
