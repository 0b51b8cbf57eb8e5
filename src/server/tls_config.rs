//! The server's TLS settings: the certificate chain and key from PEM
//! files (`--tls-cert`, `--tls-key`), TLS 1.2 and 1.3 with the ring
//! provider, ALPN `http/1.1`; and their reload on SIGHUP, for new
//! handshakes only (connections already open keep the keys they agreed).
//!
//! ```text
//!  start:   read both files, check they match ─► Arc<ServerConfig>
//!  accept:  read lock, clone the Arc ─► this connection's handshake
//!  SIGHUP:  read both files again ─► valid? swap the Arc : log, keep the old
//! ```

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The TLS settings in force, and where they came from.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Load the pair; an error names the file and what is wrong.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let config = server_config(cert, key)?;
        Ok(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(config),
        })
    }

    /// The settings for a new handshake.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read())
    }

    /// Read the files again; use them for new handshakes if they are a
    /// valid pair, else keep the old ones. True if reloaded.
    pub fn reload(&self) -> bool {
        match server_config(&self.cert, &self.key) {
            Ok(config) => {
                *self.current.write() = config;
                log::info!(
                    "tls: reloaded {} and {} for new connections",
                    self.cert.display(),
                    self.key.display()
                );
                true
            }
            Err(e) => {
                log::error!("tls: reload refused, keeping the certificate in use: {e}");
                false
            }
        }
    }
}

/// A rustls server configuration from a PEM chain and a PEM key.
fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| format!("--tls-cert and --tls-key do not make a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
