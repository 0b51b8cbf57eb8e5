//! HS256 JSON Web Tokens from an application backend (RFC 7519, signed
//! as in RFC 7515 §A.1), written on `hmac` + `sha2` rather than a JWT
//! crate that would bring RSA and EC code along.
//!
//! ```text
//!  base64url(header) . base64url(claims) . base64url(HMAC-SHA256(key, header.claims))
//!  header: {"alg":"HS256","typ":"JWT","kid":"k1"}     claims: {"sub":"alice","exp":1764000000,"aud":..,"roles":[..]}
//! ```
//!
//! Refused, each with its own [`Refused`] reason: a token over
//! [`MAX_TOKEN`] bytes (before anything is decoded), one that is not
//! three base64url parts of JSON, an `alg` other than HS256 (`none`
//! included), an unknown `kid`, a signature that does not match (compared
//! in constant time), a missing or past `exp`, a missing `sub`, or an
//! `aud` that is not ours.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::Role;

/// The longest token looked at.
pub const MAX_TOKEN: usize = 4096;

/// The keys tokens may be signed with, by `kid` (for rotation); a token
/// without `kid` must be signed with the key named `""`.
pub struct Keys {
    keys: Vec<(String, Vec<u8>)>,
    /// The `aud` tokens must name, if any.
    audience: Option<String>,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The account name (`sub`).
    pub name: String,
    pub roles: Vec<Role>,
    /// Seconds since the Unix epoch (`exp`).
    pub expires: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    TooLong,
    Malformed,
    Algorithm,
    UnknownKey,
    BadSignature,
    Expired,
    NoSubject,
    WrongAudience,
}

impl Keys {
    pub fn new(keys: Vec<(String, Vec<u8>)>, audience: Option<String>) -> Keys {
        Keys { keys, audience }
    }

    /// Check `token` at time `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, Refused> {
        if token.len() > MAX_TOKEN {
            return Err(Refused::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refused::Malformed);
        };
        let header_json = decode_json(header)?;
        if header_json["alg"] != "HS256" {
            return Err(Refused::Algorithm);
        }
        let kid = match &header_json["kid"] {
            Value::Null => "",
            Value::String(kid) => kid.as_str(),
            _ => return Err(Refused::Malformed),
        };
        let key = self
            .keys
            .iter()
            .find(|(name, _)| name == kid)
            .map(|(_, key)| key)
            .ok_or(Refused::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refused::Malformed)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Refused::UnknownKey)?;
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(claims.as_bytes());
        // Constant time: how much of a forged signature matches is not
        // told by how long the answer takes.
        mac.verify_slice(&signature)
            .map_err(|_| Refused::BadSignature)?;
        let claims = decode_json(claims)?;
        let expires = claims["exp"].as_u64().ok_or(Refused::Expired)?;
        if expires <= now {
            return Err(Refused::Expired);
        }
        let name = claims["sub"].as_str().ok_or(Refused::NoSubject)?.to_owned();
        if let Some(ours) = &self.audience {
            let named = match &claims["aud"] {
                Value::String(aud) => aud == ours,
                Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(ours.as_str())),
                _ => false,
            };
            if !named {
                return Err(Refused::WrongAudience);
            }
        }
        let roles = claims["roles"]
            .as_array()
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| r.as_str().and_then(Role::parse))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Claims {
            name,
            roles,
            expires,
        })
    }
}

fn decode_json(part: &str) -> Result<Value, Refused> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Refused::Malformed)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(Refused::Malformed),
    }
}

/// Sign `claims` with `key` (tests, and a backend written in Rust).
pub fn sign(header: &Value, claims: &Value, key: &[u8]) -> String {
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(head.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_764_000_000;

    fn keys() -> Keys {
        Keys::new(
            vec![
                ("k1".into(), b"first secret".to_vec()),
                ("k2".into(), b"second secret".to_vec()),
            ],
            Some("switchboard".into()),
        )
    }

    fn token(kid: &str, key: &[u8], claims: Value) -> String {
        sign(
            &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
            &claims,
            key,
        )
    }

    fn good() -> Value {
        json!({"sub": "alice", "exp": NOW + 60, "aud": "switchboard", "roles": ["moderator", "wizard"]})
    }

    #[test]
    fn rfc_7515_appendix_a1_verifies() {
        // RFC 7515 §A.1: the example HS256 JWS and its key.
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let jws = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
                   eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.\
                   dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let keys = Keys::new(vec![(String::new(), key)], None);
        // Its claims have no `sub`, and it expired in 2011: the signature
        // is what passes here.
        assert_eq!(keys.verify(jws, 1_300_819_379), Err(Refused::NoSubject));
        assert_eq!(keys.verify(jws, 1_300_819_381), Err(Refused::Expired));
        let forged = jws.replace("dBjftJeZ4CVP", "dBjftJeZ4CVQ");
        assert_eq!(
            keys.verify(&forged, 1_300_819_379),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn a_good_token_gives_its_name_and_known_roles() {
        let claims = keys()
            .verify(&token("k2", b"second secret", good()), NOW)
            .unwrap();
        assert_eq!(claims.name, "alice");
        assert_eq!(claims.roles, [Role::Moderator]);
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let k = keys();
        let t = token("k1", b"first secret", good());
        let (head, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let other_claims = URL_SAFE_NO_PAD
            .encode(json!({"sub": "root", "exp": NOW + 60, "aud": "switchboard"}).to_string());
        assert_eq!(
            k.verify(&format!("{head}.{other_claims}.{sig}"), NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            k.verify(&token("k1", b"another server's secret", good()), NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            k.verify(&token("k9", b"first secret", good()), NOW),
            Err(Refused::UnknownKey)
        );
        assert_eq!(k.verify(&t, NOW + 60), Err(Refused::Expired));
        let mut no_exp = good();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            k.verify(&token("k1", b"first secret", no_exp), NOW),
            Err(Refused::Expired)
        );
        let mut other_aud = good();
        other_aud["aud"] = json!("someone-else");
        assert_eq!(
            k.verify(&token("k1", b"first secret", other_aud), NOW),
            Err(Refused::WrongAudience)
        );
    }

    #[test]
    fn alg_none_other_algorithms_oversized_and_truncated_tokens_are_refused() {
        let k = keys();
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(good().to_string())
        );
        assert_eq!(k.verify(&none, NOW), Err(Refused::Algorithm));
        let hs512 = sign(
            &json!({"alg": "HS512", "kid": "k1"}),
            &good(),
            b"first secret",
        );
        assert_eq!(k.verify(&hs512, NOW), Err(Refused::Algorithm));
        assert_eq!(
            k.verify(&"a".repeat(MAX_TOKEN + 1), NOW),
            Err(Refused::TooLong)
        );
        let t = token("k1", b"first secret", good());
        for cut in [1, t.len() / 3, t.len() / 2, t.len() - 1] {
            assert!(k.verify(&t[..cut], NOW).is_err(), "cut at {cut}");
        }
        assert_eq!(k.verify("a.b.c.d", NOW), Err(Refused::Malformed));
        assert_eq!(k.verify("", NOW), Err(Refused::Malformed));
    }
}
