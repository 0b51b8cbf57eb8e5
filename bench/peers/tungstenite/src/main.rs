//! Peer for bench/run.sh: thread-per-connection on tungstenite, the way it
//! is usually done: a reader thread and a writer thread per connection, a
//! broadcast frame encoded once and shared as `Arc<[u8]>`, and the writer
//! batching whatever is queued before one flush. `/chat` broadcasts every
//! text message to every client; `/echo` echoes. Prints "listening on ADDR".

use std::io::{BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::Message;

type Clients = Arc<Mutex<Vec<(usize, Sender<Arc<[u8]>>)>>>;

fn encode(text: &[u8]) -> Arc<[u8]> {
    let frame = Frame::message(text.to_vec(), OpCode::Data(Data::Text), true);
    let mut out = Vec::with_capacity(frame.len());
    frame.format(&mut out).expect("encode");
    out.into()
}

fn serve(stream: TcpStream, clients: Clients, id: usize) {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    let callback = |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream.try_clone().expect("clone"), callback) else {
        return;
    };
    let (tx, rx) = channel::<Arc<[u8]>>();
    let writer_stream = stream.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let mut out = BufWriter::with_capacity(64 * 1024, writer_stream);
        while let Ok(frame) = rx.recv() {
            if out.write_all(&frame).is_err() {
                return;
            }
            // Batch: everything already queued goes out with one flush.
            while let Ok(more) = rx.try_recv() {
                if out.write_all(&more).is_err() {
                    return;
                }
            }
            if out.flush().is_err() {
                return;
            }
        }
    });
    let chat = path.starts_with("/chat");
    if chat {
        clients.lock().unwrap().push((id, tx.clone()));
    }
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                let frame = encode(text.as_bytes());
                if chat {
                    let targets: Vec<Sender<Arc<[u8]>>> = clients
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|(_, s)| s.clone())
                        .collect();
                    for t in targets {
                        let _ = t.send(Arc::clone(&frame));
                    }
                } else {
                    let _ = tx.send(frame);
                }
            }
            Ok(Message::Binary(data)) if !chat => {
                let f = Frame::message(data.to_vec(), OpCode::Data(Data::Binary), true);
                let mut out = Vec::new();
                let _ = f.format(&mut out);
                let _ = tx.send(out.into());
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    clients.lock().unwrap().retain(|(i, _)| *i != id);
    drop(tx);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
}

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "0".into());
    // A listen backlog of 1024 like the Poco peer (std's 128 drops SYNs when
    // the connect scenario has 256 handshakes in flight).
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("port");
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    socket.bind(&addr.into()).expect("bind");
    socket.listen(1024).expect("listen");
    let listener: TcpListener = socket.into();
    eprintln!("listening on {}", listener.local_addr().unwrap());
    let clients: Clients = Arc::new(Mutex::new(Vec::new()));
    for (id, stream) in listener.incoming().enumerate() {
        let Ok(stream) = stream else { continue };
        let clients = Arc::clone(&clients);
        std::thread::spawn(move || serve(stream, clients, id));
    }
}
