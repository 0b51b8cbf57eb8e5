//! Chat-layer fairness (issue 14): no request holds the registry lock for
//! long whatever its input. A bystander's round trip (a broadcast back to
//! itself) stays under 50 ms while others send multicasts naming the
//! most recipients allowed, or while a burst of clients joins a full room.

mod support;

use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::chat::User;
use support::start;

/// The bystander's round trips while `during` runs on other threads: the
/// worst of them.
fn worst_round_trip(bystander: &mut User, rounds: usize) -> Duration {
    let mut worst = Duration::ZERO;
    for n in 0..rounds {
        let text = format!("rtt {n}");
        let started = Instant::now();
        bystander.send(json!({"type": "broadcast", "text": text}));
        loop {
            let got = bystander.recv();
            if got["type"] == "message" && got["text"] == text.as_str() {
                break;
            }
        }
        worst = worst.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    worst
}

fn addr_of(server: &switchboard::Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()))
}

#[test]
fn multicasts_naming_the_most_recipients_leave_a_bystander_quick() {
    let server = start(|c| c.rate = 0);
    let addr = addr_of(&server);
    let mut bystander = User::join_from(2, addr, "bystander");
    let stop = Arc::new(AtomicBool::new(false));
    // Eight senders, each naming 100 recipients (the limit), mostly
    // unknown names, as fast as the server answers.
    let senders: Vec<_> = (0..8u8)
        .map(|s| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut sender = User::join_from(10 + s % 4, addr, &format!("sender{s}"));
                let to: Vec<String> = (0..99)
                    .map(|i| format!("ghost{s}x{i}"))
                    .chain(["bystander".to_owned()])
                    .collect();
                let mut sent = 0;
                while !stop.load(SeqCst) {
                    sender.send(json!({"type": "multicast", "to": to, "text": "x", "id": sent}));
                    // Its ack: the server has done all the work for it.
                    while sender.recv()["type"] != "ack" {}
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // The bystander is named in every multicast: it reads them as it goes.
    let worst = worst_round_trip(&mut bystander, 30);
    stop.store(true, SeqCst);
    let sent: u64 = senders.into_iter().map(|s| s.join().unwrap()).sum();
    println!("{sent} multicasts of 100 recipients; the bystander's worst round trip {worst:?}");
    assert!(sent >= 100, "the senders were busy: {sent}");
    assert!(worst < Duration::from_millis(50), "{worst:?}");
}

#[test]
fn a_burst_of_joins_into_a_full_room_leaves_a_bystander_quick() {
    let server = start(|c| c.connect_rate = 0);
    let addr = addr_of(&server);
    // 200 members, who read nothing while the burst goes on (their queues
    // hold the presence frames).
    let _members: Vec<User> = (0..200)
        .map(|i| User::join_from(20 + (i % 8) as u8, addr, &format!("member{i}")))
        .collect();
    let mut bystander = User::join_from(2, addr, "bystander");
    let stop = Arc::new(AtomicBool::new(false));
    // Four clients join and leave as fast as they can: each join and each
    // leave is a presence frame to 200 members.
    let churners: Vec<_> = (0..4u8)
        .map(|c| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut joins = 0;
                while !stop.load(SeqCst) {
                    drop(User::join_from(40 + c, addr, &format!("churn{c}x{joins}")));
                    joins += 1;
                }
                joins
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let worst = worst_round_trip(&mut bystander, 30);
    stop.store(true, SeqCst);
    let joins: u64 = churners.into_iter().map(|c| c.join().unwrap()).sum();
    println!("{joins} joins into 200 members; the bystander's worst round trip {worst:?}");
    assert!(joins >= 50, "the churners were busy: {joins}");
    assert!(worst < Duration::from_millis(50), "{worst:?}");
}
