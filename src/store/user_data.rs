//! A user's financial data as a whole: deleting all of it in one transaction (the resets),
//! with tombstones recorded first so incremental sync learns about every deleted row.

use super::{tombstones, Tx};

/// How many rows of each kind a reset deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeletedData {
    pub transactions: u64,
    pub debts: u64,
    pub categories: u64,
    pub accounts: u64,
    pub exchange_rates: u64,
}

/// Deletes the user's transactions, debts, categories, accounts and exchange rates in `tx`,
/// in foreign-key-safe order (transactions first), after recording their tombstones with `stamp`
/// (take it with `store::take_change_stamp` in the same transaction).
pub async fn delete_all(tx: &mut Tx, user_id: &str, stamp: i64) -> Result<DeletedData, sqlx::Error> {
    tombstones::record_everything(tx, user_id, stamp).await?;
    Ok(DeletedData {
        transactions: delete_from(tx, "DELETE FROM transactions WHERE user_id = $1", user_id).await?,
        debts: delete_from(tx, "DELETE FROM debts WHERE user_id = $1", user_id).await?,
        categories: delete_from(tx, "DELETE FROM categories WHERE user_id = $1", user_id).await?,
        accounts: delete_from(tx, "DELETE FROM accounts WHERE user_id = $1", user_id).await?,
        exchange_rates: delete_from(tx, "DELETE FROM user_exchange_rates WHERE user_id = $1", user_id).await?,
    })
}

async fn delete_from(tx: &mut Tx, sql: &'static str, user_id: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(sql).bind(user_id).execute(&mut **tx).await?.rows_affected())
}
