//! SIGHUP: apply the settings that can change while connections stay up
//! (the TLS certificate and key, `--allowed-origins`, `--max-per-ip`,
//! `--connect-rate`; the log level is the logger's, set by `main`), and
//! name in the log every other setting that changed but needs a restart.

use crate::config::{Config, Setting};

use super::Server;

/// The flags SIGHUP applies.
pub const RELOADABLE: &[&str] = &[
    "tls-cert",
    "tls-key",
    "log-level",
    "allowed-origins",
    "max-per-ip",
    "connect-rate",
];

impl Server {
    /// Apply `new` where it can be applied; returns the flags whose new
    /// values need a restart. The TLS files are read again even when their
    /// names did not change (a renewed certificate keeps its name).
    pub fn reload(&self, new: &Config) -> Vec<&'static str> {
        let shared = &self.shared;
        let old = shared.settings.lock().clone();
        let changed = changed(&old, &new.settings);
        let mut applied: Vec<&str> = Vec::new();
        let tls_paths_same = !changed.iter().any(|n| n.starts_with("tls-"));
        if let Some(tls) = &shared.tls {
            if tls_paths_same && tls.reload() {
                applied.push("tls certificate");
            }
        }
        if changed.contains(&"allowed-origins") {
            shared.set_origins(new.allowed_origins.clone());
            applied.push("allowed-origins");
        }
        if changed
            .iter()
            .any(|n| matches!(*n, "max-per-ip" | "connect-rate"))
        {
            // A quarter of the pool in force (not of a new, unapplied
            // --max-connections) when --max-per-ip is 0.
            let in_force = Config {
                max_connections: shared.config.max_connections,
                ..new.clone()
            };
            shared
                .per_ip
                .lock()
                .set_limits(in_force.per_ip_cap(), new.connect_rate);
            applied.push("per-address limits");
        }
        if changed.contains(&"log-level") {
            applied.push("log-level");
        }
        let restart: Vec<&'static str> = changed
            .into_iter()
            .filter(|n| !RELOADABLE.contains(n) || n.starts_with("tls-"))
            .collect();
        // What is in force: the new values of what was applied, the old
        // ones of what waits for a restart (so `/status` does not show them
        // and the next SIGHUP names them again).
        let in_force = crate::config::flags()
            .filter_map(|f| {
                let list = if restart.contains(&f.name) {
                    &old
                } else {
                    &new.settings
                };
                list.iter().find(|s| s.name == f.name).cloned()
            })
            .collect();
        *shared.settings.lock() = in_force;
        if applied.is_empty() {
            log::info!("SIGHUP: nothing to reload");
        } else {
            log::info!("SIGHUP: reloaded {}", applied.join(", "));
        }
        if !restart.is_empty() {
            log::warn!(
                "SIGHUP: changed but in force only after a restart: {}",
                restart.join(", ")
            );
        }
        restart
    }
}

/// The flags whose value (or presence) differs between two lists.
fn changed(old: &[Setting], new: &[Setting]) -> Vec<&'static str> {
    let value = |list: &[Setting], name: &str| {
        list.iter()
            .find(|s| s.name == name)
            .map(|s| s.value.clone())
    };
    crate::config::flags()
        .map(|f| f.name)
        .filter(|name| value(old, name) != value(new, name))
        .collect()
}
