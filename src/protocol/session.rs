//! From frames to messages (RFC 6455 §5.4 fragmentation, §5.5 control
//! frames, §8.1 UTF-8), with size limits.
//!
//! ```text
//! bytes from the socket ──► Session::read ──► Step { header?, event? }
//!                              │
//!   header ─► rules (mask, limits, continuation order)
//!   payload ─► unmask ─► control buffer (≤125 B) or message buffer
//!                        └─ text: UTF-8 checked once, as each chunk arrives
//!   FIN ─► Event::Message / Ping / Pong / Close
//! ```
//!
//! The session is a push parser: it takes whatever bytes have arrived, even
//! half a frame, and consumes as many as it can. Payload bytes are unmasked
//! and UTF-8-checked as they arrive, so a bad byte sequence in a text
//! message fails the connection at once (§8.1: "When an endpoint is to
//! interpret a byte stream as UTF-8 but finds that the byte stream is not,
//! in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
//! Connection_"), not after the last fragment.
//!
//! Memory is bounded by the limits: a header that claims more than the
//! limit is refused before a single payload byte is stored.

use super::close::{self, ClosePayload};
use super::frame::{self, FrameHeader, OpCode, Status};
use super::Error;

/// Size limits for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest payload of a single frame.
    pub max_frame: u64,
    /// The largest message, all fragments together.
    pub max_message: u64,
}

/// A complete data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; the session has checked it is UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// What a finished frame means to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The last fragment of a text or binary message arrived.
    Message(Message),
    /// A Ping: answer with a Pong carrying the same payload (§5.5.2).
    Ping(Vec<u8>),
    /// A Pong; unsolicited ones are simply ignored (§5.5.3).
    Pong(Vec<u8>),
    /// A Close frame with its (checked) code and reason (§5.5.1).
    Close(ClosePayload),
}

/// The outcome of one [`Session::read`] call.
#[derive(Debug, Default)]
pub struct Step {
    /// How many input bytes were used; the caller drops them.
    pub consumed: usize,
    /// A frame header that was just parsed (for tracing).
    pub header: Option<FrameHeader>,
    /// Payload bytes of the current frame consumed by this step.
    pub payload: std::ops::Range<usize>,
    /// An event, when a frame finished one.
    pub event: Option<Event>,
}

/// The frame whose payload is arriving.
#[derive(Debug)]
struct InFrame {
    header: FrameHeader,
    /// Payload bytes received so far.
    received: u64,
}

/// The data message being assembled from fragments.
#[derive(Debug)]
enum InMessage {
    Binary(Vec<u8>),
    /// Text is checked once, as it arrives, and kept as a `String`.
    Text {
        checked: String,
        /// The start of a character cut by the end of the last chunk (at
        /// most 3 bytes): checked when the next chunk completes it.
        cut: Vec<u8>,
    },
}

impl InMessage {
    fn len(&self) -> usize {
        match self {
            InMessage::Binary(data) => data.len(),
            InMessage::Text { checked, cut } => checked.len() + cut.len(),
        }
    }
}

/// Receiving side of one server connection.
#[derive(Debug)]
pub struct Session {
    limits: Limits,
    frame: Option<InFrame>,
    message: Option<InMessage>,
    /// Payload of the control frame in progress (at most 125 bytes).
    control: Vec<u8>,
    /// Closing: data payloads are skipped, not stored (see
    /// [`discard_data`](Session::discard_data)).
    discarding: bool,
}

impl Session {
    /// A session for the server side of a connection: every incoming frame
    /// must be masked (§5.1).
    pub fn new(limits: Limits) -> Session {
        Session {
            limits,
            frame: None,
            message: None,
            control: Vec::new(),
            discarding: false,
        }
    }

    /// Bytes held for the message being assembled: the capacity of its
    /// buffers, which is what it costs (the server's memory budget counts
    /// it).
    pub fn buffered(&self) -> usize {
        match &self.message {
            None => 0,
            Some(InMessage::Binary(data)) => data.capacity(),
            Some(InMessage::Text { checked, cut }) => checked.capacity() + cut.capacity(),
        }
    }

    /// From now on data payloads are skipped, and the partial message is
    /// let go: a connection that is closing reads on only to find the
    /// peer's Close (§7.1.1), so storing what comes before it is waste.
    /// Messages still end (as empty ones) so the frame rules hold.
    pub fn discard_data(&mut self) {
        self.discarding = true;
        self.message = match self.message {
            Some(InMessage::Binary(_)) => Some(InMessage::Binary(Vec::new())),
            Some(InMessage::Text { .. }) => Some(InMessage::Text {
                checked: String::new(),
                cut: Vec::new(),
            }),
            None => None,
        };
    }

    /// Has a frame (or a fragmented message) begun and not yet finished?
    /// (A header still being read is the caller's: it holds those bytes.)
    pub fn in_progress(&self) -> bool {
        self.frame.is_some() || self.message.is_some()
    }

    /// Consume bytes from the front of `input`.
    ///
    /// Returns how many bytes were used, plus the header that was parsed and
    /// the event that was completed, if any. When `consumed` is 0 and there
    /// is no event, more input is needed. Call again with the rest of the
    /// input until then: one call finishes at most one frame.
    pub fn read(&mut self, input: &[u8]) -> Result<Step, Error> {
        let mut step = Step::default();
        if self.frame.is_none() {
            let (header, len) = match frame::parse_header(input)? {
                Status::Complete(header, len) => (header, len),
                Status::Partial => return Ok(step),
            };
            self.start_frame(header)?;
            step.consumed = len;
            step.header = Some(header);
        }

        let Some(current) = self.frame.as_mut() else {
            return Ok(step);
        };
        let header = current.header;
        let remaining = header.payload_len - current.received;
        let available = (input.len() - step.consumed) as u64;
        let take = remaining.min(available) as usize;
        let chunk = &input[step.consumed..step.consumed + take];
        let offset = current.received as usize;
        current.received += take as u64;
        step.payload = step.consumed..step.consumed + take;
        step.consumed += take;
        let finished = current.received == header.payload_len;

        self.take_payload(header, chunk, offset)?;
        if finished {
            self.frame = None;
            step.event = self.finish_frame(header)?;
        }
        Ok(step)
    }

    /// Check a new header against the rules that depend on this side and
    /// on what came before.
    fn start_frame(&mut self, header: FrameHeader) -> Result<(), Error> {
        // §5.1: "The server MUST close the connection upon receiving a
        // frame that is not masked."
        if header.mask.is_none() {
            return Err(Error::UnmaskedFrame);
        }
        if header.payload_len > self.limits.max_frame {
            return Err(Error::FrameTooBig {
                size: header.payload_len,
                max: self.limits.max_frame,
            });
        }
        match header.opcode {
            OpCode::Continuation => {
                // §5.4: continuation frames only follow a non-final frame.
                let Some(message) = &self.message else {
                    return Err(Error::UnexpectedContinuation);
                };
                let size = message.len() as u64 + header.payload_len;
                if size > self.limits.max_message {
                    let max = self.limits.max_message;
                    return Err(Error::MessageTooBig { size, max });
                }
            }
            OpCode::Text | OpCode::Binary => {
                // §5.4: fragments of one message are not interleaved with
                // another message's.
                if self.message.is_some() {
                    return Err(Error::ExpectedContinuation);
                }
                if header.payload_len > self.limits.max_message {
                    let max = self.limits.max_message;
                    return Err(Error::MessageTooBig {
                        size: header.payload_len,
                        max,
                    });
                }
                self.message = Some(match header.opcode {
                    OpCode::Text => InMessage::Text {
                        checked: String::new(),
                        cut: Vec::new(),
                    },
                    _ => InMessage::Binary(Vec::new()),
                });
            }
            // §5.4: "Control frames MAY be injected in the middle of a
            // fragmented message." Their size was checked by parse_header.
            OpCode::Close | OpCode::Ping | OpCode::Pong => self.control.clear(),
        }
        self.frame = Some(InFrame {
            header,
            received: 0,
        });
        Ok(())
    }

    /// Unmask a chunk of payload into the right buffer and check text.
    fn take_payload(
        &mut self,
        header: FrameHeader,
        chunk: &[u8],
        offset: usize,
    ) -> Result<(), Error> {
        let key = header.mask.unwrap_or([0; 4]);
        if header.opcode.is_control() {
            let start = self.control.len();
            self.control.extend_from_slice(chunk);
            frame::apply_mask(&mut self.control[start..], key, offset);
            return Ok(());
        }
        if self.discarding {
            return Ok(());
        }
        match self.message.as_mut() {
            None => Ok(()),
            Some(InMessage::Binary(data)) => {
                let start = data.len();
                data.extend_from_slice(chunk);
                frame::apply_mask(&mut data[start..], key, offset);
                Ok(())
            }
            Some(InMessage::Text { checked, cut }) => {
                // Unmask after the cut character, if any, so it completes.
                let start = cut.len();
                cut.extend_from_slice(chunk);
                frame::apply_mask(&mut cut[start..], key, offset);
                take_text(checked, cut)
            }
        }
    }

    /// A frame's last payload byte arrived: emit what it completes.
    fn finish_frame(&mut self, header: FrameHeader) -> Result<Option<Event>, Error> {
        let control = std::mem::take(&mut self.control);
        match header.opcode {
            OpCode::Ping => Ok(Some(Event::Ping(control))),
            OpCode::Pong => Ok(Some(Event::Pong(control))),
            OpCode::Close => Ok(Some(Event::Close(close::parse_payload(&control)?))),
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if !header.fin {
                    return Ok(None);
                }
                match self.message.take() {
                    None => Ok(None),
                    Some(InMessage::Binary(data)) => {
                        Ok(Some(Event::Message(Message::Binary(data))))
                    }
                    // A character cut off by the end of the message is invalid.
                    Some(InMessage::Text { cut, .. }) if !cut.is_empty() => Err(Error::InvalidUtf8),
                    Some(InMessage::Text { checked, .. }) => {
                        Ok(Some(Event::Message(Message::Text(checked))))
                    }
                }
            }
        }
    }
}

/// Check newly arrived text (`bytes`: a cut character from the last chunk,
/// then this chunk, unmasked) and move it into `checked`. Whatever ends in
/// the middle of a character stays in `bytes` for the next chunk.
///
/// The cut is found first, so every whole character is checked once (the
/// up to 3 bytes of a cut one are looked at again when it completes).
/// `from_utf8` tells two failures apart: `error_len() == Some(_)` is a
/// sequence that can never become valid (fail now, §8.1), `None` one cut
/// off by the end of the input.
fn take_text(checked: &mut String, bytes: &mut Vec<u8>) -> Result<(), Error> {
    let whole = bytes.len() - cut_character_len(bytes);
    let text = std::str::from_utf8(&bytes[..whole]).map_err(|_| Error::InvalidUtf8)?;
    checked.push_str(text);
    bytes.drain(..whole);
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_some() => Err(Error::InvalidUtf8),
        _ => Ok(()),
    }
}

/// How many bytes at the end of `bytes` start a character the next chunk
/// may complete: a lead byte followed by fewer continuation bytes
/// (`10xxxxxx`) than it announces. Whether they can really complete is
/// for `from_utf8` to say.
fn cut_character_len(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0b1100_0000 != 0b1000_0000 {
            let announced = match byte {
                0b1100_0000..=0b1101_1111 => 2,
                0b1110_0000..=0b1110_1111 => 3,
                0b1111_0000..=0b1111_0111 => 4,
                _ => 1,
            };
            return if announced > back { back } else { 0 };
        }
    }
    0
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
