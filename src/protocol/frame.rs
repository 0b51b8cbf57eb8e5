//! One WebSocket frame (RFC 6455 §5.2), with masking (§5.3).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! This module only turns bytes into a [`FrameHeader`] and back. It never
//! reads a socket and never allocates for a payload: the caller decides what
//! to do with the payload bytes that follow the header (see
//! [`super::session`]). Parsing follows the `httparse` convention: input that
//! is too short is [`Status::Partial`], not an error.

use super::Error;

/// The FIN bit: this frame is the last one of its message (§5.2).
pub const FIN: u8 = 0b1000_0000;
/// The three reserved bits RSV1-3; only extensions may set them (§5.2).
pub const RSV_MASK: u8 = 0b0111_0000;
/// The low four bits of the first byte hold the opcode.
pub const OPCODE_MASK: u8 = 0b0000_1111;
/// The MASK bit of the second byte: a masking key follows the length (§5.3).
pub const MASK: u8 = 0b1000_0000;
/// The low seven bits of the second byte: the length, or 126 / 127.
pub const LEN7_MASK: u8 = 0b0111_1111;
/// `len7 == 126`: the real length is the next 16 bits.
const LEN16: u8 = 126;
/// `len7 == 127`: the real length is the next 64 bits.
const LEN64: u8 = 127;
/// Control frames carry at most 125 bytes of payload (§5.5).
pub const MAX_CONTROL_PAYLOAD: u64 = 125;
/// Frame opcodes (§5.2, §11.8). Values 3-7 and 11-15 are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a later fragment of a fragmented message.
    Continuation,
    /// 0x1: the first frame of a UTF-8 text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: the closing handshake (§5.5.1).
    Close,
    /// 0x9: a heartbeat that must be answered with a Pong (§5.5.2).
    Ping,
    /// 0xA: the answer to a Ping, or an unsolicited heartbeat (§5.5.3).
    Pong,
}

impl OpCode {
    /// The 4-bit value on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Control frames are the opcodes with the high bit set (§5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }

    /// A short lowercase name, for logs and `--trace`.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Continuation => "continuation",
            OpCode::Text => "text",
            OpCode::Binary => "binary",
            OpCode::Close => "close",
            OpCode::Ping => "ping",
            OpCode::Pong => "pong",
        }
    }
}

impl TryFrom<u8> for OpCode {
    type Error = Error;

    fn try_from(value: u8) -> Result<Self, Error> {
        match value {
            0x0 => Ok(OpCode::Continuation),
            0x1 => Ok(OpCode::Text),
            0x2 => Ok(OpCode::Binary),
            0x8 => Ok(OpCode::Close),
            0x9 => Ok(OpCode::Ping),
            0xA => Ok(OpCode::Pong),
            // §5.2: "If an unknown opcode is received, the receiving endpoint
            // MUST _Fail the WebSocket Connection_."
            other => Err(Error::ReservedOpCode(other)),
        }
    }
}

/// Result of a parse that may need more input (the `httparse` convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The value, and how many input bytes it used.
    Complete(T, usize),
    /// Not enough bytes yet; call again when more have arrived.
    Partial,
}

/// A decoded frame header: everything before the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: the last frame of a message.
    pub fin: bool,
    /// RSV1-3 as the three low bits (`0b000` without extensions).
    pub rsv: u8,
    /// What the payload is.
    pub opcode: OpCode,
    /// The 4-byte masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes, as the header claims it.
    pub payload_len: u64,
}

impl FrameHeader {
    /// How many bytes this header takes on the wire.
    pub fn encoded_len(&self) -> usize {
        2 + extended_len_bytes(self.payload_len) + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Append the encoded header to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut b0 = self.opcode.as_u8() | ((self.rsv & 0b111) << 4);
        if self.fin {
            b0 |= FIN;
        }
        let mask_bit = if self.mask.is_some() { MASK } else { 0 };
        out.push(b0);
        // §5.2: "the minimal number of bytes MUST be used to encode the length".
        match self.payload_len {
            len @ 0..=125 => out.push(mask_bit | len as u8),
            len @ 126..=0xFFFF => {
                out.push(mask_bit | LEN16);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(mask_bit | LEN64);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

fn extended_len_bytes(len: u64) -> usize {
    match len {
        0..=125 => 0,
        126..=0xFFFF => 2,
        _ => 8,
    }
}

/// Parse one frame header from the start of `buf`.
///
/// Checks every rule that can be checked from the header alone: reserved
/// bits, reserved opcodes, control frame size and fragmentation, and the
/// 64-bit length's most significant bit. Masking and size limits depend on
/// who is reading and are checked by [`super::session::Session`].
pub fn parse_header(buf: &[u8]) -> Result<Status<FrameHeader>, Error> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(Status::Partial),
    };
    let fin = b0 & FIN != 0;
    let rsv = (b0 & RSV_MASK) >> 4;
    let opcode = OpCode::try_from(b0 & OPCODE_MASK)?;
    let masked = b1 & MASK != 0;

    let (payload_len, mut pos) = match b1 & LEN7_MASK {
        LEN16 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(Status::Partial),
        },
        LEN64 => match buf.get(2..10) {
            Some(b) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(b);
                let len = u64::from_be_bytes(be);
                // §5.2: "the most significant bit MUST be 0".
                if len >> 63 != 0 {
                    return Err(Error::LengthTopBitSet);
                }
                (len, 10)
            }
            None => return Ok(Status::Partial),
        },
        len7 => (u64::from(len7), 2),
    };

    if opcode.is_control() {
        // §5.5: "All control frames MUST have a payload length of 125 bytes
        // or less and MUST NOT be fragmented."
        if payload_len > MAX_CONTROL_PAYLOAD {
            return Err(Error::ControlFrameTooLong { len: payload_len });
        }
        if !fin {
            return Err(Error::FragmentedControlFrame);
        }
    }
    // §5.2: "MUST be 0 unless an extension is negotiated that defines
    // meanings for non-zero values". We negotiate no extension.
    if rsv != 0 {
        return Err(Error::ReservedBits { rsv });
    }

    let mask = if masked {
        match buf.get(pos..pos + 4) {
            Some(k) => {
                pos += 4;
                Some([k[0], k[1], k[2], k[3]])
            }
            None => return Ok(Status::Partial),
        }
    } else {
        None
    };

    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len,
    };
    Ok(Status::Complete(header, pos))
}

/// XOR `data` with the masking key (§5.3), in place.
///
/// `offset` is how many payload bytes came before `data`, so a payload may
/// be unmasked in pieces as it arrives: byte `i` of the payload is XORed
/// with `key[i % 4]`. Masking and unmasking are the same operation.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that data[0] lines up with key[offset % 4].
    let k: [u8; 4] = std::array::from_fn(|i| key[(offset + i) % 4]);
    // XOR eight bytes at a time; byte order does not matter because the
    // same bytes go in and come out in the same positions.
    let k8 = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ k8).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= k[i % 4];
    }
}

/// Encode a whole unfragmented server frame (unmasked, §5.1: "A server MUST
/// NOT mask any frames that it sends to the client").
pub fn encode(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut out = Vec::with_capacity(header.encoded_len() + payload.len());
    header.encode_into(&mut out);
    out.extend_from_slice(payload);
    out
}

/// Encode a frame the way a client sends it: masked with `key` (§5.3).
/// The server never sends these; tests and the load generator do.
pub fn encode_masked(fin: bool, opcode: OpCode, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut out = Vec::with_capacity(header.encoded_len() + payload.len());
    header.encode_into(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
    out
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
