//! File descriptors: the budget that caps how many connections a process
//! can hold, whatever `--max-connections` says.
//!
//! ```text
//!  each connection ........ 1 descriptor (its socket, shared by one Arc)
//!  the server itself ...... FIXED (listener, reserve, std streams, signal pipe, ...)
//!  refused ............... up to REJECT_QUEUE waiting for their 503, and
//!                          MAX_LINGERING while it drains (see refuse.rs)
//! ```
//!
//! At start-up the soft `RLIMIT_NOFILE` (often 1024) is raised to the hard
//! limit, which an unprivileged process may do, and the budget is logged;
//! a budget too small for `--max-connections` is a warning, not an error:
//! connections past it get 503 (see `listener.rs`).

/// Descriptors the server holds besides its connections: stdin, stdout,
/// stderr, the listener, the reserve, the signal pipe (2), and room for
/// what a library opens (a log file, /proc reads).
pub const FIXED: u64 = 16;

/// Raise the soft descriptor limit to the hard one; log the budget and
/// warn when it cannot hold `max_connections`.
pub fn raise_and_check(max_connections: usize, refused: usize) {
    let needed = max_connections as u64 + refused as u64 + FIXED;
    let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            log::warn!("cannot read the descriptor limit: {e}");
            return;
        }
    };
    let limit = if soft < hard {
        match rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                log::warn!("cannot raise the descriptor limit from {soft} to {hard}: {e}");
                soft
            }
        }
    } else {
        soft
    };
    let raised = if limit > soft {
        format!(" (raised from {soft})")
    } else {
        String::new()
    };
    log::info!(
        "descriptors: limit {limit}{raised}; --max-connections {max_connections} needs up to {needed} \
         (one per connection, {} for the server)",
        needed - max_connections as u64
    );
    if limit < needed {
        let fits = limit.saturating_sub(refused as u64 + FIXED);
        log::warn!(
            "the descriptor limit {limit} holds about {fits} connections, not {max_connections}: \
             raise it (ulimit -n, or LimitNOFILE= in a systemd unit) or lower --max-connections; \
             connections past it get 503"
        );
    }
}
