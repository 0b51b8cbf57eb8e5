//! TLS in the process (issue 15): certificates made at test time (a
//! throwaway CA and a server certificate for 127.0.0.1 and localhost), a
//! rustls client under tungstenite, and the real server speaking wss://.

mod support;

use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::TempDir;
use switchboard::protocol::frame::{encode_masked, OpCode};
use switchboard::Server;
use tungstenite::Message;

/// A CA and a server certificate it signed, as PEM files in `dir`.
struct Pki {
    ca: CertificateDer<'static>,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn pki(dir: &TempDir, name: &str) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("test CA {name}"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let (cert_path, key_path) = (
        dir.join(&format!("{name}.crt")),
        dir.join(&format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Pki {
        ca: ca.der().clone(),
        cert: cert_path,
        key: key_path,
    }
}

fn start_tls(pki: &Pki, tweak: impl FnOnce(&mut switchboard::Config)) -> Server {
    support::start(|c| {
        c.tls_cert = Some(pki.cert.clone());
        c.tls_key = Some(pki.key.clone());
        tweak(c);
    })
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `addr` trusting only `ca`.
fn tls_connect(addr: SocketAddr, ca: &CertificateDer<'static>) -> TlsStream {
    tls_over(TcpStream::connect(addr).unwrap(), ca)
}

/// TLS over a TCP connection the caller made.
fn tls_over(tcp: TcpStream, ca: &CertificateDer<'static>) -> TlsStream {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

type Wss = tungstenite::WebSocket<TlsStream>;

fn wss(addr: SocketAddr, ca: &CertificateDer<'static>, path: &str) -> Wss {
    let url = format!("wss://127.0.0.1:{}{path}", addr.port());
    let (ws, response) =
        tungstenite::client(url.as_str(), tls_connect(addr, ca)).expect("wss handshake");
    assert_eq!(response.status(), 101);
    ws
}

/// The server certificate a handshake presented.
fn presented(ws: &Wss) -> Vec<u8> {
    let conn = &ws.get_ref().conn;
    conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn echo_over_tls_of_every_kind_and_size_and_the_closing_handshake() {
    let tmp = TempDir::new("tls-echo");
    let pki = pki(&tmp, "server");
    let server = start_tls(&pki, |c| c.echo_max_message = 8 * 1024 * 1024);
    let mut ws = wss(server.local_addr(), &pki.ca, "/echo");
    assert_eq!(ws.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    for message in [
        Message::text("hello over TLS"),
        Message::binary(vec![1u8, 2, 3]),
        Message::binary(
            (0..4 * 1024 * 1024)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>(),
        ),
    ] {
        ws.send(message.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), message);
    }
    // A fragmented message, frame by frame under tungstenite's feet.
    let mut fragments = encode_masked(false, OpCode::Text, b"Hel", [1, 2, 3, 4]);
    fragments.extend(encode_masked(
        true,
        OpCode::Continuation,
        b"lo",
        [5, 6, 7, 8],
    ));
    ws.get_mut().write_all(&fragments).unwrap();
    ws.get_mut().flush().unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("Hello"));
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match ws.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
        other => panic!("{other:?}"),
    }
    ws.close(None).unwrap();
    match ws.read() {
        Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_broadcast_reaches_100_tls_clients_whose_workers_all_wait_in_read() {
    let tmp = TempDir::new("tls-fanout");
    let pki = pki(&tmp, "server");
    let server = start_tls(&pki, |c| {
        c.rate = 0;
        c.max_per_ip = 200;
    });
    let addr = server.local_addr();
    let ca = pki.ca.clone();
    // On a thread, so a lock-order deadlock fails the test loudly.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut clients: Vec<Wss> = (0..100)
            .map(|i| {
                let mut ws = wss(addr, &ca, &format!("/chat?name=t{i}"));
                let welcome = ws.read().unwrap();
                assert!(welcome.to_text().unwrap().contains("welcome"));
                ws
            })
            .collect();
        clients[0]
            .send(Message::text(
                r#"{"type":"broadcast","text":"to every TLS client"}"#,
            ))
            .unwrap();
        for ws in &mut clients {
            loop {
                let m = ws.read().unwrap();
                if m.to_text().unwrap().contains("to every TLS client") {
                    break;
                }
            }
        }
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("every TLS client got the broadcast (a deadlock would stop here)");
}

#[test]
fn a_slow_tls_reader_is_cut_off_with_1008_like_a_plain_one() {
    let tmp = TempDir::new("tls-slow");
    let pki = pki(&tmp, "server");
    let server = start_tls(&pki, |c| {
        c.rate = 0;
        c.max_queue_bytes = 64 * 1024;
    });
    let addr = server.local_addr();
    // A small receive buffer, so what it does not read stays in the server.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    socket.connect(&addr.into()).unwrap();
    let url = format!("wss://127.0.0.1:{}/chat?name=slow", addr.port());
    let (mut slow, _) =
        tungstenite::client(url.as_str(), tls_over(socket.into(), &pki.ca)).unwrap();
    let mut talker = wss(addr, &pki.ca, "/chat?name=talker");
    // 10 MB of direct messages to it: more than any socket buffer holds.
    let text = "x".repeat(4000);
    for _ in 0..2500 {
        let m = format!(r#"{{"type":"direct","to":"slow","text":"{text}"}}"#);
        if talker.send(Message::text(m)).is_err() {
            break;
        }
    }
    // The slow one reads at last: what was written, then Close 1008.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = 0;
    loop {
        assert!(Instant::now() < deadline, "no Close");
        got += 1;
        match slow.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert_eq!(frame.reason.as_str(), "slow consumer");
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("after {got} messages: {e}"),
        }
    }
    // The talker is fine.
    talker
        .send(Message::text(r#"{"type":"broadcast","text":"still here"}"#))
        .unwrap();
    assert!(got > 10, "it read what was written before its Close: {got}");
}

#[test]
fn plain_http_to_the_tls_port_and_tls_to_a_plain_port_end_quickly() {
    let tmp = TempDir::new("tls-plain");
    let pki = pki(&tmp, "server");
    let server = start_tls(&pki, |c| c.handshake_timeout = Duration::from_millis(500));
    let addr = server.local_addr();
    // Plain HTTP on the TLS port: a plain 400 saying so, then the end.
    let started = Instant::now();
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = plain.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("use https://"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // A stalled handshake: closed after the handshake timeout.
    let started = Instant::now();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let mut sink = Vec::new();
    let _ = stalled.read_to_end(&mut sink);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // A TLS ClientHello to a plain server: refused at once, never a hang.
    let plain_server = support::start(|_| {});
    let started = Instant::now();
    let mut tls = tls_connect(plain_server.local_addr(), &pki.ca);
    let mut byte = [0u8; 1];
    assert!(tls.read(&mut byte).is_err(), "no TLS from a plain port");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections_and_refuses_a_bad_pair() {
    let tmp = TempDir::new("tls-reload");
    let (first, second) = (pki(&tmp, "first"), pki(&tmp, "second"));
    let (cert, key) = (tmp.join("live.crt"), tmp.join("live.key"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let flags = format!(
        "--tls-cert {} --tls-key {} --db :memory:",
        cert.display(),
        key.display()
    );
    let server = support::binary::Binary::start(&tmp.join("unused.db"), &flags, "");
    let hup = || {
        let pid = server.child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
    };
    let mut old = wss(server.addr, &first.ca, "/echo");
    let first_der = presented(&old);
    // The second pair in place, and SIGHUP: new connections get it.
    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    hup();
    assert!(support::eventually(Duration::from_secs(5), || server
        .log_text()
        .contains("tls: reloaded")));
    let new = wss(server.addr, &second.ca, "/echo");
    assert_ne!(
        presented(&new),
        first_der,
        "a new certificate for a new connection"
    );
    // The old connection goes on with the keys it agreed.
    old.send(Message::text("still here")).unwrap();
    assert_eq!(old.read().unwrap(), Message::text("still here"));
    // A bad pair (the first key with the second certificate) is refused.
    std::fs::copy(&first.key, &key).unwrap();
    hup();
    assert!(support::eventually(Duration::from_secs(5), || server
        .log_text()
        .contains("reload refused")));
    let after = wss(server.addr, &second.ca, "/echo");
    assert_eq!(presented(&after), presented(&new), "the good pair stays");
}

#[test]
fn a_plain_listener_serves_without_tls_and_the_redirect_listener_sends_308() {
    let tmp = TempDir::new("tls-doors");
    let pki = pki(&tmp, "server");
    let server = start_tls(&pki, |c| {
        c.listen_plain = Some("127.0.0.1:0".parse().unwrap());
        c.redirect_http = Some("127.0.0.1:0".parse().unwrap());
    });
    let plain = server.door_addr(true).expect("--listen-plain");
    let redirect = server.door_addr(false).expect("--redirect-http");
    // The plain listener: ws:// and /healthz without TLS.
    let mut ws = support::tungstenite(plain, "/echo");
    ws.send(Message::text("in the clear")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("in the clear"));
    let (status, _, _) = support::http(plain, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    // The redirect listener: 308 to the same path on the TLS port.
    let (status, head, _) = support::http(
        redirect,
        b"GET /chat/?name=a HTTP/1.1\r\nHost: chat.example.org:80\r\n\r\n",
    );
    assert_eq!(status, 308, "{head}");
    let port = server.local_addr().port();
    assert!(
        head.contains(&format!(
            "Location: https://chat.example.org:{port}/chat/?name=a\r\n"
        )),
        "{head}"
    );
    // The main listener still speaks only TLS.
    let tls = wss(server.local_addr(), &pki.ca, "/echo");
    drop(tls);
    server.shutdown();
}
