//! A WebSocket load generator for Switchboard and its peers (bench/run.sh).
//!
//! ```text
//! loadgen fanout  --url ws://127.0.0.1:8080 --pid PID --clients 100 --senders 10 --messages 2000 [--rate 0]
//! loadgen echo    --url ... --pid PID --clients 50 --seconds 5
//! loadgen connect --url ... --pid PID --clients 5000
//! loadgen slow    --url ... --pid PID --clients 100 --senders 10 --messages 1000   (fanout + 1 client that never reads)
//! ```
//!
//! A cluster: `--also ws://...` (repeated) adds nodes, the connections are
//! dealt to the nodes in turn; `--also-pid PID` adds their CPU to the
//! server's; `--redis-pid PID` reports Redis's own CPU per message sent.
//! Deliveries that carry a `"seq"` are checked to arrive in increasing
//! order on every connection (`out_of_order`).
//!
//! It must never be the bottleneck, so unlike the server it is not
//! thread-per-connection: `--threads` event loops (mio/epoll) each drive a
//! share of the connections, non-blocking. Every message body carries a
//! token `t=<nanoseconds since the loadgen started>` that receivers find
//! anywhere in the payload, so a server that wraps the text in JSON is
//! measured like one that does not. Server CPU comes from /proc/PID/stat,
//! memory and threads from /proc/PID/status, the loadgen's own CPU from
//! /proc/self/stat. The result is one JSON line on stdout.

use mio::net::TcpStream;

mod tls;
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::protocol::frame::{encode_masked, parse_header, OpCode, Status};
use tls::Wire;

/// Latency histogram: 1 µs buckets to 10 ms, then 100 µs buckets to 10 s.
#[derive(Clone)]
struct Histogram {
    fine: Vec<u64>,
    coarse: Vec<u64>,
    count: u64,
    max_us: u64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            fine: vec![0; 10_000],
            coarse: vec![0; 100_000],
            count: 0,
            max_us: 0,
        }
    }
    fn add(&mut self, us: u64) {
        if us < 10_000 {
            self.fine[us as usize] += 1;
        } else {
            self.coarse[((us / 100) as usize).min(99_999)] += 1;
        }
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }
    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.fine.iter_mut().zip(&other.fine) {
            *a += b;
        }
        for (a, b) in self.coarse.iter_mut().zip(&other.coarse) {
            *a += b;
        }
        self.count += other.count;
        self.max_us = self.max_us.max(other.max_us);
    }
    fn percentile(&self, p: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let want = ((self.count as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (us, n) in self.fine.iter().enumerate() {
            seen += n;
            if seen >= want {
                return us as f64 / 1000.0;
            }
        }
        for (i, n) in self.coarse.iter().enumerate() {
            seen += n;
            if seen >= want {
                return (i * 100) as f64 / 1000.0;
            }
        }
        self.max_us as f64 / 1000.0
    }
}

#[derive(Clone)]
struct Args {
    scenario: String,
    addr: SocketAddr,
    host: String,
    pid: Option<u32>,
    /// More nodes of a cluster (`--also`), and their processes.
    more: Vec<SocketAddr>,
    more_pids: Vec<u32>,
    redis_pid: Option<u32>,
    clients: usize,
    senders: usize,
    messages: usize,
    rate: f64,
    seconds: f64,
    size: usize,
    threads: usize,
    chat_path: String,
    echo_path: String,
    /// wss://: the TLS settings (`--cafile` names the CA to trust).
    tls: Option<Arc<rustls::ClientConfig>>,
    wss: bool,
    cafile: Option<String>,
}

/// wss:// needs `--cafile`: load the CA it names.
fn with_tls(mut a: Args) -> Result<Args, String> {
    if a.wss {
        let cafile = a.cafile.clone().ok_or("wss:// needs --cafile FILE")?;
        a.tls = Some(tls::client_config(&cafile));
    }
    Ok(a)
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let scenario = it
        .next()
        .ok_or("usage: loadgen fanout|echo|connect|slow --url ws://HOST:PORT [...]")?;
    let mut a = Args {
        scenario,
        addr: "127.0.0.1:8080".parse().unwrap(),
        host: "127.0.0.1:8080".into(),
        pid: None,
        more: Vec::new(),
        more_pids: Vec::new(),
        redis_pid: None,
        clients: 100,
        senders: 10,
        messages: 1000,
        rate: 0.0,
        seconds: 5.0,
        size: 64,
        threads: 2,
        chat_path: "/chat".into(),
        echo_path: "/echo".into(),
        tls: None,
        wss: false,
        cafile: None,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--cafile" => a.cafile = Some(v.clone()),
            "--url" => {
                a.wss = v.starts_with("wss://");
                let rest = v
                    .strip_prefix("ws://")
                    .or_else(|| v.strip_prefix("wss://"))
                    .ok_or("--url must start with ws:// or wss://")?;
                a.host = rest.split('/').next().unwrap_or("").to_owned();
                a.addr = a
                    .host
                    .parse()
                    .map_err(|_| format!("--url: need ws://IP:PORT, got {v}"))?;
            }
            "--pid" => a.pid = Some(num(&v)? as u32),
            "--also" => a.more.push(
                v.strip_prefix("ws://")
                    .and_then(|r| r.split('/').next()?.parse().ok())
                    .ok_or(format!("--also: need ws://IP:PORT, got {v}"))?,
            ),
            "--also-pid" => a.more_pids.push(num(&v)? as u32),
            "--redis-pid" => a.redis_pid = Some(num(&v)? as u32),
            "--clients" => a.clients = num(&v)? as usize,
            "--senders" => a.senders = num(&v)? as usize,
            "--messages" => a.messages = num(&v)? as usize,
            "--rate" => a.rate = num(&v)?,
            "--seconds" => a.seconds = num(&v)?,
            "--size" => a.size = num(&v)? as usize,
            "--threads" => a.threads = (num(&v)? as usize).max(1),
            "--chat-path" => a.chat_path = v,
            "--echo-path" => a.echo_path = v,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

/// CPU time of a process in seconds: (user, kernel), from /proc/PID/stat.
fn cpu_seconds(pid: &str) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0);
    };
    // Fields after the ")" of the command name; utime and stime are 14 and 15.
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) / 100.0, ticks(12) / 100.0) // CLK_TCK is 100 on Linux
}

/// (RSS in KiB, threads) from /proc/PID/status.
fn rss_threads(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

fn upgrade_request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// A message body of `size` bytes carrying the send time.
fn body(epoch: Instant, size: usize) -> Vec<u8> {
    let mut b = format!("t={:016x};", epoch.elapsed().as_nanos() as u64).into_bytes();
    b.resize(size.max(b.len()), b'x');
    b
}

/// The number after the first `"seq":` in a payload, if any.
fn seq_of(payload: &[u8]) -> Option<u64> {
    let at = payload.windows(6).position(|w| w == b"\"seq\":")? + 6;
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&payload[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Find `t=<16 hex>` in a payload.
fn token(payload: &[u8]) -> Option<u64> {
    let at = payload.windows(2).position(|w| w == b"t=")?;
    let hex = std::str::from_utf8(payload.get(at + 2..at + 18)?).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

#[derive(PartialEq)]
enum Phase {
    Handshake,
    Open,
    Failed,
}

/// One connection driven by an event loop.
struct Conn {
    wire: Wire,
    phase: Phase,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_at: usize,
    /// Messages this connection still has to send (senders, echo clients).
    to_send: usize,
    /// Echo: the send time of the message in flight.
    in_flight: Option<Instant>,
    /// Next time a paced sender may send.
    next_send: Instant,
    /// The last `"seq"` delivered here (each must be higher).
    last_seq: u64,
}

/// Counters shared by the loops.
struct Shared {
    epoch: Instant,
    open: AtomicUsize,
    failed: AtomicUsize,
    go: AtomicBool,
    stop: AtomicBool,
    delivered: AtomicU64,
    /// When the latest delivery arrived, in nanoseconds since `epoch`.
    last_delivery_ns: AtomicU64,
    sent: AtomicU64,
    /// Bytes received so far (to see when connect-time traffic is over).
    received: AtomicU64,
    /// Deliveries whose `"seq"` was not above the one before.
    out_of_order: AtomicU64,
    hist: Mutex<Histogram>,
}

/// One event loop over a share of the connections.
fn event_loop(
    args: Args,
    shared: Arc<Shared>,
    first: usize,
    count: usize,
    senders: usize,
    path: String,
    interval: Option<Duration>,
) {
    let mut poll = Poll::new().expect("epoll");
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Conn> = Vec::with_capacity(count);
    let mut hist = Histogram::new();
    let request = upgrade_request(&args.host, &path);
    let nodes: Vec<SocketAddr> = std::iter::once(args.addr)
        .chain(args.more.iter().copied())
        .collect();
    for i in 0..count {
        let mut stream = match TcpStream::connect(nodes[(first + i) % nodes.len()]) {
            Ok(s) => s,
            Err(_) => {
                shared.failed.fetch_add(1, Relaxed);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        poll.registry()
            .register(
                &mut stream,
                Token(conns.len()),
                Interest::READABLE | Interest::WRITABLE,
            )
            .expect("register");
        let host = args.addr.ip().to_string();
        let session = args.tls.as_ref().map(|config| tls::session(config, &host));
        conns.push(Conn {
            wire: Wire::new(stream, session),
            phase: Phase::Handshake,
            inbuf: Vec::new(),
            out: request.clone(),
            out_at: 0,
            to_send: if i < senders { args.messages } else { 0 },
            in_flight: None,
            next_send: Instant::now(),
            last_seq: 0,
        });
    }
    let echo = args.scenario == "echo";
    let mut chunk = vec![0u8; 256 * 1024];
    let mut delivered_local = 0u64;
    let mut last_delivery_ns = 0u64;
    // Connections with bytes to write; every connection starts with its
    // upgrade request. Reads happen only on readiness events (epoll).
    let mut dirty: Vec<usize> = (0..conns.len()).collect();
    let mut started = false;
    let mut readable: Vec<usize> = Vec::new();
    let senders_idx: Vec<usize> = (0..conns.len())
        .filter(|&i| conns[i].to_send > 0 || echo)
        .collect();
    while !shared.stop.load(Relaxed) {
        let timeout = if interval.is_some() || !dirty.is_empty() {
            1
        } else {
            20
        };
        let _ = poll.poll(&mut events, Some(Duration::from_millis(timeout)));
        readable.clear();
        for ev in events.iter() {
            let i = ev.token().0;
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                readable.push(i);
            }
            if ev.is_writable() && (conns[i].out_at < conns[i].out.len() || args.tls.is_some()) {
                dirty.push(i);
            }
        }
        let go = shared.go.load(Relaxed);
        let now = Instant::now();
        if go && !started {
            // Paced senders start their clocks now, not at connect time
            // (or they would burst every slot missed while connecting),
            // spread over one interval so they do not send in step.
            started = true;
            for (k, &i) in senders_idx.iter().enumerate() {
                let spread = interval.map_or(Duration::ZERO, |iv| {
                    iv.mul_f64(k as f64 / senders_idx.len().max(1) as f64)
                });
                conns[i].next_send = now + spread;
            }
        }
        // Senders queue new messages (flat out: keep ~64 KiB pending).
        if go {
            for &i in &senders_idx {
                let c = &mut conns[i];
                if c.phase != Phase::Open || c.to_send == 0 {
                    continue;
                }
                let before = c.out.len();
                if echo {
                    if c.in_flight.is_none() {
                        c.in_flight = Some(now);
                        c.out.extend(encode_masked(
                            true,
                            OpCode::Text,
                            &body(shared.epoch, args.size),
                            [1, 2, 3, 4],
                        ));
                    }
                } else {
                    while c.to_send > 0 && c.out.len() - c.out_at < 64 * 1024 {
                        if let Some(iv) = interval {
                            if now < c.next_send {
                                break;
                            }
                            c.next_send += iv;
                        }
                        c.out.extend(encode_masked(
                            true,
                            OpCode::Text,
                            &body(shared.epoch, args.size),
                            [1, 2, 3, 4],
                        ));
                        c.to_send -= 1;
                        shared.sent.fetch_add(1, Relaxed);
                    }
                }
                if c.out.len() > before {
                    dirty.push(i);
                }
            }
        }
        // Read every connection the kernel said is readable.
        for &i in &readable {
            let c = &mut conns[i];
            if c.phase == Phase::Failed {
                continue;
            }
            loop {
                match c.wire.read(&mut chunk) {
                    Ok(0) => {
                        c.phase = Phase::Failed;
                        shared.failed.fetch_add(1, Relaxed);
                        break;
                    }
                    Ok(n) => {
                        c.inbuf.extend_from_slice(&chunk[..n]);
                        shared.received.fetch_add(n as u64, Relaxed);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        c.phase = Phase::Failed;
                        shared.failed.fetch_add(1, Relaxed);
                        break;
                    }
                }
            }
            if c.phase == Phase::Handshake {
                if let Some(end) = c.inbuf.windows(4).position(|w| w == b"\r\n\r\n") {
                    if c.inbuf.starts_with(b"HTTP/1.1 101") {
                        c.phase = Phase::Open;
                        c.inbuf.drain(..end + 4);
                        shared.open.fetch_add(1, Relaxed);
                        if echo {
                            c.to_send = usize::MAX;
                        }
                    } else {
                        c.phase = Phase::Failed;
                        shared.failed.fetch_add(1, Relaxed);
                    }
                }
            }
            if c.phase != Phase::Open {
                continue;
            }
            // Every complete frame.
            let mut at = 0;
            let before = c.out.len();
            while let Ok(Status::Complete(h, n)) = parse_header(&c.inbuf[at..]) {
                let end = at + n + h.payload_len as usize;
                if c.inbuf.len() < end {
                    break;
                }
                let payload = &c.inbuf[at + n..end];
                match h.opcode {
                    OpCode::Ping => {
                        c.out
                            .extend(encode_masked(true, OpCode::Pong, payload, [9, 9, 9, 9]))
                    }
                    OpCode::Text | OpCode::Binary if go => {
                        if let Some(seq) = seq_of(payload) {
                            if seq <= c.last_seq {
                                shared.out_of_order.fetch_add(1, Relaxed);
                            }
                            c.last_seq = seq;
                        }
                        if let Some(t) = token(payload) {
                            let now_ns = shared.epoch.elapsed().as_nanos() as u64;
                            hist.add(now_ns.saturating_sub(t) / 1000);
                            delivered_local += 1;
                            last_delivery_ns = now_ns;
                            if echo {
                                c.in_flight = None;
                            }
                        }
                    }
                    _ => {}
                }
                at = end;
            }
            c.inbuf.drain(..at);
            if c.out.len() > before {
                dirty.push(i);
            }
        }
        // Write what is pending; keep the ones the socket could not take.
        dirty.sort_unstable();
        dirty.dedup();
        dirty.retain(|&i| {
            let c = &mut conns[i];
            if c.phase == Phase::Failed {
                return false;
            }
            while c.out_at < c.out.len() {
                match c.wire.write(&c.out[c.out_at..]) {
                    Ok(n) => c.out_at += n,
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock
                            || e.kind() == ErrorKind::NotConnected =>
                    {
                        return true
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        c.phase = Phase::Failed;
                        shared.failed.fetch_add(1, Relaxed);
                        return false;
                    }
                }
            }
            c.out.clear();
            c.out_at = 0;
            // Through TLS: ciphertext the socket did not take yet.
            match c.wire.pending() {
                Ok(waiting) => waiting,
                Err(_) => {
                    c.phase = Phase::Failed;
                    shared.failed.fetch_add(1, Relaxed);
                    false
                }
            }
        });
        if delivered_local > 0 {
            shared.delivered.fetch_add(delivered_local, Relaxed);
            shared.last_delivery_ns.fetch_max(last_delivery_ns, Relaxed);
            delivered_local = 0;
        }
    }
    shared.hist.lock().unwrap().merge(&hist);
}

fn main() {
    let args = match parse_args().and_then(with_tls) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let pid = args.pid.map(|p| p.to_string());
    match args.scenario.as_str() {
        "fanout" | "slow" | "echo" => traffic(&args, pid.as_deref()),
        "connect" => connect(&args),
        other => {
            eprintln!("loadgen: unknown scenario {other}");
            std::process::exit(2);
        }
    }
}

/// fanout, slow and echo: connect everyone, then send and measure.
fn traffic(args: &Args, pid: Option<&str>) {
    let echo = args.scenario == "echo";
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        open: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        go: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        delivered: AtomicU64::new(0),
        last_delivery_ns: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        hist: Mutex::new(Histogram::new()),
    });
    let path = if echo {
        args.echo_path.clone()
    } else {
        args.chat_path.clone()
    };
    let senders = if echo {
        0
    } else {
        args.senders.min(args.clients)
    };
    // Paced senders: an aggregate rate shared by the senders.
    let interval =
        (args.rate > 0.0 && !echo).then(|| Duration::from_secs_f64(senders as f64 / args.rate));
    let mut loops = Vec::new();
    let mut first = 0;
    for t in 0..args.threads {
        let count = args.clients / args.threads + usize::from(t < args.clients % args.threads);
        let s = senders / args.threads + usize::from(t < senders % args.threads);
        let (a, sh, p) = (args.clone(), Arc::clone(&shared), path.clone());
        loops.push(std::thread::spawn(move || {
            event_loop(a, sh, first, count, s, p, interval)
        }));
        first += count;
    }
    // The slow consumer: a plain socket that completes the handshake and never reads.
    let slow = (args.scenario == "slow").then(|| {
        let mut s = std::net::TcpStream::connect(args.addr).expect("slow client connects");
        s.write_all(&upgrade_request(&args.host, &args.chat_path))
            .unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while shared.open.load(Relaxed) + shared.failed.load(Relaxed) < args.clients
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let connect-time traffic (welcomes, presence events) finish first:
    // wait until nothing has arrived for 300 ms (at most 30 s).
    let settle = Instant::now();
    let mut quiet_since = Instant::now();
    let mut seen = shared.received.load(Relaxed);
    while quiet_since.elapsed() < Duration::from_millis(300)
        && settle.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(50));
        let now = shared.received.load(Relaxed);
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        }
    }
    let opened = shared.open.load(Relaxed);
    let cpu0 = servers_cpu(args, pid);
    let redis0 = args
        .redis_pid
        .map_or((0.0, 0.0), |p| cpu_seconds(&p.to_string()));
    let self0 = cpu_seconds("self");
    let started = Instant::now();
    let started_ns = shared.epoch.elapsed().as_nanos() as u64;
    shared.go.store(true, Relaxed);

    let expected = (senders * args.messages * opened) as u64;
    let mut last_change = Instant::now();
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let d = shared.delivered.load(Relaxed);
        if d != last {
            last = d;
            last_change = Instant::now();
        }
        let done = if echo {
            started.elapsed().as_secs_f64() >= args.seconds
        } else {
            d >= expected
        };
        // Three seconds without a delivery: the rest is lost.
        if done || last_change.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let elapsed = if echo {
        started.elapsed()
    } else {
        // From go to the last delivery, to the nanosecond (the loop above
        // only looks every 20 ms, too coarse for a 100 ms burst).
        let last = shared.last_delivery_ns.load(Relaxed);
        Duration::from_nanos(last.saturating_sub(started_ns)).max(Duration::from_millis(1))
    };
    let cpu1 = servers_cpu(args, pid);
    let redis1 = args
        .redis_pid
        .map_or((0.0, 0.0), |p| cpu_seconds(&p.to_string()));
    let self1 = cpu_seconds("self");
    shared.stop.store(true, Relaxed);
    for l in loops {
        let _ = l.join();
    }
    let delivered = shared.delivered.load(Relaxed);
    let hist = shared.hist.lock().unwrap().clone();
    let secs = elapsed.as_secs_f64();
    let cut_off = slow.map(|mut s| {
        // Drain what it was sent; a server that cut it off ends the stream,
        // one that did not goes quiet (1 s without a byte).
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut sink = vec![0u8; 1 << 16];
        loop {
            match s.read(&mut sink) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    break false
                }
                Err(_) => break true,
            }
        }
    });
    let (server_user, server_sys) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
    let server_cpu = server_user + server_sys;
    let loadgen_cpu = (self1.0 + self1.1) - (self0.0 + self0.1);
    let per_delivery_us = |s: f64| {
        if delivered > 0 {
            s * 1e6 / delivered as f64
        } else {
            0.0
        }
    };
    println!(
        "{{\"scenario\":\"{}\",\"clients\":{},\"opened\":{},\"senders\":{},\"expected\":{},\"delivered\":{},\"loss\":{},\
         \"seconds\":{:.3},\"per_second\":{:.0},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\
         \"server_cpu_s\":{:.2},\"server_cpu_us_per_delivery\":{:.3},\"server_user_us_per_delivery\":{:.3},\
         \"server_sys_us_per_delivery\":{:.3},\"loadgen_cpu_s\":{:.2},\"loadgen_cpu_us_per_delivery\":{:.3},\"slow_cut_off\":{}}}",
        args.scenario,
        args.clients,
        opened,
        senders,
        if echo { delivered } else { expected },
        delivered,
        if echo { 0 } else { expected.saturating_sub(delivered) },
        secs,
        delivered as f64 / secs,
        hist.percentile(0.50),
        hist.percentile(0.90),
        hist.percentile(0.99),
        hist.max_us as f64 / 1000.0,
        server_cpu,
        per_delivery_us(server_cpu),
        per_delivery_us(server_user),
        per_delivery_us(server_sys),
        loadgen_cpu,
        per_delivery_us(loadgen_cpu),
        cut_off.map_or("null".to_owned(), |c| c.to_string()),
    );
    // Cluster figures: a second line the harness merges into the first.
    let sent = shared.sent.load(Relaxed).max(1);
    let redis_cpu = (redis1.0 + redis1.1) - (redis0.0 + redis0.1);
    println!(
        "{{\"out_of_order\":{},\"redis_cpu_s\":{:.2},\"redis_cpu_us_per_message\":{:.1}}}",
        shared.out_of_order.load(Relaxed),
        redis_cpu,
        redis_cpu * 1e6 / sent as f64
    );
}

/// The CPU of the server, or of every node of a cluster: (user, kernel).
fn servers_cpu(args: &Args, pid: Option<&str>) -> (f64, f64) {
    let mut total = pid.map_or((0.0, 0.0), cpu_seconds);
    for p in &args.more_pids {
        let (u, k) = cpu_seconds(&p.to_string());
        total = (total.0 + u, total.1 + k);
    }
    total
}

/// A blocking connection of the connect scenario, plain or TLS.
enum Stream {
    Plain(std::net::TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &std::net::TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// connect: open N idle connections as fast as allowed, hold them, and
/// read the server's memory and threads at the plateau.
fn connect(args: &Args) {
    let pid = args.pid.expect("connect needs --pid");
    let (rss0, threads0) = rss_threads(pid);
    let request = upgrade_request(&args.host, &args.echo_path);
    let started = Instant::now();
    let mut open = Vec::with_capacity(args.clients);
    let mut failed = 0;
    // Handshakes in flight at most, like a polite client pool.
    let window = 256;
    let mut pending: Vec<Stream> = Vec::new();
    let mut done = 0;
    while done < args.clients {
        while pending.len() < window && done + pending.len() < args.clients {
            match std::net::TcpStream::connect(args.addr) {
                Ok(s) => {
                    let mut s = match &args.tls {
                        Some(config) => {
                            let host = args.addr.ip().to_string();
                            Stream::Tls(Box::new(rustls::StreamOwned::new(
                                tls::session(config, &host),
                                s,
                            )))
                        }
                        None => Stream::Plain(s),
                    };
                    if s.write_all(&request).is_ok() {
                        pending.push(s);
                    } else {
                        failed += 1;
                        done += 1;
                    }
                }
                Err(_) => {
                    failed += 1;
                    done += 1;
                }
            }
        }
        for mut s in pending.drain(..) {
            let _ = s.tcp().set_read_timeout(Some(Duration::from_secs(10)));
            let mut head = [0u8; 256];
            match s.read(&mut head) {
                Ok(n) if head[..n].starts_with(b"HTTP/1.1 101") => open.push(s),
                _ => failed += 1,
            }
            done += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let (rss1, threads1) = rss_threads(pid);
    let n = open.len().max(1) as f64;
    println!(
        "{{\"scenario\":\"connect\",\"clients\":{},\"opened\":{},\"failed\":{},\"seconds\":{:.3},\"per_second\":{:.0},\
         \"rss_start_kib\":{},\"rss_kib\":{},\"rss_per_conn_kib\":{:.2},\"threads_start\":{},\"threads\":{}}}",
        args.clients,
        open.len(),
        failed,
        secs,
        open.len() as f64 / secs,
        rss0,
        rss1,
        (rss1 as f64 - rss0 as f64) / n,
        threads0,
        threads1
    );
    drop(open);
}
