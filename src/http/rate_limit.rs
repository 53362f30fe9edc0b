//! Rate limiting of the credential endpoints per client address: a fixed window that starts at
//! a client's first request, counted in Redis when configured (shared by every instance), else in memory.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::state::AppState;

/// Most clients tracked in memory at once; past it (after dropping expired windows) new
/// clients are let through uncounted rather than growing without bound.
const MAX_TRACKED_CLIENTS: usize = 100_000;
/// Expired windows are swept on a request once this long has passed (once a second when full).
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How long a Redis round trip may take before the limiter falls back to memory.
const REDIS_TIMEOUT: Duration = Duration::from_millis(1000);
/// Warnings about Redis failures are logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// INCR the counter; start its window (PEXPIRE) when it has none; answer count and ms left.
/// A counter left without expiry (should never happen) repairs itself here.
const REDIS_SCRIPT: &str = "local c = redis.call('INCR', KEYS[1]) \
     local ttl = redis.call('PTTL', KEYS[1]) \
     if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end \
     return {c, ttl}";

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Over the limit; the window ends in this many seconds.
    Deny {
        retry_after_secs: u64,
    },
}

/// Counts requests per client and window.
pub struct RateLimiter {
    max_requests: u64,
    window: Duration,
    memory: Mutex<MemoryStore>,
    last_warning: Mutex<Option<Instant>>,
}

struct MemoryStore {
    windows: HashMap<String, Window>,
    last_sweep: Instant,
}

struct Window {
    count: u64,
    ends_at: Instant,
}

impl RateLimiter {
    /// `max_requests` 0 disables the limit.
    pub fn new(max_requests: u64, window: Duration) -> Self {
        RateLimiter {
            max_requests,
            window,
            memory: Mutex::new(MemoryStore {
                windows: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            last_warning: Mutex::new(None),
        }
    }

    /// Counts one request of `client` and decides. With Redis the count is shared by every
    /// instance; when Redis fails the instance counts in memory instead (never stricter than
    /// the shared count) and logs a warning.
    pub async fn check(&self, client: &str, redis: Option<&crate::cache::Redis>) -> Decision {
        if self.max_requests == 0 {
            return Decision::Allow;
        }
        if let Some(redis) = redis {
            match self.check_redis(client, redis).await {
                Ok(decision) => return decision,
                Err(reason) => self.warn_fallback(&reason),
            }
        }
        self.check_memory(client, Instant::now())
    }

    async fn check_redis(&self, client: &str, redis: &crate::cache::Redis) -> Result<Decision, String> {
        let mut conn = redis.connection().await.ok_or("Redis is unreachable")?;
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let key = format!("cashcraft:ratelimit:{window_ms}:{client}");
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(REDIS_SCRIPT).arg(1).arg(&key).arg(window_ms);
        let (count, ttl_ms): (u64, i64) = tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async(&mut conn))
            .await
            .map_err(|_| "Redis did not answer in time".to_string())?
            .map_err(|e| e.to_string())?;
        Ok(self.decide(count, Duration::from_millis(ttl_ms.max(0).unsigned_abs())))
    }

    fn check_memory(&self, client: &str, now: Instant) -> Decision {
        let mut store = match self.memory.lock() {
            Ok(store) => store,
            Err(poisoned) => poisoned.into_inner(),
        };
        let since_sweep = now.saturating_duration_since(store.last_sweep);
        let full = store.windows.len() >= MAX_TRACKED_CLIENTS;
        if since_sweep >= SWEEP_INTERVAL || (full && since_sweep >= Duration::from_secs(1)) {
            store.windows.retain(|_, w| w.ends_at > now);
            store.last_sweep = now;
        }
        if store.windows.len() >= MAX_TRACKED_CLIENTS && !store.windows.contains_key(client) {
            return Decision::Allow;
        }
        let fresh = Window {
            count: 0,
            ends_at: now + self.window,
        };
        let window = store.windows.entry(client.to_string()).or_insert(fresh);
        if window.ends_at <= now {
            *window = Window {
                count: 0,
                ends_at: now + self.window,
            };
        }
        window.count = window.count.saturating_add(1);
        let (count, left) = (window.count, window.ends_at.saturating_duration_since(now));
        self.decide(count, left)
    }

    fn decide(&self, count: u64, left: Duration) -> Decision {
        if count <= self.max_requests {
            Decision::Allow
        } else {
            Decision::Deny {
                retry_after_secs: left.as_millis().div_ceil(1000).max(1) as u64,
            }
        }
    }

    fn warn_fallback(&self, reason: &str) {
        let mut last = match self.last_warning.lock() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        if last.is_none_or(|at| at.elapsed() >= WARN_INTERVAL) {
            *last = Some(Instant::now());
            tracing::warn!(error = %reason, "rate limiter cannot use Redis; counting in this instance's memory");
        }
    }
}

/// The middleware (a `route_layer` on the credential endpoints): 429 with `Retry-After` once
/// the client is over the limit.
pub async fn limit_by_client(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client = client_key(peer, request.headers(), state.settings.trust_proxy);
    match state.rate_limiter.check(&client, state.redis.as_ref()).await {
        Decision::Allow => next.run(request).await,
        Decision::Deny { retry_after_secs } => ApiError::TooManyRequests { retry_after_secs }.into_response(),
    }
}

/// The address a client is counted under: the TCP peer, or the first `X-Forwarded-For` entry
/// when the proxy is trusted. IPv6 addresses count per /64 (what one subscriber usually holds).
pub fn client_key(peer: Option<IpAddr>, headers: &HeaderMap, trust_proxy: bool) -> String {
    let forwarded = if trust_proxy {
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(parse_forwarded_ip)
    } else {
        None
    };
    match forwarded.or(peer) {
        Some(ip) => normalise_ip(ip).to_string(),
        None => "unknown".to_string(),
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    entry.parse::<SocketAddr>().ok().map(|s| s.ip())
}

fn normalise_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn memory_window_counts_and_resets() {
        let limiter = RateLimiter::new(2, Duration::from_millis(1000));
        let t0 = Instant::now();
        assert_eq!(limiter.check_memory("a", t0), Decision::Allow);
        assert_eq!(limiter.check_memory("a", t0), Decision::Allow);
        assert_eq!(
            limiter.check_memory("a", t0 + Duration::from_millis(10)),
            Decision::Deny { retry_after_secs: 1 }
        );
        assert_eq!(limiter.check_memory("b", t0), Decision::Allow);
        assert_eq!(
            limiter.check_memory("a", t0 + Duration::from_millis(1001)),
            Decision::Allow
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        let limiter = RateLimiter::new(1, Duration::from_secs(900));
        assert_eq!(
            limiter.decide(2, Duration::from_millis(1500)),
            Decision::Deny { retry_after_secs: 2 }
        );
        assert_eq!(
            limiter.decide(2, Duration::ZERO),
            Decision::Deny { retry_after_secs: 1 }
        );
        assert_eq!(limiter.decide(1, Duration::ZERO), Decision::Allow);
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..MAX_TRACKED_CLIENTS + 10 {
            limiter.check_memory(&i.to_string(), now);
        }
        let tracked = limiter.memory.lock().map(|m| m.windows.len()).unwrap_or(0);
        assert_eq!(tracked, MAX_TRACKED_CLIENTS);
    }

    #[tokio::test]
    async fn zero_disables() {
        let limiter = RateLimiter::new(0, Duration::from_secs(1));
        for _ in 0..10 {
            assert_eq!(limiter.check("a", None).await, Decision::Allow);
        }
    }

    #[test]
    fn client_addresses() {
        let peer = Some("10.0.0.1".parse().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7, 10.0.0.2"));
        assert_eq!(client_key(peer, &headers, false), "10.0.0.1");
        assert_eq!(client_key(peer, &headers, true), "203.0.113.7");
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("[2001:db8:1:2:3:4:5:6]:443"),
        );
        assert_eq!(client_key(peer, &headers, true), "2001:db8:1:2::");
        headers.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_key(peer, &headers, true), "10.0.0.1");
        assert_eq!(client_key(None, &HeaderMap::new(), true), "unknown");
        let mapped = Some("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(client_key(mapped, &HeaderMap::new(), false), "192.0.2.1");
    }
}
