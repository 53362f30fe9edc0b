//! Debts: money owed to the user or by the user, their aggregate statistics, and the atomic
//! reduction a payment makes (never below zero, even under concurrent payments).

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{flag, tombstones, Tx};

/// A debt as stored.
#[derive(Debug, Clone)]
pub struct DebtRow {
    pub id: String,
    pub user_id: String,
    /// `owed_to_me` or `owed_by_me`.
    pub kind: String,
    pub name: String,
    /// Cents.
    pub amount: i64,
    pub is_included_in_total: bool,
    pub due_date: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub synced_at: Option<i64>,
}

pub const DEBT_COLUMNS: &str =
    "id, user_id, type, name, amount, is_included_in_total, due_date, created_at, updated_at, synced_at";

pub fn debt_from_row(row: &AnyRow) -> Result<DebtRow, sqlx::Error> {
    Ok(DebtRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: row.try_get("type")?,
        name: row.try_get("name")?,
        amount: row.try_get("amount")?,
        is_included_in_total: flag(row, "is_included_in_total")?,
        due_date: row.try_get("due_date")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        synced_at: row.try_get("synced_at")?,
    })
}

/// The user's debts, newest first.
pub async fn list<'e, E: Executor<'e, Database = Any>>(db: E, user_id: &str) -> Result<Vec<DebtRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {DEBT_COLUMNS} FROM debts WHERE user_id = $1 ORDER BY created_at DESC, server_created_at DESC, id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    rows.iter().map(debt_from_row).collect()
}

/// The caller's debt `id`, if it is theirs.
pub async fn find<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    id: &str,
) -> Result<Option<DebtRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {DEBT_COLUMNS} FROM debts WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(debt_from_row).transpose()
}

/// Aggregates of a user's debts, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebtTotals {
    /// Included debts owed to the user.
    pub owed_to_me: i64,
    /// Included debts the user owes.
    pub owed_by_me: i64,
    /// Every debt, included or not.
    pub count: i64,
}

/// The user's debt totals, computed by the database. PostgreSQL's SUM of BIGINT is NUMERIC,
/// hence the casts back to BIGINT (which both databases read as i64).
pub async fn totals<'e, E: Executor<'e, Database = Any>>(db: E, user_id: &str) -> Result<DebtTotals, sqlx::Error> {
    let (owed_to_me, owed_by_me, count): (i64, i64, i64) = sqlx::query_as(
        "SELECT \
           CAST(COALESCE(SUM(CASE WHEN type = 'owed_to_me' AND is_included_in_total <> 0 THEN amount ELSE 0 END), 0) AS BIGINT), \
           CAST(COALESCE(SUM(CASE WHEN type = 'owed_by_me' AND is_included_in_total <> 0 THEN amount ELSE 0 END), 0) AS BIGINT), \
           COUNT(*) \
         FROM debts WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(db)
    .await?;
    Ok(DebtTotals {
        owed_to_me,
        owed_by_me,
        count,
    })
}

/// Inserts a debt stamped `stamp`, forgetting any tombstone of its id.
pub async fn insert(tx: &mut Tx, row: &DebtRow, stamp: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO debts (id, user_id, type, name, amount, is_included_in_total, due_date, created_at, updated_at, \
         synced_at, server_created_at, server_updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(&row.id)
    .bind(&row.user_id)
    .bind(&row.kind)
    .bind(&row.name)
    .bind(row.amount)
    .bind(row.is_included_in_total as i64)
    .bind(row.due_date)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.synced_at)
    .bind(stamp)
    .execute(&mut **tx)
    .await?;
    tombstones::forget(tx, "debts", &row.user_id, &row.id).await
}

/// Writes every mutable field of `row` (matched by id and user), stamped `stamp`.
pub async fn update(tx: &mut Tx, row: &DebtRow, stamp: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE debts SET type = $1, name = $2, amount = $3, is_included_in_total = $4, due_date = $5, \
         updated_at = $6, server_updated_at = $7 WHERE id = $8 AND user_id = $9",
    )
    .bind(&row.kind)
    .bind(&row.name)
    .bind(row.amount)
    .bind(row.is_included_in_total as i64)
    .bind(row.due_date)
    .bind(row.updated_at)
    .bind(stamp)
    .bind(&row.id)
    .bind(&row.user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes one debt of the user (tombstone first); answers whether it was there.
pub async fn delete(tx: &mut Tx, user_id: &str, id: &str, stamp: i64) -> Result<bool, sqlx::Error> {
    tombstones::delete_row(tx, "debts", user_id, id, stamp).await
}

/// Takes `amount` cents off the debt with one conditional UPDATE that only applies while the
/// debt still holds at least that much, so no interleaving of payments can ever overpay it.
/// Answers the remaining amount, or `None` when the debt is gone or holds less than `amount`.
pub async fn reduce(tx: &mut Tx, user_id: &str, id: &str, amount: i64, stamp: i64) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE debts SET amount = amount - $1, updated_at = $2, server_updated_at = $2 \
         WHERE id = $3 AND user_id = $4 AND amount >= $1 RETURNING amount",
    )
    .bind(amount)
    .bind(stamp)
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.0))
}
