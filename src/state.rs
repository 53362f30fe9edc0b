//! AppState: what every handler may use — settings, database, and the shared services.

use std::sync::Arc;

use crate::config::Settings;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub settings: Settings,
    pub db: Db,
    pub redis: Option<crate::cache::Redis>,
    pub jwt: crate::auth::tokens::JwtKeys,
    pub cipher: crate::crypto::FieldCipher,
    /// Request counters of the credential endpoints (in memory unless Redis is configured).
    pub rate_limiter: crate::http::rate_limit::RateLimiter,
    /// Google id-token verification with its cache of Google's signing keys.
    pub google: crate::auth::google::GoogleVerifier,
    /// Exchange rates: the in-memory snapshot, refreshes and conversion.
    pub rates: crate::rates::Rates,
    /// Grouped transaction sums per user and range, valid while the user's change clock stays.
    pub flow_cache: crate::store::read_cache::ReadCache<Vec<crate::store::transaction_reads::FlowGroup>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState { inner: Arc::new(inner) }
    }
}
