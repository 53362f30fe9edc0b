//! Transactions and their balance effects: every insert, update and delete changes the
//! affected balances with single atomic UPDATEs inside the caller's DB transaction.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::transaction_reads::AccountBrief;
use super::{tombstones, Tx};
use crate::domain::ledger::{balance_effects, net_effects, TxnKind};
use crate::domain::money::MAX_STORED_UNITS;
use crate::http::error::{ApiError, ApiResult};

/// A transaction as stored (description still encrypted).
#[derive(Debug, Clone)]
pub struct TxnRow {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub category_id: Option<String>,
    /// Cents, always positive.
    pub amount: i64,
    pub kind: TxnKind,
    pub date: i64,
    pub description: Option<String>,
    pub to_account_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub synced_at: Option<i64>,
}

impl TxnRow {
    pub fn effects(&self) -> Vec<(String, i64)> {
        balance_effects(self.kind, self.amount, &self.account_id, self.to_account_id.as_deref())
    }
}

pub const TXN_COLUMNS: &str = "id, user_id, account_id, category_id, amount, type, date, description, to_account_id, \
     created_at, updated_at, synced_at";

pub fn txn_from_row(row: &AnyRow) -> Result<TxnRow, sqlx::Error> {
    let kind: String = row.try_get("type")?;
    Ok(TxnRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        account_id: row.try_get("account_id")?,
        category_id: row.try_get("category_id")?,
        amount: row.try_get("amount")?,
        kind: TxnKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown transaction type {kind}").into()))?,
        date: row.try_get("date")?,
        description: row.try_get("description")?,
        to_account_id: row.try_get("to_account_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        synced_at: row.try_get("synced_at")?,
    })
}

/// The caller's transaction `id`, if it is theirs.
pub async fn find<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    id: &str,
) -> Result<Option<TxnRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {TXN_COLUMNS} FROM transactions WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(txn_from_row).transpose()
}

/// Adds each delta to its account's balance with one atomic UPDATE per account (in account-id
/// order). A missing account → 404 `Account not found`; a balance leaving the storable range → 400.
pub async fn apply_balance_deltas(tx: &mut Tx, user_id: &str, deltas: &[(String, i64)], stamp: i64) -> ApiResult<()> {
    let limit = MAX_STORED_UNITS * 100;
    for (account_id, delta) in deltas {
        let done = sqlx::query(
            "UPDATE accounts SET balance = balance + $1, updated_at = $2, server_updated_at = $2 \
             WHERE id = $3 AND user_id = $4 AND balance + $1 BETWEEN $5 AND $6",
        )
        .bind(*delta)
        .bind(stamp)
        .bind(account_id)
        .bind(user_id)
        .bind(-limit)
        .bind(limit)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(balance_failure(tx, user_id, account_id).await);
        }
    }
    Ok(())
}

/// Applies the balance effect of a new income or expense (`row.kind` is not a transfer, so one
/// account) with one atomic UPDATE, which is also the check that the account is the caller's,
/// and answers that account as a transaction embeds it. Errors as `apply_balance_deltas`.
pub async fn apply_single_effect(tx: &mut Tx, row: &TxnRow, stamp: i64) -> ApiResult<AccountBrief> {
    let effects = net_effects(&[], &row.effects());
    let [(account_id, delta)] = effects.as_slice() else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "apply_single_effect needs a one-account effect"
        )));
    };
    let limit = MAX_STORED_UNITS * 100;
    let updated = sqlx::query(
        "UPDATE accounts SET balance = balance + $1, updated_at = $2, server_updated_at = $2 \
         WHERE id = $3 AND user_id = $4 AND balance + $1 BETWEEN $5 AND $6 \
         RETURNING id, name, type, currency",
    )
    .bind(*delta)
    .bind(stamp)
    .bind(account_id)
    .bind(&row.user_id)
    .bind(-limit)
    .bind(limit)
    .fetch_optional(&mut **tx)
    .await?;
    match updated {
        Some(found) => Ok(AccountBrief {
            id: found.try_get("id")?,
            name: found.try_get("name")?,
            kind: found.try_get("type")?,
            currency: found.try_get("currency")?,
        }),
        None => Err(balance_failure(tx, &row.user_id, account_id).await),
    }
}

/// Why a balance UPDATE matched no row: the account is missing (404) or the balance would leave
/// the storable range (400).
async fn balance_failure(tx: &mut Tx, user_id: &str, account_id: &str) -> ApiError {
    let exists = sqlx::query("SELECT 1 FROM accounts WHERE id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await;
    match exists {
        Ok(Some(_)) => ApiError::bad_request(BALANCE_OUT_OF_RANGE),
        Ok(None) => ApiError::not_found("Account not found"),
        Err(err) => err.into(),
    }
}

/// The message of a balance that would leave the storable range.
pub const BALANCE_OUT_OF_RANGE: &str = "The resulting account balance is out of range";

/// Inserts a transaction row without touching any balance (see `insert_with_effect` and
/// `apply_single_effect`). `row.description` must already be encrypted. `client_id`: the id was
/// chosen by a client, so a tombstone of a deleted record with that id may exist and is
/// forgotten (a server-generated UUID has none).
pub async fn insert_row(tx: &mut Tx, row: &TxnRow, stamp: i64, client_id: bool) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO transactions (id, user_id, account_id, category_id, amount, type, date, description, \
         to_account_id, created_at, updated_at, synced_at, server_created_at, server_updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(&row.id)
    .bind(&row.user_id)
    .bind(&row.account_id)
    .bind(&row.category_id)
    .bind(row.amount)
    .bind(row.kind.as_str())
    .bind(row.date)
    .bind(&row.description)
    .bind(&row.to_account_id)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.synced_at)
    .bind(stamp)
    .execute(&mut **tx)
    .await?;
    if client_id {
        tombstones::forget(tx, "transactions", &row.user_id, &row.id).await?;
    }
    Ok(())
}

/// Inserts a transaction and applies its balance effect. `row.description` must already be
/// encrypted. `stamp` comes from `store::take_change_stamp`; `client_id` as in `insert_row`.
pub async fn insert_with_effect(tx: &mut Tx, row: &TxnRow, stamp: i64, client_id: bool) -> ApiResult<()> {
    insert_row(tx, row, stamp, client_id).await?;
    let effects = net_effects(&[], &row.effects());
    apply_balance_deltas(tx, &row.user_id, &effects, stamp).await
}

/// Replaces `old` by `new` (same id and user), reversing the old balance effect and applying
/// the new one across whichever accounts and types changed.
pub async fn update_with_effect(tx: &mut Tx, old: &TxnRow, new: &TxnRow, stamp: i64) -> ApiResult<()> {
    sqlx::query(
        "UPDATE transactions SET account_id = $1, category_id = $2, amount = $3, type = $4, date = $5, \
         description = $6, to_account_id = $7, updated_at = $8, synced_at = $9, server_updated_at = $10 \
         WHERE id = $11 AND user_id = $12",
    )
    .bind(&new.account_id)
    .bind(&new.category_id)
    .bind(new.amount)
    .bind(new.kind.as_str())
    .bind(new.date)
    .bind(&new.description)
    .bind(&new.to_account_id)
    .bind(new.updated_at)
    .bind(new.synced_at)
    .bind(stamp)
    .bind(&old.id)
    .bind(&old.user_id)
    .execute(&mut **tx)
    .await?;
    let effects = net_effects(&old.effects(), &new.effects());
    apply_balance_deltas(tx, &old.user_id, &effects, stamp).await
}

/// Deletes a transaction and reverses its balance effect; answers false when it was not there
/// any more (a concurrent delete won), in which case nothing is changed.
pub async fn delete_with_effect(tx: &mut Tx, row: &TxnRow, stamp: i64) -> ApiResult<bool> {
    if !tombstones::delete_row(tx, "transactions", &row.user_id, &row.id, stamp).await? {
        return Ok(false);
    }
    let effects = net_effects(&row.effects(), &[]);
    apply_balance_deltas(tx, &row.user_id, &effects, stamp).await?;
    Ok(true)
}
