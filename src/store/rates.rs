//! Stored provider rates (`currency_rates`, the one shared reference table): one exact rate per
//! currency against the provider's base, replaced whole in one transaction, and the refresh lock.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use sqlx::{Any, Executor, Row};

use super::{Backend, Tx};
use crate::domain::time::Millis;
use crate::rates::provider::BaseRates;

/// Key of the PostgreSQL advisory lock held by the instance refreshing the rates
/// (the bytes of "ccrates!").
pub const REFRESH_LOCK_KEY: i64 = 0x6363_7261_7465_7321;

/// The stored base rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRates {
    pub base: String,
    pub provider: String,
    pub fetched_at: Millis,
    pub rates: BTreeMap<String, Decimal>,
}

/// Reads every stored rate; `None` while nothing was ever stored. Rows that do not parse (or
/// name another base than the first row) are skipped and logged.
pub async fn load<'e, E: Executor<'e, Database = Any>>(db: E) -> Result<Option<StoredRates>, sqlx::Error> {
    let rows = sqlx::query("SELECT currency, base, rate, provider, fetched_at FROM currency_rates ORDER BY currency")
        .fetch_all(db)
        .await?;
    let mut stored: Option<StoredRates> = None;
    for row in rows {
        let currency: String = row.try_get("currency")?;
        let base: String = row.try_get("base")?;
        let text: String = row.try_get("rate")?;
        let provider: String = row.try_get("provider")?;
        let fetched_at: i64 = row.try_get("fetched_at")?;
        let Ok(rate) = Decimal::from_str(&text) else {
            tracing::warn!(currency, rate = text, "stored exchange rate is not a decimal; ignored");
            continue;
        };
        let entry = stored.get_or_insert_with(|| StoredRates {
            base: base.clone(),
            provider,
            fetched_at,
            rates: BTreeMap::new(),
        });
        if entry.base != base || rate <= Decimal::ZERO {
            tracing::warn!(currency, "stored exchange rate does not fit the others; ignored");
            continue;
        }
        entry.fetched_at = entry.fetched_at.max(fetched_at);
        entry.rates.insert(currency, rate);
    }
    Ok(stored)
}

/// When the stored rates were fetched, `None` while there are none.
pub async fn last_fetched_at<'e, E: Executor<'e, Database = Any>>(db: E) -> Result<Option<Millis>, sqlx::Error> {
    let row: (Option<i64>,) = sqlx::query_as("SELECT MAX(fetched_at) FROM currency_rates")
        .fetch_one(db)
        .await?;
    Ok(row.0)
}

/// Replaces every stored rate with `rates` (inside the caller's transaction).
pub async fn replace(tx: &mut Tx, rates: &BaseRates, provider: &str, fetched_at: Millis) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM currency_rates").execute(&mut **tx).await?;
    let rows: Vec<(&String, &Decimal)> = rates.rates.iter().collect();
    // 100 rows × 5 parameters stays under every SQLite build's parameter limit.
    for chunk in rows.chunks(100) {
        let mut sql = String::from("INSERT INTO currency_rates (currency, base, rate, provider, fetched_at) VALUES ");
        for i in 0..chunk.len() {
            let n = i * 5;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4, n + 5));
        }
        let mut query = sqlx::query(&sql);
        for (currency, rate) in chunk {
            query = query
                .bind(currency.as_str())
                .bind(rates.base.as_str())
                .bind(rate.normalize().to_string())
                .bind(provider)
                .bind(fetched_at);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Tries to take the rate-refresh lock for the rest of `tx`. PostgreSQL: a transaction-level
/// advisory lock, so one instance of many refreshes at a time and the lock goes with the
/// transaction. SQLite: one process owns the file and serialises refreshes itself, so `true`.
pub async fn try_lock_refresh(tx: &mut Tx, backend: Backend) -> Result<bool, sqlx::Error> {
    match backend {
        Backend::Postgres => {
            let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
                .bind(REFRESH_LOCK_KEY)
                .fetch_one(&mut **tx)
                .await?;
            Ok(locked)
        }
        Backend::Sqlite => Ok(true),
    }
}
