//! Reads of transactions: the filtered, paged list with the embedded account, target account and
//! category and the total count in one query, and the aggregates behind the transaction statistics.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::transactions::{txn_from_row, TxnRow};
use crate::domain::ledger::TxnKind;

/// Which transactions a list or count covers (always within one user).
#[derive(Debug, Clone, Default)]
pub struct TxnFilter {
    /// Either side of a transfer.
    pub account_id: Option<String>,
    pub category_id: Option<String>,
    pub kind: Option<TxnKind>,
    /// Inclusive bounds, epoch ms.
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub id: Option<String>,
}

/// A value bound to a built query.
enum Param {
    Text(String),
    Int(i64),
}

/// The WHERE clause of `filter` over `transactions t`, its parameters numbered from `$1`
/// (the user id).
fn where_clause(user_id: &str, filter: &TxnFilter) -> (String, Vec<Param>) {
    let mut sql = String::from("t.user_id = $1");
    let mut params = vec![Param::Text(user_id.to_string())];
    let mut push = |sql: &mut String, condition: &str, param: Param| {
        params.push(param);
        sql.push_str(&condition.replace('?', &format!("${}", params.len())));
    };
    if let Some(id) = &filter.id {
        push(&mut sql, " AND t.id = ?", Param::Text(id.clone()));
    }
    if let Some(account) = &filter.account_id {
        push(
            &mut sql,
            " AND (t.account_id = ? OR t.to_account_id = ?)",
            Param::Text(account.clone()),
        );
    }
    if let Some(category) = &filter.category_id {
        push(&mut sql, " AND t.category_id = ?", Param::Text(category.clone()));
    }
    if let Some(kind) = filter.kind {
        push(&mut sql, " AND t.type = ?", Param::Text(kind.as_str().to_string()));
    }
    if let Some(start) = filter.start {
        push(&mut sql, " AND t.date >= ?", Param::Int(start));
    }
    if let Some(end) = filter.end {
        push(&mut sql, " AND t.date <= ?", Param::Int(end));
    }
    (sql, params)
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    params: Vec<Param>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text),
            Param::Int(int) => query.bind(int),
        };
    }
    query
}

/// The account embedded in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountBrief {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub currency: String,
}

/// The category embedded in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryBrief {
    pub id: String,
    pub name: String,
    pub icon: Option<String>,
    pub color: Option<String>,
}

/// A transaction with what it refers to.
#[derive(Debug, Clone)]
pub struct TxnWithRefs {
    pub txn: TxnRow,
    pub account: Option<AccountBrief>,
    pub to_account: Option<AccountBrief>,
    pub category: Option<CategoryBrief>,
}

const SELECT_WITH_REFS_HEAD: &str = "SELECT t.id AS id, t.user_id AS user_id, t.account_id AS account_id, \
     t.category_id AS category_id, t.amount AS amount, t.type AS type, t.date AS date, \
     t.description AS description, t.to_account_id AS to_account_id, t.created_at AS created_at, \
     t.updated_at AS updated_at, t.synced_at AS synced_at, \
     a.id AS a_id, a.name AS a_name, a.type AS a_type, a.currency AS a_currency, \
     ta.id AS ta_id, ta.name AS ta_name, ta.type AS ta_type, ta.currency AS ta_currency, \
     c.id AS c_id, c.name AS c_name, c.icon AS c_icon, c.color AS c_color";

const SELECT_WITH_REFS_FROM: &str = "FROM transactions t \
     LEFT JOIN accounts a ON a.id = t.account_id AND a.user_id = t.user_id \
     LEFT JOIN accounts ta ON ta.id = t.to_account_id AND ta.user_id = t.user_id \
     LEFT JOIN categories c ON c.id = t.category_id AND c.user_id = t.user_id";

fn account_brief(row: &AnyRow, prefix: &str) -> Result<Option<AccountBrief>, sqlx::Error> {
    let Some(id) = row.try_get::<Option<String>, _>(format!("{prefix}_id").as_str())? else {
        return Ok(None);
    };
    Ok(Some(AccountBrief {
        id,
        name: row.try_get(format!("{prefix}_name").as_str())?,
        kind: row.try_get(format!("{prefix}_type").as_str())?,
        currency: row.try_get(format!("{prefix}_currency").as_str())?,
    }))
}

fn with_refs_from_row(row: &AnyRow) -> Result<TxnWithRefs, sqlx::Error> {
    let category = match row.try_get::<Option<String>, _>("c_id")? {
        Some(id) => Some(CategoryBrief {
            id,
            name: row.try_get("c_name")?,
            icon: row.try_get("c_icon")?,
            color: row.try_get("c_color")?,
        }),
        None => None,
    };
    Ok(TxnWithRefs {
        txn: txn_from_row(row)?,
        account: account_brief(row, "a")?,
        to_account: account_brief(row, "ta")?,
        category,
    })
}

/// One page of the user's transactions matching `filter`, newest first (date, then creation,
/// then id), and how many match in all. The count rides along in the page query (an
/// uncorrelated subquery, evaluated once); only an empty page needs a query of its own.
pub async fn list_page(
    db: &sqlx::AnyPool,
    user_id: &str,
    filter: &TxnFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TxnWithRefs>, i64), sqlx::Error> {
    let (condition, mut params) = where_clause(user_id, filter);
    let n = params.len();
    // The subquery's `t` shadows the outer one, so the same condition and parameters serve both.
    let sql = format!(
        "{SELECT_WITH_REFS_HEAD}, (SELECT COUNT(*) FROM transactions t WHERE {condition}) AS total_count \
         {SELECT_WITH_REFS_FROM} WHERE {condition} ORDER BY t.date DESC, t.created_at DESC, t.id DESC \
         LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    params.push(Param::Int(limit));
    params.push(Param::Int(offset));
    let rows = bind_all(sqlx::query(&sql), params).fetch_all(db).await?;
    let total = match rows.first() {
        Some(row) => row.try_get("total_count")?,
        None => count(db, user_id, filter).await?,
    };
    let page = rows.iter().map(with_refs_from_row).collect::<Result<_, _>>()?;
    Ok((page, total))
}

/// How many of the user's transactions match `filter`.
pub async fn count<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    filter: &TxnFilter,
) -> Result<i64, sqlx::Error> {
    let (condition, params) = where_clause(user_id, filter);
    let sql = format!("SELECT COUNT(*) AS n FROM transactions t WHERE {condition}");
    let row = bind_all(sqlx::query(&sql), params).fetch_one(db).await?;
    row.try_get("n")
}

/// The user's transaction `id` with what it refers to.
pub async fn find_with_refs<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    id: &str,
) -> Result<Option<TxnWithRefs>, sqlx::Error> {
    let filter = TxnFilter {
        id: Some(id.to_string()),
        ..TxnFilter::default()
    };
    let (condition, params) = where_clause(user_id, &filter);
    let sql = format!("{SELECT_WITH_REFS_HEAD} {SELECT_WITH_REFS_FROM} WHERE {condition}");
    let row = bind_all(sqlx::query(&sql), params).fetch_optional(db).await?;
    row.as_ref().map(with_refs_from_row).transpose()
}

/// Transactions of one type, category and account in a range: how many and their sum
/// (cents), with the account's exchange rate (1e-8 units).
#[derive(Debug, Clone)]
pub struct FlowGroup {
    pub kind: TxnKind,
    pub category_id: Option<String>,
    pub account_id: String,
    pub exchange_rate: i64,
    pub count: i64,
    pub total: i64,
}

fn kind_of(row: &AnyRow) -> Result<TxnKind, sqlx::Error> {
    let kind: String = row.try_get("type")?;
    TxnKind::parse(&kind).ok_or_else(|| sqlx::Error::Decode(format!("unknown transaction type {kind}").into()))
}

/// Sums of the user's transactions in a range grouped by type, category and account.
pub async fn flow_groups<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<Vec<FlowGroup>, sqlx::Error> {
    let filter = TxnFilter {
        start,
        end,
        ..TxnFilter::default()
    };
    let (condition, params) = where_clause(user_id, &filter);
    // Aggregated first (an index-only scan of `transactions_user_stats_idx` in group order),
    // then the few groups are joined to their account's rate.
    let sql = format!(
        "SELECT g.type AS type, g.category_id AS category_id, g.account_id AS account_id, \
         COALESCE(a.exchange_rate, 100000000) AS exchange_rate, g.n AS n, g.total AS total \
         FROM (SELECT t.type AS type, t.category_id AS category_id, t.account_id AS account_id, \
         COUNT(*) AS n, CAST(SUM(t.amount) AS BIGINT) AS total \
         FROM transactions t WHERE {condition} GROUP BY t.type, t.category_id, t.account_id) g \
         LEFT JOIN accounts a ON a.id = g.account_id AND a.user_id = $1"
    );
    let rows = bind_all(sqlx::query(&sql), params).fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            Ok(FlowGroup {
                kind: kind_of(row)?,
                category_id: row.try_get("category_id")?,
                account_id: row.try_get("account_id")?,
                exchange_rate: row.try_get("exchange_rate")?,
                count: row.try_get("n")?,
                total: row.try_get::<Option<i64>, _>("total")?.unwrap_or(0),
            })
        })
        .collect()
}

/// Income or expense of one UTC day at one exchange rate.
#[derive(Debug, Clone)]
pub struct DayGroup {
    pub kind: TxnKind,
    /// Days since the epoch (floor), UTC.
    pub day: i64,
    pub exchange_rate: i64,
    pub total: i64,
}

/// The UTC day number of `t.date`, rounded down for moments before 1970, portably.
const DAY_OF_DATE: &str = "CASE WHEN t.date >= 0 THEN t.date / 86400000 ELSE (t.date + 1) / 86400000 - 1 END";

/// Income and expense sums of the user's transactions in a range per UTC day.
pub async fn day_groups<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<Vec<DayGroup>, sqlx::Error> {
    let filter = TxnFilter {
        start,
        end,
        ..TxnFilter::default()
    };
    let (condition, params) = where_clause(user_id, &filter);
    let sql = format!(
        "SELECT t.type AS type, {DAY_OF_DATE} AS day, COALESCE(a.exchange_rate, 100000000) AS exchange_rate, \
         CAST(SUM(t.amount) AS BIGINT) AS total \
         FROM transactions t LEFT JOIN accounts a ON a.id = t.account_id AND a.user_id = t.user_id \
         WHERE {condition} AND t.type IN ('income', 'expense') GROUP BY 1, 2, 3"
    );
    let rows = bind_all(sqlx::query(&sql), params).fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            Ok(DayGroup {
                kind: kind_of(row)?,
                day: row.try_get("day")?,
                exchange_rate: row.try_get("exchange_rate")?,
                total: row.try_get::<Option<i64>, _>("total")?.unwrap_or(0),
            })
        })
        .collect()
}

/// The user's category `id` as a transaction embeds it.
pub async fn category_brief<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    id: &str,
) -> Result<Option<CategoryBrief>, sqlx::Error> {
    let row = sqlx::query("SELECT id, name, icon, color FROM categories WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .fetch_optional(db)
        .await?;
    row.map(|row| {
        Ok(CategoryBrief {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            icon: row.try_get("icon")?,
            color: row.try_get("color")?,
        })
    })
    .transpose()
}

/// Whether the user holds a category with this id.
pub async fn category_exists<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 FROM categories WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}
