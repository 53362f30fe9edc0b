//! Accounts: rows, lookups, inserts and updates, the delete that takes the account's
//! transactions with it, and the aggregates behind the account statistics.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{flag, tombstones, Tx};
use crate::domain::credit::{Loan, PaymentType};
use crate::domain::money::Rate;

/// An account as stored (card number still encrypted).
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub kind: String,
    /// Cents.
    pub balance: i64,
    pub currency: String,
    /// 1e-8 units.
    pub exchange_rate: i64,
    pub card_number: Option<String>,
    pub color: Option<String>,
    pub icon: Option<String>,
    pub is_default: bool,
    pub is_included_in_total: bool,
    pub target_amount: Option<i64>,
    pub linked_account_id: Option<String>,
    pub saved_amount: Option<i64>,
    pub credit_start_date: Option<i64>,
    pub credit_term: Option<i64>,
    /// Percent a year, 1e-8 units.
    pub credit_rate: Option<i64>,
    pub credit_payment_type: Option<String>,
    pub credit_initial_amount: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub synced_at: Option<i64>,
}

/// The account types.
pub const ACCOUNT_TYPES: [&str; 6] = ["cash", "card", "bank", "savings", "debt", "credit"];

impl AccountRow {
    /// The loan of a credit account: its principal is `credit_initial_amount`, or |balance| when
    /// that is unset; the rate defaults to 0 and the payment type to annuity. `None` for other
    /// types, without a term, or with nothing borrowed.
    pub fn loan(&self) -> Option<Loan> {
        if self.kind != "credit" {
            return None;
        }
        let months = u32::try_from(self.credit_term?).ok().filter(|m| *m >= 1)?;
        let principal = self
            .credit_initial_amount
            .unwrap_or_else(|| self.balance.checked_abs().unwrap_or(0));
        if principal <= 0 {
            return None;
        }
        Some(Loan {
            principal,
            annual_rate: Rate::from_raw(self.credit_rate.unwrap_or(0)).to_decimal(),
            months,
            kind: self
                .credit_payment_type
                .as_deref()
                .and_then(PaymentType::parse)
                .unwrap_or(PaymentType::Annuity),
        })
    }

    /// The monthly payment in cents of a credit account (see [`AccountRow::loan`]).
    pub fn monthly_payment(&self) -> Option<i64> {
        self.loan().map(|loan| loan.monthly_payment())
    }
}

pub const ACCOUNT_COLUMNS: &str =
    "id, user_id, name, type, balance, currency, exchange_rate, card_number, color, icon, \
     is_default, is_included_in_total, target_amount, linked_account_id, saved_amount, credit_start_date, credit_term, \
     credit_rate, credit_payment_type, credit_initial_amount, created_at, updated_at, synced_at";

pub fn account_from_row(row: &AnyRow) -> Result<AccountRow, sqlx::Error> {
    Ok(AccountRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        kind: row.try_get("type")?,
        balance: row.try_get("balance")?,
        currency: row.try_get("currency")?,
        exchange_rate: row.try_get("exchange_rate")?,
        card_number: row.try_get("card_number")?,
        color: row.try_get("color")?,
        icon: row.try_get("icon")?,
        is_default: flag(row, "is_default")?,
        is_included_in_total: flag(row, "is_included_in_total")?,
        target_amount: row.try_get("target_amount")?,
        linked_account_id: row.try_get("linked_account_id")?,
        saved_amount: row.try_get("saved_amount")?,
        credit_start_date: row.try_get("credit_start_date")?,
        credit_term: row.try_get("credit_term")?,
        credit_rate: row.try_get("credit_rate")?,
        credit_payment_type: row.try_get("credit_payment_type")?,
        credit_initial_amount: row.try_get("credit_initial_amount")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        synced_at: row.try_get("synced_at")?,
    })
}

/// The user's accounts, newest first.
pub async fn list<'e, E: Executor<'e, Database = Any>>(db: E, user_id: &str) -> Result<Vec<AccountRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    rows.iter().map(account_from_row).collect()
}

/// The caller's account `id`, if it is theirs.
pub async fn find<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    id: &str,
) -> Result<Option<AccountRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(account_from_row).transpose()
}

/// Whether the user holds an account with this id.
pub async fn exists<'e, E: Executor<'e, Database = Any>>(db: E, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 FROM accounts WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}

/// How many accounts the user holds.
pub async fn count<'e, E: Executor<'e, Database = Any>>(db: E, user_id: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(db)
        .await?;
    Ok(n)
}

/// Inserts an account; `row.card_number` must already be encrypted. A duplicate id surfaces
/// as a unique-violation error.
pub async fn insert(tx: &mut Tx, row: &AccountRow, stamp: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO accounts (id, user_id, name, type, balance, currency, exchange_rate, card_number, color, icon, \
         is_default, is_included_in_total, target_amount, linked_account_id, saved_amount, credit_start_date, \
         credit_term, credit_rate, credit_payment_type, credit_initial_amount, created_at, updated_at, synced_at, \
         server_created_at, server_updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
         $23, $24, $24)",
    )
    .bind(&row.id)
    .bind(&row.user_id)
    .bind(&row.name)
    .bind(&row.kind)
    .bind(row.balance)
    .bind(&row.currency)
    .bind(row.exchange_rate)
    .bind(&row.card_number)
    .bind(&row.color)
    .bind(&row.icon)
    .bind(i64::from(row.is_default))
    .bind(i64::from(row.is_included_in_total))
    .bind(row.target_amount)
    .bind(&row.linked_account_id)
    .bind(row.saved_amount)
    .bind(row.credit_start_date)
    .bind(row.credit_term)
    .bind(row.credit_rate)
    .bind(&row.credit_payment_type)
    .bind(row.credit_initial_amount)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.synced_at)
    .bind(stamp)
    .execute(&mut **tx)
    .await?;
    tombstones::forget(tx, "accounts", &row.user_id, &row.id).await?;
    Ok(())
}

/// Writes every field of `row` except the balance, which only atomic deltas and
/// [`set_balance`] change.
pub async fn update(tx: &mut Tx, row: &AccountRow, stamp: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts SET name = $1, type = $2, currency = $3, exchange_rate = $4, card_number = $5, color = $6, \
         icon = $7, is_default = $8, is_included_in_total = $9, target_amount = $10, linked_account_id = $11, \
         saved_amount = $12, credit_start_date = $13, credit_term = $14, credit_rate = $15, \
         credit_payment_type = $16, credit_initial_amount = $17, updated_at = $18, server_updated_at = $19 \
         WHERE id = $20 AND user_id = $21",
    )
    .bind(&row.name)
    .bind(&row.kind)
    .bind(&row.currency)
    .bind(row.exchange_rate)
    .bind(&row.card_number)
    .bind(&row.color)
    .bind(&row.icon)
    .bind(i64::from(row.is_default))
    .bind(i64::from(row.is_included_in_total))
    .bind(row.target_amount)
    .bind(&row.linked_account_id)
    .bind(row.saved_amount)
    .bind(row.credit_start_date)
    .bind(row.credit_term)
    .bind(row.credit_rate)
    .bind(&row.credit_payment_type)
    .bind(row.credit_initial_amount)
    .bind(row.updated_at)
    .bind(stamp)
    .bind(&row.id)
    .bind(&row.user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets a balance the client states outright (an explicit correction, not a transaction).
pub async fn set_balance(tx: &mut Tx, user_id: &str, id: &str, balance: i64, stamp: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts SET balance = $1, updated_at = $2, server_updated_at = $2 WHERE id = $3 AND user_id = $4",
    )
    .bind(balance)
    .bind(stamp)
    .bind(id)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Clears the default flag on the user's accounts other than `keep`.
pub async fn clear_other_defaults(tx: &mut Tx, user_id: &str, keep: &str, stamp: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts SET is_default = 0, updated_at = $1, server_updated_at = $1 \
         WHERE user_id = $2 AND id <> $3 AND is_default <> 0",
    )
    .bind(stamp)
    .bind(user_id)
    .bind(keep)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes every transaction touching an account (either side of a transfer), with tombstones,
/// without reversing balance effects (the money did move).
pub async fn delete_transactions_of(
    tx: &mut Tx,
    user_id: &str,
    account_id: &str,
    stamp: i64,
) -> Result<u64, sqlx::Error> {
    tombstones::record(
        tx,
        "transactions",
        user_id,
        stamp,
        "account_id = $3 OR to_account_id = $3",
        Some(account_id),
    )
    .await?;
    let done = sqlx::query("DELETE FROM transactions WHERE user_id = $1 AND (account_id = $2 OR to_account_id = $2)")
        .bind(user_id)
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Deletes an account and every transaction that touches it, without reversing the
/// transactions' effects on other accounts (the money did move). Tombstones are recorded for
/// every deleted row; links from the user's other accounts are cleared; when the default account
/// goes, the user's oldest remaining account becomes the default.
pub async fn delete_with_transactions(tx: &mut Tx, account: &AccountRow, stamp: i64) -> Result<(), sqlx::Error> {
    let user_id = account.user_id.as_str();
    let id = account.id.as_str();
    delete_transactions_of(tx, user_id, id, stamp).await?;
    tombstones::delete_row(tx, "accounts", user_id, id, stamp).await?;
    sqlx::query(
        "UPDATE accounts SET linked_account_id = NULL, updated_at = $1, server_updated_at = $1 \
         WHERE user_id = $2 AND linked_account_id = $3",
    )
    .bind(stamp)
    .bind(user_id)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if account.is_default {
        sqlx::query(
            "UPDATE accounts SET is_default = 1, updated_at = $1, server_updated_at = $1 \
             WHERE id = (SELECT id FROM accounts WHERE user_id = $2 ORDER BY created_at, id LIMIT 1) \
             AND user_id = $2",
        )
        .bind(stamp)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Accounts of one kind, currency, rate and inclusion: how many and their summed balance.
#[derive(Debug, Clone)]
pub struct BalanceGroup {
    pub kind: String,
    pub currency: String,
    /// 1e-8 units.
    pub exchange_rate: i64,
    pub included: bool,
    pub count: i64,
    /// Cents.
    pub balance: i64,
}

/// The user's balances grouped by type, currency, exchange rate and inclusion in totals.
pub async fn balance_groups<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
) -> Result<Vec<BalanceGroup>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT type, currency, exchange_rate, is_included_in_total, COUNT(*) AS n, \
         CAST(SUM(balance) AS BIGINT) AS total \
         FROM accounts WHERE user_id = $1 GROUP BY type, currency, exchange_rate, is_included_in_total",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(BalanceGroup {
                kind: row.try_get("type")?,
                currency: row.try_get("currency")?,
                exchange_rate: row.try_get("exchange_rate")?,
                included: flag(row, "is_included_in_total")?,
                count: row.try_get("n")?,
                balance: row.try_get::<Option<i64>, _>("total")?.unwrap_or(0),
            })
        })
        .collect()
}

/// All-time income and expense sums of the accounts included in totals, per transaction type,
/// account currency and account exchange rate: `(type, currency, exchange_rate, cents)`.
pub async fn flow_totals<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
) -> Result<Vec<(String, String, i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT t.type AS type, a.currency AS currency, a.exchange_rate AS exchange_rate, \
         CAST(SUM(t.amount) AS BIGINT) AS total \
         FROM transactions t JOIN accounts a ON a.id = t.account_id AND a.user_id = t.user_id \
         WHERE t.user_id = $1 AND a.is_included_in_total <> 0 AND t.type IN ('income', 'expense') \
         GROUP BY t.type, a.currency, a.exchange_rate",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("type")?,
                row.try_get("currency")?,
                row.try_get("exchange_rate")?,
                row.try_get::<Option<i64>, _>("total")?.unwrap_or(0),
            ))
        })
        .collect()
}

/// What moved through one account in a date range (cents), both sides of transfers counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFlows {
    pub income: i64,
    pub expense: i64,
    pub transfers_in: i64,
    pub transfers_out: i64,
    pub count: i64,
}

/// The flows of one account between `start` and `end` (inclusive, either optional).
pub async fn account_flows<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    account_id: &str,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<AccountFlows, sqlx::Error> {
    let mut sql = String::from(
        "SELECT type, CASE WHEN account_id = $2 THEN 1 ELSE 0 END AS outgoing, COUNT(*) AS n, \
         CAST(SUM(amount) AS BIGINT) AS total FROM transactions \
         WHERE user_id = $1 AND (account_id = $2 OR (to_account_id = $2 AND type = 'transfer'))",
    );
    let mut next = 3;
    let mut bounds = Vec::new();
    if let Some(start) = start {
        sql.push_str(&format!(" AND date >= ${next}"));
        next += 1;
        bounds.push(start);
    }
    if let Some(end) = end {
        sql.push_str(&format!(" AND date <= ${next}"));
        bounds.push(end);
    }
    sql.push_str(" GROUP BY 1, 2");
    let mut query = sqlx::query(&sql).bind(user_id).bind(account_id);
    for bound in bounds {
        query = query.bind(bound);
    }
    let rows = query.fetch_all(db).await?;
    let mut flows = AccountFlows::default();
    for row in rows {
        let kind: String = row.try_get("type")?;
        let outgoing = row.try_get::<i64, _>("outgoing")? != 0;
        let count: i64 = row.try_get("n")?;
        let total = row.try_get::<Option<i64>, _>("total")?.unwrap_or(0);
        flows.count += count;
        match (kind.as_str(), outgoing) {
            ("income", _) => flows.income += total,
            ("expense", _) => flows.expense += total,
            ("transfer", true) => flows.transfers_out += total,
            ("transfer", false) => flows.transfers_in += total,
            _ => {}
        }
    }
    Ok(flows)
}
