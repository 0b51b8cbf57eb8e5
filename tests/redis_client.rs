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
