//! RFC 6455, the WebSocket protocol, with no I/O: bytes in, values out.
//!
//! | file | RFC 6455 | what it does |
//! |---|---|---|
//! | [`handshake`] | §4.2 | checks the HTTP upgrade request, builds the 101 reply |
//! | [`frame`] | §5.2-5.3 | one frame header, masking |
//! | [`close`] | §5.5.1, §7.4 | close codes and the Close payload |
//! | [`session`] | §5.4-5.5, §8.1 | frames into messages: fragments, control frames, UTF-8, limits |
//! | [`trace`] | §5.2-5.5 | a readable picture of a frame, for `--trace` |
//!
//! Nothing here knows about sockets, threads or chat; `server` feeds it the
//! bytes it reads and writes the bytes it returns.

pub mod close;
pub mod frame;
pub mod handshake;
pub mod session;
pub mod trace;

pub use close::CloseCode;
pub use frame::{FrameHeader, OpCode, Status};
pub use session::{Limits, Message, Session};

use std::fmt;

/// Every way a peer can break RFC 6455 on an open connection, one variant
/// per rule. [`Error::close_code`] says which close code fails the
/// connection for it (§7.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// RSV1-3 set without a negotiated extension (§5.2).
    ReservedBits { rsv: u8 },
    /// Opcode 0x3-0x7 or 0xB-0xF (§5.2).
    ReservedOpCode(u8),
    /// A 64-bit length with its most significant bit set (§5.2).
    LengthTopBitSet,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlFrameTooLong { len: u64 },
    /// A control frame without FIN (§5.5).
    FragmentedControlFrame,
    /// A client frame without the MASK bit (§5.1).
    UnmaskedFrame,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is open (§5.4).
    ExpectedContinuation,
    /// One frame longer than the frame limit.
    FrameTooBig { size: u64, max: u64 },
    /// A message (all its fragments) longer than the message limit.
    MessageTooBig { size: u64, max: u64 },
    /// A text message or close reason that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A Close payload of exactly one byte (§5.5.1).
    InvalidClosePayload,
    /// A close code that must not be sent on the wire (§7.4).
    InvalidCloseCode(u16),
}

impl Error {
    /// The status code to fail the connection with (§7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            Error::InvalidUtf8 => CloseCode::InvalidPayload,
            Error::FrameTooBig { .. } | Error::MessageTooBig { .. } => CloseCode::MessageTooBig,
            _ => CloseCode::ProtocolError,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ReservedBits { rsv } => write!(f, "reserved bits set (rsv={rsv:03b})"),
            Error::ReservedOpCode(op) => write!(f, "reserved opcode {op:#x}"),
            Error::LengthTopBitSet => write!(f, "64-bit length has its top bit set"),
            Error::ControlFrameTooLong { len } => {
                write!(f, "control frame of {len} bytes (at most 125)")
            }
            Error::FragmentedControlFrame => write!(f, "fragmented control frame"),
            Error::UnmaskedFrame => write!(f, "client frame is not masked"),
            Error::UnexpectedContinuation => {
                write!(f, "continuation frame with no message started")
            }
            Error::ExpectedContinuation => {
                write!(
                    f,
                    "new data frame while a fragmented message is in progress"
                )
            }
            Error::FrameTooBig { size, max } => write!(f, "frame of {size} bytes (limit {max})"),
            Error::MessageTooBig { size, max } => {
                write!(f, "message of at least {size} bytes (limit {max})")
            }
            Error::InvalidUtf8 => write!(f, "invalid utf-8 in text"),
            Error::InvalidClosePayload => write!(f, "close payload of 1 byte"),
            Error::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
        }
    }
}

impl std::error::Error for Error {}
