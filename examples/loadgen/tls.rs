//! wss:// for the load generator: a rustls client over the non-blocking
//! mio socket (`Wire`), and over a blocking one for the connect scenario.

use mio::net::TcpStream;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection};
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

/// A client configuration trusting only the CA certificates in `cafile`.
pub fn client_config(cafile: &str) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in CertificateDer::pem_file_iter(cafile).expect("--cafile") {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A new client session for `host` (an IP address or a name).
pub fn session(config: &Arc<ClientConfig>, host: &str) -> ClientConnection {
    let name = ServerName::try_from(host.to_owned()).expect("a server name");
    let mut conn = ClientConnection::new(Arc::clone(config), name).expect("a TLS session");
    conn.set_buffer_limit(None);
    conn
}

/// One connection's bytes, plain or through TLS.
pub struct Wire {
    pub stream: TcpStream,
    tls: Option<ClientConnection>,
}

impl Wire {
    pub fn new(stream: TcpStream, tls: Option<ClientConnection>) -> Wire {
        Wire { stream, tls }
    }

    /// Plaintext that has arrived; `WouldBlock` when none has.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if tls.read_tls(&mut self.stream)? == 0 {
                return Ok(0);
            }
            tls.process_new_packets()
                .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
            // The handshake's own messages, and what waited for it.
            flush(tls, &mut self.stream)?;
        }
    }

    /// Take plaintext: through TLS it is all taken, and its ciphertext
    /// goes out as the socket allows (see `pending`).
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.stream.write(buf);
        };
        let n = tls.writer().write(buf)?;
        flush(tls, &mut self.stream)?;
        Ok(n)
    }

    /// Ciphertext still waiting for room in the socket; tries to send it.
    pub fn pending(&mut self) -> io::Result<bool> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(false);
        };
        flush(tls, &mut self.stream)?;
        Ok(tls.wants_write())
    }
}

/// Send TLS's ciphertext until the socket is full.
fn flush(tls: &mut ClientConnection, stream: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
