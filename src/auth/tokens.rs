//! Access tokens are HS256 JWTs carrying the user id as `sub` and `userId`; refresh tokens are
//! opaque 256-bit random strings of which only the SHA-256 hash is stored.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why an access token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &str, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    pub fn issue(&self, user_id: &str) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            user_id: user_id.to_string(),
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
        };
        Ok(encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// The user id of a valid, unexpired token (only HS256 with our secret is accepted).
    pub fn verify(&self, token: &str) -> Result<String, TokenError> {
        match decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) if data.claims.sub == data.claims.user_id => Ok(data.claims.sub),
            Ok(_) => Err(TokenError::Invalid),
            Err(err) => match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(TokenError::Expired),
                _ => Err(TokenError::Invalid),
            },
        }
    }
}

/// A new opaque refresh token (256 random bits, base64url).
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            "a-test-secret-that-is-long-enough-0123",
            Duration::from_secs(60),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn round_trip() {
        let k = keys();
        let t = k.issue("u1").unwrap();
        assert_eq!(k.verify(&t), Ok("u1".into()));
    }

    #[test]
    fn refuses_other_keys_alg_none_and_expired() {
        let k = keys();
        let other = JwtKeys::new(
            "another-secret-that-is-long-enough-999",
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        assert_eq!(k.verify(&other.issue("u1").unwrap()), Err(TokenError::Invalid));
        // alg: none
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(r#"{"sub":"u1","userId":"u1","exp":9999999999}"#)
        );
        assert_eq!(k.verify(&none), Err(TokenError::Invalid));
        let now = chrono::Utc::now().timestamp();
        let expired = Claims {
            sub: "u1".into(),
            user_id: "u1".into(),
            iat: now - 100,
            exp: now - 10,
        };
        let token = encode(&Header::new(Algorithm::HS256), &expired, &k.encoding).unwrap();
        assert_eq!(k.verify(&token), Err(TokenError::Expired));
        assert_eq!(k.verify("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = new_refresh_token();
        assert_ne!(a, new_refresh_token());
        assert_eq!(a.len(), 43);
        assert_eq!(hash_refresh_token(&a).len(), 64);
    }
}
