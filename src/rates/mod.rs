//! Exchange rates: the in-memory snapshot `/rate` answers from, refreshing it from the provider
//! (one instance at a time), reloads across instances through Redis, and currency conversion.
//!
//! Decisions:
//! - Only the provider's base rates are stored (`currency_rates`); every pair is an exact
//!   rust_decimal quotient of two of them ([`math`]).
//! - Requests never query the database for provider rates: they read an `Arc<Snapshot>` behind a
//!   `RwLock`, swapped whole after each refresh or reload.
//! - A refresh holds an in-process mutex and, on PostgreSQL, a transaction-level advisory lock
//!   (`pg_try_advisory_xact_lock`, retried while another instance holds it) from before the
//!   staleness check until the new rates are committed, so of several instances that are due at
//!   once exactly one calls the provider and the others then find the rates fresh.
//! - After a refresh the new version (its `fetched_at`) is written to Redis when configured;
//!   every instance polls that key every few seconds and reloads from the database when it
//!   changes. Without Redis (or with Redis down) the other instances catch up at their next
//!   check (at most 6 h later).

pub mod math;
pub mod provider;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use sqlx::{Any, Executor};

use crate::cache::Redis;
use crate::config::Settings;
use crate::domain::time::{now_ms, Millis};
use crate::state::AppState;
use crate::store::user_rates::{self, ManualRate};
use crate::store::{self, Backend, Db};
use provider::{BaseRates, Provider, ProviderError};

/// The currencies the app supports, in the app's order; `/currencies` lists them first.
pub const SUPPORTED_CURRENCIES: [&str; 37] = [
    "USD", "EUR", "GBP", "RUB", "JPY", "CNY", "INR", "BRL", "CAD", "AUD", "KRW", "MXN", "TRY", "UAH", "PLN", "THB",
    "SGD", "CHF", "KZT", "BYN", "UZS", "GEL", "AMD", "AZN", "SAR", "AED", "IDR", "MYR", "VND", "PHP", "NZD", "HKD",
    "SEK", "NOK", "DKK", "CZK", "HUF",
];

/// Redis key holding the version (`fetched_at`, ms) of the newest stored rates.
pub const REDIS_VERSION_KEY: &str = "cashcraft:rates:version";

/// When the background work runs.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How often the stored rates' age is checked.
    pub check_every: Duration,
    /// Age from which stored rates are refreshed.
    pub max_age: Duration,
    /// When to check again after a failed refresh.
    pub retry_after_provider_failure: Duration,
    pub retry_after_database_failure: Duration,
    /// How often Redis is asked for a newer version.
    pub redis_poll: Duration,
    /// How long a refresh waits for another instance's refresh to finish.
    pub lock_wait: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            check_every: Duration::from_secs(6 * 3600),
            max_age: Duration::from_secs(24 * 3600),
            retry_after_provider_failure: Duration::from_secs(30 * 60),
            retry_after_database_failure: Duration::from_secs(60),
            redis_poll: Duration::from_secs(3),
            lock_wait: provider::REQUEST_TIMEOUT + Duration::from_secs(10),
        }
    }
}

/// The provider rates in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub base: Option<String>,
    pub provider: Option<String>,
    /// When these rates were fetched (their version); `None` before any refresh.
    pub fetched_at: Option<Millis>,
    /// Units of each currency per unit of `base`.
    pub rates: HashMap<String, Decimal>,
}

impl Snapshot {
    fn from_stored(stored: store::rates::StoredRates) -> Snapshot {
        Snapshot {
            base: Some(stored.base),
            provider: Some(stored.provider),
            fetched_at: Some(stored.fetched_at),
            rates: stored.rates.into_iter().collect(),
        }
    }

    fn from_fetched(rates: BaseRates, provider: &str, fetched_at: Millis) -> Snapshot {
        Snapshot {
            base: Some(rates.base),
            provider: Some(provider.to_string()),
            fetched_at: Some(fetched_at),
            rates: rates.rates.into_iter().collect(),
        }
    }

    /// Whether the provider published `currency`.
    pub fn knows(&self, currency: &str) -> bool {
        self.rates.contains_key(currency)
    }

    /// The exact value of one `from` in `to` (unrounded quotient); same currency → 1.
    pub fn exact_rate(&self, from: &str, to: &str) -> Option<Decimal> {
        if from == to {
            return Some(Decimal::ONE);
        }
        math::exact_cross_rate(*self.rates.get(from)?, *self.rates.get(to)?)
    }

    /// The rate as answered: see [`math::round_rate`]; same currency → 1.
    pub fn rate(&self, from: &str, to: &str) -> Option<Decimal> {
        self.exact_rate(from, to).map(math::round_rate)
    }

    /// `amount` of `from` in `to`, exact to rust_decimal's precision.
    pub fn convert(&self, amount: Decimal, from: &str, to: &str) -> Option<Decimal> {
        if from == to {
            return Some(amount);
        }
        let (from_base, to_base) = (*self.rates.get(from)?, *self.rates.get(to)?);
        if from_base <= Decimal::ZERO {
            return None;
        }
        // Multiply first for exactness; divide first when the product would overflow.
        amount
            .checked_mul(to_base)
            .and_then(|p| p.checked_div(from_base))
            .or_else(|| amount.checked_div(from_base).and_then(|q| q.checked_mul(to_base)))
    }

    /// The supported currencies, then any other the provider publishes (alphabetically).
    pub fn currencies(&self) -> Vec<String> {
        let mut extra: Vec<&String> = self
            .rates
            .keys()
            .filter(|c| !SUPPORTED_CURRENCIES.contains(&c.as_str()))
            .collect();
        extra.sort();
        SUPPORTED_CURRENCIES
            .iter()
            .map(|c| c.to_string())
            .chain(extra.into_iter().cloned())
            .collect()
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// New rates were fetched and stored.
    Updated { fetched_at: Millis },
    /// The stored rates were fresh enough; nothing was fetched.
    UpToDate { fetched_at: Millis },
    /// Another instance kept the refresh lock longer than we waited.
    InProgress { fetched_at: Option<Millis> },
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The exchange-rate service held by the app state.
pub struct Rates {
    provider: Provider,
    client: reqwest::Client,
    timing: Timing,
    snapshot: RwLock<Arc<Snapshot>>,
    /// One refresh at a time in this process.
    refresh_lock: tokio::sync::Mutex<()>,
    /// The last version read from Redis (0: none yet).
    seen_redis_version: AtomicI64,
}

impl Rates {
    /// The service for `settings`, with the default timing and an empty snapshot.
    pub fn new(settings: &Settings) -> anyhow::Result<Rates> {
        Rates::with_parts(Provider::from_settings(settings), Timing::default())
    }

    pub fn with_parts(provider: Provider, timing: Timing) -> anyhow::Result<Rates> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("cashcraft/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(provider::REQUEST_TIMEOUT)
            .build()?;
        Ok(Rates {
            provider,
            client,
            timing,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            refresh_lock: tokio::sync::Mutex::new(()),
            seen_redis_version: AtomicI64::new(0),
        })
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The current rates (a cheap clone of an `Arc`; no database access).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn install(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.snapshot.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    /// Loads the stored rates into the snapshot.
    pub async fn reload(&self, db: &Db) -> Result<(), sqlx::Error> {
        if let Some(stored) = store::rates::load(&db.pool).await? {
            tracing::debug!(version = stored.fetched_at, "exchange rates reloaded from the database");
            self.install(Snapshot::from_stored(stored));
        }
        Ok(())
    }

    /// Reloads when the stored version differs from the snapshot's.
    async fn reload_if_changed(&self, db: &Db, stored: Option<Millis>) -> Result<(), sqlx::Error> {
        if stored.is_some() && stored != self.snapshot().fetched_at {
            self.reload(db).await?;
        }
        Ok(())
    }

    fn is_stale(&self, fetched_at: Millis, now: Millis) -> bool {
        let max_age = i64::try_from(self.timing.max_age.as_millis()).unwrap_or(i64::MAX);
        now.saturating_sub(fetched_at) >= max_age
    }

    /// Refreshes from the provider when the stored rates are older than the maximum age (or
    /// always with `force`). A provider failure of any kind changes nothing and is logged.
    pub async fn refresh(&self, db: &Db, redis: Option<&Redis>, force: bool) -> Result<Refreshed, RefreshError> {
        let _one_at_a_time = self.refresh_lock.lock().await;
        // PostgreSQL: take the cluster-wide lock first, in the transaction that will write.
        let mut locked_tx = None;
        if db.backend == Backend::Postgres {
            let mut tx = db.pool.begin().await?;
            if !self.wait_for_refresh_lock(&mut tx, db.backend).await? {
                drop(tx);
                let stored = store::rates::last_fetched_at(&db.pool).await?;
                self.reload_if_changed(db, stored).await?;
                tracing::info!("exchange rates are being refreshed by another instance");
                return Ok(Refreshed::InProgress { fetched_at: stored });
            }
            locked_tx = Some(tx);
        }
        // Re-check under the lock: another instance may have just refreshed.
        let stored = match locked_tx.as_mut() {
            Some(tx) => store::rates::last_fetched_at(&mut **tx).await?,
            None => store::rates::last_fetched_at(&db.pool).await?,
        };
        let now = now_ms();
        if let Some(fetched_at) = stored.filter(|at| !force && !self.is_stale(*at, now)) {
            drop(locked_tx);
            self.reload_if_changed(db, stored).await?;
            return Ok(Refreshed::UpToDate { fetched_at });
        }
        let rates = match self.provider.fetch(&self.client).await {
            Ok(rates) => rates,
            Err(err) => {
                tracing::warn!(provider = %self.provider.describe(), error = %err, "exchange-rate refresh failed; stored rates kept");
                return Err(err.into());
            }
        };
        let mut tx = match locked_tx {
            Some(tx) => tx,
            None => db.begin_write().await?,
        };
        // Versions strictly increase even when instances' clocks disagree.
        let fetched_at = now_ms().max(stored.map_or(0, |s| s + 1));
        store::rates::replace(&mut tx, &rates, self.provider.name(), fetched_at).await?;
        tx.commit().await?;
        let count = rates.rates.len();
        let base = rates.base.clone();
        self.install(Snapshot::from_fetched(rates, self.provider.name(), fetched_at));
        publish_version(redis, fetched_at).await;
        tracing::info!(
            provider = self.provider.name(),
            base,
            currencies = count,
            "💱 Exchange rates updated"
        );
        Ok(Refreshed::Updated { fetched_at })
    }

    /// Tries the refresh lock until it is free or [`Timing::lock_wait`] has passed.
    async fn wait_for_refresh_lock(&self, tx: &mut store::Tx, backend: Backend) -> Result<bool, sqlx::Error> {
        let started = Instant::now();
        loop {
            if store::rates::try_lock_refresh(tx, backend).await? {
                return Ok(true);
            }
            if started.elapsed() >= self.timing.lock_wait {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stores rates read elsewhere (`cashcraft admin import-rates`), waiting for any running
    /// refresh, and announces the new version. Answers it.
    pub async fn import(db: &Db, redis: Option<&Redis>, rates: &BaseRates, provider: &str) -> anyhow::Result<Millis> {
        let mut tx = db.begin_write().await?;
        let started = Instant::now();
        while !store::rates::try_lock_refresh(&mut tx, db.backend).await? {
            if started.elapsed() > Timing::default().lock_wait {
                anyhow::bail!("another instance is refreshing the exchange rates; try again");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let stored = store::rates::last_fetched_at(&mut *tx).await?;
        let fetched_at = now_ms().max(stored.map_or(0, |s| s + 1));
        store::rates::replace(&mut tx, rates, provider, fetched_at).await?;
        tx.commit().await?;
        publish_version(redis, fetched_at).await;
        Ok(fetched_at)
    }

    /// Reloads the snapshot when Redis announces a version this instance has not seen.
    pub async fn follow_redis(&self, db: &Db, redis: &Redis) -> Result<(), sqlx::Error> {
        let Some(version) = read_version(redis).await else {
            return Ok(());
        };
        if self.seen_redis_version.swap(version, Ordering::Relaxed) == version {
            return Ok(());
        }
        if self.snapshot().fetched_at != Some(version) {
            self.reload(db).await?;
        }
        Ok(())
    }

    /// The rate `user_id` converts with from `from` to `to`: their manual rate (direct, else
    /// inverse) when they have one, else the provider's exact cross rate.
    pub async fn user_rate<'e, E: Executor<'e, Database = Any>>(
        &self,
        db: E,
        user_id: &str,
        from: &str,
        to: &str,
    ) -> Result<Option<Decimal>, sqlx::Error> {
        let (from, to) = (from.to_ascii_uppercase(), to.to_ascii_uppercase());
        if from == to {
            return Ok(Some(Decimal::ONE));
        }
        Ok(match user_rates::manual_rate(db, user_id, &from, &to).await? {
            Some(ManualRate::Direct(rate)) => Some(rate.to_decimal()),
            Some(ManualRate::Inverse(rate)) => Decimal::ONE.checked_div(rate.to_decimal()),
            None => self.snapshot().exact_rate(&from, &to),
        })
    }

    /// `amount` of `from` in `to` for `user_id` (their manual rates first, then the provider's),
    /// unrounded; `None` when no rate is known or the result overflows.
    pub async fn try_convert<'e, E: Executor<'e, Database = Any>>(
        &self,
        db: E,
        user_id: &str,
        amount: Decimal,
        from: &str,
        to: &str,
    ) -> Result<Option<Decimal>, sqlx::Error> {
        let (from, to) = (from.to_ascii_uppercase(), to.to_ascii_uppercase());
        if from == to {
            return Ok(Some(amount));
        }
        Ok(match user_rates::manual_rate(db, user_id, &from, &to).await? {
            Some(ManualRate::Direct(rate)) => amount.checked_mul(rate.to_decimal()),
            Some(ManualRate::Inverse(rate)) => amount.checked_div(rate.to_decimal()),
            None => self.snapshot().convert(amount, &from, &to),
        })
    }

    /// [`Rates::try_convert`] for callers that treat a database failure like an unknown rate
    /// (the failure is logged).
    pub async fn convert<'e, E: Executor<'e, Database = Any>>(
        &self,
        db: E,
        user_id: &str,
        amount: Decimal,
        from: &str,
        to: &str,
    ) -> Option<Decimal> {
        match self.try_convert(db, user_id, amount, from, to).await {
            Ok(converted) => converted,
            Err(err) => {
                tracing::error!(error = %err, "currency conversion failed: database error");
                None
            }
        }
    }

    /// Starts the background work: refresh at once when stale, then check every
    /// [`Timing::check_every`]; with Redis, follow other instances' refreshes. The tasks stop
    /// when the returned value is dropped.
    pub fn spawn_background(state: AppState) -> Background {
        let mut tasks = vec![tokio::spawn(refresh_loop(state.clone()))];
        if state.redis.is_some() {
            tasks.push(tokio::spawn(redis_loop(state)));
        }
        Background { tasks }
    }
}

/// The background tasks of the rate service; aborted when dropped.
pub struct Background {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn refresh_loop(state: AppState) {
    let timing = state.rates.timing.clone();
    loop {
        let wait = match state.rates.refresh(&state.db, state.redis.as_ref(), false).await {
            Ok(_) => timing.check_every,
            Err(RefreshError::Provider(_)) => timing.retry_after_provider_failure,
            Err(RefreshError::Database(err)) => {
                tracing::warn!(error = %err, "exchange-rate check failed: database error");
                timing.retry_after_database_failure
            }
        };
        tokio::time::sleep(wait.min(timing.check_every)).await;
    }
}

async fn redis_loop(state: AppState) {
    let Some(redis) = state.redis.as_ref() else {
        return;
    };
    let mut ticks = tokio::time::interval(state.rates.timing.redis_poll);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = state.rates.follow_redis(&state.db, redis).await {
            tracing::warn!(error = %err, "reloading exchange rates failed: database error");
        }
    }
}

/// Announces a new version to the other instances (best effort: Redis may be down).
async fn publish_version(redis: Option<&Redis>, version: Millis) {
    let Some(redis) = redis else {
        return;
    };
    let Some(mut conn) = redis.connection().await else {
        return;
    };
    let mut command = redis::cmd("SET");
    command.arg(REDIS_VERSION_KEY).arg(version);
    let set = command.query_async::<()>(&mut conn);
    match tokio::time::timeout(Duration::from_secs(2), set).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "could not announce new exchange rates in Redis"),
        Err(_) => tracing::warn!("could not announce new exchange rates in Redis: timed out"),
    }
}

async fn read_version(redis: &Redis) -> Option<Millis> {
    let mut conn = redis.connection().await?;
    let mut command = redis::cmd("GET");
    command.arg(REDIS_VERSION_KEY);
    let get = command.query_async::<Option<i64>>(&mut conn);
    match tokio::time::timeout(Duration::from_secs(2), get).await {
        Ok(Ok(version)) => version,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            base: Some("EUR".into()),
            provider: Some("ecb".into()),
            fetched_at: Some(1),
            rates: [("EUR", "1"), ("USD", "1.08"), ("GBP", "0.85"), ("XAU", "0.0004")]
                .into_iter()
                .map(|(c, r)| (c.to_string(), d(r)))
                .collect(),
        }
    }

    #[test]
    fn answers_pairs_from_base_rates() {
        let s = snapshot();
        assert_eq!(s.rate("EUR", "USD"), Some(d("1.08")));
        assert_eq!(s.rate("USD", "EUR"), Some(d("0.9259259259")));
        assert_eq!(s.rate("USD", "GBP"), Some(d("0.7870370370")));
        assert_eq!(s.rate("RUB", "RUB"), Some(Decimal::ONE));
        assert_eq!(s.rate("RUB", "USD"), None);
        assert_eq!(s.rate("USD", "RUB"), None);
    }

    #[test]
    fn converts_exactly() {
        let s = snapshot();
        assert_eq!(s.convert(d("108"), "USD", "EUR"), Some(d("100")));
        assert_eq!(s.convert(d("100"), "EUR", "USD"), Some(d("108")));
        assert_eq!(s.convert(d("10"), "RUB", "USD"), None);
        assert_eq!(s.convert(d("10"), "RUB", "RUB"), Some(d("10")));
        // Huge amounts do not overflow the multiplication.
        let huge = d("70000000000000000000000000000");
        assert!(s.convert(huge, "EUR", "GBP").is_some());
    }

    #[test]
    fn lists_supported_currencies_first() {
        let currencies = snapshot().currencies();
        assert_eq!(currencies.len(), 38);
        assert_eq!(&currencies[..2], ["USD", "EUR"]);
        assert_eq!(currencies.last().map(String::as_str), Some("XAU"));
        assert_eq!(Snapshot::default().currencies().len(), 37);
    }
}
