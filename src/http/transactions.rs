//! Transaction endpoints (`/api/v1/transactions`): the filtered list, one transaction, create (or
//! update by client id), partial update and delete with their balance effects, and statistics.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::accounts::write_stamp;
use super::auth::AuthUser;
use super::error::{is_unique_violation, ApiError, ApiResult, ErrorBody, FieldError};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::validate::{double_option, parse_range, parse_time, parse_uuid, Checks};
use super::views::{AccountRef, CategoryRef, TransactionRecord, TransactionView};
use crate::domain::ledger::TxnKind;
use crate::domain::money::{Money, MAX_AMOUNT_UNITS};
use crate::domain::stats::Total;
use crate::domain::time::{now_ms, to_day, DAY_MS};
use crate::state::AppState;
use crate::store::transaction_reads::{self, AccountBrief, TxnFilter, TxnWithRefs};
use crate::store::transactions::{self, TxnRow};
use crate::store::{accounts, Tx};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_transactions, create_transaction))
        .routes(routes!(transaction_stats))
        .routes(routes!(period_statistics))
        .routes(routes!(get_transaction, update_transaction, delete_transaction))
}

/// Default and largest page size of the list.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 100;

const TYPE_MESSAGE: &str = "Type must be income, expense or transfer";

fn view(found: TxnWithRefs, state: &AppState) -> TransactionView {
    let brief = |a: AccountBrief| AccountRef {
        id: a.id,
        name: a.name,
        kind: a.kind,
        currency: a.currency,
    };
    TransactionView {
        record: TransactionRecord::of(&found.txn, &state.cipher),
        account: found.account.map(brief),
        to_account: found.to_account.map(brief),
        category: found.category.map(|c| CategoryRef {
            id: c.id,
            name: c.name,
            icon: c.icon,
            color: c.color,
        }),
    }
}

/// The fields of a transaction, as a create or (partial) update sends them.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionBody {
    /// A client-chosen UUID (create only; an id of an existing transaction of the caller
    /// updates it).
    #[schema(format = Uuid)]
    id: Option<String>,
    #[schema(format = Uuid)]
    account_id: Option<String>,
    /// Nullable.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = Uuid)]
    category_id: Option<Option<String>>,
    /// ≥ 0.01 after rounding to cents.
    #[schema(value_type = Option<f64>)]
    amount: Option<Money>,
    /// `income`, `expense` or `transfer`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    kind: Option<String>,
    /// ISO-8601 date or date-time.
    #[schema(format = DateTime)]
    date: Option<String>,
    /// Stored encrypted.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// Required for transfers; ignored (and cleared) for other types.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = Uuid)]
    to_account_id: Option<Option<String>>,
}

/// A validated transaction body: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Default)]
struct TxnPatch {
    account_id: Option<String>,
    category_id: Option<Option<String>>,
    amount: Option<i64>,
    kind: Option<TxnKind>,
    date: Option<i64>,
    /// Plaintext.
    description: Option<Option<String>>,
    to_account_id: Option<Option<String>>,
}

/// Reads an optional id field; an empty string counts as null.
fn optional_id(checks: &mut Checks, value: Option<Option<String>>, path: &str, msg: &str) -> Option<Option<String>> {
    let value = value?;
    Some(match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(raw) => {
            let parsed = parse_uuid(raw);
            checks.body(parsed.is_some(), path, msg);
            parsed
        }
        None => None,
    })
}

/// Validates every field of a transaction body (`creating`: account, amount, type and date are
/// required) and answers the client id, if any, and the patch.
fn validate_transaction_body(body: TransactionBody, creating: bool) -> ApiResult<(Option<String>, TxnPatch)> {
    let mut checks = Checks::new();
    let mut patch = TxnPatch::default();

    let id = if creating {
        checks.client_id(body.id.as_deref())
    } else {
        None
    };

    match body.account_id.as_deref() {
        Some(raw) => {
            patch.account_id = parse_uuid(raw);
            checks.body(patch.account_id.is_some(), "accountId", "Invalid account ID");
        }
        None => {
            checks.body(!creating, "accountId", "Account ID is required");
        }
    }

    patch.category_id = optional_id(&mut checks, body.category_id, "categoryId", "Invalid category ID");

    match body.amount {
        Some(amount) => {
            checks.body(amount.is_positive(), "amount", "Amount must be greater than 0");
            checks.body(
                amount.within_units(MAX_AMOUNT_UNITS),
                "amount",
                "Amount must be at most 10000000000000",
            );
            patch.amount = Some(amount.raw());
        }
        None => {
            checks.body(!creating, "amount", "Amount is required");
        }
    }

    match body.kind.as_deref() {
        Some(raw) => {
            patch.kind = TxnKind::parse(raw);
            checks.body(patch.kind.is_some(), "type", TYPE_MESSAGE);
        }
        None => {
            checks.body(!creating, "type", TYPE_MESSAGE);
        }
    }

    match body.date.as_deref() {
        Some(raw) => {
            patch.date = parse_time(raw);
            checks.body(patch.date.is_some(), "date", "Invalid date");
        }
        None => {
            checks.body(!creating, "date", "Date is required");
        }
    }

    patch.description = body.description;

    // A target account only matters for transfers: other types ignore whatever was sent.
    if !matches!(patch.kind, Some(TxnKind::Income | TxnKind::Expense)) {
        patch.to_account_id = optional_id(
            &mut checks,
            body.to_account_id,
            "toAccountId",
            "Invalid target account ID",
        );
    }

    checks.finish()?;
    Ok((id, patch))
}

/// Checks the transfer rules of a transaction about to be written.
fn check_transfer(row: &TxnRow) -> ApiResult<()> {
    if row.kind == TxnKind::Transfer {
        match row.to_account_id.as_deref() {
            None => return Err(ApiError::bad_request("Target account is required for transfers")),
            Some(to) if to == row.account_id => {
                return Err(ApiError::bad_request("Cannot transfer to the same account"))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Checks that the accounts and category a transaction refers to are the caller's; `old` is
/// the stored version (its references are known to be valid), `None` for a new transaction.
async fn check_references(tx: &mut Tx, row: &TxnRow, old: Option<&TxnRow>) -> ApiResult<()> {
    let user_id = row.user_id.as_str();
    if old.is_none_or(|o| o.account_id != row.account_id)
        && !accounts::exists(&mut **tx, user_id, &row.account_id).await?
    {
        return Err(ApiError::not_found("Account not found"));
    }
    if let Some(category) = row.category_id.as_deref() {
        if old.is_none_or(|o| o.category_id.as_deref() != Some(category))
            && !transaction_reads::category_exists(&mut **tx, user_id, category).await?
        {
            return Err(ApiError::not_found("Category not found"));
        }
    }
    if let Some(to) = row.to_account_id.as_deref() {
        if old.is_none_or(|o| o.to_account_id.as_deref() != Some(to))
            && !accounts::exists(&mut **tx, user_id, to).await?
        {
            return Err(ApiError::not_found("Target account not found"));
        }
    }
    Ok(())
}

/// `old` with the patch applied; a non-transfer never keeps a target account.
fn merged(old: &TxnRow, patch: &TxnPatch, state: &AppState, stamp: i64) -> TxnRow {
    let mut row = old.clone();
    if let Some(account) = &patch.account_id {
        row.account_id = account.clone();
    }
    if let Some(category) = &patch.category_id {
        row.category_id = category.clone();
    }
    if let Some(amount) = patch.amount {
        row.amount = amount;
    }
    if let Some(kind) = patch.kind {
        row.kind = kind;
    }
    if let Some(date) = patch.date {
        row.date = date;
    }
    if let Some(description) = &patch.description {
        row.description = state.cipher.encrypt_opt(description.as_deref());
    }
    if let Some(to) = &patch.to_account_id {
        row.to_account_id = to.clone();
    }
    if row.kind != TxnKind::Transfer {
        row.to_account_id = None;
    }
    row.updated_at = stamp;
    row
}

/// Applies a validated patch to the caller's stored transaction, rebalancing, inside `tx`.
async fn update_existing(state: &AppState, tx: &mut Tx, old: &TxnRow, patch: &TxnPatch, stamp: i64) -> ApiResult<()> {
    let new = merged(old, patch, state, stamp);
    check_transfer(&new)?;
    check_references(tx, &new, Some(old)).await?;
    transactions::update_with_effect(tx, old, &new, stamp).await
}

/// Reads back a transaction written in `tx`, with what it refers to.
async fn read_back(tx: &mut Tx, state: &AppState, user_id: &str, id: &str) -> ApiResult<TransactionView> {
    let found = transaction_reads::find_with_refs(&mut **tx, user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Transaction not found"))?;
    Ok(view(found, state))
}

/// Whether an error is a database unique violation (an id taken concurrently).
fn is_duplicate(err: &ApiError) -> bool {
    match err {
        ApiError::Internal(inner) => inner.downcast_ref::<sqlx::Error>().is_some_and(is_unique_violation),
        _ => false,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Transactions on this account, either side of a transfer.
    account_id: Option<String>,
    category_id: Option<String>,
    /// `income`, `expense` or `transfer`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<String>,
    /// Inclusive; a date without a time means the start of that UTC day.
    start_date: Option<String>,
    /// Inclusive; a date without a time means the end of that UTC day.
    end_date: Option<String>,
    /// 1 to 100, default 50.
    limit: Option<String>,
    /// ≥ 0, default 0.
    offset: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TransactionPage {
    transactions: Vec<TransactionView>,
    total: i64,
    limit: i64,
    offset: i64,
}

/// Parses an optional integer query parameter within `range`.
fn int_param(
    checks: &mut Checks,
    value: Option<&str>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    path: &str,
    msg: &str,
) -> i64 {
    let Some(raw) = value.map(str::trim) else {
        return default;
    };
    match raw.parse::<i64>().ok().filter(|v| range.contains(v)) {
        Some(v) => v,
        None => {
            checks.query(false, path, msg);
            default
        }
    }
}

/// The caller's transactions, newest first, filtered and paged.
#[utoipa::path(get, path = "/", tag = "transactions", security(("bearer" = [])), params(ListQuery), responses(
    (status = 200, body = TransactionPage),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn list_transactions(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<TransactionPage>> {
    let mut checks = Checks::new();
    let mut id_param = |value: Option<&str>, path: &str, msg: &str| {
        let raw = value.map(str::trim).filter(|v| !v.is_empty())?;
        let parsed = parse_uuid(raw);
        checks.query(parsed.is_some(), path, msg);
        parsed
    };
    let account_id = id_param(query.account_id.as_deref(), "accountId", "Invalid account ID");
    let category_id = id_param(query.category_id.as_deref(), "categoryId", "Invalid category ID");
    let kind = match query.kind.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(raw) => {
            let kind = TxnKind::parse(raw);
            checks.query(kind.is_some(), "type", TYPE_MESSAGE);
            kind
        }
        None => None,
    };
    let (start, end) = parse_range(&mut checks, query.start_date.as_deref(), query.end_date.as_deref());
    let limit = int_param(
        &mut checks,
        query.limit.as_deref(),
        DEFAULT_LIMIT,
        1..=MAX_LIMIT,
        "limit",
        "Limit must be an integer from 1 to 100",
    );
    let offset = int_param(
        &mut checks,
        query.offset.as_deref(),
        0,
        0..=i64::from(i32::MAX),
        "offset",
        "Offset must be a non-negative integer",
    );
    checks.finish()?;

    let filter = TxnFilter {
        account_id,
        category_id,
        kind,
        start,
        end,
        id: None,
    };
    let (rows, total) = transaction_reads::list_page(&state.db.pool, &auth.id, &filter, limit, offset).await?;
    Ok(Json(TransactionPage {
        transactions: rows.into_iter().map(|r| view(r, &state)).collect(),
        total,
        limit,
        offset,
    }))
}

/// One of the caller's transactions.
#[utoipa::path(get, path = "/{id}", tag = "transactions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Transaction id")),
    responses(
        (status = 200, body = TransactionView),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Transaction not found", body = ErrorBody),
    ))]
async fn get_transaction(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<TransactionView>> {
    let found = transaction_reads::find_with_refs(&state.db.pool, &auth.id, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("Transaction not found"))?;
    Ok(Json(view(found, &state)))
}

/// Record a transaction and apply its balance effect; an `id` naming an existing transaction
/// of the caller updates that transaction with the fields sent (200).
#[utoipa::path(post, path = "/", tag = "transactions", security(("bearer" = [])), request_body = TransactionBody, responses(
    (status = 201, description = "Created", body = TransactionView),
    (status = 200, description = "The transaction with this id was updated", body = TransactionView),
    (status = 400, description = "Validation failed / Target account is required for transfers / Cannot transfer to the same account", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "Account not found / Category not found / Target account not found", body = ErrorBody),
    (status = 409, description = "Id is already in use", body = ErrorBody),
))]
async fn create_transaction(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<TransactionBody>,
) -> ApiResult<(StatusCode, Json<TransactionView>)> {
    let (id, patch) = validate_transaction_body(body, true)?;
    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    if let Some(id) = &id {
        if let Some(old) = transactions::find(&mut *tx, &auth.id, id).await? {
            update_existing(&state, &mut tx, &old, &patch, stamp).await?;
            let written = read_back(&mut tx, &state, &auth.id, id).await?;
            tx.commit().await?;
            return Ok((StatusCode::OK, Json(written)));
        }
        if crate::store::id_taken_by_other(&mut *tx, "transactions", &auth.id, id).await? {
            return Err(ApiError::conflict("Id is already in use"));
        }
    }
    let (Some(account_id), Some(amount), Some(kind), Some(date)) =
        (patch.account_id.clone(), patch.amount, patch.kind, patch.date)
    else {
        // Unreachable after validation of a create; answered as a validation failure anyway.
        return Err(ApiError::invalid(FieldError::body("", "Missing required fields")));
    };
    let client_id = id.is_some();
    let row = TxnRow {
        id: id.unwrap_or_else(|| Uuid::new_v4().to_string()),
        user_id: auth.id.clone(),
        account_id,
        category_id: patch.category_id.clone().flatten(),
        amount,
        kind,
        date,
        description: state.cipher.encrypt_opt(patch.description.clone().flatten().as_deref()),
        to_account_id: if kind == TxnKind::Transfer {
            patch.to_account_id.clone().flatten()
        } else {
            None
        },
        created_at: stamp,
        updated_at: stamp,
        synced_at: None,
    };
    check_transfer(&row)?;
    let duplicate = |err: ApiError| {
        if is_duplicate(&err) {
            ApiError::conflict("Id is already in use")
        } else {
            err
        }
    };
    let written = if row.kind == TxnKind::Transfer {
        check_references(&mut tx, &row, None).await?;
        transactions::insert_with_effect(&mut tx, &row, stamp, client_id)
            .await
            .map_err(duplicate)?;
        read_back(&mut tx, &state, &auth.id, &row.id).await?
    } else {
        // One account: its balance UPDATE checks that it is the caller's (404 `Account not
        // found`) and answers its embed; the category is read once for the check and the embed.
        // The checks answer in the same order as `check_references`: account, category, then
        // the balance range.
        let account = match transactions::apply_single_effect(&mut tx, &row, stamp).await {
            Ok(account) => account,
            Err(err) => {
                if let (ApiError::BadRequest(..), Some(category)) = (&err, row.category_id.as_deref()) {
                    if transaction_reads::category_brief(&mut *tx, &auth.id, category)
                        .await?
                        .is_none()
                    {
                        return Err(ApiError::not_found("Category not found"));
                    }
                }
                return Err(err);
            }
        };
        let category = match row.category_id.as_deref() {
            Some(category) => Some(
                transaction_reads::category_brief(&mut *tx, &auth.id, category)
                    .await?
                    .ok_or_else(|| ApiError::not_found("Category not found"))?,
            ),
            None => None,
        };
        transactions::insert_row(&mut tx, &row, stamp, client_id)
            .await
            .map_err(duplicate)?;
        view(
            TxnWithRefs {
                txn: row,
                account: Some(account),
                to_account: None,
                category,
            },
            &state,
        )
    };
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(written)))
}

/// Update some fields of one of the caller's transactions: the old balance effect is reversed
/// and the new one applied.
#[utoipa::path(put, path = "/{id}", tag = "transactions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Transaction id")),
    request_body = TransactionBody,
    responses(
        (status = 200, body = TransactionView),
        (status = 400, description = "Validation failed / Target account is required for transfers / Cannot transfer to the same account", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Transaction not found / Account not found / Category not found / Target account not found", body = ErrorBody),
    ))]
async fn update_transaction(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TransactionBody>,
) -> ApiResult<Json<TransactionView>> {
    let (_, patch) = validate_transaction_body(body, false)?;
    let id = id.to_string();
    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    let old = transactions::find(&mut *tx, &auth.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Transaction not found"))?;
    update_existing(&state, &mut tx, &old, &patch, stamp).await?;
    let written = read_back(&mut tx, &state, &auth.id, &id).await?;
    tx.commit().await?;
    Ok(Json(written))
}

/// Delete one of the caller's transactions, reversing its balance effect.
#[utoipa::path(delete, path = "/{id}", tag = "transactions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Transaction id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Transaction not found", body = ErrorBody),
    ))]
async fn delete_transaction(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    let row = transactions::find(&mut *tx, &auth.id, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("Transaction not found"))?;
    if !transactions::delete_with_effect(&mut tx, &row, stamp).await? {
        return Err(ApiError::not_found("Transaction not found"));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct StatsQuery {
    /// Inclusive; a date without a time means the start of that UTC day.
    start_date: Option<String>,
    /// Inclusive; a date without a time means the end of that UTC day.
    end_date: Option<String>,
    /// `category`, `account` or `type`.
    group_by: Option<String>,
}

/// The sums of one group.
#[derive(Serialize, ToSchema)]
pub struct StatsGroup {
    /// The category id (null for transactions without one), account id or type.
    key: Option<String>,
    #[schema(value_type = f64)]
    income: Total,
    #[schema(value_type = f64)]
    expense: Total,
    count: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionStats {
    #[schema(value_type = f64)]
    total_income: Total,
    #[schema(value_type = f64)]
    total_expense: Total,
    /// Income − expense.
    #[schema(value_type = f64)]
    balance: Total,
    /// Income and expense per category id (transactions without a category left out).
    #[schema(value_type = BTreeMap<String, f64>)]
    categories_stats: BTreeMap<String, Total>,
    /// Every transaction in the range, transfers included.
    transactions_count: i64,
    /// Empty unless `groupBy` is given.
    groups: Vec<StatsGroup>,
}

/// Income and expense of the caller in a date range, amounts × their account's exchange rate,
/// optionally grouped by category, account or type.
#[utoipa::path(get, path = "/stats", tag = "transactions", security(("bearer" = [])), params(StatsQuery), responses(
    (status = 200, body = TransactionStats),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn transaction_stats(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> ApiResult<Json<TransactionStats>> {
    let mut checks = Checks::new();
    let (start, end) = parse_range(&mut checks, query.start_date.as_deref(), query.end_date.as_deref());
    let group_by = query.group_by.as_deref().map(str::trim).filter(|g| !g.is_empty());
    checks.query(
        group_by.is_none_or(|g| matches!(g, "category" | "account" | "type")),
        "groupBy",
        "groupBy must be category, account or type",
    );
    checks.finish()?;

    // The dashboard asks for the same figures again and again between writes: reuse them while
    // the user's change clock has not moved.
    let key = format!("{}|{start:?}|{end:?}", auth.id);
    let flows = match state.flow_cache.get(&key, auth.change_clock) {
        Some(flows) => flows,
        None => {
            let flows = Arc::new(transaction_reads::flow_groups(&state.db.pool, &auth.id, start, end).await?);
            state.flow_cache.put(key, auth.change_clock, flows.clone());
            flows
        }
    };
    let mut stats = TransactionStats {
        total_income: Total::default(),
        total_expense: Total::default(),
        balance: Total::default(),
        categories_stats: BTreeMap::new(),
        transactions_count: 0,
        groups: Vec::new(),
    };
    let mut groups: BTreeMap<Option<String>, StatsGroup> = BTreeMap::new();
    for flow in flows.iter() {
        stats.transactions_count += flow.count;
        let key = match group_by {
            Some("category") => Some(flow.category_id.clone()),
            Some("account") => Some(Some(flow.account_id.clone())),
            Some(_) => Some(Some(flow.kind.as_str().to_string())),
            None => None,
        };
        if let Some(key) = key {
            let group = groups.entry(key.clone()).or_insert_with(|| StatsGroup {
                key,
                income: Total::default(),
                expense: Total::default(),
                count: 0,
            });
            group.count += flow.count;
            match flow.kind {
                TxnKind::Income => group.income.add_converted(flow.total, flow.exchange_rate)?,
                TxnKind::Expense => group.expense.add_converted(flow.total, flow.exchange_rate)?,
                TxnKind::Transfer => {}
            }
        }
        match flow.kind {
            TxnKind::Income => stats.total_income.add_converted(flow.total, flow.exchange_rate)?,
            TxnKind::Expense => stats.total_expense.add_converted(flow.total, flow.exchange_rate)?,
            TxnKind::Transfer => continue,
        }
        if let Some(category) = &flow.category_id {
            stats
                .categories_stats
                .entry(category.clone())
                .or_default()
                .add_converted(flow.total, flow.exchange_rate)?;
        }
    }
    stats.balance = stats.total_income.minus(stats.total_expense)?;
    stats.groups = groups.into_values().collect();
    Ok(Json(stats))
}

/// Income or expense of one category in a period.
#[derive(Serialize, ToSchema)]
pub struct CategoryTotal {
    #[schema(value_type = f64)]
    amount: Total,
    count: i64,
}

/// Income and expense of one UTC day.
#[derive(Serialize, ToSchema, Default)]
pub struct DayTotal {
    #[schema(value_type = f64)]
    income: Total,
    #[schema(value_type = f64)]
    expense: Total,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeriodStatistics {
    #[schema(value_type = f64)]
    total_income: Total,
    #[schema(value_type = f64)]
    total_expenses: Total,
    /// Income − expenses.
    #[schema(value_type = f64)]
    balance: Total,
    /// Income and expense per category id (transactions without a category left out).
    transactions_by_category: BTreeMap<String, CategoryTotal>,
    /// Per UTC day, `YYYY-MM-DD`.
    transactions_by_date: BTreeMap<String, DayTotal>,
}

/// Income and expense of the last 7 (`week`), 30 (`month`) or 365 (`year`) days ending now, or
/// of everything (`all`), amounts × their account's exchange rate.
#[utoipa::path(get, path = "/statistics/{period}", tag = "transactions", security(("bearer" = [])),
    params(("period" = String, Path, description = "`week`, `month`, `year` or `all`")),
    responses(
        (status = 200, body = PeriodStatistics),
        (status = 400, description = "Validation failed", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
async fn period_statistics(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(period): ApiPath<String>,
) -> ApiResult<Json<PeriodStatistics>> {
    let days = match period.as_str() {
        "week" => Some(7),
        "month" => Some(30),
        "year" => Some(365),
        "all" => None,
        _ => {
            return Err(ApiError::invalid(FieldError::params(
                "period",
                "Period must be week, month, year or all",
            )))
        }
    };
    let (start, end) = match days {
        Some(days) => {
            let now = now_ms();
            (Some(now - days * DAY_MS), Some(now))
        }
        None => (None, None),
    };
    let flows = transaction_reads::flow_groups(&state.db.pool, &auth.id, start, end).await?;
    let day_flows = transaction_reads::day_groups(&state.db.pool, &auth.id, start, end).await?;

    let mut stats = PeriodStatistics {
        total_income: Total::default(),
        total_expenses: Total::default(),
        balance: Total::default(),
        transactions_by_category: BTreeMap::new(),
        transactions_by_date: BTreeMap::new(),
    };
    for flow in &flows {
        match flow.kind {
            TxnKind::Income => stats.total_income.add_converted(flow.total, flow.exchange_rate)?,
            TxnKind::Expense => stats.total_expenses.add_converted(flow.total, flow.exchange_rate)?,
            TxnKind::Transfer => continue,
        }
        if let Some(category) = &flow.category_id {
            let entry = stats
                .transactions_by_category
                .entry(category.clone())
                .or_insert_with(|| CategoryTotal {
                    amount: Total::default(),
                    count: 0,
                });
            entry.amount.add_converted(flow.total, flow.exchange_rate)?;
            entry.count += flow.count;
        }
    }
    for day in &day_flows {
        let entry = stats
            .transactions_by_date
            .entry(to_day(day.day.saturating_mul(DAY_MS)))
            .or_default();
        match day.kind {
            TxnKind::Income => entry.income.add_converted(day.total, day.exchange_rate)?,
            TxnKind::Expense => entry.expense.add_converted(day.total, day.exchange_rate)?,
            TxnKind::Transfer => {}
        }
    }
    stats.balance = stats.total_income.minus(stats.total_expenses)?;
    Ok(Json(stats))
}
