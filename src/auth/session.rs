//! Session tokens: 32 random bytes (256 bits, drawn from the OS by the
//! caller) shown to the client once as base64url, and stored only as
//! their SHA-256, so a copy of the database holds no usable token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Bytes of randomness in a token.
pub const TOKEN_BYTES: usize = 32;

/// A new token from `random`: (what the client keeps, what is stored).
pub fn new_token(random: &[u8; TOKEN_BYTES]) -> (String, String) {
    let token = URL_SAFE_NO_PAD.encode(random);
    let stored = stored_form(&token);
    (token, stored)
}

/// What is stored for (and looked up by) a token the client presents.
pub fn stored_form(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_stored_only_as_its_digest() {
        let (token, stored) = new_token(&[9; TOKEN_BYTES]);
        assert_eq!(token.len(), 43, "256 bits in base64url");
        assert_eq!(stored, stored_form(&token));
        assert_eq!(stored.len(), 64);
        assert!(!stored.contains(&token));
        assert_ne!(new_token(&[8; TOKEN_BYTES]).1, stored);
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            stored_form("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
