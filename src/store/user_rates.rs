//! Users' own exchange rates (`user_exchange_rates`): listing, upsert per (user, from, to),
//! delete (tombstone first), mode changes, and the manual rate a conversion prefers.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{tombstones, Tx};
use crate::domain::money::Rate;
use crate::domain::time::{now_ms, Millis};

pub const TABLE: &str = "user_exchange_rates";

/// Whether a user rate follows the provider (`auto`) or overrides it (`manual`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateMode {
    Auto,
    Manual,
}

impl RateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RateMode::Auto => "auto",
            RateMode::Manual => "manual",
        }
    }

    /// `auto` or `manual`, in any case, around any spaces.
    pub fn parse(text: &str) -> Option<RateMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(RateMode::Auto),
            "manual" => Some(RateMode::Manual),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRate {
    pub id: String,
    pub user_id: String,
    pub from_currency: String,
    pub to_currency: String,
    pub rate: Rate,
    pub mode: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

const COLUMNS: &str = "id, user_id, from_currency, to_currency, rate, mode, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<UserRate, sqlx::Error> {
    Ok(UserRate {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        from_currency: row.try_get("from_currency")?,
        to_currency: row.try_get("to_currency")?,
        rate: Rate::from_raw(row.try_get("rate")?),
        mode: row.try_get("mode")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The user's rates ordered by from, then to currency.
pub async fn list<'e, E: Executor<'e, Database = Any>>(db: E, user_id: &str) -> Result<Vec<UserRate>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {TABLE} WHERE user_id = $1 ORDER BY from_currency, to_currency"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    rows.iter().map(from_row).collect()
}

async fn find(tx: &mut Tx, user_id: &str, from: &str, to: &str) -> Result<Option<UserRate>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {TABLE} WHERE user_id = $1 AND from_currency = $2 AND to_currency = $3"
    ))
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Creates or updates the user's rate for (from, to). `stamp` comes from
/// [`super::take_change_stamp`], taken in `tx` before (it also serialises the user's writes, so
/// the look-up and the write cannot race). Answers the record and whether it was created.
pub async fn upsert(
    tx: &mut Tx,
    user_id: &str,
    stamp: i64,
    from: &str,
    to: &str,
    rate: Rate,
    mode: RateMode,
) -> Result<(UserRate, bool), sqlx::Error> {
    let now = now_ms();
    if let Some(existing) = find(tx, user_id, from, to).await? {
        sqlx::query(&format!(
            "UPDATE {TABLE} SET rate = $1, mode = $2, updated_at = $3, server_updated_at = $4 \
             WHERE id = $5 AND user_id = $6"
        ))
        .bind(rate.raw())
        .bind(mode.as_str())
        .bind(now)
        .bind(stamp)
        .bind(&existing.id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
        let updated = UserRate {
            rate,
            mode: mode.as_str().to_string(),
            updated_at: now,
            ..existing
        };
        return Ok((updated, false));
    }
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(&format!(
        "INSERT INTO {TABLE} (id, user_id, from_currency, to_currency, rate, mode, created_at, updated_at, \
         server_created_at, server_updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $8)"
    ))
    .bind(&id)
    .bind(user_id)
    .bind(from)
    .bind(to)
    .bind(rate.raw())
    .bind(mode.as_str())
    .bind(now)
    .bind(stamp)
    .execute(&mut **tx)
    .await?;
    let created = UserRate {
        id,
        user_id: user_id.to_string(),
        from_currency: from.to_string(),
        to_currency: to.to_string(),
        rate,
        mode: mode.as_str().to_string(),
        created_at: now,
        updated_at: now,
    };
    Ok((created, true))
}

/// Deletes the user's rate for (from, to), recording its tombstone first. Answers whether
/// there was one.
pub async fn delete(tx: &mut Tx, user_id: &str, stamp: i64, from: &str, to: &str) -> Result<bool, sqlx::Error> {
    let Some(existing) = find(tx, user_id, from, to).await? else {
        return Ok(false);
    };
    tombstones::record(tx, TABLE, user_id, stamp, "id = $3", Some(&existing.id)).await?;
    let deleted = sqlx::query(&format!("DELETE FROM {TABLE} WHERE id = $1 AND user_id = $2"))
        .bind(&existing.id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// Sets `mode` on every rate of the user that has another; answers how many changed.
pub async fn set_mode(tx: &mut Tx, user_id: &str, stamp: i64, mode: RateMode) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(&format!(
        "UPDATE {TABLE} SET mode = $1, updated_at = $2, server_updated_at = $3 WHERE user_id = $4 AND mode <> $1"
    ))
    .bind(mode.as_str())
    .bind(now_ms())
    .bind(stamp)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected())
}

/// A manual rate of the user between two currencies, in either direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualRate {
    /// Stored as from → to.
    Direct(Rate),
    /// Stored as to → from.
    Inverse(Rate),
}

/// The user's manual rate from `from` to `to`: the direct one when stored, else the inverse.
pub async fn manual_rate<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    from: &str,
    to: &str,
) -> Result<Option<ManualRate>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT from_currency, rate FROM {TABLE} WHERE user_id = $1 AND mode = 'manual' \
         AND ((from_currency = $2 AND to_currency = $3) OR (from_currency = $3 AND to_currency = $2))"
    ))
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    let mut inverse = None;
    for row in rows {
        let stored_from: String = row.try_get("from_currency")?;
        let rate = Rate::from_raw(row.try_get("rate")?);
        if !rate.is_positive() {
            continue;
        }
        if stored_from == from {
            return Ok(Some(ManualRate::Direct(rate)));
        }
        inverse = Some(ManualRate::Inverse(rate));
    }
    Ok(inverse)
}
