//! The extra listeners of a TLS server (issue 15): `--listen-plain ADDR`
//! serves everything in plain text (for a local reverse proxy or a health
//! checker on loopback), and `--redirect-http ADDR` answers every request
//! with `308` to the same path over https. With or without TLS,
//! `--metrics-listen ADDR` serves only `/metrics`, `/status` and `/healthz`
//! (issue 16, `ops.rs`). Each has its own accept thread (`ws-accept-plain`,
//! `ws-accept-redirect`, `ws-accept-metrics`) feeding the one worker pool,
//! with the same per-address admission.

use crossbeam_channel::Sender;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::listener::{accept_loop, Accepted, Door};
use super::pool::Pool;
use super::refuse::Refused;
use super::shared::Shared;
use super::socket;
use crate::{Config, Error};

/// Bind the extra listeners the configuration asks for.
pub fn bind(config: &Config) -> Result<Vec<(Door, TcpListener)>, Error> {
    let wanted = [
        (Door::Plain, config.listen_plain),
        (Door::Redirect, config.redirect_http),
        (Door::Metrics, config.metrics_listen),
    ];
    let mut bound = Vec::new();
    for (door, addr) in wanted {
        let Some(addr) = addr else { continue };
        let listener = socket::listen(addr, config.max_connections)
            .map_err(|source| Error::Bind { addr, source })?;
        bound.push((door, listener));
    }
    Ok(bound)
}

/// Start an accept thread for each; a listener whose thread cannot start
/// is logged and closed.
pub fn spawn(
    bound: Vec<(Door, TcpListener)>,
    shared: &Arc<Shared>,
    pool: &Arc<Pool<Accepted>>,
    reject: Sender<Refused>,
) -> Vec<(Door, SocketAddr, JoinHandle<()>)> {
    let mut running = Vec::new();
    for (door, listener) in bound {
        let Ok(addr) = listener.local_addr() else {
            continue;
        };
        let (what, name) = match door {
            Door::Plain => ("plain, without TLS", "ws-accept-plain"),
            Door::Metrics => ("metrics and status", "ws-accept-metrics"),
            _ => ("http, redirecting to https", "ws-accept-redirect"),
        };
        let (shared2, pool2, reject2) = (Arc::clone(shared), Arc::clone(pool), reject.clone());
        let stack = shared.config.thread_stack;
        match shared.threads.spawn_service(name, stack, move || {
            accept_loop(listener, door, shared2, pool2, reject2)
        }) {
            Ok(thread) => {
                log::info!("listening ({what}) on {addr}");
                running.push((door, addr, thread));
            }
            Err(e) => log::error!("cannot start {name} for {addr}: {e}"),
        }
    }
    running
}

/// Wake an accept() blocked on `addr`: connect to it.
pub fn wake(mut addr: SocketAddr) {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

/// `308` to `https://HOST[:PORT]TARGET`, the host from the request's
/// `Host` (its port dropped) and the port of the TLS listener.
pub fn redirect(host: Option<&str>, target: &str, tls_port: u16) -> Option<String> {
    let host = host?.trim();
    let name = match host.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next()?),
        None => host.split(':').next()?.to_owned(),
    };
    if name.is_empty() || name.contains(['/', '@', ' ']) || !target.starts_with('/') {
        return None;
    }
    Some(match tls_port {
        443 => format!("https://{name}{target}"),
        port => format!("https://{name}:{port}{target}"),
    })
}

#[cfg(test)]
mod tests {
    use super::redirect;

    #[test]
    fn redirects_keep_the_host_and_path_and_take_the_tls_port() {
        let to = |host, target, port| redirect(Some(host), target, port);
        assert_eq!(
            to("chat.example.org", "/?name=a", 443).unwrap(),
            "https://chat.example.org/?name=a"
        );
        assert_eq!(
            to("chat.example.org:80", "/x", 8443).unwrap(),
            "https://chat.example.org:8443/x"
        );
        assert_eq!(to("[::1]:80", "/", 443).unwrap(), "https://[::1]/");
        assert_eq!(redirect(None, "/", 443), None);
        assert_eq!(to("evil.example/x", "/", 443), None);
        assert_eq!(to("a", "http://b/", 443), None);
    }
}
