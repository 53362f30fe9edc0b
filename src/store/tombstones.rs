//! Tombstones: every delete of a synced row, by any path, is remembered so that an incremental
//! pull can tell a device what disappeared. Call these BEFORE the DELETE they describe, in the
//! same transaction.

use super::Tx;

/// The synced tables, by their names in the incremental sync protocol.
pub const SYNCED_TABLES: [(&str, &str); 5] = [
    ("accounts", "accounts"),
    ("categories", "categories"),
    ("transactions", "transactions"),
    ("debts", "debts"),
    ("user_exchange_rates", "exchange_rates"),
];

/// A table's name in the sync protocol.
pub fn sync_name(table: &'static str) -> &'static str {
    SYNCED_TABLES
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, s)| *s)
        .unwrap_or(table)
}

/// The SQL expression of a table's id as the sync protocol names it: a user's exchange rate is
/// known to devices by its pair (`USD_EUR`), every other row by its UUID.
pub fn sync_id_expr(table: &str) -> &'static str {
    if table == "user_exchange_rates" {
        "from_currency || '_' || to_currency"
    } else {
        "id"
    }
}

/// Records tombstones for the rows of `table` of `user_id` matching `condition`, an SQL
/// expression over that table in which `$1` is the user id, `$2` the stamp and `$3` `arg`
/// (pass `None` when the condition does not use `$3`). Answers how many rows it covered.
///
/// `table` and `condition` must be constants of the code, never client input.
pub async fn record(
    tx: &mut Tx,
    table: &'static str,
    user_id: &str,
    stamp: i64,
    condition: &'static str,
    arg: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let sync_name = sync_name(table);
    let id_expr = sync_id_expr(table);
    // `WHERE true`-style condition keeps SQLite's parser from reading ON CONFLICT as a join clause.
    let sql = format!(
        "INSERT INTO sync_tombstones (user_id, table_name, record_id, deleted_at) \
         SELECT user_id, '{sync_name}', {id_expr}, $2 FROM {table} WHERE user_id = $1 AND ({condition}) \
         ON CONFLICT (user_id, table_name, record_id) DO UPDATE SET deleted_at = excluded.deleted_at"
    );
    let mut query = sqlx::query(&sql).bind(user_id).bind(stamp);
    if let Some(arg) = arg {
        query = query.bind(arg);
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

/// Records tombstones for every synced row of a user (before a reset or wipe).
pub async fn record_everything(tx: &mut Tx, user_id: &str, stamp: i64) -> Result<(), sqlx::Error> {
    for (table, _) in SYNCED_TABLES {
        record(tx, table, user_id, stamp, "1 = 1", None).await?;
    }
    Ok(())
}

/// Forgets tombstones of ids that were written again (a re-created record is not deleted).
/// `record_id` is the sync id (for exchange rates, the `FROM_TO` pair).
pub async fn forget(tx: &mut Tx, table: &'static str, user_id: &str, record_id: &str) -> Result<(), sqlx::Error> {
    let sync_name = sync_name(table);
    sqlx::query("DELETE FROM sync_tombstones WHERE user_id = $1 AND table_name = $2 AND record_id = $3")
        .bind(user_id)
        .bind(sync_name)
        .bind(record_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes one row of a synced `table` of the user by id, recording its tombstone first;
/// answers whether it was there. `table` must be a constant of the code.
pub async fn delete_row(
    tx: &mut Tx,
    table: &'static str,
    user_id: &str,
    id: &str,
    stamp: i64,
) -> Result<bool, sqlx::Error> {
    record(tx, table, user_id, stamp, "id = $3", Some(id)).await?;
    let done = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1 AND user_id = $2"))
        .bind(id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}
