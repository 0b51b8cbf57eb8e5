//! `GET /metrics`: the server's counters in the Prometheus text format,
//! version 0.0.4 (`# HELP`, `# TYPE`, then `name{label="value"} number`
//! per line), written by hand over the atomics the server keeps anyway.
//!
//! Labels come only from fixed lists (reasons, close codes, kinds, write
//! paths), never from users or topics, so the number of series is the
//! same on a quiet board and a busy one. Process figures come from
//! `/proc/self` (Linux); where it cannot be read they are left out.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use super::shared::Shared;

/// The `Content-Type` Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Lines of the exposition, one metric family at a time.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn value(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    /// A family of one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.value(name, "", value);
    }

    /// A family with one label taking each of `values`.
    fn by(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl Iterator<Item = (&'static str, u64)>,
    ) {
        self.family(name, "counter", help);
        for (value, n) in values {
            self.value(name, &format!("{label}=\"{value}\""), n);
        }
    }
}

/// The whole exposition.
pub fn render(shared: &Shared) -> String {
    let mut out = Out(String::with_capacity(8 * 1024));
    let s = &shared.stats;
    let (version, commit) = crate::VERSION
        .split_once(" (")
        .map_or((crate::VERSION, ""), |(v, c)| (v, c.trim_end_matches(')')));
    out.family(
        "switchboard_build_info",
        "gauge",
        "The version and commit built; always 1.",
    );
    out.value(
        "switchboard_build_info",
        &format!("version=\"{version}\",commit=\"{commit}\""),
        1,
    );
    out.one(
        "switchboard_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        shared.clock_ms() as f64 / 1000.0,
    );
    out.one(
        "switchboard_connections_open",
        "gauge",
        "Connections being served now (HTTP and WebSocket), one worker each.",
        shared.live(),
    );
    out.one(
        "switchboard_connections_max",
        "gauge",
        "--max-connections: the size of the worker pool.",
        shared.config.max_connections,
    );
    out.one(
        "switchboard_websockets_open",
        "gauge",
        "WebSocket connections open now.",
        s.open_websockets.get(),
    );
    out.one(
        "switchboard_connections_accepted_total",
        "counter",
        "TCP connections accepted.",
        s.accepted.get(),
    );
    out.by(
        "switchboard_connections_rejected_total",
        "Connections refused before they became WebSockets, by reason.",
        "reason",
        s.rejected().into_iter(),
    );
    out.one(
        "switchboard_websocket_upgrades_total",
        "counter",
        "WebSocket handshakes completed.",
        s.upgrades.get(),
    );
    out.by(
        "switchboard_closes_sent_total",
        "Close frames the server started (counted when queued), by code.",
        "code",
        s.closes.each(),
    );
    out.one(
        "switchboard_protocol_errors_total",
        "counter",
        "Connections failed for breaking RFC 6455.",
        s.protocol_errors.get(),
    );
    out.one(
        "switchboard_messages_received_total",
        "counter",
        "WebSocket data messages received (chat and echo).",
        s.messages_in.get(),
    );
    out.by(
        "switchboard_chat_messages_total",
        "Chat messages routed, by kind.",
        "kind",
        shared.chat.routed_by_kind(),
    );
    out.one(
        "switchboard_chat_deliveries_total",
        "counter",
        "Copies of chat messages queued for recipients.",
        shared.chat.deliveries(),
    );
    out.one(
        "switchboard_chat_members",
        "gauge",
        "Users in the chat now.",
        shared.chat.members(),
    );
    out.by(
        "switchboard_frames_written_total",
        "Frames written to sockets, by write path: direct (one frame per write), combined (several in one write), drain (while a thread drains a full socket).",
        "path",
        s.delivered.each(),
    );
    out.one(
        "switchboard_drain_threads_started_total",
        "counter",
        "Drain threads started for sockets that were full.",
        s.drains_started.get(),
    );
    out.one(
        "switchboard_slow_consumer_cutoffs_total",
        "counter",
        "Connections closed with 1008 because they did not read their queue.",
        s.slow_consumers.get(),
    );
    out.one(
        "switchboard_memory_budget_closes_total",
        "counter",
        "Connections closed or cut because the server was over --max-buffered.",
        shared.memory.evictions.load(Relaxed),
    );
    out.one(
        "switchboard_buffered_bytes",
        "gauge",
        "Bytes held for peers now (partial messages and queues).",
        shared.memory.held(),
    );
    out.one(
        "switchboard_websocket_received_bytes_total",
        "counter",
        "Bytes read from WebSocket connections.",
        s.bytes_read.get(),
    );
    out.one(
        "switchboard_websocket_sent_bytes_total",
        "counter",
        "Bytes written to WebSocket connections.",
        s.bytes_written.get(),
    );
    history(&mut out, shared);
    cluster(&mut out, shared);
    if let Some(gate) = &shared.gate {
        out.by(
            "switchboard_auth_failures_total",
            "Failed logins and tokens, by reason.",
            "reason",
            gate.failures.each(),
        );
    }
    process(&mut out);
    out.0
}

/// The history file's figures (without a file there are none).
fn history(out: &mut Out, shared: &Shared) {
    let Some(store) = &shared.store else {
        return;
    };
    let h = store.health();
    out.one(
        "switchboard_history_assigned_seq",
        "gauge",
        "The highest seq given to a message.",
        h.assigned_seq,
    );
    out.one(
        "switchboard_history_persisted_seq",
        "gauge",
        "The highest seq committed to the history file.",
        h.persisted_seq,
    );
    out.one(
        "switchboard_history_lag_messages",
        "gauge",
        "Messages numbered but not yet committed.",
        h.assigned_seq.saturating_sub(h.persisted_seq),
    );
    out.one(
        "switchboard_history_commits_total",
        "counter",
        "Transactions committed to the history file.",
        h.commits,
    );
    out.one(
        "switchboard_history_commit_seconds_total",
        "counter",
        "Time spent committing, successful or not.",
        h.commit_micros as f64 / 1e6,
    );
    out.one(
        "switchboard_history_commit_failures_total",
        "counter",
        "Commits that failed (a full disk, an I/O error).",
        h.failures,
    );
    out.one(
        "switchboard_history_writing",
        "gauge",
        "1 while the last commit succeeded, else 0.",
        u8::from(h.writing),
    );
}

/// Cluster mode's figures (`--redis`; without it there are none).
fn cluster(out: &mut Out, shared: &Shared) {
    let Some(bus) = &shared.redis else {
        return;
    };
    out.one(
        "switchboard_cluster_connected",
        "gauge",
        "1 while both connections to Redis are up (else messages are refused), else 0.",
        u8::from(bus.is_healthy()),
    );
    out.one(
        "switchboard_cluster_delivered_seq",
        "gauge",
        "The highest global seq delivered on this node.",
        crate::chat::bus::Bus::last_seq(bus.as_ref()),
    );
    out.one(
        "switchboard_cluster_nodes",
        "gauge",
        "Nodes of the cluster this one knows of, itself included.",
        shared.chat.remote_nodes().len() + 1,
    );
}

/// Resident memory, threads and descriptors, from `/proc/self`.
fn process(out: &mut Out) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    if let Some(kib) = field("VmRSS:") {
        out.one(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            kib * 1024,
        );
    }
    if let Some(threads) = field("Threads:") {
        out.one(
            "process_threads",
            "gauge",
            "Threads of the process.",
            threads,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.one(
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            fds.count(),
        );
    }
}
