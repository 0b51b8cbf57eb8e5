//! Close codes and the Close frame payload (RFC 6455 §5.5.1, §7.4).
//!
//! ```text
//! Close payload:  | status code (2 bytes, big endian) | reason (UTF-8) ... |
//!                 |<----------------- at most 125 bytes ---------------->|
//! ```
//!
//! A Close frame may have no payload at all. If it has one, the first two
//! bytes are a status code and the rest, if any, is a UTF-8 reason that is
//! meant for people, not programs.

use super::Error;

/// Status codes from §7.4.1 and the IANA registry (§11.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    NormalClosure,
    /// 1001: the endpoint is going away (server shutdown, idle timeout).
    GoingAway,
    /// 1002: the peer broke the protocol.
    ProtocolError,
    /// 1003: a data type the endpoint cannot accept (binary on `/chat`).
    UnsupportedData,
    /// 1005: reserved; means "no status code was present". Never sent.
    NoStatusReceived,
    /// 1006: reserved; means "closed without a Close frame". Never sent.
    Abnormal,
    /// 1007: a text message that is not UTF-8.
    InvalidPayload,
    /// 1008: a policy was broken (rate limit, slow consumer).
    PolicyViolation,
    /// 1009: a frame or message over the size limit.
    MessageTooBig,
    /// 1010: the client needed an extension the server did not offer.
    MandatoryExtension,
    /// 1011: the server hit an unexpected condition.
    InternalError,
    /// Any other code: 1012-1014 (IANA), 3000-3999 (registered), 4000-4999
    /// (private use), or an invalid one.
    Other(u16),
}

/// The named codes, with their numbers and names: the one table that
/// `as_u16`, `from` and `name` read.
const NAMED: [(CloseCode, u16, &str); 11] = [
    (CloseCode::NormalClosure, 1000, "normal closure"),
    (CloseCode::GoingAway, 1001, "going away"),
    (CloseCode::ProtocolError, 1002, "protocol error"),
    (CloseCode::UnsupportedData, 1003, "unsupported data"),
    (CloseCode::NoStatusReceived, 1005, "no status received"),
    (CloseCode::Abnormal, 1006, "abnormal closure"),
    (CloseCode::InvalidPayload, 1007, "invalid payload data"),
    (CloseCode::PolicyViolation, 1008, "policy violation"),
    (CloseCode::MessageTooBig, 1009, "message too big"),
    (CloseCode::MandatoryExtension, 1010, "mandatory extension"),
    (CloseCode::InternalError, 1011, "internal error"),
];

impl CloseCode {
    /// The number on the wire.
    pub fn as_u16(self) -> u16 {
        match self {
            CloseCode::Other(code) => code,
            named => NAMED
                .iter()
                .find(|(c, _, _)| *c == named)
                .map_or(0, |(_, n, _)| *n),
        }
    }

    /// May this code appear in a Close frame on the wire (§7.4)?
    ///
    /// 0-999 are unused, 1004 is reserved, 1005, 1006 and 1015 are only for
    /// reporting and "MUST NOT be set as a status code in a Close control
    /// frame", 1016-2999 are unassigned, and 5000 and up do not exist.
    pub fn is_valid_on_wire(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// A short lowercase name, for logs and `--trace`.
    pub fn name(self) -> &'static str {
        let code = self.as_u16();
        if let Some((_, _, name)) = NAMED.iter().find(|(_, n, _)| *n == code) {
            return name;
        }
        match code {
            1012 => "service restart",
            1013 => "try again later",
            1014 => "bad gateway",
            3000..=3999 => "registered",
            4000..=4999 => "private use",
            _ => "invalid",
        }
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        NAMED
            .iter()
            .find(|(_, n, _)| *n == code)
            .map_or(CloseCode::Other(code), |(c, _, _)| *c)
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.as_u16(), self.name())
    }
}

/// A decoded Close payload: `None` when the frame had no payload.
pub type ClosePayload = Option<(CloseCode, String)>;

/// Decode and check a Close frame's payload (§5.5.1).
pub fn parse_payload(payload: &[u8]) -> Result<ClosePayload, Error> {
    match payload {
        [] => Ok(None),
        // A status code is two bytes; one byte cannot be a Close body.
        [_] => Err(Error::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !CloseCode::is_valid_on_wire(code) {
                return Err(Error::InvalidCloseCode(code));
            }
            // §5.5.1: the reason is UTF-8; §8.1: invalid UTF-8 fails the
            // connection (1007).
            let reason = std::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
            Ok(Some((CloseCode::from(code), reason.to_owned())))
        }
    }
}

/// Encode a Close payload: the code, then the reason cut to fit 125 bytes
/// (at a character boundary, so it stays valid UTF-8).
pub fn encode_payload(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(2 + end);
    out.extend_from_slice(&code.as_u16().to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_payload_means_no_status() {
        assert_eq!(parse_payload(&[]), Ok(None));
    }

    #[test]
    fn one_byte_payload_is_a_protocol_error() {
        assert_eq!(parse_payload(&[0x03]), Err(Error::InvalidClosePayload));
    }

    #[test]
    fn code_and_reason_are_decoded() {
        let p = encode_payload(CloseCode::GoingAway, "bye");
        assert_eq!(p, [0x03, 0xe9, b'b', b'y', b'e']);
        assert_eq!(
            parse_payload(&p),
            Ok(Some((CloseCode::GoingAway, "bye".into())))
        );
    }

    #[test]
    fn codes_that_must_not_be_on_the_wire_are_refused() {
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let p = code.to_be_bytes();
            assert_eq!(
                parse_payload(&p),
                Err(Error::InvalidCloseCode(code)),
                "code {code}"
            );
        }
    }

    #[test]
    fn registered_and_private_codes_are_accepted() {
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(parse_payload(&code.to_be_bytes()).is_ok(), "code {code}");
        }
    }

    #[test]
    fn reason_must_be_utf8() {
        assert_eq!(
            parse_payload(&[0x03, 0xe8, 0xce, 0xba, 0xe1]),
            Err(Error::InvalidUtf8)
        );
    }

    #[test]
    fn long_reasons_are_cut_at_a_char_boundary() {
        let reason = "é".repeat(100);
        let p = encode_payload(CloseCode::NormalClosure, &reason);
        assert!(p.len() <= 125);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
    }
}
