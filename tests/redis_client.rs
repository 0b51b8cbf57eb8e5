//! The RESP2 client (`cluster::Conn`) against a real `redis-server` on a
//! unix socket (issue 18's base): commands and every reply type, binary
//! data, pipelining, a Lua script, streams, pub/sub, and a Redis that
//! stalls or goes away: an error after the deadline, never a hang.

mod support;

use std::time::{Duration, Instant};
use support::redis::Redis;
use switchboard::cluster::{Address, Conn, Error, Reply};

fn open(redis: &Redis, timeout: Duration) -> Conn {
    Conn::open(&Address::parse(&redis.url()).unwrap(), timeout).expect("connects")
}

#[test]
fn commands_replies_scripts_streams_and_pubsub() {
    let Some(redis) = Redis::start() else { return };
    let mut c = open(&redis, Duration::from_secs(5));
    assert_eq!(c.call(&["PING"]).unwrap(), Reply::Status("PONG".into()));
    let odd: &[u8] = b"line\r\nnul\0end";
    assert_eq!(
        c.call(&[&b"SET"[..], b"k", odd]).unwrap(),
        Reply::Status("OK".into())
    );
    assert_eq!(
        c.call(&["GET", "k"]).unwrap(),
        Reply::Bulk(Some(odd.to_vec())),
        "binary-safe"
    );
    assert_eq!(c.call(&["GET", "missing"]).unwrap(), Reply::Bulk(None));
    assert_eq!(c.call(&["INCR", "n"]).unwrap(), Reply::Int(1));
    assert!(
        matches!(c.call(&["INCR", "k"]).unwrap(), Reply::Error(e) if e.contains("not an integer"))
    );
    // Pipelined: three sent, three read in order.
    for _ in 0..3 {
        c.send(&["INCR", "n"]).unwrap();
    }
    let got: Vec<i64> = (0..3).map(|_| c.read().unwrap().int().unwrap()).collect();
    assert_eq!(got, [2, 3, 4]);
    // A script: atomic increment, append to a capped stream, return both.
    let script = "local seq = redis.call('INCR', KEYS[1]) \
                  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100, seq .. '-0', 'm', ARGV[1]) \
                  return {seq, id}";
    let reply = c
        .call(&["EVAL", script, "2", "seq", "log", "hello"])
        .unwrap();
    assert_eq!(reply.items()[0], Reply::Int(1));
    assert_eq!(reply.items()[1].text(), Some("1-0"));
    let range = c.call(&["XRANGE", "log", "-", "+"]).unwrap();
    let entry = &range.items()[0];
    assert_eq!(entry.items()[0].text(), Some("1-0"));
    assert_eq!(entry.items()[1].items()[1].text(), Some("hello"));
    // Pub/sub: a subscriber connection gets what another publishes.
    let mut sub = open(&redis, Duration::from_secs(5));
    sub.send(&["SUBSCRIBE", "chat"]).unwrap();
    assert_eq!(sub.read().unwrap().items()[0].text(), Some("subscribe"));
    assert_eq!(
        c.call(&["PUBLISH", "chat", "hi there"]).unwrap(),
        Reply::Int(1)
    );
    let pushed = sub.read().unwrap();
    let parts: Vec<&str> = pushed.items().iter().filter_map(Reply::text).collect();
    assert_eq!(parts, ["message", "chat", "hi there"]);
}

#[test]
fn a_stalled_or_vanished_redis_is_an_error_in_bounded_time() {
    let Some(redis) = Redis::start() else { return };
    let mut c = open(&redis, Duration::from_millis(300));
    assert!(c.call(&["PING"]).is_ok());
    // Paused (SIGSTOP): the read times out, and the connection is dead.
    redis.signal("STOP");
    let started = Instant::now();
    let stalled = c.call(&["PING"]);
    redis.signal("CONT");
    assert!(matches!(stalled, Err(Error::Io(_))), "{stalled:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(c.is_dead());
    assert!(
        matches!(c.call(&["PING"]), Err(Error::Dead)),
        "dead stays dead"
    );
    // A new connection works again; then Redis goes away for good.
    let mut again = open(&redis, Duration::from_millis(300));
    assert!(again.call(&["PING"]).is_ok());
    let socket = redis.socket.clone();
    drop(redis);
    assert!(again.call(&["PING"]).is_err());
    let address = Address::Unix {
        path: socket,
        db: 0,
    };
    assert!(Conn::open(&address, Duration::from_millis(300)).is_err());
}

/// The publish script (`cluster::script`) from four publishers at once:
/// every message gets a distinct seq with no gap, a subscriber receives
/// them in seq order, and the stream holds the same messages in the same
/// order under `seq-1`, so a range of it back-fills exactly what was missed.
#[test]
fn the_publish_script_gives_one_global_order() {
    use switchboard::cluster::order::Reorder;
    use switchboard::cluster::script::{self, CHANNEL, EPOCH_KEY, LOG_KEY, SEQ_KEY};
    let Some(redis) = Redis::start() else { return };
    let mut admin = open(&redis, Duration::from_secs(5));
    let mut sub = open(&redis, Duration::from_secs(5));
    sub.send(&["SUBSCRIBE", CHANNEL]).unwrap();
    assert_eq!(sub.read().unwrap().items()[0].text(), Some("subscribe"));
    let sha = open(&redis, Duration::from_secs(5))
        .call(&["SCRIPT", "LOAD", script::PUBLISH])
        .unwrap()
        .text()
        .unwrap()
        .to_owned();
    // No epoch in Redis (it lost its data, or another history): refused.
    let far = "99999999999999";
    let args = |deadline| {
        [
            "EVALSHA", &sha, "3", SEQ_KEY, LOG_KEY, EPOCH_KEY, "x", "10", CHANNEL, "e1", deadline,
        ]
    };
    let refused = admin.call(&args(far)).unwrap();
    assert!(
        matches!(refused, Reply::Error(ref e) if e.starts_with("EPOCH")),
        "{refused:?}"
    );
    admin.call(&["SET", EPOCH_KEY, "e1"]).unwrap();
    // Run after its deadline (its sender was told it failed): refused.
    let late = admin.call(&args("1000")).unwrap();
    assert!(
        matches!(late, Reply::Error(ref e) if e.starts_with("LATE")),
        "{late:?}"
    );
    assert_eq!(
        admin.call(&["EXISTS", SEQ_KEY]).unwrap().int(),
        Some(0),
        "nothing numbered"
    );
    let (publishers, each) = (4, 250);
    let threads: Vec<_> = (0..publishers)
        .map(|p| {
            let (url, sha) = (redis.url(), sha.clone());
            std::thread::spawn(move || {
                let mut c =
                    Conn::open(&Address::parse(&url).unwrap(), Duration::from_secs(5)).unwrap();
                (0..each)
                    .map(|i| {
                        let payload = format!("p{p}-{i}");
                        let args = [
                            "EVALSHA",
                            &sha,
                            "3",
                            SEQ_KEY,
                            LOG_KEY,
                            EPOCH_KEY,
                            &payload,
                            "100000",
                            CHANNEL,
                            "e1",
                            "99999999999999",
                        ];
                        c.call(&args).unwrap().int().unwrap() as u64
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut given: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    given.sort_unstable();
    let total = (publishers * each) as u64;
    assert_eq!(given, (1..=total).collect::<Vec<_>>(), "distinct, no gap");

    // The subscriber saw them in seq order, each publisher's in its own order.
    let mut received = Vec::new();
    while received.len() < total as usize {
        let pushed = sub.read().unwrap();
        let data = match &pushed.items()[2] {
            Reply::Bulk(Some(d)) => d.clone(),
            other => panic!("{other:?}"),
        };
        let (seq, payload) = script::split_pushed(&data).unwrap();
        received.push((seq, String::from_utf8(payload.to_vec()).unwrap()));
    }
    let seqs: Vec<u64> = received.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "pub/sub in seq order"
    );
    for p in 0..publishers {
        let mine: Vec<&str> = received
            .iter()
            .filter(|(_, m)| m.starts_with(&format!("p{p}-")))
            .map(|(_, m)| m.as_str())
            .collect();
        let sent: Vec<String> = (0..each).map(|i| format!("p{p}-{i}")).collect();
        assert_eq!(mine, sent, "publisher {p}'s messages keep their order");
    }

    // A node that missed 100..=109 reads exactly those back from the stream,
    // and the reorder buffer releases everything in order once they are in.
    let mut order: Reorder<String> = Reorder::starting_after(99, 1000);
    for (seq, m) in received.iter().filter(|(s, _)| *s >= 110 && *s <= 120) {
        assert!(order.offer(*seq, m.clone()).is_empty(), "waits for the gap");
    }
    assert_eq!(order.missing(), Some((100, 109)));
    let (from, to) = (script::entry_id(100), script::entry_id(109));
    let range = open(&redis, Duration::from_secs(5))
        .call(&["XRANGE", LOG_KEY, &from, &to])
        .unwrap();
    assert_eq!(range.items().len(), 10);
    let mut delivered = Vec::new();
    for entry in range.items() {
        let seq: u64 = entry.items()[0]
            .text()
            .unwrap()
            .trim_end_matches("-1")
            .parse()
            .unwrap();
        let payload = entry.items()[1].items()[1].text().unwrap().to_owned();
        assert_eq!(
            payload,
            received[seq as usize - 1].1,
            "the stream agrees with pub/sub"
        );
        delivered.extend(order.offer(seq, payload));
    }
    let seqs: Vec<u64> = delivered.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (100..=120).collect::<Vec<_>>());
}

/// Names across hosts (`cluster::names`): the first claim wins; a claim
/// lives while it is refreshed and ends when it is not; only its owner
/// refreshes or frees it; a node that stops beating is found dead once.
#[test]
fn names_are_unique_across_nodes_and_dead_nodes_are_found() {
    use switchboard::cluster::names;
    let Some(redis) = Redis::start() else { return };
    let mut c = open(&redis, Duration::from_secs(2));
    let ttl = Duration::from_millis(300);
    assert!(names::claim(&mut c, "alice", "a/1", ttl).unwrap());
    assert!(
        names::claim(&mut c, "alice", "a/1", ttl).unwrap(),
        "ours already"
    );
    assert!(
        !names::claim(&mut c, "alice", "b/7", ttl).unwrap(),
        "taken on another node"
    );
    assert!(
        !names::release(&mut c, "alice", "b/7").unwrap(),
        "not b's to free"
    );
    let keep = |c: &mut switchboard::cluster::Conn, owner: &str| {
        names::keep_all(c, ["alice".to_owned()].into_iter(), owner, ttl).unwrap()[0]
    };
    // Kept, it outlives its first ttl.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(150));
        assert!(keep(&mut c, "a/1"));
    }
    assert_eq!(
        names::owner(&mut c, "alice").unwrap().as_deref(),
        Some("a/1")
    );
    // Not kept, it expires and another node may take it; the old owner's
    // keep then says it is lost, and does not steal it back.
    std::thread::sleep(Duration::from_millis(400));
    assert!(names::claim(&mut c, "alice", "b/7", ttl).unwrap());
    assert!(!keep(&mut c, "a/1"));
    assert_eq!(
        names::owner(&mut c, "alice").unwrap().as_deref(),
        Some("b/7")
    );
    assert!(names::release(&mut c, "alice", "b/7").unwrap());
    assert_eq!(names::owner(&mut c, "alice").unwrap(), None);
    // A keep of a free name claims it again (a release raced a rejoin).
    assert!(keep(&mut c, "a/1"));
    assert_eq!(
        names::owner(&mut c, "alice").unwrap().as_deref(),
        Some("a/1")
    );

    // Nodes: a stops beating, b goes on; a is found dead, and forgotten once.
    names::beat(&mut c, "a", "list of a", ttl).unwrap();
    names::beat(&mut c, "b", "list of b", ttl).unwrap();
    let (mut alive, dead) = names::nodes(&mut c).unwrap();
    alive.sort();
    assert_eq!(alive[0], ("a".to_owned(), "list of a".to_owned()));
    assert!(dead.is_empty());
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        names::beat(&mut c, "b", "list of b", ttl).unwrap();
    }
    let (alive, dead) = names::nodes(&mut c).unwrap();
    assert_eq!((alive.len(), dead), (1, vec!["a".to_owned()]));
    assert!(names::forget(&mut c, "a").unwrap());
    assert!(
        !names::forget(&mut c, "a").unwrap(),
        "only one node handles it"
    );
    assert!(names::nodes(&mut c).unwrap().1.is_empty());
}
