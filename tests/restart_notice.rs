//! Shutdown tells every chat client when to come back (issue 16): a
//! `restarting` notice with its own random `retry_after_ms` within
//! `--restart-spread`, then Close 1001; `/echo` clients get only the Close.

mod support;

use std::collections::HashSet;
use std::time::Duration;
use support::chat::User;
use support::Raw;
use tungstenite::Message;

#[test]
fn each_chat_client_is_told_its_own_delay_then_closed_with_1001() {
    let server = support::start(|c| c.restart_spread = Duration::from_millis(5000));
    let addr = server.local_addr();
    let mut users: Vec<User> = (0..16)
        .map(|i| User::join(addr, &format!("n{i}")))
        .collect();
    let mut echo = Raw::connect(addr, "/echo");
    let stopping = std::thread::spawn(move || server.shutdown());
    let mut delays = HashSet::new();
    for u in &mut users {
        let notice = loop {
            let frame = u.recv();
            if frame["type"] == "notice" {
                break frame;
            }
            assert_eq!(
                frame["type"], "presence",
                "only presence may come before: {frame}"
            );
        };
        assert_eq!(notice["event"], "restarting");
        let ms = notice["retry_after_ms"].as_u64().expect("a number");
        assert!(ms <= 5000, "{ms} is within --restart-spread");
        delays.insert(ms);
        match u.ws.read() {
            Ok(Message::Close(Some(close))) => assert_eq!(u16::from(close.code), 1001),
            other => panic!("expected Close 1001 after the notice: {other:?}"),
        }
    }
    assert!(
        delays.len() >= 12,
        "delays are spread, not shared: {delays:?}"
    );
    echo.expect_close(1001);
    stopping.join().unwrap();
}
