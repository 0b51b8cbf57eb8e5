//! How a WebSocket connection ends: who ended it and with which code
//! (for its log line and `--trace`), and which deadline comes first while
//! it runs (the handler's sign-in deadline, or a begun frame's
//! `--frame-timeout`).

use std::time::Instant;

use crate::protocol::CloseCode;

/// Who ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClosedBy {
    /// The client: its Close, or its end of TCP.
    Peer,
    /// The server: our Close (an error, a timeout, shutdown, a cut-off).
    Server,
    /// Neither: the socket failed.
    Error,
}

impl ClosedBy {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ClosedBy::Peer => "peer",
            ClosedBy::Server => "server",
            ClosedBy::Error => "error",
        }
    }
}

/// How a connection ended, for the log line: the close code (1006 when no
/// Close frame was exchanged) and who ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ending {
    pub code: CloseCode,
    pub by: ClosedBy,
}

impl Ending {
    pub(super) fn server(code: CloseCode) -> Ending {
        Ending {
            code,
            by: ClosedBy::Server,
        }
    }

    /// `--trace`: how the connection ended, in TCP terms.
    pub(super) fn narrate(&self, id: u64) {
        let how = match (self.by, self.code) {
            (ClosedBy::Peer, CloseCode::Abnormal) => {
                "the client closed TCP without a Close frame (reported as 1006)"
            }
            (ClosedBy::Peer, _) => {
                "the client sent Close, the server answered with Close and closed TCP first"
            }
            (ClosedBy::Error, _) => "the connection failed (reset or write timeout)",
            (ClosedBy::Server, _) => "the server sent Close, then FIN; the socket is closed",
        };
        log::info!("conn={id} tcp: closed: {how}");
    }
}

/// The nearer of the handler's deadline and a begun frame's: the instant,
/// and whether it is the frame's.
pub(super) fn nearest(handler: Option<Instant>, frame: Option<Instant>) -> Option<(Instant, bool)> {
    match (handler, frame) {
        (Some(h), Some(f)) if f < h => Some((f, true)),
        (Some(h), _) => Some((h, false)),
        (None, Some(f)) => Some((f, true)),
        (None, None) => None,
    }
}
