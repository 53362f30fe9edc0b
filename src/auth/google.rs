//! Google sign-in: verifies RS256 id tokens against Google's published signing keys (JWKS),
//! which are fetched lazily, cached in memory and refetched on an unknown key id (rate-limited).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

/// The issuers Google puts in its id tokens.
pub const GOOGLE_ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];
/// How long fetched keys are used when the response names no `max-age`.
const DEFAULT_KEYS_TTL: Duration = Duration::from_secs(3600);
/// Longest a fetched key set is trusted, whatever the response says.
const MAX_KEYS_TTL: Duration = Duration::from_secs(24 * 3600);
/// An unknown `kid` triggers a refetch at most this often (forged tokens cannot hammer Google).
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Who a verified id token says the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleIdentity {
    pub google_id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    #[error("Google sign-in is not configured")]
    NotConfigured,
    /// Forged, expired, for another audience or issuer, or not a JWT at all.
    #[error("Invalid Google token")]
    InvalidToken,
    /// The signing keys could not be fetched and none are cached.
    #[error("Google signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

#[derive(Deserialize)]
struct IdTokenClaims {
    sub: String,
    email: Option<String>,
    /// Google sends a boolean; some libraries historically sent the string "true".
    email_verified: Option<serde_json::Value>,
    name: Option<String>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    /// When the keys were fetched and how long they may be used.
    fetched: Option<(Instant, Duration)>,
}

impl KeyCache {
    fn is_fresh(&self) -> bool {
        self.fetched.is_some_and(|(at, ttl)| at.elapsed() < ttl)
    }
}

/// Verifies Google id tokens for the configured client ids.
pub struct GoogleVerifier {
    client_ids: Vec<String>,
    jwks_url: String,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    /// Serialises fetches; holds when the last one was attempted.
    last_fetch: Mutex<Option<Instant>>,
}

impl GoogleVerifier {
    pub fn new(client_ids: Vec<String>, jwks_url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        GoogleVerifier {
            client_ids,
            jwks_url,
            http,
            cache: RwLock::new(KeyCache::default()),
            last_fetch: Mutex::new(None),
        }
    }

    pub fn is_configured(&self) -> bool {
        !self.client_ids.is_empty()
    }

    /// Verifies signature (RS256 with a current Google key), issuer, audience and expiry, and
    /// answers the identity the token carries.
    pub async fn verify(&self, id_token: &str) -> Result<GoogleIdentity, GoogleError> {
        if !self.is_configured() {
            return Err(GoogleError::NotConfigured);
        }
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| GoogleError::InvalidToken)?;
        if header.alg != Algorithm::RS256 {
            return Err(GoogleError::InvalidToken);
        }
        let kid = header.kid.ok_or(GoogleError::InvalidToken)?;
        let key = self.key_for(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&GOOGLE_ISSUERS);
        validation.set_audience(&self.client_ids);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<IdTokenClaims>(id_token, &key, &validation)
            .map_err(|_| GoogleError::InvalidToken)?;
        let claims = data.claims;
        if claims.sub.trim().is_empty() {
            return Err(GoogleError::InvalidToken);
        }
        let email_verified = match claims.email_verified {
            Some(serde_json::Value::Bool(b)) => b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        Ok(GoogleIdentity {
            google_id: claims.sub,
            email: claims.email.filter(|e| !e.trim().is_empty()),
            email_verified,
            name: claims.name.filter(|n| !n.trim().is_empty()),
        })
    }

    /// The key with this id: from the cache while it is fresh, else after a (rate-limited)
    /// refetch. Stale keys keep serving when Google cannot be reached.
    async fn key_for(&self, kid: &str) -> Result<DecodingKey, GoogleError> {
        {
            let cache = self.cache.read().await;
            if cache.is_fresh() {
                if let Some(key) = cache.keys.get(kid) {
                    return Ok(key.clone());
                }
            }
        }
        let fetch_error = self.refetch().await.err();
        let cache = self.cache.read().await;
        if let Some(key) = cache.keys.get(kid) {
            return Ok(key.clone());
        }
        match fetch_error {
            Some(reason) if cache.keys.is_empty() => Err(GoogleError::KeysUnavailable(reason)),
            _ => Err(GoogleError::InvalidToken),
        }
    }

    /// Fetches the key set unless another caller just did (or tried to).
    async fn refetch(&self) -> Result<(), String> {
        let mut last_fetch = self.last_fetch.lock().await;
        if last_fetch.is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL) {
            return Ok(());
        }
        *last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok((keys, ttl)) => {
                tracing::debug!(keys = keys.len(), "fetched Google signing keys");
                let mut cache = self.cache.write().await;
                cache.keys = keys;
                cache.fetched = Some((Instant::now(), ttl));
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(url = %self.jwks_url, error = %reason, "cannot fetch Google signing keys");
                Err(reason)
            }
        }
    }

    async fn fetch(&self) -> Result<(HashMap<String, DecodingKey>, Duration), String> {
        let response = self.http.get(&self.jwks_url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let ttl = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_KEYS_TTL)
            .min(MAX_KEYS_TTL);
        let body: JwksBody = response.json().await.map_err(|e| e.to_string())?;
        let keys = rsa_keys(body.keys);
        if keys.is_empty() {
            return Err("the key set holds no usable RSA keys".into());
        }
        Ok((keys, ttl))
    }
}

#[derive(Deserialize)]
struct JwksBody {
    keys: Vec<serde_json::Value>,
}

/// The RSA signing keys of a key set, by `kid`; entries of other kinds or that do not parse
/// are skipped rather than failing the whole set.
fn rsa_keys(entries: Vec<serde_json::Value>) -> HashMap<String, DecodingKey> {
    entries
        .into_iter()
        .filter_map(|entry| serde_json::from_value::<Jwk>(entry).ok())
        .filter(|jwk| matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)))
        .filter(|jwk| jwk.common.key_algorithm.is_none_or(|alg| alg == KeyAlgorithm::RS256))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, key))
        })
        .collect()
}

/// `max-age=N` of a Cache-Control value.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("max-age="))
        .find_map(|n| n.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(
            max_age("public, max-age=21600, must-revalidate, no-transform"),
            Some(Duration::from_secs(21600))
        );
        assert_eq!(max_age("no-cache"), None);
    }

    #[test]
    fn skips_keys_that_are_not_rsa() {
        let entries = vec![
            serde_json::json!({"kty":"oct","kid":"h","k":"c2VjcmV0"}),
            serde_json::json!({"kty":"RSA","kid":"r","alg":"RS256","use":"sig","n":"AQAB","e":"AQAB"}),
            serde_json::json!({"kty":"weird"}),
        ];
        let keys = rsa_keys(entries);
        assert_eq!(keys.len(), 1);
        assert!(keys.contains_key("r"));
    }

    #[tokio::test]
    async fn unconfigured_and_garbage() {
        let v = GoogleVerifier::new(vec![], "http://127.0.0.1:9/certs".into());
        assert!(matches!(v.verify("x").await, Err(GoogleError::NotConfigured)));
        let v = GoogleVerifier::new(vec!["id".into()], "http://127.0.0.1:9/certs".into());
        assert!(matches!(v.verify("not-a-jwt").await, Err(GoogleError::InvalidToken)));
    }
}
