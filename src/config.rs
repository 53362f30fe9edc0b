//! Settings: every variable of the contract read once at start from the environment (and an
//! optional `.env` file), validated, and handed to the rest of the server as one value.

use std::time::Duration;

use anyhow::{bail, Context};
use rand::RngCore;

/// The deployment environment (`NODE_ENV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
            Environment::Test => "test",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// All server settings. Tests build one with [`Settings::from_lookup`].
#[derive(Clone)]
pub struct Settings {
    pub port: u16,
    pub host: String,
    pub environment: Environment,
    pub database_url: String,
    pub db_max_connections: u32,
    pub jwt_secret: String,
    pub jwt_expires_in: Duration,
    pub jwt_refresh_expires_in: Duration,
    pub encryption_key: String,
    pub cors_origins: Vec<String>,
    pub rate_limit_window: Duration,
    pub rate_limit_max_requests: u64,
    pub trust_proxy: bool,
    pub redis_url: Option<String>,
    pub open_exchange_rates_api_key: Option<String>,
    pub rates_provider_url: Option<String>,
    pub google_client_ids: Vec<String>,
    pub google_jwks_url: String,
    pub free_account_limit: u32,
    pub free_category_limit: u32,
    pub log_format: LogFormat,
    /// Most open client connections (idle ones are cheap; beyond it new ones are closed).
    pub max_connections: usize,
    /// Most requests handled at once; more are shed with 503 instead of queueing.
    pub max_in_flight_requests: usize,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Messages about generated secrets etc., logged once telemetry is up.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Settings {
    // Hand-written so that secrets can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("port", &self.port)
            .field("environment", &self.environment)
            .field("database", &redact_url(&self.database_url))
            .field("db_max_connections", &self.db_max_connections)
            .field("cors_origins", &self.cors_origins)
            .field("redis", &self.redis_url.as_deref().map(redact_url))
            .finish_non_exhaustive()
    }
}

/// Secrets that ship in examples and old deployment guides; never acceptable in production.
const KNOWN_DEFAULT_SECRETS: &[&str] = &[
    "your-secret-key",
    "your_jwt_secret",
    "your-jwt-secret",
    "your-super-secret-jwt-key",
    "your-refresh-secret",
    "your-encryption-key",
    "change-me",
    "changeme",
    "secret",
    "default",
    "cashcraft",
    "replace-me-with-a-random-string-of-at-least-32-bytes",
];

pub const DEFAULT_GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

impl Settings {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> anyhow::Result<Self> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds settings from any key → value lookup (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut warnings = Vec::new();

        let environment = match get("NODE_ENV").as_deref() {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some("test") => Environment::Test,
            Some(other) => bail!("NODE_ENV must be development, production or test (got {other:?})"),
        };
        let production = environment == Environment::Production;

        let port = match get("PORT") {
            Some(p) => p
                .parse::<u16>()
                .with_context(|| format!("PORT must be a port number (got {p:?})"))?,
            None => 3000,
        };
        let host = get("HOST").unwrap_or_else(|| "0.0.0.0".to_string());

        let database_url = match get("DATABASE_URL") {
            Some(url) => normalise_database_url(&url)?,
            None => match get("DB_HOST") {
                Some(host) => {
                    let port = get("DB_PORT").unwrap_or_else(|| "5432".into());
                    let user = get("DB_USER").unwrap_or_else(|| "postgres".into());
                    let password = get("DB_PASSWORD").unwrap_or_default();
                    let name = get("DB_NAME").unwrap_or_else(|| "cashcraft".into());
                    let auth = if password.is_empty() {
                        user
                    } else {
                        format!("{}:{}", user, percent_encode(&password))
                    };
                    format!("postgres://{auth}@{host}:{port}/{name}")
                }
                None => "sqlite://cashcraft.db?mode=rwc".to_string(),
            },
        };

        let db_max_connections = parse_num(&get, "DB_MAX_CONNECTIONS", 10u32)?;
        if db_max_connections == 0 {
            bail!("DB_MAX_CONNECTIONS must be at least 1");
        }

        let jwt_secret = secret(&get, "JWT_SECRET", production, &mut warnings)?;
        let encryption_key = secret(&get, "ENCRYPTION_KEY", production, &mut warnings)?;

        let jwt_expires_in = match get("JWT_EXPIRES_IN") {
            Some(v) => parse_duration(&v)
                .with_context(|| format!("JWT_EXPIRES_IN: cannot read {v:?} (use 15m, 7d or seconds)"))?,
            None => Duration::from_secs(15 * 60),
        };
        let jwt_refresh_expires_in = match get("JWT_REFRESH_EXPIRES_IN") {
            Some(v) => parse_duration(&v)
                .with_context(|| format!("JWT_REFRESH_EXPIRES_IN: cannot read {v:?} (use 15m, 7d or seconds)"))?,
            None => Duration::from_secs(30 * 24 * 3600),
        };

        let cors_origins: Vec<String> = get("CORS_ORIGIN")
            .into_iter()
            .chain(get("ALLOWED_ORIGINS"))
            .flat_map(|v| {
                v.split(',')
                    .map(|s| s.trim().trim_end_matches('/').to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty() && s != "*")
            .collect();
        if production && cors_origins.is_empty() {
            warnings.push("No CORS_ORIGIN / ALLOWED_ORIGINS configured: browsers on other origins are refused (mobile apps are unaffected).".into());
        }

        let rate_limit_window = Duration::from_millis(parse_num(&get, "RATE_LIMIT_WINDOW_MS", 900_000u64)?);
        if rate_limit_window.is_zero() {
            bail!("RATE_LIMIT_WINDOW_MS must be greater than 0");
        }
        let rate_limit_max_requests = parse_num(&get, "RATE_LIMIT_MAX_REQUESTS", 100u64)?;

        let trust_proxy = match get("TRUST_PROXY").as_deref() {
            None => false,
            Some(v) => parse_bool(v).with_context(|| format!("TRUST_PROXY must be true or false (got {v:?})"))?,
        };

        let log_format = match get("LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            None if production => LogFormat::Json,
            None => LogFormat::Pretty,
            Some(other) => bail!("LOG_FORMAT must be pretty or json (got {other:?})"),
        };

        let google_client_ids = get("GOOGLE_CLIENT_ID")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();

        let max_connections = parse_num(&get, "MAX_CONNECTIONS", 4096usize)?;
        if max_connections == 0 {
            bail!("MAX_CONNECTIONS must be at least 1");
        }
        let max_in_flight_requests = parse_num(&get, "MAX_IN_FLIGHT_REQUESTS", 1024usize)?;
        if max_in_flight_requests == 0 {
            bail!("MAX_IN_FLIGHT_REQUESTS must be at least 1");
        }
        let request_timeout = match get("REQUEST_TIMEOUT") {
            Some(v) => parse_duration(&v)
                .with_context(|| format!("REQUEST_TIMEOUT: cannot read {v:?} (use 30s, 2m or seconds)"))?,
            None => Duration::from_secs(30),
        };

        Ok(Settings {
            port,
            host,
            environment,
            database_url,
            db_max_connections,
            jwt_secret,
            jwt_expires_in,
            jwt_refresh_expires_in,
            encryption_key,
            cors_origins,
            rate_limit_window,
            rate_limit_max_requests,
            trust_proxy,
            redis_url: get("REDIS_URL"),
            open_exchange_rates_api_key: get("OPEN_EXCHANGE_RATES_API_KEY"),
            rates_provider_url: get("RATES_PROVIDER_URL").map(|u| u.trim_end_matches('/').to_string()),
            google_client_ids,
            google_jwks_url: get("GOOGLE_JWKS_URL").unwrap_or_else(|| DEFAULT_GOOGLE_JWKS_URL.to_string()),
            free_account_limit: parse_num(&get, "FREE_ACCOUNT_LIMIT", 3u32)?,
            free_category_limit: parse_num(&get, "FREE_CATEGORY_LIMIT", 5u32)?,
            log_format,
            max_connections,
            max_in_flight_requests,
            request_timeout,
            warnings,
        })
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

fn parse_num<T: std::str::FromStr>(get: &impl Fn(&str) -> Option<String>, key: &str, default: T) -> anyhow::Result<T> {
    match get(key) {
        Some(v) => v
            .parse::<T>()
            .map_err(|_| anyhow::anyhow!("{key} must be a whole number (got {v:?})")),
        None => Ok(default),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A secret from the environment; in production it must be set, not a known default and at
/// least 32 bytes; elsewhere a random one is generated when it is missing.
fn secret(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    production: bool,
    warnings: &mut Vec<String>,
) -> anyhow::Result<String> {
    match get(key) {
        Some(value) => {
            let weak = value.len() < 32 || KNOWN_DEFAULT_SECRETS.contains(&value.to_ascii_lowercase().as_str());
            if weak && production {
                bail!("{key} is too weak: in production it must be a random value of at least 32 bytes (e.g. `openssl rand -hex 32`)");
            }
            if weak {
                warnings.push(format!(
                    "{key} is shorter than 32 bytes or a known default; production would refuse it."
                ));
            }
            Ok(value)
        }
        None if production => {
            bail!("{key} is not set: in production it must be a random value of at least 32 bytes (e.g. `openssl rand -hex 32`)")
        }
        None => {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            warnings.push(format!(
                "{key} is not set: using an ephemeral random value (sessions and encrypted fields will not survive a restart). Set it in .env."
            ));
            Ok(hex::encode(bytes))
        }
    }
}

/// Accepts `15m`, `7d`, `12h`, `30s`, `3600` (seconds).
pub fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        "w" => n.checked_mul(7 * 86_400)?,
        _ => return None,
    };
    if secs == 0 {
        return None;
    }
    Some(Duration::from_secs(secs))
}

/// Accepts the URL forms of the contract and turns them into what the driver expects.
fn normalise_database_url(url: &str) -> anyhow::Result<String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok("sqlite::memory:".to_string());
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.trim_start_matches("//");
        if rest.is_empty() {
            bail!("DATABASE_URL: sqlite:// needs a file path, e.g. sqlite://cashcraft.db");
        }
        // Create the file when it does not exist yet.
        let sep = if rest.contains('?') { '&' } else { '?' };
        let with_mode = if rest.contains("mode=") {
            rest.to_string()
        } else {
            format!("{rest}{sep}mode=rwc")
        };
        return Ok(format!("sqlite://{with_mode}"));
    }
    bail!(
        "DATABASE_URL must start with postgres://, postgresql:// or sqlite:// (got {})",
        redact_url(url)
    )
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A URL with its password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, host)) = rest.rsplit_once('@') {
            let user = auth.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:***@{host}");
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_to_embedded_sqlite() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url, "sqlite://cashcraft.db?mode=rwc");
        assert_eq!(s.port, 3000);
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.jwt_secret.len(), 64);
        assert!(s.warnings.iter().any(|w| w.contains("JWT_SECRET")));
    }

    #[test]
    fn db_fallback_builds_postgres_url() {
        let s = settings(&[
            ("DB_HOST", "db"),
            ("DB_USER", "u"),
            ("DB_PASSWORD", "p@ss"),
            ("DB_NAME", "n"),
        ])
        .unwrap();
        assert_eq!(s.database_url, "postgres://u:p%40ss@db:5432/n");
    }

    #[test]
    fn sqlite_urls_are_created_on_first_start() {
        let s = settings(&[("DATABASE_URL", "sqlite://data/x.db")]).unwrap();
        assert_eq!(s.database_url, "sqlite://data/x.db?mode=rwc");
        let s = settings(&[("DATABASE_URL", "sqlite::memory:")]).unwrap();
        assert_eq!(s.database_url, "sqlite::memory:");
        assert!(settings(&[("DATABASE_URL", "mysql://x")]).is_err());
    }

    #[test]
    fn production_refuses_weak_secrets_and_names_them() {
        let strong = "0123456789abcdef0123456789abcdef";
        let err = settings(&[("NODE_ENV", "production"), ("ENCRYPTION_KEY", strong)])
            .err()
            .unwrap();
        assert!(err.to_string().contains("JWT_SECRET"));
        let err = settings(&[
            ("NODE_ENV", "production"),
            ("JWT_SECRET", "short"),
            ("ENCRYPTION_KEY", strong),
        ])
        .err()
        .unwrap();
        assert!(err.to_string().contains("JWT_SECRET"));
        let err = settings(&[
            ("NODE_ENV", "production"),
            ("JWT_SECRET", strong),
            ("ENCRYPTION_KEY", "your-encryption-key"),
        ])
        .err()
        .unwrap();
        assert!(err.to_string().contains("ENCRYPTION_KEY"));
        assert!(settings(&[
            ("NODE_ENV", "production"),
            ("JWT_SECRET", strong),
            ("ENCRYPTION_KEY", strong)
        ])
        .is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("3600"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration("0"), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/d"), "postgres://u:***@h:5432/d");
    }
}
