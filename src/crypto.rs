//! Field encryption at rest (card numbers, descriptions): AES-256-GCM under a key derived from
//! `ENCRYPTION_KEY` with HKDF-SHA256, a random nonce per value, and a versioned text format.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

/// Prefix of values written with key version 1. A later key rotation adds `v2:` and keeps
/// reading `v1:` with the old key.
const V1: &str = "v1:";

pub struct FieldCipher {
    v1: Aes256Gcm,
}

impl FieldCipher {
    pub fn new(secret: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"cashcraft-field-encryption"), secret.as_bytes());
        let mut key = [0u8; 32];
        hk.expand(b"v1", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        FieldCipher {
            v1: Aes256Gcm::new_from_slice(&key).expect("a 32-byte key"),
        }
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .v1
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(12 + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        format!("{V1}{}", base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// The plaintext of a stored value. A value without a version prefix is returned as it is
    /// (rows written before encryption); one that fails to decrypt (wrong key, tampering) is
    /// `None` and logged.
    pub fn decrypt(&self, stored: &str) -> Option<String> {
        let Some(encoded) = stored.strip_prefix(V1) else {
            return Some(stored.to_string());
        };
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        match self.v1.decrypt(Nonce::from_slice(nonce), ciphertext) {
            Ok(plain) => String::from_utf8(plain).ok(),
            Err(_) => {
                tracing::warn!("an encrypted field could not be decrypted (wrong ENCRYPTION_KEY or tampered value)");
                None
            }
        }
    }

    pub fn encrypt_opt(&self, plaintext: Option<&str>) -> Option<String> {
        plaintext.map(|p| self.encrypt(p))
    }

    pub fn decrypt_opt(&self, stored: Option<&str>) -> Option<String> {
        stored.and_then(|s| self.decrypt(s))
    }
}

/// `**** **** **** 1234` from a card number (the last four digits only).
pub fn mask_card_number(card: &str) -> String {
    let digits: Vec<char> = card.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let last4: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("**** **** **** {last4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_random_nonces() {
        let c = FieldCipher::new("some-secret");
        let a = c.encrypt("4111 1111 1111 1111");
        let b = c.encrypt("4111 1111 1111 1111");
        assert_ne!(a, b);
        assert!(a.starts_with("v1:"));
        assert!(!a.contains("4111"));
        assert_eq!(c.decrypt(&a).as_deref(), Some("4111 1111 1111 1111"));
    }

    #[test]
    fn wrong_key_or_tampering_fails() {
        let a = FieldCipher::new("k1").encrypt("secret");
        assert_eq!(FieldCipher::new("k2").decrypt(&a), None);
        let mut tampered = a.clone();
        tampered.pop();
        tampered.push('A');
        assert_eq!(FieldCipher::new("k1").decrypt(&tampered), None);
        assert_eq!(
            FieldCipher::new("k1").decrypt("legacy plain"),
            Some("legacy plain".into())
        );
    }

    #[test]
    fn masks() {
        assert_eq!(mask_card_number("4111 1111 1111 1234"), "**** **** **** 1234");
        assert_eq!(mask_card_number("12"), "**** **** **** 12");
    }
}
